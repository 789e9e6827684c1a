#!/bin/sh
# loop-edges.sh: the loop target at its edges. --direct-io refuses a block
# size below what O_DIRECT needs on the backing device or file; write-zeroes
# with NOUNMAP (blkdiscard --zeroout) keeps the backing file's blocks
# allocated, on a file system with FALLOC_FL_ZERO_RANGE (ext4) and on one
# without (tmpfs); `coblk recover` refuses to serve a device with another
# size or block size than the kernel kept; a file or disk another device
# writes to is refused.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
le_id=180

# ---- helpers ---------------------------------------------------------------

# refused STATUS NEEDLE COMMAND...: COMMAND exits STATUS with exactly one
# line on stderr, which contains NEEDLE.
refused() {
  local want="$1" needle="$2" rc=0 t="${TMPDIR:-/tmp}"
  shift 2
  "$@" >"$t/le.out" 2>"$t/le.err" || rc=$?
  echo "coblk-vm: '$*' exit $rc, stderr: $(cat "$t/le.err")"
  vm_assert_eq "$want" "$rc" "exit status of '$*'"
  vm_assert_eq 1 "$(wc -l <"$t/le.err")" "stderr lines of '$*'"
  grep -qF -e "$needle" "$t/le.err" || vm_fail "stderr of '$*' lacks '$needle': $(cat "$t/le.err")"
}

# util-linux blkdiscard, which has --zeroout (BLKZEROOUT: WRITE_ZEROES with
# NOUNMAP); busybox's, which the guest shell prefers by name, has not.
zeroout_blkdiscard() {
  local p
  for p in /usr/sbin/blkdiscard /sbin/blkdiscard /usr/bin/blkdiscard; do
    if [ -x "$p" ] && "$p" --help 2>&1 | grep -q -e --zeroout; then
      BLKDISCARD=$p
      return 0
    fi
  done
  vm_skip "no util-linux blkdiscard with --zeroout"
}

# 512-byte blocks a file holds.
blocks() { stat -c %b "$1"; }

# A null_blk device with 4096-byte logical blocks, memory backed: /dev/nullb0.
four_k_null_blk() {
  vm_module_loaded null_blk && vm_skip "null_blk is already loaded"
  vm_load_module null_blk nr_devices=1 bs=4096 gb=1 memory_backed=1
  vm_defer "rmmod null_blk"
  vm_wait_for_path /dev/nullb0 5
  vm_assert_eq 4096 "$(cat /sys/block/nullb0/queue/logical_block_size)" "logical block size of /dev/nullb0"
}

# ---- --direct-io -------------------------------------------------------------

direct_io_refuses_blocks_below_the_devices_logical_block_size() {
  local t="${TMPDIR:-/tmp}" id="$le_id"
  vm_ublk_ready dd cmp
  four_k_null_blk
  vm_defer "$COBLK_BIN del --force -n $id"  # runs before the rmmod, also if the refused add made a device
  refused 2 "--block-size 512 is smaller than the 4096-byte blocks O_DIRECT needs on '/dev/nullb0'" \
    "$COBLK_BIN" add -t loop -f /dev/nullb0 --size 64M --direct-io -n "$id"
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "device $id was created"
  add_device "$id" -t loop -f /dev/nullb0 --size 64M --direct-io -b 4096
  vm_assert_eq 4096 "$(cat "/sys/block/ublkb$id/queue/logical_block_size")" "logical block size of /dev/ublkb$id"
  dd if=/dev/urandom of="$t/le-pattern" bs=64k count=16 2>/dev/null
  dd if="$t/le-pattern" of="/dev/ublkb$id" bs=64k oflag=direct 2>/dev/null || vm_fail "write through O_DIRECT failed"
  dd if="/dev/ublkb$id" bs=64k count=16 iflag=direct 2>/dev/null | cmp - "$t/le-pattern" || vm_fail "read back differs"
}

