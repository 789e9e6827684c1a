#!/bin/sh
# ublk-targets.sh: coblk's null, ram and loop targets serve real kernel I/O
# correctly on every data path (copy, user copy, zero copy where the kernel
# has AUTO_BUF_REG) with one and two queues: fio crc32c verification over
# random writes of 4 KiB to 1 MiB, ext4 keeping files across a remount, and
# discarded ranges reading back as zeros.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=40

# ---- helpers ---------------------------------------------------------------

# data_path_flag PATH: the coblk add option of a data path.
data_path_flag() {
  case "$1" in
    copy) echo --copy ;;
    user-copy) echo --user-copy ;;
    zero-copy) echo --zero-copy ;;
  esac
}

# require_data_path PATH: skip unless the kernel offers the data path.
require_data_path() {
  local features
  features=$("$COBLK_BIN" features) || vm_fail "coblk features failed"
  case "$1" in
    user-copy)
      echo "$features" | grep -qw USER_COPY || vm_skip "the kernel lacks USER_COPY (needs Linux 6.5+)" ;;
    zero-copy)
      echo "$features" | grep -qw AUTO_BUF_REG || vm_skip "the kernel lacks AUTO_BUF_REG (needs Linux 6.16+)" ;;
  esac
}

# has_queues DEVICE QUEUES: the block device has that many hardware queues,
# each mapped to its own CPUs (so fio jobs pinned to different CPUs reach
# different queues).
has_queues() {
  local mq
  mq="/sys/block/$(basename "$1")/mq"
  vm_assert_eq "$2" "$(ls "$mq" | wc -l)" "hardware queues of $1"
  vm_log "$1: hardware queue CPUs: $(cat "$mq"/*/cpu_list | tr '\n' ' ')"
}

# fio_verify DEVICE QUEUES: random writes of 4 KiB..1 MiB with crc32c
# verification, one job per queue, each in its own 32 MiB stripe.
fio_verify() {
  has_queues "$1" "$2"
  fio_verify_striped "$1" "$2" 16M 4k-1M 32M
}

# ---- fio over the matrix ---------------------------------------------------

# A null device stores nothing, so there is nothing to verify: fio must only
# see every request complete without error.
null_serves_io() {
  local path="$1" queues="$2" id="$3" log="${TMPDIR:-/tmp}/fio-null.log"
  vm_ublk_ready fio
  require_data_path "$path"
  add_device "$id" -t null --size 1G -q "$queues" "$(data_path_flag "$path")"
  fio --name=null --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 \
      --rw=randrw --bsrange=4k-1M --iodepth=16 --size=256M --io_size=32M \
      --numjobs="$queues" --cpus_allowed=0-$((queues - 1)) --cpus_allowed_policy=split \
      --group_reporting --output-format=terse >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; vm_fail "fio failed on the null device"; }
  # Terse v3 field 5 is the job's error number.
  awk -F';' 'NF > 100 && $5 != 0 { print "fio reported error " $5; exit 1 }' "$log" >&2 \
    || vm_fail "fio saw I/O errors on the null device"
}

ram_passes_fio_verify() {
  local path="$1" queues="$2" id="$3"
  vm_ublk_ready fio
  require_data_path "$path"
  add_device "$id" -t ram --size 64M -q "$queues" "$(data_path_flag "$path")"
  fio_verify "/dev/ublkb$id" "$queues"
}

loop_passes_fio_verify() {
  local path="$1" queues="$2" id="$3" file="${TMPDIR:-/tmp}/loop-$3.img"
  vm_ublk_ready fio
  require_data_path "$path"
  truncate -s 64M "$file"
  vm_defer "rm -f $file"
  add_device "$id" -t loop -f "$file" -q "$queues" "$(data_path_flag "$path")"
  fio_verify "/dev/ublkb$id" "$queues"
  # What the device acknowledged is in the file: verify the file itself.
  sync
  fio --name=verify --filename="$file" --ioengine=psync \
      --rw=randwrite --bsrange=4k-1M --size=16M \
      --numjobs="$queues" --offset_increment=32M \
      --verify=crc32c --verify_only --verify_fatal=1 \
      --output-format=terse >/dev/null 2>&1 \
    || vm_fail "the backing file does not hold what fio wrote through the device"
}

