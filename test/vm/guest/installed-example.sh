#!/bin/sh
# installed-example.sh: coblk_xor_device, the out-of-tree example built
# against an installed coblk with find_package (ublk/examples/xor-device,
# built by the install_consumer test), serves a real ublk device: fio's
# crc32c verification passes on two queues, discarded and zeroed ranges read
# back as zeros, and SIGTERM ends the server cleanly with its device gone.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device id of this script (high, so a host's own ublk devices are left alone).
xor_id=160

xor_ready() {
  vm_require_root
  vm_require_cmd coblk_xor_device "$@"
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
}

# xor_start LOG ARGS...: serve /dev/ublkb$xor_id with coblk_xor_device ARGS,
# stopped when the case ends; waits until the server reports the device.
xor_start() {
  local log="$1"
  shift
  vm_spawn "$log" coblk_xor_device -n "$xor_id" "$@"
  vm_wait_for_path "/dev/ublkb$xor_id" 20
  local i=0
  until grep -q "^/dev/ublkb$xor_id\$" "$log"; do
    i=$((i + 1))
    [ "$i" -le 50 ] || { cat "$log"; vm_fail "the server did not print /dev/ublkb$xor_id"; }
    sleep 0.1
  done
}

# xor_stop: SIGTERM the server and wait for it; its exit status in EXIT_RC.
xor_stop() {
  kill -TERM "$VM_SPAWNED_PID"
  wait_for_exit "$VM_SPAWNED_PID" 20
}

xor_serves_fio_verify_on_two_queues() {
  local t="${TMPDIR:-/tmp}" dev="/dev/ublkb$xor_id" log
  xor_ready fio
  log="$t/xor.log"
  xor_start "$log" -q 2 --size 32 --key 0xa5

  # Two jobs, one per half of the device, so that both queues carry requests.
  fio --name=verify --filename="$dev" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange=4k-256k --iodepth=16 --size=16M \
      --numjobs=2 --offset_increment=16M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --group_reporting --output-format=terse >"$t/xor-fio.log" 2>&1 \
    || { tail -n 20 "$t/xor-fio.log"; cat "$log"; vm_fail "fio verify failed on $dev"; }

  xor_stop
  cat "$log"
  [ "$EXIT_RC" -eq 0 ] || vm_fail "coblk_xor_device exited with status $EXIT_RC"
  grep -q "^queue 0: [1-9][0-9]* reads .* [1-9][0-9]* writes .* 0 errors$" "$log" \
    || vm_fail "queue 0 should have served reads and writes without errors"
  grep -q "^queue 1: [1-9][0-9]* reads .* [1-9][0-9]* writes .* 0 errors$" "$log" \
    || vm_fail "queue 1 should have served reads and writes without errors"
}

# xor_check_mib DATA MIB EXPECTED WHAT: MiB number MIB of the device reads
# as MiB MIB of file DATA, or as all of file EXPECTED when that is given.
xor_check_mib() {
  local data="$1" mib="$2" expected="$3" what="$4" t="${TMPDIR:-/tmp}"
  dd if="/dev/ublkb$xor_id" bs=1M skip="$mib" count=1 iflag=direct 2>/dev/null >"$t/xor-got"
  if [ -n "$expected" ]; then
    cmp "$expected" "$t/xor-got" || vm_fail "$what"
  else
    dd if="$data" bs=1M skip="$mib" count=1 2>/dev/null | cmp - "$t/xor-got" || vm_fail "$what"
  fi
}

# xor_fill_random LOG: serve a 16 MiB device and write 4 MiB of random data
# to its start, also kept in $TMPDIR/xor-data; $TMPDIR/xor-zeros is 1 MiB of zeros.
xor_fill_random() {
  local t="${TMPDIR:-/tmp}"
  xor_start "$1" -q 2 --size 16 --key 0x3c
  dd if=/dev/urandom of="$t/xor-data" bs=1M count=4 2>/dev/null
  dd if=/dev/zero of="$t/xor-zeros" bs=1M count=1 2>/dev/null
  vm_defer "rm -f $t/xor-data $t/xor-zeros $t/xor-got"
  dd if="$t/xor-data" of="/dev/ublkb$xor_id" bs=1M count=4 oflag=direct 2>/dev/null \
    || vm_fail "writing /dev/ublkb$xor_id failed"
}

