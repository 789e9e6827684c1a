#!/bin/sh
# nvme.sh: the loop target on an NVMe disk: the emulated disk and its
# polled queue are there; fio verifies data through `coblk add -t loop
# --direct-io --iopoll` on /dev/nvme0n1, whose reads and writes then raise
# no interrupts (they are polled); a device without poll queues is refused;
# and fio verifies `coblk add -t loop --passthrough` on /dev/ng0n1 (NVMe
# commands by URING_CMD), whose data /dev/nvme0n1 then holds, and the same
# with --iopoll (the commands polled, raising no interrupts) and with
# --zero-copy (the commands on the request's registered pages); and a
# --passthrough device claims /dev/nvme0n1 as a loop device on it would.
# The next line makes run-vm attach the emulated NVMe disk to this boot
# (64 MiB, nvme.poll_queues=1; docs/vm-harness.md):
# coblk-vm: nvme
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# nvme_ready: the disk's block and generic char devices exist, else skip
# (run-host never attaches one, and a host's own NVMe disk is not ours to
# overwrite).
nvme_ready() {
  vm_require_root
  [ "$COBLK_VM_MODE" = vm ] || vm_skip "needs the VM's emulated NVMe disk (its contents are overwritten)"
  vm_wait_for_path /dev/nvme0n1 10
  vm_wait_for_path /dev/ng0n1 10
}

nvme_disk_has_a_polled_queue() {
  nvme_ready
  [ -b /dev/nvme0n1 ] || vm_fail "/dev/nvme0n1 is not a block device"
  [ -c /dev/ng0n1 ] || vm_fail "/dev/ng0n1 is not a character device"
  vm_assert_eq 67108864 "$(blockdev --getsize64 /dev/nvme0n1)" "size of /dev/nvme0n1"
  vm_assert_eq 1 "$(cat /sys/block/nvme0n1/queue/io_poll)" "io_poll of /dev/nvme0n1 (nvme.poll_queues=1)"
}

# nvme_fio FIO_ARGS...: fio (terse output dropped), run a second time if
# it failed while the emulated NVMe controller timed commands out. qemu 7.2's
# controller, starved of host CPU (CI runs these tests beside a compiler),
# has been seen to leave a few commands uncompleted until the kernel's
# timeout (30 s) aborted them and reset it, after which those requests fail
# with EIO, as they must (the kernel log: "nvme nvme0: I/O tag N ... QID 2
# timeout, aborting", then "reset controller"). That is the emulator's
# fault, not coblk's: the run is repeated once, in full, after the reset,
# and must then pass. A failure without such a timeout fails at once.
nvme_fio() {
  local before rc=0
  before=$(_vm_kernel_log_lines)
  fio "$@" || rc=$?
  [ "$rc" -ne 0 ] || return 0
  _vm_kernel_log_since "$before" | grep -q 'nvme nvme[0-9]*: I/O tag .* timeout' || return "$rc"
  vm_log "the emulated NVMe controller timed out commands during this fio run; its kernel log:"
  _vm_kernel_log_since "$before" | grep 'nvme' | tail -n 6 | sed 's/^/coblk-vm:   /'
  local i=0
  until [ "$(cat /sys/class/nvme/nvme0/state 2>/dev/null)" = live ]; do
    i=$((i + 1))
    [ "$i" -le 300 ] || vm_fail "the NVMe controller did not come back (state: $(cat /sys/class/nvme/nvme0/state 2>/dev/null))"
    sleep 0.1
  done
  vm_log "the controller is live again: running the same fio once more, which must pass"
  fio "$@"
}

