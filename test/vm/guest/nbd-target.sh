#!/bin/sh
# nbd-target.sh: coblk add -t nbd against real NBD servers in the guest:
# nbdkit (memory plugin, and file plugin on tmpfs) over a unix socket and
# loopback TCP, and qemu-nbd. fio crc32c verification at 1 and 2 queues;
# ext4 across a remount and a new device; discard then zeros; a server
# killed mid-fio and restarted within --reconnect-timeout (fio completes
# and verifies); a restart while the server held acknowledged writes no
# flush covered fails every later fsync with EIO; a server killed for good
# (EIO after the timeout, and
# coblk del still works); and the bad-input refusals (one line, non-zero
# exit, no device left behind).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
nbd_id=200

# ---- helpers ---------------------------------------------------------------

# refused NEEDLE COMMAND...: COMMAND exits 1 with exactly one line on
# stderr, which contains NEEDLE, and leaves no device $nbd_id behind.
refused() {
  local needle="$1" rc=0 t="${TMPDIR:-/tmp}"
  shift
  "$@" >"$t/nbd.out" 2>"$t/nbd.err" || rc=$?
  echo "coblk-vm: '$*' exit $rc, stderr: $(cat "$t/nbd.err")"
  vm_assert_eq 1 "$rc" "exit status of '$*'"
  vm_assert_eq 1 "$(wc -l <"$t/nbd.err")" "stderr lines of '$*'"
  grep -qF -e "$needle" "$t/nbd.err" || vm_fail "stderr of '$*' lacks '$needle': $(cat "$t/nbd.err")"
  [ ! -e "/dev/ublkb$nbd_id" ] || vm_fail "a refused add left /dev/ublkb$nbd_id behind"
  [ ! -e "/dev/ublkc$nbd_id" ] || vm_fail "a refused add left /dev/ublkc$nbd_id behind"
}

# ---- data ------------------------------------------------------------------

nbdkit_memory_unix_passes_fio_verify() {
  local queues="$1" sock="${TMPDIR:-/tmp}/nbdkit-mem.sock" id="$nbd_id"
  nbd_ready
  start_nbdkit "$sock" memory 64M
  add_device "$id" -t nbd --connect "unix:$sock" -q "$queues"
  vm_assert_eq 67108864 "$(blockdev --getsize64 "/dev/ublkb$id")" "size of the nbd device"
  fio_verify_striped "/dev/ublkb$id" "$queues" 16M 4k-256k
}

qemu_nbd_tcp_passes_fio_verify() {
  local queues="$1" img="${TMPDIR:-/tmp}/qemu-nbd.img" id="$nbd_id" port=10811
  nbd_ready qemu-nbd
  dd if=/dev/zero of="$img" bs=1M count=0 seek=64 2>/dev/null
  vm_defer "rm -f $img"
  vm_spawn "${TMPDIR:-/tmp}/qemu-nbd.log" qemu-nbd -f raw -x disk -b 127.0.0.1 -p "$port" --persistent \
    --shared=8 --cache=writeback --discard=unmap "$img"
  wait_for_port "$port"
  add_device "$id" -t nbd --connect "tcp:127.0.0.1:$port" --export disk -q "$queues"
  fio_verify_striped "/dev/ublkb$id" "$queues" 16M 4k-256k
}

ext4_survives_a_remount_and_a_new_device() {
  local sock="${TMPDIR:-/tmp}/nbdkit-ext4.sock" id="$nbd_id" mnt="${TMPDIR:-/tmp}/nbd-mnt" sum
  nbd_ready mkfs.ext4 e2fsck
  start_nbdkit "$sock" memory 128M
  add_device "$id" -t nbd --connect "unix:$sock" -q 2
  mkfs.ext4 -q -F "/dev/ublkb$id"
  mkdir -p "$mnt"
  mount -t ext4 "/dev/ublkb$id" "$mnt"
  vm_defer "umount $mnt 2>/dev/null || true"
  dd if=/dev/urandom of="$mnt/data" bs=1M count=8 2>/dev/null
  sum=$(sha256sum <"$mnt/data")
  sync
  umount "$mnt"
  mount -t ext4 "/dev/ublkb$id" "$mnt"
  vm_assert_eq "$sum" "$(sha256sum <"$mnt/data")" "checksum after a remount"
  umount "$mnt"
  # A new device on the same export sees the same file system.
  "$COBLK_BIN" del -n "$id"
  add_device "$id" -t nbd --connect "unix:$sock"
  e2fsck -fn "/dev/ublkb$id" >/dev/null || vm_fail "e2fsck found errors on the re-added device"
  mount -t ext4 "/dev/ublkb$id" "$mnt"
  vm_assert_eq "$sum" "$(sha256sum <"$mnt/data")" "checksum on a new device"
  umount "$mnt"
}