# xor_stopped_with LOG KIND: SIGTERM, a clean exit, and at least one request
# of KIND (discards, write-zeroes) in the counters the server printed to LOG.
xor_stopped_with() {
  xor_stop
  cat "$1"
  [ "$EXIT_RC" -eq 0 ] || vm_fail "coblk_xor_device exited with status $EXIT_RC"
  awk -v kind="$2" '/^queue / { for (i = 1; i < NF; i++) if ($(i + 1) ~ "^" kind) n += $i }
       END { exit !(n > 0) }' "$1" || vm_fail "the server counted no $2 request"
}

xor_discarded_range_reads_as_zeros() {
  local t="${TMPDIR:-/tmp}" log
  xor_ready blkdiscard dd cmp
  log="$t/xor.log"
  xor_fill_random "$log"
  blkdiscard -o 1048576 -l 1048576 "/dev/ublkb$xor_id" || vm_fail "blkdiscard failed"
  xor_check_mib "$t/xor-data" 1 "$t/xor-zeros" "the discarded MiB does not read as zeros"
  xor_check_mib "$t/xor-data" 0 "" "the MiB before the discarded one lost its data"
  xor_check_mib "$t/xor-data" 2 "" "the MiB after the discarded one lost its data"
  xor_stopped_with "$log" discards
}

xor_zeroed_range_reads_as_zeros() {
  local t="${TMPDIR:-/tmp}" log zeroout="" p
  xor_ready dd cmp
  # util-linux's blkdiscard, by path: busybox's shell prefers its own applet,
  # which has no --zeroout.
  for p in /usr/sbin/blkdiscard /sbin/blkdiscard; do
    if [ -x "$p" ] && "$p" --help 2>&1 | grep -q -- --zeroout; then zeroout=$p; break; fi
  done
  [ -n "$zeroout" ] || vm_skip "no blkdiscard with --zeroout (util-linux)"
  log="$t/xor.log"
  xor_fill_random "$log"
  "$zeroout" --zeroout -o 2097152 -l 1048576 "/dev/ublkb$xor_id" || vm_fail "blkdiscard --zeroout failed"
  xor_check_mib "$t/xor-data" 2 "$t/xor-zeros" "the zeroed MiB does not read as zeros"
  xor_check_mib "$t/xor-data" 1 "" "the MiB before the zeroed one lost its data"
  xor_check_mib "$t/xor-data" 3 "" "the MiB after the zeroed one lost its data"
  xor_stopped_with "$log" write-zeroes
}

xor_sigterm_stops_cleanly() {
  local t="${TMPDIR:-/tmp}" dev="/dev/ublkb$xor_id" log
  xor_ready dd
  log="$t/xor.log"
  xor_start "$log" -q 2 --size 16
  dd if=/dev/urandom of="$dev" bs=64k count=16 oflag=direct 2>/dev/null || vm_fail "writing $dev failed"

  xor_stop
  cat "$log"
  [ "$EXIT_RC" -eq 0 ] || vm_fail "coblk_xor_device exited with status $EXIT_RC after SIGTERM"
  [ ! -e "$dev" ] || vm_fail "$dev still exists after the server stopped"
  [ ! -e "/dev/ublkc$xor_id" ] || vm_fail "/dev/ublkc$xor_id still exists after the server stopped"
  [ ! -e "/sys/block/ublkb$xor_id" ] || vm_fail "/sys/block/ublkb$xor_id still exists after the server stopped"
  grep -q "^queue 0: " "$log" && grep -q "^queue 1: " "$log" || vm_fail "the server did not print both queues' counters"
  if grep "^queue" "$log" | grep -vq " 0 errors$"; then vm_fail "the server counted errors"; fi
}

vm_case "the XOR example built against the installed coblk passes fio crc32c verification on two queues" \
  xor_serves_fio_verify_on_two_queues
vm_case "a discarded range of the XOR example reads back as zeros and its neighbours keep their data" \
  xor_discarded_range_reads_as_zeros
vm_case "a range zeroed with write-zeroes reads back as zeros and its neighbours keep their data" \
  xor_zeroed_range_reads_as_zeros
vm_case "SIGTERM stops the XOR example with exit status 0 and its ublk device is gone" xor_sigterm_stops_cleanly
vm_finish