# ---- file system and discard -----------------------------------------------

# ext4_keeps_files DEVICE MOUNTPOINT: mkfs, write files, remount, compare.
ext4_keeps_files() {
  local dev="$1" mnt="$2" sums="${TMPDIR:-/tmp}/ext4-$$.sums" i
  vm_require_cmd mkfs.ext4
  grep -qw ext4 /proc/filesystems || vm_load_module ext4
  mkfs.ext4 -q -F "$dev"
  mkdir -p "$mnt"
  mount -t ext4 "$dev" "$mnt"
  vm_defer "umount $mnt"
  for i in 1 2 3; do
    dd if=/dev/urandom of="$mnt/file$i" bs=1M count=$i 2>/dev/null
  done
  mkdir -p "$mnt/dir"
  for i in 1 2 3 4 5 6 7 8; do echo "small file $i" > "$mnt/dir/small$i"; done
  (cd "$mnt" && sha256sum file1 file2 file3 dir/small*) > "$sums"
  umount "$mnt"
  # Drop the page cache so the remount reads the device, not memory.
  echo 3 > /proc/sys/vm/drop_caches
  mount -t ext4 "$dev" "$mnt"
  (cd "$mnt" && sha256sum -c "$sums" >/dev/null) || vm_fail "file checksums changed across remount of $dev"
  umount "$mnt"
}

ram_ext4_survives_remount() {
  local path="$1" queues="$2" id="$3"
  vm_ublk_ready fio
  require_data_path "$path"
  add_device "$id" -t ram --size 128M -q "$queues" "$(data_path_flag "$path")"
  ext4_keeps_files "/dev/ublkb$id" "/mnt/coblk-$id"
}

loop_ext4_survives_remount() {
  local path="$1" queues="$2" id="$3" file="${TMPDIR:-/tmp}/loop-$3.img"
  vm_ublk_ready fio
  require_data_path "$path"
  truncate -s 128M "$file"
  vm_defer "rm -f $file"
  add_device "$id" -t loop -f "$file" -q "$queues" "$(data_path_flag "$path")"
  ext4_keeps_files "/dev/ublkb$id" "/mnt/coblk-$id"
  # And a fresh server on the same file sees the same file system.
  "$COBLK_BIN" del -n "$id"
  add_device "$id" -t loop -f "$file" -q "$queues" "$(data_path_flag "$path")"
  mkdir -p "/mnt/coblk-$id"
  mount -t ext4 "/dev/ublkb$id" "/mnt/coblk-$id"
  vm_defer "umount /mnt/coblk-$id"
  (cd "/mnt/coblk-$id" && sha256sum -c "${TMPDIR:-/tmp}/ext4-$$.sums" >/dev/null) \
    || vm_fail "a new loop server on the same file does not see the same files"
}

# discard_reads_zeros DEVICE: fill with random data, discard 4 MiB at 8 MiB,
# then that range reads zeros and the ranges around it keep their data.
discard_reads_zeros() {
  local dev="$1" t="${TMPDIR:-/tmp}"
  vm_require_cmd blkdiscard
  dd if=/dev/urandom of="$t/fill.bin" bs=1M count=16 2>/dev/null
  dd if="$t/fill.bin" of="$dev" bs=1M count=16 oflag=direct conv=fsync 2>/dev/null
  blkdiscard -o $((8 << 20)) -l $((4 << 20)) "$dev"
  dd if="$dev" of="$t/hole.bin" bs=1M skip=8 count=4 iflag=direct 2>/dev/null
  dd if=/dev/zero of="$t/zero.bin" bs=1M count=4 2>/dev/null
  cmp "$t/hole.bin" "$t/zero.bin" || vm_fail "the discarded range of $dev does not read back as zeros"
  # The neighbours are untouched: first 8 MiB and the last 4 MiB.
  dd if="$dev" of="$t/after.bin" bs=1M count=16 iflag=direct 2>/dev/null
  cmp -n $((8 << 20)) "$t/fill.bin" "$t/after.bin" || vm_fail "data before the discarded range changed"
  dd if="$t/fill.bin" of="$t/tail.want" bs=1M skip=12 count=4 2>/dev/null
  dd if="$t/after.bin" of="$t/tail.got" bs=1M skip=12 count=4 2>/dev/null
  cmp "$t/tail.want" "$t/tail.got" || vm_fail "data after the discarded range changed"
  rm -f "$t/fill.bin" "$t/hole.bin" "$t/zero.bin" "$t/after.bin" "$t/tail.want" "$t/tail.got"
}

