#!/bin/sh
# ublk-lifecycle.sh: coblk devices come and go cleanly. `coblk list` shows
# what `coblk add` made; `coblk del` in the middle of fio fails fio's I/O
# without hanging anything and leaves no trace of the device; SIGTERM to the
# server stops its device; a server killed with SIGKILL leaves a device that
# `coblk del` removes; `coblk del -a` removes every device.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=70

# ---- helpers ---------------------------------------------------------------

# device_is_gone ID: no node, no sysfs entry, no `coblk list` row, no state file.
device_is_gone() {
  local id="$1" i=0
  # The nodes go when the kernel removes the devices; give devtmpfs a moment.
  while [ -e "/dev/ublkb$id" ] || [ -e "/dev/ublkc$id" ]; do
    i=$((i + 1))
    [ "$i" -le 50 ] || break
    sleep 0.1
  done
  [ ! -e "/dev/ublkb$id" ] || vm_fail "/dev/ublkb$id still exists"
  [ ! -e "/dev/ublkc$id" ] || vm_fail "/dev/ublkc$id still exists"
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "/sys/class/ublk-char/ublkc$id still exists"
  "$COBLK_BIN" list | awk -v id="$id" 'NR > 1 && $1 == id { exit 1 }' \
    || vm_fail "coblk list still shows device $id: $("$COBLK_BIN" list)"
  [ ! -e "${COBLK_RUN_DIR:-/run/coblk}/$id.json" ] || vm_fail "the state file of device $id is left behind"
}

# start_fio DEVICE LOG: long random read/write I/O in the background; its pid
# goes to FIO_PID. The case kills it if it is still running at the end.
start_fio() {
  fio --name=busy --filename="$1" --ioengine=io_uring --direct=1 \
      --rw=randrw --bs=4k --iodepth=32 --size=32M --time_based --runtime=120 \
      --output-format=terse >"$2" 2>&1 &
  FIO_PID=$!
  vm_defer "kill -9 $FIO_PID"
  # Let it get going: requests are in flight once it has done some I/O.
  sleep 3
  kill -0 "$FIO_PID" 2>/dev/null || { cat "$2" >&2; vm_fail "fio ended early"; }
}

# ---- cases -----------------------------------------------------------------

list_shows_device() {
  local id="$base_id"
  vm_ublk_ready fio
  add_device "$id" -t ram --size 64M -q 2 -d 64 --user-copy
  "$COBLK_BIN" list
  vm_assert_eq live "$(list_field "$id" STATE)" "state"
  vm_assert_eq 2 "$(list_field "$id" QUEUES)" "queues"
  vm_assert_eq 64 "$(list_field "$id" DEPTH)" "depth"
  vm_assert_eq ram "$(list_field "$id" TARGET)" "target"
  vm_assert_eq user_copy "$(list_field "$id" DATA_PATH | tr - _)" "data path"
  vm_assert_eq "/dev/ublkb$id" "$(list_field "$id" BLOCK_DEVICE)" "block device"
  local pid json
  pid=$(server_pid "$id")
  running "$pid" || vm_fail "the pid coblk list shows ($pid) is not running"
  # The same as one JSON object per line, numbers as numbers.
  json=$("$COBLK_BIN" list -n "$id" --json)
  vm_log "coblk list --json: $json"
  for field in "\"dev_id\":$id," '"state":"live"' '"queues":2,' '"depth":64,' '"size_bytes":67108864,' \
      '"target":"ram"' '"data_path":"user_copy"' "\"pid\":$pid," '"restarts":null' "\"block_device\":\"/dev/ublkb$id\""; do
    case "$json" in *"$field"*) ;; *) vm_fail "coblk list --json lacks $field" ;; esac
  done
  vm_assert_eq 1 "$(echo "$json" | wc -l)" "lines of coblk list --json for one device"
}