# The interrupts of the NVMe I/O queues so far (nvme0q1, nvme0q2, ...; not
# the admin queue nvme0q0). A poll queue has no interrupt at all.
nvme_io_interrupts() {
  awk '/nvme0q[1-9]/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

# The control of the polling cases: reads on the interrupt-driven queues
# raise interrupts (and are counted by nvme_io_interrupts).
nvme_interrupts_are_counted() {
  local before after
  before=$(nvme_io_interrupts)
  nvme_fio --name=irq --filename=/dev/nvme0n1 --ioengine=psync --direct=1 --rw=randread --bs=4k --size=4M \
      --number_ios=256 || vm_fail "fio on /dev/nvme0n1 itself failed"
  after=$(nvme_io_interrupts)
  vm_log "256 interrupt-driven reads of /dev/nvme0n1: $((after - before)) I/O queue interrupts"
  [ $((after - before)) -ge 128 ] || vm_fail "only $((after - before)) interrupts for 256 plain reads: cannot tell polled I/O apart"
}

# nvme_holds_what_ublk_returns ID MIB: the first MIB MiB of /dev/ublkbID
# and of /dev/nvme0n1 are the same (read through the page cache, emptied
# first: passthrough writes go around it).
nvme_holds_what_ublk_returns() {
  sync
  echo 3 > /proc/sys/vm/drop_caches
  vm_defer "rm -f /tmp/pt-ublk.img /tmp/pt-nvme.img"
  dd if="/dev/ublkb$1" of=/tmp/pt-ublk.img bs=1M count="$2" || vm_fail "reading /dev/ublkb$1 back failed"
  dd if=/dev/nvme0n1 of=/tmp/pt-nvme.img bs=1M count="$2" || vm_fail "reading /dev/nvme0n1 failed"
  cmp /tmp/pt-ublk.img /tmp/pt-nvme.img || vm_fail "/dev/nvme0n1 does not hold what /dev/ublkb$1 returns"
}

# passthrough_verifies ID MAX_BS WHAT: fio verify on /dev/ublkbID, a
# --passthrough device: 16 MiB of 4 KiB writes at QD16, then 8 MiB of
# requests from 4 KiB up to MAX_BS (several NVMe commands where the
# controller takes less) with an fsync (NVMe Flush) every 8 writes; WHAT
# names the device in the failure.
passthrough_verifies() {
  nvme_fio --name=pt --filename="/dev/ublkb$1" --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k \
      --iodepth=16 --size=16M --verify=crc32c --verify_fatal=1 \
    || vm_fail "fio verify failed on the $3"
  nvme_fio --name=pt-mixed --filename="/dev/ublkb$1" --ioengine=io_uring --direct=1 --rw=randwrite \
      --bsrange="4k-$2" --iodepth=8 --size=8M --offset=16M --fsync=8 --verify=crc32c --verify_fatal=1 \
    || vm_fail "fio verify (mixed sizes, fsync) failed on the $3"
}

iopoll_loop_passes_fio_verify_without_interrupts() {
  nvme_ready
  vm_ublk_ready fio
  local before after ios
  nvme_interrupts_are_counted
  add_device 0 -t loop -f /dev/nvme0n1 --direct-io --iopoll
  before=$(nvme_io_interrupts)
  ios=$(awk '{ print $1 + $5 }' /sys/block/nvme0n1/stat)
  # 16 MiB of random 4 KiB writes at QD16, each block read back and checked.
  nvme_fio --name=iopoll --filename=/dev/ublkb0 --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k \
      --iodepth=16 --size=16M --verify=crc32c --verify_fatal=1 \
    || vm_fail "fio verify failed on the --iopoll loop device over /dev/nvme0n1"
  # And mixed sizes, so requests of several blocks poll too.
  nvme_fio --name=iopoll-mixed --filename=/dev/ublkb0 --ioengine=io_uring --direct=1 --rw=randrw \
      --bsrange=512-128k --iodepth=8 --size=8M --offset=16M --verify=crc32c --verify_fatal=1 \
    || vm_fail "fio verify (mixed sizes) failed on the --iopoll loop device"
  after=$(nvme_io_interrupts)
  ios=$(($(awk '{ print $1 + $5 }' /sys/block/nvme0n1/stat) - ios))
  vm_log "nvme0n1: $ios reads+writes and $((after - before)) I/O queue interrupts during the fio runs"
  # 4096 writes and as many verify reads in the first run alone; had they
  # gone to an interrupt-driven queue, each would have raised one (the
  # control above: one per read).
  [ "$ios" -ge 8192 ] || vm_fail "only $ios I/Os reached /dev/nvme0n1"
  [ $((after - before)) -lt 1000 ] || vm_fail "$((after - before)) interrupts: the I/O was not polled"
}

iopoll_without_poll_queues_is_refused() {
  vm_ublk_ready
  vm_load_module brd rd_nr=1 rd_size=16384
  vm_defer "rmmod brd"
  vm_wait_for_path /dev/ram0 5
  vm_assert_eq 0 "$(cat /sys/block/ram0/queue/io_poll 2>/dev/null || echo 0)" "io_poll of /dev/ram0"
  vm_expect_error "has no poll queues" "$COBLK_BIN" add -n 1 -t loop -f /dev/ram0 --direct-io --iopoll
  [ ! -e /dev/ublkb1 ] || vm_fail "a refused --iopoll device was created anyway"
}

passthrough_loop_passes_fio_verify_and_the_disk_holds_the_data() {
  nvme_ready
  vm_ublk_ready fio cmp
  add_device 2 -t loop -f /dev/ng0n1 --passthrough
  vm_assert_eq "$(cat /sys/block/nvme0n1/queue/logical_block_size)" \
    "$(cat /sys/block/ublkb2/queue/logical_block_size)" "logical block size (the namespace's LBA size)"
  vm_assert_eq 0 "$(cat /sys/block/ublkb2/queue/discard_max_bytes)" "discard_max_bytes (no discard offered)"
  passthrough_verifies 2 512k "--passthrough loop device over /dev/ng0n1"
  # The namespace itself holds what the device returns.
  nvme_holds_what_ublk_returns 2 24
}

passthrough_iopoll_passes_fio_verify_without_interrupts() {
  nvme_ready
  vm_ublk_ready fio cmp
  local before after
  nvme_interrupts_are_counted
  add_device 4 -t loop -f /dev/ng0n1 --passthrough --iopoll
  before=$(nvme_io_interrupts)
  # As the passthrough case above, on the polled ring.
  passthrough_verifies 4 512k "--passthrough --iopoll loop device over /dev/ng0n1"
  after=$(nvme_io_interrupts)
  # 4096 writes and as many verify reads in the first run alone, each at
  # least one NVMe command; on an interrupt-driven queue each would raise
  # one (the control above). Flushes stay interrupt-driven: a few hundred.
  vm_log "nvme: $((after - before)) I/O queue interrupts during the polled passthrough fio runs"
  [ $((after - before)) -lt 1000 ] || vm_fail "$((after - before)) interrupts: the commands were not polled"
  nvme_holds_what_ublk_returns 4 24
}

passthrough_zero_copy_passes_fio_verify_and_the_disk_holds_the_data() {
  nvme_ready
  vm_ublk_ready fio cmp
  add_device 5 -t loop -f /dev/ng0n1 --passthrough --zero-copy
  vm_assert_eq zero_copy "$(list_field 5 DATA_PATH)" "data path of device 5"
  # The commands carry the request's own pages (a registered buffer) as
  # their data; requests of up to 1 MiB are split into commands of at most
  # the controller's transfer size, whose offsets into the buffer are then
  # past 0.
  passthrough_verifies 5 1m "--passthrough --zero-copy loop device over /dev/ng0n1"
  nvme_holds_what_ublk_returns 5 24
}

# The record of a --passthrough device names the namespace by its wwid,
# not only by the char node's number (which the kernel hands out again);
# coblk recover refuses a record naming another namespace, and recovers
# with the namespace's own.
passthrough_recovery_checks_the_namespace() {
  nvme_ready
  vm_ublk_ready dd cmp
  local id=6 t="${TMPDIR:-/tmp}" pid wwid record
  record="${COBLK_RUN_DIR:-/run/coblk}/$id.json"
  wwid=$(cat /sys/block/nvme0n1/wwid)
  add_device "$id" -t loop -f /dev/ng0n1 --passthrough --recovery
  grep -qF "wwid $wwid\"" "$record" || vm_fail "the record does not name the namespace's wwid $wwid: $(cat "$record")"
  dd if=/dev/urandom of="$t/nvme-pattern" bs=64k count=16 2>/dev/null
  dd if="$t/nvme-pattern" of="/dev/ublkb$id" bs=64k oflag=direct 2>/dev/null || vm_fail "write failed"
  pid=$(server_pid "$id")
  kill -9 "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server survived SIGKILL"
  cp "$record" "$t/nvme-record"
  sed -i "s/wwid [^\"]*\"/wwid eui.0000000000000001\"/" "$record"
  vm_expect_error "is not the one it was added with" "$COBLK_BIN" recover -n "$id"
  cp "$t/nvme-record" "$record"
  "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "coblk recover failed with the namespace's own record"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after coblk recover"
  dd if="/dev/ublkb$id" bs=64k count=16 iflag=direct 2>/dev/null | cmp - "$t/nvme-pattern" \
    || vm_fail "the recovered device reads back other data"
}

# Passthrough writes the namespace's blocks around its block device, so
# it claims that device: a --passthrough device is refused while
# /dev/nvme0n1 is mounted, and while one serves, neither a mount of
# /dev/nvme0n1 nor a loop device on it is allowed; a plain read of it is.
# Deleting the device gives the claim back.
passthrough_claims_the_namespace_block_device() {
  nvme_ready
  vm_ublk_ready dd mkfs.ext4
  local id=7 other=8 mnt=/mnt/coblk-nvme-claim
  mkfs.ext4 -q -F /dev/nvme0n1
  mkdir -p "$mnt"
  mount -t ext4 /dev/nvme0n1 "$mnt" || vm_fail "mounting the fresh ext4 on /dev/nvme0n1 failed"
  vm_defer "$COBLK_BIN del --force -n $id"  # also if a refused add made a device
  vm_expect_error "the block device /dev/nvme0n1 of '/dev/ng0n1' is busy" \
    "$COBLK_BIN" add -n "$id" -t loop -f /dev/ng0n1 --passthrough
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "device $id was created"
  umount "$mnt"
  "$COBLK_BIN" add -n "$id" -t loop -f /dev/ng0n1 --passthrough >/dev/null || vm_fail "coblk add after the umount failed"
  if mount -t ext4 /dev/nvme0n1 "$mnt" 2>/dev/null; then
    umount "$mnt"
    vm_fail "/dev/nvme0n1 was mounted while a --passthrough device served its namespace"
  fi
  vm_defer "$COBLK_BIN del --force -n $other"
  vm_expect_error "backing device '/dev/nvme0n1' is busy" "$COBLK_BIN" add -n "$other" -t loop -f /dev/nvme0n1
  dd if=/dev/nvme0n1 of=/dev/null bs=64k count=4 2>/dev/null || vm_fail "a plain read of /dev/nvme0n1 was refused"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed"
  mount -t ext4 /dev/nvme0n1 "$mnt" || vm_fail "/dev/nvme0n1 could not be mounted after the device was deleted"
  umount "$mnt"
}

passthrough_on_a_block_device_is_refused() {
  nvme_ready
  vm_ublk_ready
  vm_expect_error "not an NVMe namespace's generic char device" "$COBLK_BIN" add -n 3 -t loop -f /dev/nvme0n1 --passthrough
}

vm_case "the emulated NVMe disk has a block and a char device and a polled queue" nvme_disk_has_a_polled_queue
vm_case "a loop device with --iopoll over /dev/nvme0n1 passes fio verify, and its I/O raises no interrupts" \
  iopoll_loop_passes_fio_verify_without_interrupts
vm_case "--iopoll on a block device without poll queues is refused in one line" iopoll_without_poll_queues_is_refused
vm_case "a loop device with --passthrough over /dev/ng0n1 passes fio verify, and /dev/nvme0n1 holds the same data" \
  passthrough_loop_passes_fio_verify_and_the_disk_holds_the_data
vm_case "a loop device with --passthrough --iopoll over /dev/ng0n1 passes fio verify, and its commands raise no interrupts" \
  passthrough_iopoll_passes_fio_verify_without_interrupts
vm_case "a loop device with --passthrough --zero-copy over /dev/ng0n1 passes fio verify, and /dev/nvme0n1 holds the same data" \
  passthrough_zero_copy_passes_fio_verify_and_the_disk_holds_the_data
vm_case "--passthrough on a block device (not /dev/ngXnY) is refused in one line" passthrough_on_a_block_device_is_refused
vm_case "--passthrough claims the namespace's block device: refused while /dev/nvme0n1 is mounted; while it serves, no mount and no loop device there" \
  passthrough_claims_the_namespace_block_device
vm_case "coblk recover of a --passthrough device checks the namespace's wwid: another namespace's record is refused, its own recovers the data" \
  passthrough_recovery_checks_the_namespace
vm_finish
