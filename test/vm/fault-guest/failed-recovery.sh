#!/bin/sh
# failed-recovery.sh: runs with a fault-injection build's coblk (the ASan
# build of scripts/test-all, ctest label vm_fault). A `coblk recover` whose
# server fails before it serves the device again reports it in one line
# and leaves the device quiesced, with its record; a later recover serves
# the data, which was never touched. Two failures: every coroutine frame
# allocation fails (the runtime cannot run at all, as if memory ran out),
# and a queue fails to start inside Device::serve, after its FETCHes could
# have been queued (where STOP_DEV would have ended the device).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# The binaries are an ASan build: no leak report at exit, any other report is fatal.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1

recovery_id=172

# failed_recovery_leaves_the_device_quiesced ID FAULTS REASON: a recover
# under COBLK_FAULTS=FAULTS fails with a line that contains REASON.
failed_recovery_leaves_the_device_quiesced() {
  local id="$1" faults="$2" reason="$3" t="${TMPDIR:-/tmp}" file pid rc=0 sum record="${COBLK_RUN_DIR:-/run/coblk}/$1.json"
  vm_ublk_ready
  file="$t/failed-recovery.img"
  dd if=/dev/urandom of="$file" bs=1M count=4 2>/dev/null
  truncate -s 32M "$file"
  vm_defer "rm -f $file"
  sum=$(dd if="$file" bs=1M count=4 2>/dev/null | sha256sum)
  add_device "$id" -t loop -f "$file" --recovery
  pid=$(server_pid "$id")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL for 20 s"

  COBLK_FAULTS="$faults" "$COBLK_BIN" recover -n "$id" >"$t/rec.out" 2>"$t/rec.err" || rc=$?
  vm_log "coblk recover with COBLK_FAULTS=$faults: exit $rc, $(cat "$t/rec.err")"
  [ "$rc" -ne 0 ] || vm_fail "coblk recover succeeded although its runtime could not run"
  vm_assert_eq 1 "$(wc -l <"$t/rec.err")" "stderr lines of the failed recover"
  grep -qF "$reason" "$t/rec.err" || vm_fail "the failed recover does not say why: $(cat "$t/rec.err")"
  grep -qF "device $id stays quiesced: 'coblk recover -n $id' tries again" "$t/rec.err" \
    || vm_fail "the failed recover does not say the device stays: $(cat "$t/rec.err")"
  [ -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "the failed recover deleted device $id"
  [ -e "$record" ] || vm_fail "the failed recover removed the record of device $id"
  vm_assert_eq quiesced "$(list_field "$id" STATE)" "state after the failed recover"

  timeout 60 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "the second coblk recover -n $id failed"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after the second recover"
  vm_assert_eq "$sum" "$(dd if="/dev/ublkb$id" bs=1M count=4 iflag=direct 2>/dev/null | sha256sum)" \
    "data read back after the second recover"
}

vm_case "a coblk recover whose runtime cannot allocate leaves the device quiesced with its record, and the next recover serves its data" \
  failed_recovery_leaves_the_device_quiesced "$recovery_id" "frame_alloc,count=1000000000" "std::bad_alloc"
vm_case "a coblk recover whose queue fails to start leaves the device quiesced with its record, and the next recover serves its data" \
  failed_recovery_leaves_the_device_quiesced $((recovery_id + 1)) "queue_start,count=1000000000" \
  "a queue failed before the device was served again: Input/output error"
vm_finish