direct_io_refuses_blocks_below_the_file_systems_alignment() {
  local t="${TMPDIR:-/tmp}" id=$((le_id + 1)) mnt=/mnt/coblk-le4k
  vm_ublk_ready mkfs.ext4 dd cmp
  four_k_null_blk
  mkfs.ext4 -q -F /dev/nullb0
  mkdir -p "$mnt"
  mount -t ext4 /dev/nullb0 "$mnt"
  vm_defer "umount $mnt"
  truncate -s 32M "$mnt/disk.img"
  refused 2 "--block-size 1024 is smaller than the 4096-byte blocks O_DIRECT needs on '$mnt/disk.img'" \
    "$COBLK_BIN" add -t loop -f "$mnt/disk.img" --direct-io -b 1024 -n "$id"
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "device $id was created"
  vm_defer "$COBLK_BIN del --force -n $id"  # runs before the umount, also if a refused add made a device
  add_device "$id" -t loop -f "$mnt/disk.img" --direct-io -b 4096
  dd if=/dev/urandom of="$t/le-pattern" bs=64k count=16 2>/dev/null
  dd if="$t/le-pattern" of="/dev/ublkb$id" bs=64k oflag=direct 2>/dev/null || vm_fail "write through O_DIRECT failed"
  dd if="$mnt/disk.img" bs=64k count=16 2>/dev/null | cmp - "$t/le-pattern" || vm_fail "the file does not hold the write"
}

# ---- write-zeroes with NOUNMAP -----------------------------------------------

# zeroout_keeps_blocks FILE ID: a loop device on FILE (16 MiB); 8 MiB
# written, then blkdiscard --zeroout (WRITE_ZEROES with NOUNMAP) of the
# first 4 MiB must keep the file's blocks and read back zeros; a plain
# blkdiscard of the next 4 MiB may free them (and here does).
zeroout_keeps_blocks() {
  local file="$1" id="$2" t="${TMPDIR:-/tmp}" written zeroed discarded
  truncate -s 16M "$file"
  add_device "$id" -t loop -f "$file"
  dd if=/dev/urandom of="/dev/ublkb$id" bs=1M count=8 oflag=direct 2>/dev/null || vm_fail "write failed"
  sync
  written=$(blocks "$file")
  "$BLKDISCARD" --zeroout --offset 0 --length 4M "/dev/ublkb$id" || vm_fail "blkdiscard --zeroout failed"
  sync
  zeroed=$(blocks "$file")
  dd if=/dev/zero of="$t/le-zeros" bs=1M count=4 2>/dev/null
  dd if="/dev/ublkb$id" bs=1M count=4 iflag=direct 2>/dev/null | cmp - "$t/le-zeros" \
    || vm_fail "the zeroed range does not read back as zeros"
  "$BLKDISCARD" --offset 4M --length 4M "/dev/ublkb$id" || vm_fail "blkdiscard failed"
  sync
  discarded=$(blocks "$file")
  echo "coblk-vm: $file: $written blocks after 8 MiB written, $zeroed after --zeroout of 4 MiB, $discarded after discard of 4 MiB"
  [ "$written" -ge 16384 ] || vm_fail "only $written blocks after writing 8 MiB"
  [ "$zeroed" -ge "$written" ] || vm_fail "--zeroout (NOUNMAP) freed blocks: $written -> $zeroed"
  [ "$discarded" -le $((zeroed - 8192)) ] || vm_fail "discard did not free the range: $zeroed -> $discarded"
}

zeroout_keeps_blocks_on_tmpfs() {
  local t="${TMPDIR:-/tmp}"
  vm_ublk_ready dd cmp sync
  zeroout_blkdiscard
  [ "$(stat -f -c %T "$t")" = tmpfs ] || vm_skip "$t is not a tmpfs"
  vm_defer "rm -f $t/le-tmpfs.img"
  zeroout_keeps_blocks "$t/le-tmpfs.img" $((le_id + 2))
}

zeroout_keeps_blocks_on_ext4() {
  local mnt=/mnt/coblk-le-ext4
  vm_ublk_ready dd cmp sync mkfs.ext4
  zeroout_blkdiscard
  vm_module_loaded brd && vm_skip "brd is already loaded"
  vm_load_module brd rd_nr=1 rd_size=65536
  vm_defer "rmmod brd"
  mkfs.ext4 -q -F /dev/ram0
  mkdir -p "$mnt"
  mount -t ext4 /dev/ram0 "$mnt"
  vm_defer "umount $mnt"
  zeroout_keeps_blocks "$mnt/disk.img" $((le_id + 3))
}

# ---- recover -----------------------------------------------------------------