ram_discard_reads_zeros() {
  local path="$1" queues="$2" id="$3"
  vm_ublk_ready fio
  require_data_path "$path"
  add_device "$id" -t ram --size 64M -q "$queues" "$(data_path_flag "$path")"
  discard_reads_zeros "/dev/ublkb$id"
}

loop_discard_reads_zeros() {
  local path="$1" queues="$2" id="$3" file="${TMPDIR:-/tmp}/loop-$3.img"
  vm_ublk_ready fio
  require_data_path "$path"
  truncate -s 64M "$file"
  vm_defer "rm -f $file"
  add_device "$id" -t loop -f "$file" -q "$queues" "$(data_path_flag "$path")"
  discard_reads_zeros "/dev/ublkb$id"
  # The file reads zeros there too (a punched hole or written zeros).
  dd if="$file" of="${TMPDIR:-/tmp}/hole.bin" bs=1M skip=8 count=4 2>/dev/null
  dd if=/dev/zero bs=1M count=4 2>/dev/null | cmp - "${TMPDIR:-/tmp}/hole.bin" \
    || vm_fail "the backing file does not hold zeros where the device was discarded"
  rm -f "${TMPDIR:-/tmp}/hole.bin"
}

# ---- the cases ---------------------------------------------------------------

id=$base_id
for q in 1 2; do
  for path in copy user-copy; do
    vm_case "a null device with $q queue(s) on the $path path completes fio random I/O without errors" \
      null_serves_io "$path" "$q" "$id"
    id=$((id + 1))
  done
done
for q in 1 2; do
  for path in copy user-copy; do
    vm_case "a ram device with $q queue(s) on the $path path passes fio crc32c verification of 4k-1M random writes" \
      ram_passes_fio_verify "$path" "$q" "$id"
    id=$((id + 1))
  done
done
for q in 1 2; do
  for path in copy user-copy zero-copy; do
    vm_case "a loop device with $q queue(s) on the $path path passes fio crc32c verification and its file holds the data" \
      loop_passes_fio_verify "$path" "$q" "$id"
    id=$((id + 1))
  done
done
vm_case "ext4 on a 2-queue ram device (copy path) keeps file checksums across a remount" \
  ram_ext4_survives_remount copy 2 "$id"; id=$((id + 1))
vm_case "ext4 on a 1-queue ram device (user-copy path) keeps file checksums across a remount" \
  ram_ext4_survives_remount user-copy 1 "$id"; id=$((id + 1))
vm_case "ext4 on a 1-queue loop device (copy path) keeps its files across a remount and a new server" \
  loop_ext4_survives_remount copy 1 "$id"; id=$((id + 1))
vm_case "ext4 on a 2-queue loop device (zero-copy path) keeps its files across a remount and a new server" \
  loop_ext4_survives_remount zero-copy 2 "$id"; id=$((id + 1))
vm_case "a discarded range of a ram device reads back as zeros and its neighbours keep their data" \
  ram_discard_reads_zeros user-copy 2 "$id"; id=$((id + 1))
vm_case "a discarded range of a loop device reads back as zeros, on the device and in its file" \
  loop_discard_reads_zeros copy 1 "$id"; id=$((id + 1))
vm_case "a discarded range of a zero-copy loop device reads back as zeros" \
  loop_discard_reads_zeros zero-copy 2 "$id"; id=$((id + 1))
vm_finish
