#!/bin/sh
# nbd-zero-copy.sh: coblk add -t nbd --zero-copy, where read replies are
# received from the socket straight into the request's pages
# (IORING_OP_READ_FIXED on a ublk auto-registered buffer) and write
# payloads sent from them (IORING_OP_WRITE_FIXED): fio crc32c verification
# at 1 and 2 queues with requests up to 1 MiB, qemu-nbd over TCP (never
# written ranges read as zeros), a server killed mid-fio and restarted
# (requests re-sent into the same pages), and the request size: with zero
# copy one 1 MiB direct read is one ublk request (the copy path keeps
# 512 KiB tag buffers); the kernel's nbd client's limits are logged. And
# with --recovery: the coblk server killed mid-fio and recovered.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
zc_id=210
copy_id=211

zc_ready() {
  nbd_ready "$@"
  "$COBLK_BIN" features 2>/dev/null | grep -q AUTO_BUF_REG || vm_skip "the kernel lacks ublk AUTO_BUF_REG"
}

# reads_of DEV: read requests the block layer completed on DEV.
reads_of() { awk '{ print $1 }' "/sys/block/$1/stat"; }

zero_copy_nbdkit_passes_fio_verify() {
  local queues="$1" sock="${TMPDIR:-/tmp}/nbdkit-zc.sock" id="$zc_id"
  zc_ready
  start_nbdkit "$sock" memory 64M
  add_device "$id" -t nbd --connect "unix:$sock" -q "$queues" --zero-copy
  vm_assert_eq zero_copy "$(list_field "$id" DATA_PATH)" "data path of device $id"
  fio_verify_striped "/dev/ublkb$id" "$queues" 16M 4k-1m
}

zero_copy_qemu_nbd_tcp_reads_zeros_and_verifies() {
  local img="${TMPDIR:-/tmp}/qemu-zc.img" id="$zc_id" port=10821 t="${TMPDIR:-/tmp}"
  zc_ready qemu-nbd
  dd if=/dev/zero of="$img" bs=1M count=0 seek=64 2>/dev/null
  vm_defer "rm -f $img"
  vm_spawn "$t/qemu-zc.log" qemu-nbd -f raw -x disk -b 127.0.0.1 -p "$port" --persistent \
    --shared=8 --cache=writeback "$img"
  wait_for_port "$port"
  add_device "$id" -t nbd --connect "tcp:127.0.0.1:$port" --export disk -q 2 --zero-copy
  # A sparse image: qemu-nbd would answer these with hole chunks under
  # structured replies; a zero-copy connection takes simple replies.
  dd if=/dev/zero of="$t/zeros" bs=1M count=4 2>/dev/null
  dd if="/dev/ublkb$id" of="$t/zc-back" bs=1M count=4 skip=40 iflag=direct 2>/dev/null
  cmp "$t/zeros" "$t/zc-back" || vm_fail "a never written range of the zero-copy device does not read as zeros"
  fio_verify_striped "/dev/ublkb$id" 2 16M 4k-1m
}

zero_copy_server_killed_mid_fio_and_restarted() {
  local port=10822 img="${TMPDIR:-/tmp}/nbdkit-zc-file.img" id="$zc_id" log="${TMPDIR:-/tmp}/fio-zc-restart.log"
  zc_ready
  dd if=/dev/zero of="$img" bs=1M count=0 seek=64 2>/dev/null
  vm_defer "rm -f $img"
  vm_spawn "${TMPDIR:-/tmp}/nbdkit-zc-file.log" nbdkit -f -i 127.0.0.1 -p "$port" file "$img"
  NBDKIT_PID=$VM_SPAWNED_PID
  wait_for_port "$port"
  add_device "$id" -t nbd --connect "tcp:127.0.0.1:$port" -q 2 --reconnect-timeout 60s --zero-copy
  verifying_fio_under_way "/dev/ublkb$id" 4k-1m "$log"
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true
  vm_log "nbdkit killed with fio running; restarting it in 2 s"
  sleep 2
  vm_spawn "${TMPDIR:-/tmp}/nbdkit-zc-file2.log" nbdkit -f -i 127.0.0.1 -p "$port" file "$img"
  wait_for_port "$port"
  fio_bg_succeeded "$log" "the server restart"
}

# --zero-copy with --recovery: the coblk server killed with -9 in the
# middle of a verifying fio; coblk recover serves the device again on the
# zero-copy path, the kernel re-sends the requests the dead server had
# taken (USER_RECOVERY_REISSUE) into their re-registered pages, and fio
# completes and verifies. The data written before the kill reads back.
zero_copy_recovers_from_a_killed_coblk_server() {
  local sock="${TMPDIR:-/tmp}/nbdkit-zc-rec.sock" id="$zc_id" t="${TMPDIR:-/tmp}" log="${TMPDIR:-/tmp}/fio-zc-rec.log"
  local pid1 pid2 sum
  zc_ready
  "$COBLK_BIN" features 2>/dev/null | grep -q USER_RECOVERY_REISSUE || vm_skip "the kernel lacks ublk USER_RECOVERY_REISSUE"
  start_nbdkit "$sock" memory 64M
  add_device "$id" -t nbd --connect "unix:$sock" -q 2 --zero-copy --recovery
  pid1=$(server_pid "$id")
  dd if=/dev/urandom of="$t/zc-rec.data" bs=1M count=4 2>/dev/null
  dd if="$t/zc-rec.data" of="/dev/ublkb$id" bs=1M seek=40 oflag=direct 2>/dev/null
  sum=$(sha256sum <"$t/zc-rec.data")
  verifying_fio_under_way "/dev/ublkb$id" 4k-1m "$log"
  kill -KILL "$pid1"
  wait_until_gone "$pid1" 20 || vm_fail "the server ($pid1) survived SIGKILL for 20 s"
  timeout 60 "$COBLK_BIN" recover -n "$id" >/dev/null || vm_fail "coblk recover -n $id failed"
  vm_assert_eq live "$(list_field "$id" STATE)" "state after coblk recover"
  vm_assert_eq zero_copy "$(list_field "$id" DATA_PATH)" "data path after coblk recover"
  pid2=$(server_pid "$id")
  [ "$pid2" != "$pid1" ] || vm_fail "coblk list still shows the dead server's pid"
  fio_bg_succeeded "$log" "coblk's kill and recovery"
  vm_assert_eq "$sum" "$(dd if="/dev/ublkb$id" bs=1M skip=40 count=4 iflag=direct 2>/dev/null | sha256sum)" \
    "data written before the kill, read back after coblk recover"
}

