#!/bin/sh
# ublk-recovery.sh: a device added with --recovery outlives its server.
# kill -9 of the server in the middle of fio leaves the device quiesced;
# `coblk recover` serves it again, every write fio saw acknowledged is on the
# device and in the loop file, and fio verification passes afterwards, on
# each of the three data paths. A recovered server must use the data path
# the device was added with. A device whose server died can also just be
# deleted.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=80

# seq_job and acked_kib (lib.sh) drive and read the write job whose
# acknowledged writes are checked.

# needs_data_path [ADD-OPTION...]: skips the case when the kernel lacks the
# feature of the data path the options ask for.
needs_data_path() {
  case "$*" in
    *--zero-copy*) "$COBLK_BIN" features 2>/dev/null | grep -q AUTO_BUF_REG || vm_skip "the kernel lacks ublk AUTO_BUF_REG" ;;
    *--user-copy*) "$COBLK_BIN" features 2>/dev/null | grep -q USER_COPY || vm_skip "the kernel lacks ublk USER_COPY" ;;
  esac
}

# kill_and_wait ID: kill -9 of device ID's server, which must then be gone.
kill_and_wait() {
  local pid
  pid=$(server_pid "$1")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL"
}

# recover_refused ID WHY NEEDLE: coblk recover -n ID fails with exactly one
# line on stderr containing NEEDLE, and leaves the device quiesced. WHY
# names the situation in the log.
recover_refused() {
  local rc=0 err="${TMPDIR:-/tmp}/rec.err"
  "$COBLK_BIN" recover -n "$1" >/dev/null 2>"$err" || rc=$?
  vm_log "coblk recover with $2: exit $rc, $(cat "$err")"
  [ "$rc" -ne 0 ] || vm_fail "coblk recover with $2 succeeded"
  vm_assert_eq 1 "$(wc -l <"$err")" "stderr lines of the refused recover"
  grep -qF "$3" "$err" || vm_fail "unclear refusal: $(cat "$err")"
  vm_assert_eq quiesced "$(list_field "$1" STATE)" "state after the refused recover"
}

# ---- cases -----------------------------------------------------------------