discard_then_reads_zeros() {
  local sock="${TMPDIR:-/tmp}/nbdkit-trim.sock" id="$nbd_id" t="${TMPDIR:-/tmp}"
  nbd_ready
  start_nbdkit "$sock" memory 16M
  add_device "$id" -t nbd --connect "unix:$sock"
  vm_assert_eq 1 "$([ "$(cat "/sys/block/ublkb$id/queue/discard_max_bytes")" -gt 0 ] && echo 1)" \
    "the device offers discard (nbdkit's memory plugin trims)"
  dd if=/dev/urandom of="/dev/ublkb$id" bs=1M count=4 oflag=direct 2>/dev/null
  dd if=/dev/zero of="$t/zeros" bs=1M count=4 2>/dev/null
  dd if="/dev/ublkb$id" of="$t/before" bs=1M count=4 iflag=direct 2>/dev/null
  cmp -s "$t/zeros" "$t/before" && vm_fail "the device read zeros before the discard"
  blkdiscard -o 0 -l 4194304 "/dev/ublkb$id"
  dd if="/dev/ublkb$id" of="$t/back" bs=1M count=4 iflag=direct 2>/dev/null
  cmp "$t/zeros" "$t/back" || vm_fail "a discarded range does not read as zeros"
}

# ---- failures --------------------------------------------------------------

server_killed_mid_fio_and_restarted_in_time() {
  local port=10812 img="${TMPDIR:-/tmp}/nbdkit-file.img" id="$nbd_id" log="${TMPDIR:-/tmp}/fio-restart.log"
  nbd_ready
  # The file plugin on tmpfs: what the server acknowledged outlives it.
  dd if=/dev/zero of="$img" bs=1M count=0 seek=64 2>/dev/null
  vm_defer "rm -f $img"
  start_nbdkit "$port" file "$img"
  add_device "$id" -t nbd --connect "tcp:127.0.0.1:$port" -q 2 --reconnect-timeout 60s
  verifying_fio_under_way "/dev/ublkb$id" 4k-64k "$log"
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true
  vm_log "nbdkit killed with fio running; restarting it in 2 s"
  sleep 2
  start_nbdkit "$port" file "$img"
  fio_bg_succeeded "$log" "the server restart"
}

# nbdkit's file plugin has a write cache as far as the client can tell
# (NBD_FLAG_SEND_FLUSH). A server restart after flushed writes loses
# nothing, and an fsync afterwards succeeds; a restart while it holds
# acknowledged writes no flush covered may have lost them, so the next
# fsync (a FLUSH) fails with EIO, and so does every later one; the
# server's log says why.
restart_with_unflushed_writes_fails_the_next_fsync() {
  local port=10813 img t="${TMPDIR:-/tmp}" id="$nbd_id" rc=0
  img="$t/nbdkit-flush.img"
  nbd_ready dd
  servers_log_to "$t/nbd-messages"
  dd if=/dev/zero of="$img" bs=1M count=0 seek=16 2>/dev/null
  vm_defer "rm -f $img"
  start_nbdkit "$port" file "$img"
  add_device "$id" -t nbd --connect "tcp:127.0.0.1:$port" --reconnect-timeout 30s
  vm_assert_eq "write back" "$(cat "/sys/block/ublkb$id/queue/write_cache")" "write_cache of the nbd device"
  dd if=/dev/urandom of="$t/nbd-flush-pattern" bs=64k count=4 2>/dev/null
  restart_nbdkit() {
    kill -KILL "$NBDKIT_PID"
    wait "$NBDKIT_PID" 2>/dev/null || true
    start_nbdkit "$port" file "$img"
  }
  # Flushed, then restarted: nothing was at risk.
  dd if="$t/nbd-flush-pattern" of="/dev/ublkb$id" bs=64k oflag=direct conv=fsync 2>/dev/null \
    || vm_fail "a write with fsync failed on a live server"
  restart_nbdkit
  dd if="$t/nbd-flush-pattern" of="/dev/ublkb$id" bs=64k seek=4 oflag=direct conv=fsync 2>"$t/dd.err" \
    || vm_fail "an fsync after a restart that lost nothing failed: $(cat "$t/dd.err")"
  # Acknowledged, not flushed, then restarted.
  dd if="$t/nbd-flush-pattern" of="/dev/ublkb$id" bs=64k seek=8 oflag=direct 2>/dev/null \
    || vm_fail "a write failed on a live server"
  restart_nbdkit
  dd if="$t/nbd-flush-pattern" of="/dev/ublkb$id" bs=64k seek=12 oflag=direct conv=fsync 2>"$t/dd.err" || rc=$?
  vm_log "write and fsync after a restart with unflushed writes: exit $rc: $(cat "$t/dd.err")"
  [ "$rc" -ne 0 ] || vm_fail "fsync succeeded although the restarted server may have lost acknowledged writes"
  grep -qi "error" "$t/dd.err" || vm_fail "the failed fsync did not report an I/O error"
  rc=0
  dd if=/dev/null of="/dev/ublkb$id" conv=fsync,notrunc 2>/dev/null || rc=$?
  [ "$rc" -ne 0 ] || vm_fail "a later fsync succeeded"
  # Reads still work: the device serves on, only FLUSH says what may be lost.
  dd if="/dev/ublkb$id" bs=64k count=4 iflag=direct 2>/dev/null | cmp - "$t/nbd-flush-pattern" \
    || vm_fail "the flushed data does not read back"
  if [ -f "$t/nbd-messages" ]; then
    grep -q "acknowledged writes it had not flushed" "$t/nbd-messages" \
      || { tail -n 20 "$t/nbd-messages" >&2; vm_fail "the server's log does not say why FLUSH fails"; }
  fi
}

