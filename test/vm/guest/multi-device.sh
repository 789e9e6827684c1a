#!/bin/sh
# multi-device.sh: one process (coblk_example_multi) serves two zram devices
# and a loop device on one Runtime of 2 cores, each core serving a queue of
# every device. fio's crc32c verification runs on all three at once; SIGTERM
# then stops and deletes all three, and the process exits cleanly.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
multi_zram_a=150
multi_zram_b=151
multi_loop=152

multi_ready() {
  vm_require_root
  vm_require_cmd coblk_example_multi fio dd
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
}

multi_devices_verify_at_once() {
  local t="${TMPDIR:-/tmp}" log id
  multi_ready
  log="$t/multi.log"
  dd if=/dev/zero of="$t/multi-loop.img" bs=1M count=0 seek=24 2>/dev/null
  vm_defer "rm -f $t/multi-loop.img"
  vm_spawn "$log" coblk_example_multi -c 2 -d 32 \
    "zram:$multi_zram_a:24:lz4" "zram:$multi_zram_b:24:zstd" "loop:$multi_loop:$t/multi-loop.img"
  for id in $multi_zram_a $multi_zram_b $multi_loop; do
    vm_wait_for_path "/dev/ublkb$id" 30
  done
  [ "$(grep -c '^/dev/ublkb' "$log")" -eq 3 ] || { cat "$log"; vm_fail "not every device was reported ready"; }

  # One fio run, one job per device, all verifying at the same time; two
  # jobs per device so that both cores' queues carry requests.
  fio --ioengine=io_uring --direct=1 --rw=randwrite --bsrange=4k-128k --iodepth=8 \
      --size=12M --numjobs=2 --offset_increment=12M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --buffer_compress_percentage=50 \
      --group_reporting --output-format=terse \
      --name=zram_a --filename="/dev/ublkb$multi_zram_a" \
      --name=zram_b --filename="/dev/ublkb$multi_zram_b" \
      --name=loop --filename="/dev/ublkb$multi_loop" >"$t/multi-fio.log" 2>&1 \
    || { tail -n 20 "$t/multi-fio.log"; cat "$log"; vm_fail "fio verify failed on one of the devices"; }

  # SIGTERM stops all three; the server prints each queue's count and exits 0.
  kill -TERM "$VM_SPAWNED_PID"
  wait_for_exit "$VM_SPAWNED_PID" 30
  cat "$log"
  [ "$EXIT_RC" -eq 0 ] || vm_fail "coblk_example_multi exited with status $EXIT_RC"
  for id in $multi_zram_a $multi_zram_b $multi_loop; do
    [ ! -e "/dev/ublkb$id" ] || vm_fail "/dev/ublkb$id still exists after the server stopped"
    grep -q "^device $id: queue 0 [1-9][0-9]* requests queue 1 [1-9][0-9]* requests" "$log" \
      || vm_fail "device $id: both queues should have served requests"
  done
}

# A device deleted from outside (STOP_DEV from `coblk del`) ends only its
# own queues: the process keeps serving the other device.
multi_devices_delete_one_while_others_serve() {
  local t="${TMPDIR:-/tmp}" log
  multi_ready
  vm_require_coblk
  log="$t/multi2.log"
  vm_spawn "$log" coblk_example_multi -c 2 -d 16 "zram:$multi_zram_a:8:lz4" "zram:$multi_zram_b:8:lz4"
  vm_wait_for_path "/dev/ublkb$multi_zram_a" 30
  vm_wait_for_path "/dev/ublkb$multi_zram_b" 30
  # Deleting one device from outside ends only that device's queues.
  "$COBLK_BIN" del -n "$multi_zram_a" || vm_fail "coblk del -n $multi_zram_a failed"
  sleep 1
  running "$VM_SPAWNED_PID" || { cat "$log"; vm_fail "the server exited when one of its two devices was deleted"; }
  dd if=/dev/urandom of="$t/multi-pattern" bs=64k count=16 2>/dev/null
  dd if="$t/multi-pattern" of="/dev/ublkb$multi_zram_b" bs=64k oflag=direct 2>/dev/null \
    || vm_fail "the remaining device refused a write"
  dd if="/dev/ublkb$multi_zram_b" bs=64k count=16 iflag=direct 2>/dev/null | cmp - "$t/multi-pattern" \
    || vm_fail "the remaining device did not read back what was written"
  kill -TERM "$VM_SPAWNED_PID"
  wait_for_exit "$VM_SPAWNED_PID" 30
  [ "$EXIT_RC" -eq 0 ] || { cat "$log"; vm_fail "coblk_example_multi exited with status $EXIT_RC"; }
  [ ! -e "/dev/ublkb$multi_zram_b" ] || vm_fail "/dev/ublkb$multi_zram_b still exists after the server stopped"
}

vm_case "two zram devices and a loop device in one process on 2 cores pass fio verify at once" multi_devices_verify_at_once
vm_case "deleting one of two devices served by one process leaves the other serving" multi_devices_delete_one_while_others_serve
vm_finish
