#!/bin/sh
# cli-errors.sh: bad input to coblk gets one clear line on stderr, a non-zero
# exit status (2 for bad usage), nothing on stdout, and leaves no device, no
# state file and no server process behind.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=90

# What must not change across a failed command: the kernel's ublk devices,
# coblk's state files and the running coblk servers.
footprint() {
  ls /sys/class/ublk-char 2>/dev/null | tr '\n' ' '
  echo "|"
  ls "${COBLK_RUN_DIR:-/run/coblk}" 2>/dev/null | tr '\n' ' '
  echo "|"
  pidof coblk | wc -w
}

# expect_error STATUS PATTERN COMMAND...: COMMAND fails with exit status
# STATUS ("fail" for any non-zero), exactly one stderr line of the form
# "coblk CMD: reason" that matches the grep -i PATTERN, empty stdout, and no
# change to the footprint.
expect_error() {
  local want="$1" pattern="$2" rc=0 before after lines t="${TMPDIR:-/tmp}"
  shift 2
  before=$(footprint)
  "$@" >"$t/cli.out" 2>"$t/cli.err" || rc=$?
  echo "coblk-vm: exit $rc, stderr: $(cat "$t/cli.err")"
  # Give a daemonized child that failed a moment to go.
  sleep 0.2
  after=$(footprint)
  [ "$rc" -ne 0 ] || vm_fail "'$*' succeeded"
  [ "$want" = fail ] || vm_assert_eq "$want" "$rc" "exit status of '$*'"
  lines=$(wc -l < "$t/cli.err")
  vm_assert_eq 1 "$lines" "number of stderr lines of '$*'"
  grep -q '^coblk\( [a-z]*\)\?: .' "$t/cli.err" || vm_fail "stderr does not start with 'coblk COMMAND: ': $(cat "$t/cli.err")"
  grep -qi -e "$pattern" "$t/cli.err" || vm_fail "stderr does not match '$pattern': $(cat "$t/cli.err")"
  [ ! -s "$t/cli.out" ] || vm_fail "'$*' printed on stdout: $(cat "$t/cli.out")"
  vm_assert_eq "$before" "$after" "devices, state files and servers after '$*'"
}

# ---- cases -----------------------------------------------------------------

size_not_a_number() {
  vm_ublk_ready
  expect_error 2 "'abc' is not a size" "$COBLK_BIN" add -t ram -n "$base_id" --size abc
}

size_not_a_block_multiple() {
  vm_ublk_ready
  expect_error fail "multiple of" "$COBLK_BIN" add -t ram -n "$base_id" --size 1000
  expect_error fail "multiple of" "$COBLK_BIN" add -t ram -n "$base_id" --size 6K -b 4096
}

size_zero() {
  vm_ublk_ready
  expect_error fail "size" "$COBLK_BIN" add -t null -n "$base_id" --size 0
}

id_taken() {
  local id=$((base_id + 1)) out
  vm_ublk_ready
  vm_defer "$COBLK_BIN del --force -n $id"
  out=$("$COBLK_BIN" add -t null --size 64M -n "$id")
  vm_assert_eq "/dev/ublkb$id" "$out" "first coblk add"
  expect_error fail "already in use" "$COBLK_BIN" add -t ram --size 64M -n "$id"
  # The first device is untouched.
  dd if="/dev/ublkb$id" of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null \
    || vm_fail "the first device stopped serving I/O"
  "$COBLK_BIN" list -n "$id" | awk -v id="$id" '$1 == id && $2 == "live" { ok = 1 } END { exit !ok }' \
    || vm_fail "the first device is no longer live"
}

missing_backing_file() {
  vm_ublk_ready
  expect_error fail "does not exist" "$COBLK_BIN" add -t loop -n "$base_id" -f /nonexistent/disk.img
}

loop_without_file() {
  vm_ublk_ready
  expect_error fail "-f\|file" "$COBLK_BIN" add -t loop -n "$base_id"
}

loop_size_beyond_file() {
  local file="${TMPDIR:-/tmp}/small.img"
  vm_ublk_ready
  truncate -s 1M "$file"
  vm_defer "rm -f $file"
  expect_error fail "size\|larger" "$COBLK_BIN" add -t loop -n "$base_id" -f "$file" --size 2M
}

unknown_target() {
  vm_ublk_ready
  expect_error fail "unknown target 'tape'" "$COBLK_BIN" add -t tape -n "$base_id"
}

unknown_option() {
  vm_ublk_ready
  expect_error 2 "--frob" "$COBLK_BIN" add -t null -n "$base_id" --frob
}

unknown_command() {
  vm_require_coblk
  expect_error 2 "frob" "$COBLK_BIN" frob
}

