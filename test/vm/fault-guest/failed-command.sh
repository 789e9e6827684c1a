#!/bin/sh
# failed-command.sh: runs with a fault-injection build's binaries (the ASan
# build of scripts/test-all, ctest label vm_fault). An I/O command that
# fails on a live device may leave a request the server cannot complete;
# STOP_DEV would then hang, so the server exits, and the kernel fails the
# request. Nothing may hang.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# The binaries are an ASan build: no leak report at exit (a deliberate
# _Exit would not get one anyway), and any other report is fatal.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1

fault_id=171

failed_command_never_hangs_a_reader() {
  local t="${TMPDIR:-/tmp}" log i
  vm_require_root
  vm_require_cmd device_api_check dd timeout
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
  log="$t/failed-command.log"
  vm_defer "$COBLK_BIN del -n $fault_id"
  device_api_check commit-fails "$fault_id" >"$log" 2>&1 &
  pid=$!
  # The fault is armed once the server has seen START_DEV complete, just
  # before it prints the device. Kernels from 6.19 scan partitions from a
  # work item after START_DEV, so the scan's read of sector 0 can be the
  # first request to arrive after arming: the server may give the device up
  # (and the node go away) before dd below runs. Either way one request's
  # command fails, that request ends with an I/O error, and nothing hangs.
  i=0
  until grep -q "^/dev/ublkb$fault_id\$" "$log"; do
    i=$((i + 1))
    [ "$i" -le 300 ] || { cat "$log"; vm_fail "the server never announced the device"; }
    sleep 0.1
  done
  # dd's request, if the partition scan did not take the fault first, is the
  # one whose command "fails": it must end with an error, not hang. If the
  # device is already gone, dd fails to open it, which is also an error. If
  # the scan's request took the fault, dd's read may also reach the other,
  # healthy queue and be served (zeros, this target's data) in the moment
  # before the server gives the device up: then the scan's read is the one
  # that must have failed.
  dd_served=0
  if timeout 30 dd if="/dev/ublkb$fault_id" of=/dev/null bs=4k count=1 iflag=direct 2>"$t/dd.err"; then
    dd_served=1
  elif [ "$?" -eq 124 ]; then
    cat "$log"
    vm_fail "the read hung"
  fi
  # The server has given the device up, and the kernel has failed the
  # request whose command failed, once the server has exited.
  wait_for_exit "$pid" 30
  cat "$log"
  [ "$EXIT_RC" -eq 3 ] || vm_fail "device_api_check exited with $EXIT_RC, not 3 (gave the device up)"
  if [ "$dd_served" = 1 ]; then
    dmesg | grep -q "I/O error, dev ublkb$fault_id" \
      || vm_fail "the read succeeded, and no other read of the device failed: the failed command's request did not end with an error"
  else
    # Whichever read it was, it ended with an I/O error.
    grep -q "Input/output error" "$t/dd.err" || dmesg | grep -q "I/O error, dev ublkb$fault_id" \
      || { cat "$t/dd.err"; vm_fail "no read of the device ended with an I/O error"; }
  fi
  grep -q "unrecoverable after a failed command" "$log" || vm_fail "the server did not say why it exited"
  "$COBLK_BIN" del -n "$fault_id" || vm_fail "coblk del of the abandoned device failed"
  [ ! -e "/dev/ublkb$fault_id" ] || vm_fail "/dev/ublkb$fault_id still exists after coblk del"
}

vm_case "a failed I/O command on a live device makes its server give the device up, and the request it held fails instead of hanging" \
  failed_command_never_hangs_a_reader
vm_finish
