#!/bin/sh
# example-backend.sh: the mirror target of docs/writing-a-backend.md
# (coblk_example_mirror) serves a real ublk device: fio's crc32c
# verification passes on it, both files end up holding the same bytes, and
# a discard reads back as zeros from the device and from both files.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device id of this script (high, so a host's own ublk devices are left alone).
mirror_id=140

mirror_ready() {
  vm_require_root
  vm_require_cmd coblk_example_mirror fio cmp dd
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
}

mirror_serves_fio_verify() {
  local t="${TMPDIR:-/tmp}" dev="/dev/ublkb$mirror_id" log
  mirror_ready
  log="$t/mirror.log"
  dd if=/dev/zero of="$t/mirror-a.img" bs=1M count=0 seek=32 2>/dev/null
  dd if=/dev/zero of="$t/mirror-b.img" bs=1M count=0 seek=32 2>/dev/null
  vm_defer "rm -f $t/mirror-a.img $t/mirror-b.img"
  vm_spawn "$log" coblk_example_mirror -n "$mirror_id" -q 2 "$t/mirror-a.img" "$t/mirror-b.img"
  vm_wait_for_path "$dev" 20

  fio --name=verify --filename="$dev" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange=4k-256k --iodepth=16 --size=16M \
      --numjobs=2 --offset_increment=16M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --group_reporting --output-format=terse >"$t/mirror-fio.log" 2>&1 \
    || { tail -n 20 "$t/mirror-fio.log"; vm_fail "fio verify failed on $dev"; }

  # The device reads what the primary file holds, and the mirror is exact.
  cmp "$dev" "$t/mirror-a.img" || vm_fail "$dev differs from the primary file"
  cmp "$t/mirror-a.img" "$t/mirror-b.img" || vm_fail "the two mirror files differ"

  # A discard reads back as zeros, from the device and from both files.
  if command -v blkdiscard >/dev/null 2>&1; then
    dd if=/dev/zero of="$t/zeros" bs=1M count=1 2>/dev/null
    blkdiscard -o 1048576 -l 1048576 "$dev" || vm_fail "blkdiscard failed on $dev"
    for f in "$dev" "$t/mirror-a.img" "$t/mirror-b.img"; do
      dd if="$f" bs=1M skip=1 count=1 2>/dev/null | cmp - "$t/zeros" \
        || vm_fail "the discarded range of $f is not zeros"
    done
  fi

  # SIGTERM stops the device cleanly; the server then prints its counters.
  kill -TERM "$VM_SPAWNED_PID"
  wait "$VM_SPAWNED_PID" || { cat "$log"; vm_fail "coblk_example_mirror exited with status $?"; }
  cat "$log"
  grep -q "^queue 1: " "$log" || vm_fail "no counters for queue 1 in the server's output"
  if grep "^queue" "$log" | grep -vq " 0 errors$"; then vm_fail "the server counted errors"; fi
}

vm_case "the mirror example serves fio crc32c verification and keeps both files identical" mirror_serves_fio_verify
vm_finish
