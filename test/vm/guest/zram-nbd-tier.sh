#!/bin/sh
# zram-nbd-tier.sh: a zram device whose backing tier is an NBD export
# (--backing nbd:unix:PATH, nbdkit's memory plugin in the guest, and
# qemu-nbd, which takes one connection) holds 3x its --mem-limit: fio crc32c verifies, and the stats show written-back
# pages and bd_writes. A server killed for good gives I/O errors on the
# written-back pages after --reconnect-timeout (never wrong data), the tier
# shows failed, nothing hangs, and coblk del works; the same when the
# server stops answering (--request-timeout). Bad NBD tiers are refused
# with one line.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

base_id=190
t="${TMPDIR:-/tmp}"

# ---- helpers ---------------------------------------------------------------

# expect_refusal RC NEEDLE COMMAND...: exit RC (1: refused; 2: a usage
# error), one line on stderr containing NEEDLE (grep pattern), no device
# left behind.
expect_refusal() {
  local want="$1" needle="$2" rc=0
  shift 2
  "$@" >"$t/nbd-tier.out" 2>"$t/nbd-tier.err" || rc=$?
  vm_log "'$*' exit $rc: $(cat "$t/nbd-tier.err")"
  vm_assert_eq "$want" "$rc" "exit status of '$*'"
  vm_assert_eq 1 "$(wc -l <"$t/nbd-tier.err")" "stderr lines of '$*'"
  grep -q -e "$needle" "$t/nbd-tier.err" || vm_fail "stderr of '$*' lacks '$needle'"
  [ ! -e "/sys/class/ublk-char/ublkc$base_id" ] || vm_fail "a refused add left device $base_id behind"
}

# ---- cases -----------------------------------------------------------------

# 2 queues: nbdkit offers multi-conn, so each queue has its own connection.
holds_three_times_its_limit() {
  vm_ublk_ready fio nbdkit
  local id="$base_id" dev="/dev/ublkb$base_id" sock="$t/nbd-tier.sock" wb bd failed used limit
  start_nbdkit "$sock" memory 64M
  add_device "$id" -t zram --size 32M --mem-limit 4M --backing "nbd:unix:$sock" -q 2
  # 24 MiB: half zero pages, half random (12 MiB stored raw, 3x the limit).
  fio_fill "$dev" 24M
  wait_for_stat "$id" bd_writes -gt 0 10
  wb=$(stat_value "$id" written_back_pages)
  bd=$(stat_value "$id" bd_writes)
  failed=$(stat_value "$id" failed_writes)
  used=$(stat_value "$id" mem_used_total)
  limit=$(stat_value "$id" mem_limit)
  vm_log "written back $wb pages, bd_writes $bd; mem_used_total $used of $limit; failed_writes $failed"
  vm_assert_eq 0 "$failed" "failed_writes"
  vm_assert_eq active "$(stat_text "$id" tier_state)" "tier_state"
  [ "$wb" -gt 1024 ] || vm_fail "only $wb pages were written back"
  echo 3 > /proc/sys/vm/drop_caches
  fio_fill "$dev" 24M --verify_only
  wait_for_stat "$id" bd_reads -gt 0 10
}