option_of_another_target() {
  local file="${TMPDIR:-/tmp}/other.img"
  vm_ublk_ready
  truncate -s 1M "$file"
  vm_defer "rm -f $file"
  expect_error fail "-f\|file" "$COBLK_BIN" add -t ram -n "$base_id" --size 1M -f "$file"
  expect_error fail "algorithm" "$COBLK_BIN" add -t loop -n "$base_id" -f "$file" --algorithm zstd
}

zero_copy_on_ram() {
  vm_ublk_ready
  expect_error fail "zero.copy" "$COBLK_BIN" add -t ram -n "$base_id" --size 1M --zero-copy
}

bad_queue_count_and_depth() {
  vm_ublk_ready
  expect_error fail "queue\|-q" "$COBLK_BIN" add -t null -n "$base_id" -q 0
  expect_error fail "queue\|-q" "$COBLK_BIN" add -t null -n "$base_id" -q 1000
  expect_error fail "depth\|-d" "$COBLK_BIN" add -t null -n "$base_id" -d 5000
}

del_missing_device() {
  vm_ublk_ready
  expect_error 1 "no ublk device" "$COBLK_BIN" del -n $((base_id + 2))
}

recover_without_recovery() {
  local id=$((base_id + 3))
  vm_ublk_ready
  vm_defer "$COBLK_BIN del --force -n $id"
  "$COBLK_BIN" add -t null --size 64M -n "$id" >/dev/null
  expect_error fail "recovery\|live" "$COBLK_BIN" recover -n "$id"
}

# Without the driver there is no /dev/ublk-control. In the VM the module is
# unloaded (nothing else uses it between cases); on a host coblk is pointed
# at a missing control node instead, so the host is left as it was.
control_missing() {
  vm_ublk_ready
  local cmd
  if [ "$COBLK_VM_MODE" = vm ] && rmmod ublk_drv 2>/dev/null; then
    vm_defer "vm_load_module ublk_drv"
    [ ! -e /dev/ublk-control ] || vm_fail "/dev/ublk-control is still there after rmmod"
    for cmd in "add -t null -n $base_id" "del -n $base_id" "list" "features" "recover -n $base_id"; do
      # shellcheck disable=SC2086
      expect_error 1 "the ublk driver is not loaded" "$COBLK_BIN" $cmd
    done
  else
    for cmd in "add -t null -n $base_id" "del -n $base_id" "list" "features" "recover -n $base_id"; do
      # shellcheck disable=SC2086
      expect_error 1 "the ublk driver is not loaded" env COBLK_CONTROL_PATH=/nonexistent/ublk-control "$COBLK_BIN" $cmd
    done
  fi
}

# An unprivileged user cannot open /dev/ublk-control (mode 0600) and is told
# to use root.
not_root() {
  vm_ublk_ready
  vm_require_cmd su
  if ! grep -q '^nobody:' /etc/passwd; then
    [ "$COBLK_VM_MODE" = vm ] || vm_skip "this host has no user nobody"
    echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd
    vm_defer "sed -i '/^nobody:/d' /etc/passwd"
  fi
  expect_error 1 "root" su -s /bin/sh nobody -c "$COBLK_BIN add -t null -n $base_id"
  expect_error 1 "root" su -s /bin/sh nobody -c "$COBLK_BIN list"
}

vm_case "coblk add --size abc says it is not a size and exits 2" size_not_a_number
vm_case "coblk add --size that is not a multiple of the block size is refused" size_not_a_block_multiple
vm_case "coblk add --size 0 is refused" size_zero
vm_case "coblk add -n with an id already in use is refused and the existing device keeps serving" id_taken
vm_case "coblk add -t loop with a missing backing file says the file does not exist" missing_backing_file
vm_case "coblk add -t loop without -f says a backing file is needed" loop_without_file
vm_case "coblk add -t loop with --size beyond the file's size is refused" loop_size_beyond_file
vm_case "coblk add -t tape says the target is unknown" unknown_target
vm_case "coblk add with an unknown option names it and exits 2" unknown_option
vm_case "an unknown coblk command exits 2" unknown_command
vm_case "options of another target (-f on ram, --algorithm on loop) are refused" option_of_another_target
vm_case "coblk add -t ram --zero-copy is refused: zero copy is for loop only" zero_copy_on_ram
vm_case "queue counts outside 1..CPUs and depths over 4096 are refused" bad_queue_count_and_depth
vm_case "coblk del of a device that does not exist says so" del_missing_device
vm_case "coblk recover of a live device added without --recovery is refused" recover_without_recovery
vm_case "every command says how to load the module when /dev/ublk-control is missing" control_missing
vm_case "coblk add and list as a user other than root say root is needed" not_root
vm_finish