del_during_fio() {
  local id=$((base_id + 1)) log="${TMPDIR:-/tmp}/fio-del.log" pid
  vm_ublk_ready fio
  add_device "$id" -t ram --size 64M -q 2
  pid=$(server_pid "$id")
  start_fio "/dev/ublkb$id" "$log"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del -n $id during fio failed or hung"
  wait_for_exit "$FIO_PID" 30
  [ "$EXIT_RC" -ne 0 ] || vm_fail "fio succeeded although its device was deleted under it"
  vm_log "fio ended with status $EXIT_RC: $(grep -m1 -i 'error' "$log" || true)"
  wait_until_gone "$pid" 10 || vm_fail "the server ($pid) still runs after its device was deleted"
  device_is_gone "$id"
}

sigterm_stops_device() {
  local id=$((base_id + 2)) pid t="${TMPDIR:-/tmp}"
  vm_ublk_ready fio
  add_device "$id" -t ram --size 64M
  dd if=/dev/urandom of="$t/term.bin" bs=1M count=4 2>/dev/null
  dd if="$t/term.bin" of="/dev/ublkb$id" bs=1M oflag=direct 2>/dev/null
  cmp -n $((4 << 20)) "$t/term.bin" "/dev/ublkb$id" || vm_fail "data read back differs"
  rm -f "$t/term.bin"
  pid=$(server_pid "$id")
  kill -TERM "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) still runs 20 s after SIGTERM"
  device_is_gone "$id"
}

sigterm_during_fio() {
  local id=$((base_id + 3)) log="${TMPDIR:-/tmp}/fio-term.log" pid
  vm_ublk_ready fio
  add_device "$id" -t null --size 1G -q 2
  pid=$(server_pid "$id")
  start_fio "/dev/ublkb$id" "$log"
  kill -TERM "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) still runs 20 s after SIGTERM"
  wait_for_exit "$FIO_PID" 30
  [ "$EXIT_RC" -ne 0 ] || vm_fail "fio succeeded although its device's server stopped"
  device_is_gone "$id"
}

sigkill_then_del() {
  local id=$((base_id + 4)) log="${TMPDIR:-/tmp}/fio-kill.log" pid
  vm_ublk_ready fio
  add_device "$id" -t ram --size 64M
  pid=$(server_pid "$id")
  start_fio "/dev/ublkb$id" "$log"
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL for 20 s"
  # Without --recovery the kernel fails the device's I/O once the server is gone.
  wait_for_exit "$FIO_PID" 30
  [ "$EXIT_RC" -ne 0 ] || vm_fail "fio succeeded although its device's server was killed"
  timeout 30 "$COBLK_BIN" del -n "$id" 2>"${TMPDIR:-/tmp}/del.err" \
    || [ ! -e "/sys/class/ublk-char/ublkc$id" ] \
    || vm_fail "coblk del -n $id of a device whose server was killed failed: $(cat "${TMPDIR:-/tmp}/del.err")"
  device_is_gone "$id"
}

del_all() {
  local a=$((base_id + 5)) b=$((base_id + 6)) c=$((base_id + 7)) file="${TMPDIR:-/tmp}/del-all.img" pa pb pc
  vm_ublk_ready fio
  # -a means every device: on a host, only when there are none of the host's.
  if [ "$COBLK_VM_MODE" = host ] && [ -n "$(ls /sys/class/ublk-char 2>/dev/null)" ]; then
    vm_skip "this host has ublk devices of its own, which coblk del -a would delete"
  fi
  truncate -s 32M "$file"
  vm_defer "rm -f $file"
  add_device "$a" -t null -q 2
  add_device "$b" -t ram --size 32M --user-copy
  add_device "$c" -t loop -f "$file"
  pa=$(server_pid "$a")
  pb=$(server_pid "$b")
  pc=$(server_pid "$c")
  timeout 60 "$COBLK_BIN" del -a || vm_fail "coblk del -a failed or hung"
  device_is_gone "$a"
  device_is_gone "$b"
  device_is_gone "$c"
  for p in $pa $pb $pc; do
    wait_until_gone "$p" 10 || vm_fail "server $p still runs after coblk del -a"
  done
  "$COBLK_BIN" del -a || vm_fail "coblk del -a with no devices failed"
}