server_killed_for_good_fails_with_eio_and_del_works() {
  local sock="${TMPDIR:-/tmp}/nbdkit-gone.sock" id="$nbd_id" t0 t1 rc=0
  nbd_ready
  start_nbdkit "$sock" memory 16M
  add_device "$id" -t nbd --connect "unix:$sock" --reconnect-timeout 3s
  dd if=/dev/urandom of="/dev/ublkb$id" bs=64k count=4 oflag=direct 2>/dev/null
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true
  rm -f "$sock"
  t0=$(cut -d' ' -f1 /proc/uptime)
  dd if="/dev/ublkb$id" of=/dev/null bs=4k count=1 iflag=direct 2>"${TMPDIR:-/tmp}/dd.err" || rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  vm_log "read after the server died: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s: $(cat "${TMPDIR:-/tmp}/dd.err")"
  [ "$rc" -ne 0 ] || vm_fail "a read succeeded with the server gone"
  grep -qi "error" "${TMPDIR:-/tmp}/dd.err" || vm_fail "the failed read did not report an I/O error"
  awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 2.5 && b - a < 60) }' \
    || vm_fail "the read failed after $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s, not after the 3 s timeout"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed with the server gone"
  [ ! -e "/dev/ublkb$id" ] || vm_fail "/dev/ublkb$id is still there after coblk del"
}

del_while_requests_wait_for_a_reconnection() {
  local sock="${TMPDIR:-/tmp}/nbdkit-del.sock" id="$nbd_id" t="${TMPDIR:-/tmp}" dd_pid t0 t1
  nbd_ready
  start_nbdkit "$sock" memory 16M
  add_device "$id" -t nbd --connect "unix:$sock" --reconnect-timeout 8s
  # The kernel scans the new disk's partitions in the background, holding
  # the disk's open mutex: a read now waits for that scan, so that dd's
  # open, below, does not wait behind a scan stuck on the dead server
  # until coblk del, and then read nothing from a disk that has gone.
  dd if="/dev/ublkb$id" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null ||
    vm_fail "a read with the server up failed"
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true
  rm -f "$sock"
  dd if="/dev/ublkb$id" of=/dev/null bs=4k count=1 iflag=direct 2>"$t/dd-del.err" &
  dd_pid=$!
  sleep 1
  t0=$(cut -d' ' -f1 /proc/uptime)
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed while a request waited for a reconnection"
  t1=$(cut -d' ' -f1 /proc/uptime)
  vm_log "coblk del with a request waiting took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
  awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 9) }' || vm_fail "coblk del waited longer than the reconnect timeout"
  wait_for_exit "$dd_pid" 10
  vm_log "the waiting read: exit $EXIT_RC: $(tr '\n' ' ' <"$t/dd-del.err")"
  # Never data from a server that is gone: an error, or (had the read not
  # reached the disk before it went) nothing read at all.
  ! grep -q "^[1-9][0-9]*+[0-9]* records in" "$t/dd-del.err" ||
    vm_fail "the waiting read returned data with the server gone"
  [ "$EXIT_RC" -ne 0 ] || grep -q "^0+0 records in" "$t/dd-del.err" ||
    vm_fail "the waiting read succeeded with the server gone"
  [ ! -e "/dev/ublkb$id" ] || vm_fail "/dev/ublkb$id is still there after coblk del"
}

