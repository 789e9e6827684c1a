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
  vm_wait_for_path "/dev/ublkb$fault_id" 30
  # The node appears inside START_DEV; the fault is armed only once the
  # server has seen START_DEV complete and printed the device.
  i=0
  until grep -q "^/dev/ublkb$fault_id\$" "$log"; do
    i=$((i + 1))
    [ "$i" -le 300 ] || { cat "$log"; vm_fail "the server never announced the device"; }
    sleep 0.1
  done
  # The read's request is the one whose command "fails": it must end (with
  # an I/O error) once the server gave up, not hang.
  if timeout 30 dd if="/dev/ublkb$fault_id" of=/dev/null bs=4k count=1 iflag=direct 2>"$t/dd.err"; then
    cat "$log"
    vm_fail "the read succeeded although its command failed"
  fi
  [ "$?" -ne 124 ] || { cat "$log"; vm_fail "the read hung"; }
  wait_for_exit "$pid" 30
  cat "$log"
  [ "$EXIT_RC" -eq 3 ] || vm_fail "device_api_check exited with $EXIT_RC, not 3 (gave the device up)"
  grep -q "unrecoverable after a failed command" "$log" || vm_fail "the server did not say why it exited"
  "$COBLK_BIN" del -n "$fault_id" || vm_fail "coblk del of the abandoned device failed"
  [ ! -e "/dev/ublkb$fault_id" ] || vm_fail "/dev/ublkb$fault_id still exists after coblk del"
}

vm_case "a failed I/O command on a live device makes its server give the device up, and the request it held fails instead of hanging" \
  failed_command_never_hangs_a_reader
vm_finish
