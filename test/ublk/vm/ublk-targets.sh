#!/bin/sh
# ublk-targets.sh: coblk's null, ram and loop devices on every data path.
# Run with test/vm/run-vm --coblk build/.../cmd/coblk test/ublk/vm/ublk-targets.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# fio verify on a device: random writes with crc32c, read back and checked.
verify_with_fio() {
  fio --name=v --filename="$1" --rw=randwrite --bs="${2:-4k}" --size="${3:-32M}" --iodepth=16 \
      --ioengine=io_uring --direct=1 --verify=crc32c --do_verify=1 --output-format=terse >/dev/null \
    || vm_fail "fio verify failed on $1"
}

ram_device() {
  vm_require_coblk
  vm_load_module ublk_drv
  "$COBLK_BIN" add -t ram --size 64M -n 0 $1
  vm_defer "$COBLK_BIN del -n 0"
  vm_wait_for_path /dev/ublkb0 10
  vm_assert_eq 67108864 "$(blockdev --getsize64 /dev/ublkb0)" "device size"
  verify_with_fio /dev/ublkb0 4k 32M
  verify_with_fio /dev/ublkb0 128k 32M
  "$COBLK_BIN" list
  "$COBLK_BIN" list | grep -q "ram" || vm_fail "list does not show the ram target"
}

data_survives_a_reopen() {
  vm_require_coblk
  vm_load_module ublk_drv
  "$COBLK_BIN" add -t ram --size 16M -n 1 -q 2
  vm_defer "$COBLK_BIN del -n 1"
  vm_wait_for_path /dev/ublkb1 10
  dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
  dd if=/tmp/pattern of=/dev/ublkb1 bs=1M seek=3 oflag=direct 2>/dev/null
  dd if=/dev/ublkb1 of=/tmp/back bs=1M skip=3 count=4 iflag=direct 2>/dev/null
  cmp /tmp/pattern /tmp/back || vm_fail "data read back differs"
}

null_device() {
  vm_require_coblk
  vm_load_module ublk_drv
  "$COBLK_BIN" add -t null -n 2 -d 64
  vm_defer "$COBLK_BIN del -n 2"
  vm_wait_for_path /dev/ublkb2 10
  fio --name=n --filename=/dev/ublkb2 --rw=randread --bs=4k --size=64M --iodepth=32 \
      --ioengine=io_uring --direct=1 --runtime=2 --time_based --output-format=terse >/dev/null \
    || vm_fail "fio on the null device failed"
}

loop_device() {
  vm_require_coblk
  vm_load_module ublk_drv
  dd if=/dev/zero of=/tmp/backing.img bs=1M count=64 2>/dev/null
  "$COBLK_BIN" add -t loop -f /tmp/backing.img -n 3 $1
  vm_defer "$COBLK_BIN del -n 3"
  vm_wait_for_path /dev/ublkb3 10
  verify_with_fio /dev/ublkb3 4k 32M
  dd if=/dev/urandom of=/tmp/pattern bs=1M count=2 2>/dev/null
  dd if=/tmp/pattern of=/dev/ublkb3 bs=1M seek=5 oflag=direct conv=fsync 2>/dev/null
  dd if=/tmp/backing.img of=/tmp/back bs=1M skip=5 count=2 2>/dev/null
  cmp /tmp/pattern /tmp/back || vm_fail "the backing file does not hold what was written"
}

del_removes_the_device() {
  vm_require_coblk
  vm_load_module ublk_drv
  "$COBLK_BIN" add -t null -n 4
  vm_wait_for_path /dev/ublkb4 10
  "$COBLK_BIN" del -n 4
  sleep 1
  [ ! -e /dev/ublkb4 ] || vm_fail "/dev/ublkb4 still exists"
  [ ! -e /dev/ublkc4 ] || vm_fail "/dev/ublkc4 still exists"
  if "$COBLK_BIN" add -t null -n 4 --foreground >/dev/null 2>&1 & then :; fi
  vm_wait_for_path /dev/ublkb4 10
  # The id is now taken: a second add must say so in one line.
  if "$COBLK_BIN" add -t null -n 4 2>/tmp/err; then vm_fail "a taken id was accepted"; fi
  cat /tmp/err
  grep -q "already in use" /tmp/err || vm_fail "wrong message for a taken id"
  kill -TERM %1 2>/dev/null || kill -TERM $! 
  wait || true
  sleep 1
  [ ! -e /dev/ublkc4 ] || vm_fail "SIGTERM did not delete device 4"
}