# The server is killed for good: reads of written-back pages fail with EIO
# after the reconnect timeout, never with other data; the tier shows
# failed; the server lives and coblk del works.
server_killed_for_good() {
  vm_ublk_ready fio nbdkit
  local id=$((base_id + 1)) dev="/dev/ublkb$((base_id + 1))" sock="$t/nbd-tier-gone.sock" rc=0 pid t0 t1
  # The server's log, shown if the case fails.
  servers_log_to "$t/nbd-tier-messages"
  start_nbdkit "$sock" memory 64M
  add_device "$id" -t zram --size 32M --mem-limit 4M --backing "nbd:unix:$sock" --reconnect-timeout 2s
  pid=$(server_pid "$id")
  fio_fill "$dev" 16M
  wait_for_stat "$id" written_back_pages -gt 512 10
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true
  rm -f "$sock"
  echo 3 > /proc/sys/vm/drop_caches
  t0=$(cut -d' ' -f1 /proc/uptime)
  fio --name=tier --filename="$dev" --ioengine=psync --direct=1 --rw=write --bs=64k --size=16M \
      --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_only --continue_on_error=read \
      --output-format=normal >"$t/nbd-tier-fail.log" 2>&1 || rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  vm_log "fio verify with the server gone: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s; $(grep -c -i 'input/output error' "$t/nbd-tier-fail.log") I/O errors"
  grep -qi "input/output error" "$t/nbd-tier-fail.log" \
    || { tail -n 20 "$t/nbd-tier-fail.log" >&2; vm_fail "no I/O error with the tier's server gone"; }
  if grep -qi "verify: bad\|bad magic\|crc32c: verify failed" "$t/nbd-tier-fail.log"; then
    tail -n 20 "$t/nbd-tier-fail.log" >&2
    vm_fail "a read with the tier's server gone returned wrong data"
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 120) }' || vm_fail "reads with the server gone took too long"
  wait_for_stat "$id" backing_read_errors -gt 0 10
  # The statistics are a snapshot published every few hundred ms; the tier
  # is marked failed by the read that gave up, so it shows failed by the
  # next snapshot at the latest.
  wait_for_stat_text "$id" tier_state failed 5
  running "$pid" || vm_fail "the server died when its NBD tier went away"
  t0=$(cut -d' ' -f1 /proc/uptime)
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed with the tier's server gone"
  t1=$(cut -d' ' -f1 /proc/uptime)
  vm_log "coblk del took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
  [ ! -e "$dev" ] || vm_fail "$dev is still there after coblk del"
}

# qemu-nbd with its default --shared=1 accepts one client at a time and
# offers no multi-conn: both queues' tier I/O goes over queue 0's one
# connection.
qemu_nbd_one_connection() {
  vm_ublk_ready fio qemu-nbd
  local id=$((base_id + 2)) dev="/dev/ublkb$((base_id + 2))" sock="$t/nbd-tier-qemu.sock" img="$t/nbd-tier-qemu.img" wb
  rm -f "$sock" "$img"
  truncate -s 64M "$img" || vm_fail "cannot create $img"
  vm_defer "rm -f $img"
  vm_spawn "$t/qemu-nbd-tier.log" qemu-nbd -f raw -x tier -k "$sock" --persistent "$img"
  vm_wait_for_path "$sock" 20
  add_device "$id" -t zram --size 32M --mem-limit 4M --backing "nbd:unix:$sock" --export tier -q 2
  fio_fill "$dev" 24M
  wait_for_stat "$id" bd_writes -gt 0 10
  wb=$(stat_value "$id" written_back_pages)
  vm_log "qemu-nbd tier: written back $wb pages"
  [ "$wb" -gt 1024 ] || vm_fail "only $wb pages were written back"
  vm_assert_eq 0 "$(stat_value "$id" failed_writes)" "failed_writes"
  echo 3 > /proc/sys/vm/drop_caches
  fio_fill "$dev" 24M --verify_only
  vm_assert_eq active "$(stat_text "$id" tier_state)" "tier_state"
}

