#!/bin/sh
# crash-safe-memory.sh: a ram or zram device added with --recovery keeps every
# acknowledged write when its server dies. Its keeper holds the data's
# memfds and starts a new server that recovers them; `coblk recover` does the
# same on request; a crash loop makes the keeper give up and leave the device
# quiesced for `coblk del`; without the keeper the data is gone and recover
# says so. Nothing (keeper, memfd, run-directory file) outlives `coblk del`.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=140
run_dir="${COBLK_RUN_DIR:-/run/coblk}"

# ---- helpers ---------------------------------------------------------------
# (seq_job and acked_kib come from lib.sh.)

# keeper_pid ID: the keeper recorded for device ID.
keeper_pid() {
  sed -n 's/.*"keeper_pid":\([0-9]*\).*/\1/p' "$run_dir/$1.json"
}

# wait_live_with_new_server ID OLD_PID SECONDS: wait until device ID is live
# again, served by another process than OLD_PID; prints the new pid.
wait_live_with_new_server() {
  local i=0 pid
  while :; do
    if [ "$(list_field "$1" STATE)" = live ]; then
      pid=$(list_field "$1" PID)
      if [ -n "$pid" ] && [ "$pid" != "$2" ] && [ "$pid" != - ]; then
        echo "$pid"
        return 0
      fi
    fi
    i=$((i + 1))
    [ "$i" -le $(($3 * 10)) ] || return 1
    sleep 0.1
  done
}

# wait_state ID STATE SECONDS: wait until coblk list shows device ID in STATE.
wait_state() {
  local i=0 state
  while state=$(list_field "$1" STATE) && [ "$state" != "$2" ]; do
    i=$((i + 1))
    [ "$i" -le $(($3 * 10)) ] || vm_fail "device $1 is '$state', not '$2', after $3 s"
    sleep 0.1
  done
}