# recover_loop_during_fio ID [ADD-OPTION...]: the options choose the data
# path (none: copy); the recovered server must serve the same one.
recover_loop_during_fio() {
  local id="$1" t="${TMPDIR:-/tmp}" file pid1 pid2 out acked state
  shift
  file="$t/recover-$id.img"
  vm_ublk_ready fio
  needs_data_path "$@"
  truncate -s 64M "$file"
  vm_defer "rm -f $file"
  add_device "$id" -t loop -f "$file" -q 2 --recovery "$@"
  vm_assert_eq "$(case "$*" in *--zero-copy*) echo zero_copy ;; *--user-copy*) echo user_copy ;; *) echo copy ;; esac)" \
    "$(list_field "$id" DATA_PATH)" "data path of device $id"
  pid1=$(server_pid "$id")

  seq_job --filename="/dev/ublkb$id" --direct=1 --size=32M --rate_iops=64 --do_verify=0 \
    >"$t/acked.log" 2>&1 &
  FIO_PID=$!
  vm_defer "kill -9 $FIO_PID"
  # Kill the server once fio is well under way (fio itself may take seconds
  # to start under emulation): the 33rd block, at 2 MiB, has reached the file.
  local i=0
  while [ "$(dd if="$file" bs=64k skip=32 count=1 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ]; do
    i=$((i + 1))
    [ "$i" -le 300 ] || { cat "$t/acked.log" >&2; vm_fail "fio wrote less than 2 MiB in 30 s"; }
    sleep 0.1
  done
  running "$FIO_PID" || { cat "$t/acked.log" >&2; vm_fail "fio ended before the server was killed"; }

  kill -KILL "$pid1"
  wait_until_gone "$pid1" 20 || vm_fail "the server ($pid1) survived SIGKILL for 20 s"
  state=$(list_field "$id" STATE)
  vm_log "after kill -9 of its server device $id is '$state'"
  [ -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "device $id vanished although it was added with --recovery"

  out=$(timeout 60 "$COBLK_BIN" recover -n "$id") || vm_fail "coblk recover -n $id failed"
  vm_log "coblk recover printed '$out'"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after coblk recover"
  pid2=$(server_pid "$id")
  [ "$pid2" != "$pid1" ] || vm_fail "coblk list still shows the dead server's pid"
  running "$pid2" || vm_fail "the new server ($pid2) is not running"

  # fio goes on after recovery: writes queued while no server ran are served
  # by the new one. A write the old server had taken may fail (USER_RECOVERY
  # without REISSUE fails those), which ends fio early; either way every
  # write fio counted as done must be there.
  acked_kib "$FIO_PID" 120 "$t/acked.log" 32768
  acked=$ACKED
  [ "$acked" -ge 2048 ] || { cat "$t/acked.log" >&2; vm_fail "fio counted only $acked KiB written, but 2 MiB had reached the file before the kill"; }

  seq_job --filename="/dev/ublkb$id" --direct=1 --size="${acked}K" --verify_only >"$t/v1.log" 2>&1 \
    || { tail -n 5 "$t/v1.log" >&2; vm_fail "the recovered device lacks acknowledged writes"; }
  sync
  seq_job --filename="$file" --size="${acked}K" --verify_only >"$t/v2.log" 2>&1 \
    || { tail -n 5 "$t/v2.log" >&2; vm_fail "the loop file lacks acknowledged writes"; }

  # The recovered device serves verified random I/O on both queues.
  fio --name=after --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange=4k-1M --iodepth=16 --offset=32M --size=16M \
      --numjobs=2 --offset_increment=16M --cpus_allowed=0-1 --cpus_allowed_policy=split \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse >"$t/after.log" 2>&1 \
    || { tail -n 5 "$t/after.log" >&2; vm_fail "fio verification failed on the recovered device"; }
}

# A loop device.
recover_live_refused() {
  local id=$((base_id + 1)) t="${TMPDIR:-/tmp}" rc=0
  vm_ublk_ready fio
  dd if=/dev/zero of="$t/live.img" bs=1M count=0 seek=32 2>/dev/null
  vm_defer "rm -f $t/live.img"
  add_device "$id" -t loop -f "$t/live.img" --recovery
  "$COBLK_BIN" recover -n "$id" >"$t/rec.out" 2>"$t/rec.err" || rc=$?
  vm_log "coblk recover of a live device: exit $rc, $(cat "$t/rec.err")"
  [ "$rc" -ne 0 ] || vm_fail "coblk recover of a live device succeeded"
  grep -qi live "$t/rec.err" || vm_fail "the error does not say the device is live"
  vm_assert_eq live "$(list_field "$id" STATE)" "state of the device after the refused recover"
}

del_after_server_died() {
  local id=$((base_id + 2)) pid t="${TMPDIR:-/tmp}"
  vm_ublk_ready fio
  dd if=/dev/zero of="$t/died.img" bs=1M count=0 seek=32 2>/dev/null
  vm_defer "rm -f $t/died.img"
  add_device "$id" -t loop -f "$t/died.img" --recovery
  pid=$(server_pid "$id")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL for 20 s"
  vm_log "device $id is '$(list_field "$id" STATE)' after its server died"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del -n $id failed or hung"
  local i=0
  while [ -e "/dev/ublkc$id" ] || [ -e "/dev/ublkb$id" ]; do
    i=$((i + 1))
    [ "$i" -le 50 ] || vm_fail "the nodes of device $id remain after coblk del"
    sleep 0.1
  done
  "$COBLK_BIN" list | awk -v id="$id" 'NR > 1 && $1 == id { exit 1 }' || vm_fail "coblk list still shows device $id"
}

# Never serve wrong data. The kernel moves a request's data by the data
# path the device was added with; a record edited to another one is
# refused by recover with one line, and the device stays quiesced for del.
recover_refuses_another_data_path() {
  local id=$((base_id + 6)) t="${TMPDIR:-/tmp}" record="${COBLK_RUN_DIR:-/run/coblk}/$((base_id + 6)).json"
  vm_ublk_ready
  needs_data_path --zero-copy
  dd if=/dev/zero of="$t/dp.img" bs=1M count=0 seek=32 2>/dev/null
  vm_defer "rm -f $t/dp.img"
  add_device "$id" -t loop -f "$t/dp.img" --recovery --zero-copy
  kill_and_wait "$id"
  sed -i 's/,"--zero-copy"//' "$record"
  ! grep -q zero-copy "$record" || vm_fail "could not rewrite the record: $(cat "$record")"
  recover_refused "$id" "the copy path" "device $id was added with the zero copy (AUTO_BUF_REG) data path, not copy"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del of the refused device failed"
}

# Never serve another file's data. The backing path of a loop device whose
# server died now names another file of the same size (a restore, a
# rotation): recover refuses in one line, the device stays quiesced, and
# with the original file back in place recover serves its data.
recover_refuses_another_backing_file() {
  local id=$((base_id + 7)) t="${TMPDIR:-/tmp}" sum
  vm_ublk_ready
  dd if=/dev/urandom of="$t/orig.img" bs=1M count=8 2>/dev/null
  dd if=/dev/urandom of="$t/other.img" bs=1M count=8 2>/dev/null
  vm_defer "rm -f $t/orig.img $t/other.img $t/orig.kept"
  sum=$(sha256sum <"$t/orig.img")
  add_device "$id" -t loop -f "$t/orig.img" --recovery
  kill_and_wait "$id"
  mv "$t/orig.img" "$t/orig.kept"
  cp "$t/other.img" "$t/orig.img"
  recover_refused "$id" "another file at the path" \
    "the backing file '$t/orig.img' of device $id is not the one it was added with"
  mv "$t/orig.kept" "$t/orig.img"
  timeout 60 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "recover with the original file back failed"
  vm_assert_eq "$sum" "$(dd if="/dev/ublkb$id" bs=1M count=8 iflag=direct 2>/dev/null | sha256sum)" \
    "data after recovering with the original file"
}

# The same for a block device: the backing disk of a loop device (here a
# coblk ram device) deleted and created again under the same name and
# device number is another disk (a new diskseq); recover refuses it, and
# recovers while the disk is the one it served.
recover_refuses_a_recreated_backing_disk() {
  local id=$((base_id + 8)) disk=$((base_id + 9))
  vm_ublk_ready
  add_device "$disk" -t ram --size 16M
  add_device "$id" -t loop -f "/dev/ublkb$disk" --recovery
  kill_and_wait "$id"
  timeout 60 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "recover with the same backing disk failed"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after recovering with the same disk"
  kill_and_wait "$id"
  "$COBLK_BIN" del -n "$disk" || vm_fail "coblk del -n $disk failed"
  "$COBLK_BIN" add -n "$disk" -t ram --size 16M >/dev/null || vm_fail "re-adding device $disk failed"
  recover_refused "$id" "a re-created backing disk" \
    "the backing file '/dev/ublkb$disk' of device $id is not the one it was added with"
}

# Never serve lost data. A device recorded as ram without a keeper (as an
# older coblk could leave one) whose server died is refused by recover with
# one line saying the data is lost, and stays quiesced until coblk del
# removes it. (ram and zram with their keeper: crash-safe-memory.sh.)
recover_in_memory_device_refused() {
  local id=$((base_id + 3)) t="${TMPDIR:-/tmp}" rc=0 pid
  vm_ublk_ready
  dd if=/dev/zero of="$t/mem.img" bs=1M count=0 seek=32 2>/dev/null
  vm_defer "rm -f $t/mem.img"
  add_device "$id" -t loop -f "$t/mem.img" --recovery
  pid=$(server_pid "$id")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server survived SIGKILL"
  sed -i 's/"target": *"loop"/"target":"ram"/' "${COBLK_RUN_DIR:-/run/coblk}/$id.json"
  grep -q '"target":"ram"' "${COBLK_RUN_DIR:-/run/coblk}/$id.json" || vm_fail "could not rewrite the record"
  "$COBLK_BIN" recover -n "$id" >/dev/null 2>"$t/rec.err" || rc=$?
  [ "$rc" -ne 0 ] || vm_fail "recover of an in-memory device succeeded"
  [ "$(wc -l < "$t/rec.err")" -eq 1 ] || vm_fail "the refusal is not one line: $(cat "$t/rec.err")"
  grep -q "device $id is a ram device: its data was in the memory of its server, which died, so the data is lost" \
    "$t/rec.err" || vm_fail "unclear refusal: $(cat "$t/rec.err")"
  [ ! -e "/dev/ublkb$id" ] || [ "$(list_field "$id" STATE)" != live ] || vm_fail "the device came back live"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del of the refused device failed"
}

vm_case "recover of a ram device without a keeper whose server died is refused with one line saying its data is lost, and del removes it" \
  recover_in_memory_device_refused
vm_case "a loop device whose server was killed during fio is recovered with every acknowledged write on the device and in its file, and passes fio verification" \
  recover_loop_during_fio "$base_id"
vm_case "a --zero-copy loop device whose server was killed during fio is recovered on the zero-copy path with every acknowledged write, and passes fio verification" \
  recover_loop_during_fio $((base_id + 4)) --zero-copy
vm_case "a --user-copy loop device whose server was killed during fio is recovered on the user-copy path with every acknowledged write, and passes fio verification" \
  recover_loop_during_fio $((base_id + 5)) --user-copy
vm_case "coblk recover refuses in one line to serve a device with another data path than it was added with, and del removes it" \
  recover_refuses_another_data_path
vm_case "coblk recover refuses in one line a loop device whose backing path now names another file, and serves the original once it is back" \
  recover_refuses_another_backing_file
vm_case "coblk recover refuses a loop device whose backing disk was deleted and created again under the same name" \
  recover_refuses_a_recreated_backing_disk
vm_case "coblk recover of a live --recovery device is refused and leaves it live" recover_live_refused
vm_case "a --recovery device whose server was killed is removed by coblk del" del_after_server_died
vm_finish