recover_refuses_another_geometry() {
  local t="${TMPDIR:-/tmp}" id=$((le_id + 4)) file pid record
  vm_ublk_ready
  file="$t/le-recover.img"
  record="${COBLK_RUN_DIR:-/run/coblk}/$id.json"
  truncate -s 32M "$file"
  vm_defer "rm -f $file"
  add_device "$id" -t loop -f "$file" --recovery
  pid=$(server_pid "$id")
  kill -9 "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server survived SIGKILL"
  sleep 1
  # The backing file grew: its arguments now give a bigger device.
  truncate -s 64M "$file"
  refused 1 "device $id is 32M of 512-byte blocks in the kernel, but its recorded arguments now give 64M of 512-byte blocks (has the backing file changed size?)" \
    "$COBLK_BIN" recover -n "$id"
  truncate -s 32M "$file"
  # A record that says another block size.
  cp "$record" "$t/le-record"
  sed -i 's/"block_size":512/"block_size":4096/' "$record"
  refused 1 "device $id is 32M of 512-byte blocks in the kernel, but its record says 32M of 4096-byte blocks" \
    "$COBLK_BIN" recover -n "$id"
  cp "$t/le-record" "$record"
  # Put back as it was, it recovers.
  "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "coblk recover failed once the geometry matched"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after coblk recover"
}

# ---- one device per backing file ----------------------------------------------

# A second loop device on a file another one serves, and a loop device on
# a mounted disk, would write over the first one's blocks: both are refused
# in one line, nothing is created, the first serves on; once it is
# deleted, the file can be served again.
one_device_per_backing_file() {
  local t="${TMPDIR:-/tmp}" id=$((le_id + 5)) other=$((le_id + 6)) file mnt=/mnt/coblk-le-busy
  vm_ublk_ready dd cmp mkfs.ext4
  file="$t/le-shared.img"
  truncate -s 16M "$file"
  vm_defer "rm -f $file"
  vm_defer "$COBLK_BIN del --force -n $other"  # also if a refused add made a device
  add_device "$id" -t loop -f "$file"
  refused 1 "backing file '$file' is in use by another coblk device" \
    "$COBLK_BIN" add -t loop -f "$file" -n "$other"
  [ ! -e "/sys/class/ublk-char/ublkc$other" ] || vm_fail "device $other was created"
  dd if=/dev/urandom of="$t/le-pattern" bs=64k count=16 2>/dev/null
  dd if="$t/le-pattern" of="/dev/ublkb$id" bs=64k oflag=direct 2>/dev/null || vm_fail "write to the first device failed"
  dd if="/dev/ublkb$id" bs=64k count=16 iflag=direct 2>/dev/null | cmp - "$t/le-pattern" \
    || vm_fail "the first device reads back other data"
  # A disk with a mounted file system (here the first device itself).
  mkfs.ext4 -q -F "/dev/ublkb$id"
  mkdir -p "$mnt"
  mount -t ext4 "/dev/ublkb$id" "$mnt"
  echo "written through the first device" >"$mnt/hello"
  refused 1 "backing device '/dev/ublkb$id' is busy (mounted, used as swap, or held by another program)" \
    "$COBLK_BIN" add -t loop -f "/dev/ublkb$id" -n "$other"
  [ ! -e "/sys/class/ublk-char/ublkc$other" ] || vm_fail "device $other was created"
  umount "$mnt"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del of the first device failed"
  add_device "$other" -t loop -f "$file"
  mount -t ext4 "/dev/ublkb$other" "$mnt" || vm_fail "the file served again does not hold the first device's ext4"
  vm_assert_eq "written through the first device" "$(cat "$mnt/hello")" "the file on the ext4 served again"
  umount "$mnt"
}

vm_case "--direct-io on a block device with 4096-byte logical blocks refuses --block-size 512 and works with 4096" \
  direct_io_refuses_blocks_below_the_devices_logical_block_size
vm_case "--direct-io on a file of a 4096-byte-aligned file system refuses --block-size 1024 and works with 4096" \
  direct_io_refuses_blocks_below_the_file_systems_alignment
vm_case "blkdiscard --zeroout keeps a tmpfs backing file's blocks allocated (no ZERO_RANGE there: zeros are written)" \
  zeroout_keeps_blocks_on_tmpfs
vm_case "blkdiscard --zeroout keeps an ext4 backing file's blocks allocated (ZERO_RANGE)" \
  zeroout_keeps_blocks_on_ext4
vm_case "coblk recover refuses a loop device whose backing file or record no longer gives the kernel's geometry" \
  recover_refuses_another_geometry
vm_case "a second loop device on a file another one serves, or on a mounted disk, is refused in one line; the file serves again once the first is deleted" \
  one_device_per_backing_file
vm_finish