# uptime_ms: the guest's uptime in milliseconds (busybox date has no %N).
uptime_ms() {
  awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# kill_server ID: kill -9 the server of device ID and wait until it is gone;
# prints its pid.
kill_server() {
  local pid
  pid=$(server_pid "$1")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL for 20 s"
  echo "$pid"
}

# no_leftovers ID KEEPER: after coblk del, nothing of device ID remains.
no_leftovers() {
  local i=0
  while running "$2"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || vm_fail "the keeper ($2) outlived coblk del"
    sleep 0.1
  done
  for f in "$run_dir/$1".*; do
    [ -e "$f" ] && vm_fail "$f outlived coblk del"
  done
  # A memfd held by any process shows as /memfd:coblk-... in its fd table.
  if ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q 'memfd:coblk-'; then
    vm_fail "a coblk memfd outlived coblk del"
  fi
  [ ! -e "/dev/ublkb$1" ] || vm_fail "/dev/ublkb$1 outlived coblk del"
}

# ---- cases -----------------------------------------------------------------

# kill -9 in the middle of fio: the keeper restarts the server (or, with
# --no-restart, coblk recover asks it to), fio goes on (REISSUE re-sends
# what the dead server had taken), and every acknowledged write verifies;
# then fio verifies random I/O on the recovered device.
killed_mid_fio() {
  local id="$1" how="$2" t="${TMPDIR:-/tmp}" pid1 pid2 acked keeper restart=
  shift 2
  vm_ublk_ready fio
  [ "$how" = manual ] && restart=--no-restart
  # shellcheck disable=SC2086 # $restart is one word or none
  add_device "$id" --size 48M --recovery $restart "$@"
  keeper=$(keeper_pid "$id")
  running "$keeper" || vm_fail "device $id has no running keeper ('$keeper')"

  seq_job --filename="/dev/ublkb$id" --direct=1 --size=24M --rate_iops=48 --do_verify=0 >"$t/acked.log" 2>&1 &
  FIO_PID=$!
  vm_defer "kill -9 $FIO_PID"
  sleep 3
  running "$FIO_PID" || { cat "$t/acked.log" >&2; vm_fail "fio ended before the server was killed"; }
  local killed_at live_at
  killed_at=$(uptime_ms)
  pid1=$(kill_server "$id")
  if [ "$how" = manual ]; then
    wait_state "$id" quiesced/waiting 10
    timeout 90 "$COBLK_BIN" recover -n "$id" >"$t/rec.out" || vm_fail "coblk recover -n $id failed"
    vm_assert_eq "/dev/ublkb$id" "$(cat "$t/rec.out")" "what coblk recover printed"
  fi
  pid2=$(wait_live_with_new_server "$id" "$pid1" 60) || vm_fail "device $id was not live again within 60 s of kill -9"
  live_at=$(uptime_ms)
  vm_log "keeper $keeper replaced server $pid1 by $pid2 ($how) $((live_at - killed_at)) ms after kill -9 (guest time, TCG, 10 ms clock); list: $(list_field "$id" STATE) restarts $(list_field "$id" RESTARTS)"
  vm_assert_eq 1 "$(list_field "$id" RESTARTS)" "restarts after one kill"

  acked_kib "$FIO_PID" 180 "$t/acked.log" 24576
  acked=$ACKED
  [ "$acked" -ge 1024 ] || { cat "$t/acked.log" >&2; vm_fail "fio counted only $acked KiB written"; }
  seq_job --filename="/dev/ublkb$id" --direct=1 --size="${acked}K" --verify_only >"$t/v1.log" 2>&1 \
    || { tail -n 5 "$t/v1.log" >&2; vm_fail "the recovered device lacks acknowledged writes"; }
  fio --name=after --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange=4k-256k --iodepth=16 --offset=32M --size=16M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse >"$t/after.log" 2>&1 \
    || { tail -n 5 "$t/after.log" >&2; vm_fail "fio verification failed on the recovered device"; }
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del -n $id failed"
  no_leftovers "$id" "$keeper"
}

# Three deaths in a row under load, each restarted; then a crash loop that
# the keeper gives up on, leaving a quiesced device that del removes.
kill_three_times_then_crash_loop() {
  local id=$((base_id + 4)) t="${TMPDIR:-/tmp}" pid keeper n
  vm_ublk_ready fio
  add_device "$id" -t zram --size 32M -q 2 --recovery --max-restarts 4
  keeper=$(keeper_pid "$id")
  fio --name=data --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=write --bs=128k --size=16M \
      --verify=crc32c --do_verify=0 --output-format=terse >"$t/data.log" 2>&1 || vm_fail "writing the data failed"
  fio --name=load --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=randrw --bs=4k --iodepth=8 \
      --offset=16M --size=16M --time_based --runtime=600 --output-format=terse >"$t/load.log" 2>&1 &
  FIO_PID=$!
  vm_defer "kill -9 $FIO_PID"
  for n in 1 2 3; do
    sleep 1
    pid=$(kill_server "$id")
    wait_live_with_new_server "$id" "$pid" 60 >/dev/null || vm_fail "not live again after kill $n"
  done
  vm_assert_eq 3 "$(list_field "$id" RESTARTS)" "restarts after three kills"
  kill -9 "$FIO_PID" 2>/dev/null
  fio --name=data --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=write --bs=128k --size=16M \
      --verify=crc32c --verify_only --output-format=terse >"$t/check.log" 2>&1 \
    || { tail -n 5 "$t/check.log" >&2; vm_fail "data written before three kills does not verify"; }
  # The fourth and fifth deaths within the minute: the keeper restarts once
  # more (4 allowed), then gives up.
  pid=$(kill_server "$id")
  pid=$(wait_live_with_new_server "$id" "$pid" 60) || vm_fail "not live again after kill 4"
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server survived SIGKILL"
  wait_state "$id" quiesced/gave-up 10
  grep -q "gave up after 4 restarts" "$run_dir/$id.log" || vm_fail "the log does not say why the keeper gave up"
  running "$keeper" || vm_fail "the keeper ended instead of holding the memory"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del of the given-up device failed"
  no_leftovers "$id" "$keeper"
}

# --no-restart: the device waits quiesced; recover brings the data back. With
# the keeper gone too, recover refuses with one line: the data is lost.
memory_gone_is_refused() {
  local id=$((base_id + 5)) t="${TMPDIR:-/tmp}" keeper rc=0 pid
  vm_ublk_ready fio
  add_device "$id" -t ram --size 16M -q 2 --recovery --no-restart
  keeper=$(keeper_pid "$id")
  fio --name=data --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=write --bs=64k --size=8M \
      --verify=crc32c --do_verify=0 --output-format=terse >"$t/data.log" 2>&1 || vm_fail "writing the data failed"
  pid=$(kill_server "$id")
  wait_state "$id" quiesced/waiting 10
  timeout 90 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "coblk recover -n $id failed"
  fio --name=data --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --rw=write --bs=64k --size=8M \
      --verify=crc32c --verify_only --output-format=terse >"$t/check.log" 2>&1 \
    || { tail -n 5 "$t/check.log" >&2; vm_fail "data does not verify after a manual recover"; }
  kill -KILL "$keeper"
  wait_until_gone "$keeper" 20 || vm_fail "the keeper survived SIGKILL"
  pid=$(kill_server "$id")
  "$COBLK_BIN" recover -n "$id" >/dev/null 2>"$t/rec.err" || rc=$?
  vm_log "recover without the keeper: exit $rc, $(cat "$t/rec.err")"
  [ "$rc" -ne 0 ] || vm_fail "recover without the keeper's memory succeeded"
  [ "$(wc -l < "$t/rec.err")" -eq 1 ] || vm_fail "the refusal is not one line: $(cat "$t/rec.err")"
  grep -q "device $id lost its data: the keeper that held its memory is gone" "$t/rec.err" \
    || vm_fail "unclear refusal: $(cat "$t/rec.err")"
  vm_assert_eq quiesced/memory-lost "$(list_field "$id" STATE)" "state of the device whose memory is gone"
  timeout 30 "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed"
  no_leftovers "$id" "$keeper"
}

# ext4 on zram: kill -9 while files are being written; after the automatic
# restart the file system is clean (e2fsck -fn) and the files synced before
# the kill are intact. Added without -n: the keeper must learn the id the
# kernel chose.
ext4_survives_kill() {
  local id t="${TMPDIR:-/tmp}" mnt pid i dev
  vm_ublk_ready mkfs.ext4 e2fsck
  dev=$("$COBLK_BIN" add -t zram --size 64M -q 2 --recovery) || vm_fail "coblk add without -n failed"
  id=${dev#/dev/ublkb}
  vm_defer "$COBLK_BIN del --force -n $id"
  [ -b "$dev" ] || vm_fail "$dev does not exist after coblk add"
  mnt="$t/mnt-$id"
  mkdir -p "$mnt"
  mkfs.ext4 -q "/dev/ublkb$id" || vm_fail "mkfs.ext4 failed"
  mount "/dev/ublkb$id" "$mnt" || vm_fail "mount failed"
  vm_defer "umount $mnt"
  for i in 1 2 3 4; do head -c 1048576 /dev/urandom > "$mnt/synced-$i"; done
  sync
  (cd "$mnt" && md5sum synced-*) > "$t/sums"
  ( i=0; while :; do i=$((i + 1)); head -c 262144 /dev/urandom > "$mnt/busy-$((i % 16))"; done ) &
  local writer=$!
  vm_defer "kill -9 $writer"
  sleep 2
  pid=$(kill_server "$id")
  wait_live_with_new_server "$id" "$pid" 60 >/dev/null || vm_fail "not live again after the kill"
  kill -9 "$writer" 2>/dev/null
  wait "$writer" 2>/dev/null || true  # killed: 137
  (cd "$mnt" && md5sum -c "$t/sums" >/dev/null) || vm_fail "files synced before the kill changed"
  umount "$mnt" || vm_fail "umount after the restart failed"
  e2fsck -fn "/dev/ublkb$id" >"$t/fsck.log" 2>&1 || { cat "$t/fsck.log" >&2; vm_fail "e2fsck -fn found errors"; }
}

vm_case "a 1-queue lz4 zram device with --compress-cores 2 whose server is killed during fio is restarted by its keeper with every acknowledged write intact" \
  killed_mid_fio "$base_id" auto -t zram -q 1 --algorithm lz4 --compress-cores 2
vm_case "a 2-queue zstd zram device whose server is killed during fio is recovered by coblk recover with every acknowledged write intact" \
  killed_mid_fio $((base_id + 1)) manual -t zram -q 2 --algorithm zstd
vm_case "a 2-queue ram device whose server is killed during fio is restarted by its keeper with every acknowledged write intact" \
  killed_mid_fio $((base_id + 2)) auto -t ram -q 2
vm_case "a 1-queue ram device whose server is killed during fio is recovered by coblk recover with every acknowledged write intact" \
  killed_mid_fio $((base_id + 3)) manual -t ram -q 1
vm_case "a zram device killed three times under load keeps its data; in a crash loop its keeper gives up, and del removes it and its memory" \
  kill_three_times_then_crash_loop
vm_case "with --no-restart recover brings the data back; with the keeper gone recover refuses in one line that the data is lost" \
  memory_gone_is_refused
vm_case "ext4 on a zram device added without -n whose server is killed while files are written is clean (e2fsck -fn) after the automatic restart" \
  ext4_survives_kill
vm_finish