recover_a_killed_server() {
  vm_require_coblk
  vm_load_module ublk_drv
  dd if=/dev/zero of=/tmp/backing.img bs=1M count=32 2>/dev/null
  "$COBLK_BIN" add -t loop -f /tmp/backing.img -n 5 --recovery
  vm_defer "$COBLK_BIN del -n 5"
  vm_wait_for_path /dev/ublkb5 10
  dd if=/dev/urandom of=/tmp/pattern bs=1M count=2 2>/dev/null
  dd if=/tmp/pattern of=/dev/ublkb5 bs=1M seek=1 oflag=direct 2>/dev/null
  pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/' /run/coblk/5.json)
  kill -KILL "$pid"
  sleep 1
  "$COBLK_BIN" list -n 5 | grep -q quiesced || vm_fail "device 5 is not quiesced after its server died"
  "$COBLK_BIN" recover -n 5
  "$COBLK_BIN" list -n 5 | grep -q live || vm_fail "device 5 is not live after recovery"
  dd if=/dev/ublkb5 of=/tmp/back bs=1M skip=1 count=2 iflag=direct 2>/dev/null
  cmp /tmp/pattern /tmp/back || vm_fail "data differs after recovery"
  if "$COBLK_BIN" recover -n 5 2>/tmp/err; then vm_fail "recovered a live device"; fi
  grep -q "is live" /tmp/err || vm_fail "wrong message for recovering a live device"
}

zram_device() {
  vm_require_coblk
  vm_load_module ublk_drv
  "$COBLK_BIN" add -t zram --size 128M -n 6 -q 2 $1
  vm_defer "$COBLK_BIN del -n 6"
  vm_wait_for_path /dev/ublkb6 10
  vm_assert_eq 134217728 "$(blockdev --getsize64 /dev/ublkb6)" "zram device size"
  verify_with_fio /dev/ublkb6 4k 32M
  dd if=/dev/zero of=/dev/ublkb6 bs=1M count=8 seek=64 oflag=direct 2>/dev/null
  sleep 1
  "$COBLK_BIN" stats -n 6
  "$COBLK_BIN" stats --json | grep -q '"dev_id":6' || vm_fail "stats --json does not list device 6"
  "$COBLK_BIN" stats -n 6 | grep -q "orig_data_size" || vm_fail "no statistics for device 6"
}

# Runs coblk expecting failure with one line on stderr that contains $1.
expect_one_line_error() {
  local needle="$1"; shift
  if "$COBLK_BIN" "$@" 2>/tmp/err; then vm_fail "coblk $* succeeded"; fi
  cat /tmp/err
  [ "$(wc -l < /tmp/err)" -eq 1 ] || vm_fail "coblk $* printed more than one line"
  grep -q "$needle" /tmp/err || vm_fail "coblk $*: expected '$needle'"
}

bad_requests_fail_cleanly() {
  vm_require_coblk
  vm_load_module ublk_drv
  expect_one_line_error "no ublk device 9" del -n 9
  expect_one_line_error "no ublk device 9" recover -n 9
  expect_one_line_error "from 1 to" add -t null -q 64
  "$COBLK_BIN" add -t null -n 7
  vm_defer "$COBLK_BIN del -n 7"
  expect_one_line_error "was not added with --recovery" recover -n 7
  "$COBLK_BIN" features | grep -q USER_COPY || vm_fail "features does not list USER_COPY"
}

vm_case "a ram device keeps what fio wrote (copy)" ram_device --copy
vm_case "a ram device keeps what fio wrote (user copy)" ram_device --user-copy
vm_case "data written with dd reads back identical on two queues" data_survives_a_reopen
vm_case "a null device serves random reads" null_device
vm_case "a loop device writes through to its file (copy)" loop_device --copy
vm_case "a loop device writes through to its file (zero copy)" loop_device --zero-copy
vm_case "del and SIGTERM remove the device" del_removes_the_device
vm_case "recover serves a device again after its server was killed" recover_a_killed_server
vm_case "a zram device keeps what fio wrote and publishes stats (lz4)" zram_device
vm_case "a zram device keeps what fio wrote (zstd, user copy)" zram_device "--algorithm zstd:3 --user-copy"
vm_case "bad requests against the real driver fail with one line" bad_requests_fail_cleanly
vm_finish
