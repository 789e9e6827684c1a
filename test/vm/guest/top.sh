#!/bin/sh
# top.sh: `coblk top --once` shows live devices under fio (a null device's
# reads per second and both queues; a zram device's compression ratio), and
# a server that cannot lock its memory says so in syslog (busybox syslogd)
# and in `coblk list` (WARN column, --verbose, --json).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own are left alone).
base_id=70

top_once_shows_devices_under_fio() {
  vm_ublk_ready fio
  local id=$base_id zid=$((base_id + 1)) dir="${TMPDIR:-/tmp}" fio_pid reads i
  add_device "$id" -t null --size 256M -q 2
  add_device "$zid" -t zram --size 32M
  # Text that compresses (repeated lines), so the ratio is well above 1.
  yes "coblk top test line: compressible data" | head -c 1048576 | dd of="/dev/ublkb$zid" bs=1M oflag=direct 2>/dev/null \
    || vm_fail "writing to the zram device failed"
  # fio runs until killed; under TCG it takes seconds to start, so frames
  # are taken until one shows its reads (each covers the last second).
  fio --name=top --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=randread --bs=4k --iodepth=16 \
      --size=256M --runtime=120 --time_based --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
      --output-format=terse >"$dir/fio-top.log" 2>&1 &
  fio_pid=$!
  vm_defer "kill $fio_pid"
  i=0
  while :; do
    kill -0 "$fio_pid" 2>/dev/null || { tail -n 20 "$dir/fio-top.log" >&2; vm_fail "fio ended early"; }
    "$COBLK_BIN" top --once --interval 1 >"$dir/top.txt" || vm_fail "coblk top --once failed"
    reads=$(awk -v d="ublkb$id" '$1 == d { print $2 }' "$dir/top.txt")
    # Both queues busy too: fio's two jobs have both started.
    [ "$reads" != 0 ] && [ "$(awk '$1 == "q0" || $1 == "q1" { if ($3 != "0" && $3 != "-") n++ } END { print n + 0 }' \
      "$dir/top.txt")" -ge 2 ] && break
    i=$((i + 1))
    [ "$i" -lt 30 ] || { cat "$dir/top.txt" >&2; vm_fail "top shows no reads on both queues of ublkb$id under fio"; }
  done
  kill "$fio_pid"
  wait "$fio_pid" 2>/dev/null || true
  sed 's/^/coblk-vm: /' "$dir/top.txt"
  ! grep -q "$(printf '\033')" "$dir/top.txt" || vm_fail "escape codes in --once output to a file"
  grep -q '^DEVICE .*R_IOPS .*W_IOPS .*P99 .*BUSY%' "$dir/top.txt" || vm_fail "no header"
  # The device row (its CORE cell is empty, so R_IOPS is the 2nd field).
  case "$reads" in
    '' | 0 | -) vm_fail "top shows no reads per second on ublkb$id under fio ('$reads')" ;;
  esac
  vm_log "ublkb$id: $reads reads/s after $i frames without"
  awk -v d="ublkb$id" '$1 == d { print $6 }' "$dir/top.txt" | grep -Eq '^[0-9.]+(ns|us|ms|s)$' \
    || vm_fail "no p99 latency for ublkb$id under fio"
  grep -q "^ublkb$zid .*zram$" "$dir/top.txt" || vm_fail "top does not show the zram device"
  grep -Eq '^  zram [a-z0-9:]+: ratio [0-9]+\.[0-9][0-9]  data 1M ' "$dir/top.txt" || vm_fail "no zram line with a ratio for 1M"
}

swap_safety_warning_reaches_the_log_and_list() {
  vm_ublk_ready
  local id=$((base_id + 2)) dir="${TMPDIR:-/tmp}" log out json i
  [ "$COBLK_VM_MODE" = vm ] || vm_skip "needs its own syslogd (the guest's); a host has its own logger"
  # util-linux's setpriv (shipped into the guest; busybox's cannot drop a
  # capability from the bounding set): a root server without CAP_IPC_LOCK
  # under the default 8 MiB RLIMIT_MEMLOCK cannot lock its memory.
  if [ ! -x /usr/bin/setpriv ] || ! /usr/bin/setpriv --help 2>&1 | grep -q bounding-set; then
    vm_skip "util-linux setpriv is not in the guest"
  fi
  log="$dir/messages"
  rm -f "$log"
  vm_spawn "$dir/syslogd.out" syslogd -n -O "$log"
  vm_wait_for_path /dev/log 5
  vm_defer "$COBLK_BIN del --force -n $id"
  out=$(/usr/bin/setpriv --bounding-set -ipc_lock -- "$COBLK_BIN" add -n "$id" -t null --size 16M) \
    || vm_fail "coblk add without CAP_IPC_LOCK failed"
  vm_assert_eq "/dev/ublkb$id" "$out" "block device printed by coblk add"
  # list: the WARN column, the whole line with --verbose, and the JSON.
  vm_assert_eq memory-not-locked "$(list_field "$id" WARN)" "WARN column"
  "$COBLK_BIN" list -n "$id" --verbose | grep -q "^device $id: warning: memory not locked: no CAP_IPC_LOCK" \
    || vm_fail "list --verbose does not print the warning: $("$COBLK_BIN" list -n "$id" --verbose)"
  json=$("$COBLK_BIN" list -n "$id" --json)
  vm_log "coblk list --json: $json"
  case "$json" in *'"warnings":["memory not locked: no CAP_IPC_LOCK'*) ;; *) vm_fail "list --json lacks the warning" ;; esac
  # syslog: the warning and the start, each naming the device.
  i=0
  until grep -q "coblk\[[0-9]*\]: ublkb$id: serving /dev/ublkb$id" "$log" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || { cat "$log" >&2; vm_fail "the start of ublkb$id is not in the log"; }
    sleep 0.1
  done
  sed 's/^/coblk-vm: log: /' "$log"
  grep -q "daemon.warn coblk\[[0-9]*\]: ublkb$id: warning: memory not locked: no CAP_IPC_LOCK" "$log" \
    || vm_fail "the swap-safety warning is not in the log as a daemon warning"
  # A server that may lock its memory has no warning.
  add_device $((id + 1)) -t null --size 16M
  vm_assert_eq - "$(list_field $((id + 1)) WARN)" "WARN column of a locked server"
  # Deleting the device ends the server, which logs that too.
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed"
  i=0
  until grep -q "ublkb$id: stopped" "$log"; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || { cat "$log" >&2; vm_fail "the stop of ublkb$id is not in the log"; }
    sleep 0.1
  done
}

vm_case "coblk top --once shows live devices under fio" top_once_shows_devices_under_fio
vm_case "a swap-safety warning reaches syslog and coblk list" swap_safety_warning_reaches_the_log_and_list
vm_finish