# One 1 MiB direct read is one block request on the zero-copy device
# (max_sectors_kb 1024; the copy path's stays 512). The kernel's nbd
# client's limits and request count are logged beside (when nbd.ko is there).
one_mib_read_is_one_request() {
  local sock="${TMPDIR:-/tmp}/nbdkit-size.sock" dev before after
  zc_ready
  start_nbdkit "$sock" memory 64M
  add_device "$zc_id" -t nbd --connect "unix:$sock" --block-size 4096 --zero-copy
  add_device "$copy_id" -t nbd --connect "unix:$sock" --block-size 4096
  for dev in "ublkb$zc_id" "ublkb$copy_id"; do
    vm_log "$dev: max_sectors_kb $(cat /sys/block/$dev/queue/max_sectors_kb)," \
      "max_hw_sectors_kb $(cat /sys/block/$dev/queue/max_hw_sectors_kb), read_ahead_kb $(cat /sys/block/$dev/queue/read_ahead_kb)"
    before=$(reads_of "$dev")
    dd if="/dev/$dev" of=/dev/null bs=1M count=1 iflag=direct 2>/dev/null || vm_fail "a 1 MiB read of /dev/$dev failed"
    after=$(reads_of "$dev")
    vm_log "$dev: $((after - before)) block request(s) for one 1 MiB direct read"
  done
  vm_assert_eq 1024 "$(cat /sys/block/ublkb$zc_id/queue/max_sectors_kb)" "max_sectors_kb of the zero-copy device"
  vm_assert_eq 512 "$(cat /sys/block/ublkb$copy_id/queue/max_sectors_kb)" "max_sectors_kb of the copy device"
  before=$(reads_of "ublkb$zc_id")
  dd if="/dev/ublkb$zc_id" of=/dev/null bs=1M count=1 iflag=direct 2>/dev/null
  vm_assert_eq 1 "$(($(reads_of "ublkb$zc_id") - before))" "block requests for one 1 MiB direct read, zero copy"
  # The kernel's client, for the log only (the benchmark's baseline).
  if command -v nbd-client >/dev/null 2>&1 && { vm_module_loaded nbd || [ -f "${COBLK_VM_MODULES:-/none}/nbd.ko" ]; }; then
    vm_load_module nbd nbds_max=1
    if nbd-client -unix "$sock" /dev/nbd0 -b 4096 >/dev/null 2>&1; then
      vm_defer "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
      vm_wait_for_path /sys/block/nbd0/pid 10
      vm_log "nbd0 (kernel client): max_sectors_kb $(cat /sys/block/nbd0/queue/max_sectors_kb)," \
        "max_hw_sectors_kb $(cat /sys/block/nbd0/queue/max_hw_sectors_kb), read_ahead_kb $(cat /sys/block/nbd0/queue/read_ahead_kb)"
      before=$(reads_of nbd0)
      dd if=/dev/nbd0 of=/dev/null bs=1M count=1 iflag=direct 2>/dev/null
      vm_log "nbd0: $(($(reads_of nbd0) - before)) block request(s) for one 1 MiB direct read"
    fi
  fi
}

vm_case "nbd --zero-copy on nbdkit memory passes fio crc32c verification (4 KiB to 1 MiB) at 1 queue" \
  zero_copy_nbdkit_passes_fio_verify 1
vm_case "nbd --zero-copy on nbdkit memory passes fio crc32c verification (4 KiB to 1 MiB) at 2 queues" \
  zero_copy_nbdkit_passes_fio_verify 2
vm_case "nbd --zero-copy on qemu-nbd over TCP reads a sparse range as zeros and passes fio verification" \
  zero_copy_qemu_nbd_tcp_reads_zeros_and_verifies
vm_case "nbd --zero-copy: nbdkit killed mid-fio and restarted within --reconnect-timeout, fio completes and verifies" \
  zero_copy_server_killed_mid_fio_and_restarted
vm_case "nbd --zero-copy --recovery: the coblk server killed mid-fio, coblk recover serves it on the zero-copy path, fio completes and verifies" \
  zero_copy_recovers_from_a_killed_coblk_server
vm_case "one 1 MiB direct read of an nbd --zero-copy device is one block request (copy: 512 KiB requests)" \
  one_mib_read_is_one_request
vm_finish