# coblk del takes a device away from whatever uses it; a file system or
# swap on it loses what it had not written. So a held device is refused
# (one line, status 1, the device and its data stay), -a deletes the others
# and reports the held one, and --force deletes it all the same.
del_refuses_a_device_in_use() {
  local a=$((base_id + 8)) b=$((base_id + 9)) t="${TMPDIR:-/tmp}" mnt out
  vm_ublk_ready mkfs.ext4 mount mkswap swapon swapoff
  mnt="$t/del-mnt"
  mkdir -p "$mnt"
  add_device "$a" -t ram --size 32M
  add_device "$b" -t ram --size 32M
  mkfs.ext4 -q -F "/dev/ublkb$a" || vm_fail "mkfs.ext4 failed"
  mount -t ext4 "/dev/ublkb$a" "$mnt" || vm_fail "mount failed"
  vm_defer "umount $mnt 2>/dev/null"
  echo kept >"$mnt/file"
  sync
  out=$(timeout 30 "$COBLK_BIN" del -n "$a" 2>&1) && vm_fail "coblk del -n $a of a mounted device succeeded"
  vm_log "coblk del -n $a: $out"
  vm_assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "lines of the refusal"
  case "$out" in *"/dev/ublkb$a is in use"*"--force"*) ;; *) vm_fail "the refusal does not say why: $out" ;; esac
  vm_assert_eq live "$(list_field "$a" STATE)" "state of the refused device"
  vm_assert_eq kept "$(cat "$mnt/file")" "the file on the refused device"
  # Swap is refused as well; -a deletes the unused device and reports the held one.
  umount "$mnt"
  mkswap "/dev/ublkb$a" >/dev/null || vm_fail "mkswap failed"
  swapon "/dev/ublkb$a" || vm_fail "swapon failed"
  vm_defer "swapoff /dev/ublkb$a 2>/dev/null"
  timeout 30 "$COBLK_BIN" del -a 2>"$t/del-a.err" && vm_fail "coblk del -a succeeded although a device is swap"
  grep -q "/dev/ublkb$a is in use" "$t/del-a.err" || vm_fail "coblk del -a does not name the held device: $(cat "$t/del-a.err")"
  device_is_gone "$b"
  vm_assert_eq live "$(list_field "$a" STATE)" "state of the swap device after del -a"
  swapoff "/dev/ublkb$a" || vm_fail "swapoff of the device coblk del refused failed"
  # --force deletes a held device: mounted again, it goes all the same.
  mkfs.ext4 -q -F "/dev/ublkb$a" || vm_fail "mkfs.ext4 failed"
  mount -t ext4 "/dev/ublkb$a" "$mnt" || vm_fail "mount failed"
  # It returns at once: the kernel frees the device once the unmount below
  # lets go of it, and nothing waits for that.
  timeout 30 "$COBLK_BIN" del -n "$a" --force 2>"$t/force.err" \
    || vm_fail "coblk del -n $a --force failed or hung: $(cat "$t/force.err")"
  grep -q "deleting it anyway" "$t/force.err" || vm_fail "coblk del --force does not say what it did: $(cat "$t/force.err")"
  # The file system has lost its device: writes fail, loudly.
  if sh -c "echo lost >$mnt/new && sync -f $mnt/new" 2>/dev/null; then
    vm_fail "a write to the file system of the deleted device succeeded"
  fi
  umount "$mnt" || umount -l "$mnt" || true
  device_is_gone "$a"
}

vm_case "coblk list shows a new device's state, queues, depth, target, data path, server pid and block device" list_shows_device
vm_case "coblk del during fio fails fio's I/O, hangs nothing and removes the device, its nodes and its server" del_during_fio
vm_case "SIGTERM to a server stops its device and removes it" sigterm_stops_device
vm_case "SIGTERM to a server during fio fails fio's I/O and removes the device" sigterm_during_fio
vm_case "a device whose server was killed with SIGKILL fails its I/O and is removed by coblk del" sigkill_then_del
vm_case "coblk del -a removes every device, and succeeds when there is none" del_all
vm_case "coblk del refuses a mounted or swap device with one line and keeps it; -a deletes the others; --force deletes it" \
  del_refuses_a_device_in_use
vm_finish