# The server stops answering but keeps its connections (SIGSTOP): the
# request timeout drops them, and after the reconnect timeout the requests
# fail with EIO: a read never hangs. For -t nbd, and for the zram tier.
server_stops_answering() {
  vm_ublk_ready fio nbdkit
  local id=$((base_id + 3)) sock="$t/nbd-tier-stop.sock" rc=0 t0 t1 secs
  start_nbdkit "$sock" memory 64M
  # -t nbd: a plain read.
  add_device "$id" -t nbd --connect "unix:$sock" --request-timeout 1s --reconnect-timeout 2s
  dd if=/dev/urandom of="/dev/ublkb$id" bs=64k count=4 oflag=direct 2>/dev/null || vm_fail "writing /dev/ublkb$id failed"
  kill -STOP "$NBDKIT_PID"
  vm_defer "kill -CONT $NBDKIT_PID 2>/dev/null"
  t0=$(cut -d' ' -f1 /proc/uptime)
  dd if="/dev/ublkb$id" of=/dev/null bs=4k count=1 iflag=direct 2>"$t/nbd-stop.err" || rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  vm_log "-t nbd read from a stopped server: exit $rc after $secs s: $(cat "$t/nbd-stop.err")"
  [ "$rc" -ne 0 ] || vm_fail "a read succeeded from a stopped server"
  awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s < 30) }' || vm_fail "the read failed after $secs s, not after about 1 s + 2 s"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed with the server stopped"
  # The zram tier: pages written back, then the server stops.
  kill -CONT "$NBDKIT_PID"
  add_device "$id" -t zram --size 32M --mem-limit 4M --backing "nbd:unix:$sock" --request-timeout 1s --reconnect-timeout 2s
  fio_fill "/dev/ublkb$id" 16M
  wait_for_stat "$id" written_back_pages -gt 512 10
  kill -STOP "$NBDKIT_PID"
  echo 3 > /proc/sys/vm/drop_caches
  rc=0
  t0=$(cut -d' ' -f1 /proc/uptime)
  fio --name=tier --filename="/dev/ublkb$id" --ioengine=psync --direct=1 --rw=write --bs=64k --size=16M \
      --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_only --continue_on_error=read \
      --output-format=normal >"$t/nbd-tier-stop.log" 2>&1 || rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  vm_log "zram tier verify with the server stopped: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
  grep -qi "input/output error" "$t/nbd-tier-stop.log" \
    || { tail -n 20 "$t/nbd-tier-stop.log" >&2; vm_fail "no I/O error with the tier's server stopped"; }
  if grep -qi "verify: bad\|bad magic\|crc32c: verify failed" "$t/nbd-tier-stop.log"; then
    tail -n 20 "$t/nbd-tier-stop.log" >&2
    vm_fail "a read with the tier's server stopped returned wrong data"
  fi
  # A snapshot published every few hundred ms (as above).
  wait_for_stat_text "$id" tier_state failed 5
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed with the tier's server stopped"
}

bad_nbd_tiers() {
  vm_ublk_ready nbdkit
  local sock="$t/nbd-tier-small.sock"
  expect_refusal 1 "nbd-tier-none.sock" "$COBLK_BIN" add -n "$base_id" -t zram --size 16M --backing "nbd:unix:$t/nbd-tier-none.sock"
  expect_refusal 2 "expected nbd:unix:PATH" "$COBLK_BIN" add -n "$base_id" -t zram --size 16M --backing "nbd:udp:x"
  start_nbdkit "$sock" memory 128K
  expect_refusal 1 "at least 256 KiB" "$COBLK_BIN" add -n "$base_id" -t zram --size 16M --backing "nbd:unix:$sock"
  expect_refusal 2 "only valid with -t nbd or --backing nbd" "$COBLK_BIN" add -n "$base_id" -t zram --size 16M --export x
}

vm_case "a zram device with a 4 MiB limit and an nbdkit memory export as its tier (2 queues) holds 3x that: fio verifies, the stats show written-back pages and bd_writes" holds_three_times_its_limit
vm_case "the tier's NBD server killed for good: written-back pages read as I/O errors after --reconnect-timeout, never wrong data; tier_state failed; coblk del works" server_killed_for_good
vm_case "qemu-nbd (one client, no multi-conn) as the tier of a 2-queue zram device: both queues share one connection, fio verifies" qemu_nbd_one_connection
vm_case "a server that stops answering (SIGSTOP) is dropped by --request-timeout: an nbd device's read and the zram tier's written-back reads fail with EIO after --reconnect-timeout, never hang; del works" server_stops_answering
vm_case "bad NBD tiers are refused with one line: no server, bad syntax, too small, --export without an NBD tier (nbdkit serves any export name: an unknown export is refused in process)" bad_nbd_tiers
vm_finish