# --recovery: the device outlives its coblk server; coblk recover connects
# again and serves the same export, with everything written before.
recovery_survives_a_killed_coblk_server() {
  local sock="${TMPDIR:-/tmp}/nbdkit-rec.sock" id="$nbd_id" t="${TMPDIR:-/tmp}" pid1 pid2 sum
  nbd_ready
  start_nbdkit "$sock" memory 16M
  add_device "$id" -t nbd --connect "unix:$sock" --recovery
  pid1=$(server_pid "$id")
  dd if=/dev/urandom of="$t/rec.data" bs=1M count=4 2>/dev/null
  dd if="$t/rec.data" of="/dev/ublkb$id" bs=1M oflag=direct 2>/dev/null
  sum=$(sha256sum <"$t/rec.data")
  kill -KILL "$pid1"
  wait_until_gone "$pid1" 20 || vm_fail "the server ($pid1) survived SIGKILL for 20 s"
  [ -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "device $id vanished although it was added with --recovery"
  timeout 60 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "coblk recover -n $id failed"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after coblk recover"
  pid2=$(server_pid "$id")
  [ "$pid2" != "$pid1" ] || vm_fail "coblk list still shows the dead server's pid"
  vm_assert_eq "$sum" "$(dd if="/dev/ublkb$id" bs=1M count=4 iflag=direct 2>/dev/null | sha256sum)" \
    "data read back after coblk recover"
}

refusals_are_one_line_and_create_nothing() {
  local t="${TMPDIR:-/tmp}" id="$nbd_id" sock="${TMPDIR:-/tmp}/nbdkit-odd.sock" qsock="${TMPDIR:-/tmp}/qemu-x.sock"
  nbd_ready
  vm_defer "$COBLK_BIN del --force -n $id 2>/dev/null || true"
  refused "cannot connect to NBD server 'unix:$t/nobody.sock'" \
    "$COBLK_BIN" add -n "$id" -t nbd --connect "unix:$t/nobody.sock"
  refused "cannot connect to NBD server 'tcp:127.0.0.1:1'" \
    "$COBLK_BIN" add -n "$id" -t nbd --connect "tcp:127.0.0.1:1"
  # 1000000 bytes: not a multiple of 512.
  start_nbdkit "$sock" memory 1000000
  refused "is not a multiple of the 512-byte block size" \
    "$COBLK_BIN" add -n "$id" -t nbd --connect "unix:$sock"
  if command -v qemu-nbd >/dev/null 2>&1; then
    dd if=/dev/zero of="$t/x.img" bs=1M count=0 seek=4 2>/dev/null
    vm_defer "rm -f $t/x.img"
    vm_spawn "$t/qemu-x.log" qemu-nbd -f raw -x right -k "$qsock" --persistent "$t/x.img"
    vm_wait_for_path "$qsock" 20
    refused "the NBD server has no export 'wrong'" \
      "$COBLK_BIN" add -n "$id" -t nbd --connect "unix:$qsock" --export wrong
  fi
}

vm_case "nbdkit memory over a unix socket passes fio crc32c verification at 1 queue" \
  nbdkit_memory_unix_passes_fio_verify 1
vm_case "nbdkit memory over a unix socket passes fio crc32c verification at 2 queues" \
  nbdkit_memory_unix_passes_fio_verify 2
vm_case "qemu-nbd over loopback TCP passes fio crc32c verification at 2 queues" qemu_nbd_tcp_passes_fio_verify 2
vm_case "ext4 on an nbd device survives a remount and a new device on the same export" \
  ext4_survives_a_remount_and_a_new_device
vm_case "a discarded range of an nbd device reads as zeros" discard_then_reads_zeros
vm_case "nbdkit killed mid-fio and restarted within --reconnect-timeout: fio completes and verifies" \
  server_killed_mid_fio_and_restarted_in_time
vm_case "nbdkit restarted while holding acknowledged, unflushed writes: the next fsync and every later one fail with EIO; after flushed writes it succeeds" \
  restart_with_unflushed_writes_fails_the_next_fsync
vm_case "nbdkit killed for good: reads fail with EIO after --reconnect-timeout, and coblk del works" \
  server_killed_for_good_fails_with_eio_and_del_works
vm_case "coblk del while a request waits for a reconnection returns within the reconnect timeout" \
  del_while_requests_wait_for_a_reconnection
vm_case "an nbd device added with --recovery survives a killed coblk server and coblk recover serves its data" \
  recovery_survives_a_killed_coblk_server
vm_case "coblk add -t nbd refuses unreachable servers, unknown exports, odd sizes in one line, creating nothing" \
  refusals_are_one_line_and_create_nothing
vm_finish
