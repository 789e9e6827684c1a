#!/bin/sh
# hardening.sh: failure paths and data-leak paths found by review (issue 12),
# each proven on a real ublk device.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
hard_null=160
hard_loop=161
hard_ram=162
hard_sig=163
hard_swap=164

# A null device must read zeros: in the copy and user-copy paths a read used
# to return whatever the tag buffer held, often an earlier request's written
# bytes, so one user's writes could be read back by another.
null_reads_zeros_after_a_write() {
  local flag="$1" t="${TMPDIR:-/tmp}"
  vm_ublk_ready dd cmp
  add_device "$hard_null" -t null --size 64M -q 1 -d 1 "$flag"
  dd if=/dev/urandom of="$t/null-pattern" bs=64k count=4 2>/dev/null
  dd if=/dev/zero of="$t/null-zeros" bs=64k count=4 2>/dev/null
  # Depth 1: the write and the read use the same tag, and so the same buffer.
  dd if="$t/null-pattern" of="/dev/ublkb$hard_null" bs=64k count=4 oflag=direct 2>/dev/null \
    || vm_fail "a write to the null device failed"
  dd if="/dev/ublkb$hard_null" of="$t/null-read" bs=64k count=4 iflag=direct 2>/dev/null \
    || vm_fail "a read from the null device failed"
  cmp "$t/null-read" "$t/null-zeros" || vm_fail "the null device returned data that is not zeros"
}

# `coblk add -t loop -f rel.img` used to size the device from the caller's
# rel.img, then serve /rel.img, because the daemon runs in "/". A decoy
# /rel.img must stay untouched, and recover from another directory must
# find the same file.
loop_relative_path_serves_the_callers_file() {
  local t="${TMPDIR:-/tmp}" dir
  vm_ublk_ready dd cmp
  dir="$t/relcwd"
  mkdir -p "$dir"
  vm_defer "rm -rf $dir /rel.img"
  dd if=/dev/zero of="$dir/rel.img" bs=1M count=8 2>/dev/null
  dd if=/dev/zero bs=1M count=8 2>/dev/null | tr '\0' 'D' > /rel.img
  cp /rel.img "$t/decoy-before"
  dd if=/dev/urandom of="$t/rel-pattern" bs=64k count=8 2>/dev/null
  # add_device's own cleanup is lost in the subshell: defer it here.
  vm_defer "$COBLK_BIN del --force -n $hard_loop"
  (cd "$dir" && add_device "$hard_loop" -t loop -f rel.img --recovery)
  dd if="$t/rel-pattern" of="/dev/ublkb$hard_loop" bs=64k oflag=direct 2>/dev/null || vm_fail "write failed"
  cmp /rel.img "$t/decoy-before" || vm_fail "the decoy /rel.img was written"
  dd if="$dir/rel.img" bs=64k count=8 2>/dev/null | cmp - "$t/rel-pattern" \
    || vm_fail "the caller's rel.img does not hold what was written"
  # The record holds the absolute path: recover works from any directory.
  kill -9 "$(server_pid "$hard_loop")"
  sleep 1
  (cd / && "$COBLK_BIN" recover -n "$hard_loop" >/dev/null) || vm_fail "coblk recover from / failed"
  dd if="/dev/ublkb$hard_loop" bs=64k count=8 iflag=direct 2>/dev/null | cmp - "$t/rel-pattern" \
    || vm_fail "after recover the device does not read the caller's file"
  cmp /rel.img "$t/decoy-before" || vm_fail "the decoy /rel.img was written after recover"
}

# Discard and write-zeroes on a ram device must free memory. The server
# locks its memory, the kernel refuses MADV_DONTNEED on locked pages, and the
# old fallback zeroed the range in place: blkdiscard of a device bigger than
# the guest's RAM locked it all (on a 3.5 GiB guest the OOM killer then took
# init, and the kernel panicked). Here: a 1.5 GiB device on a 2 GiB guest.
ram_discard_frees_memory() {
  local rss
  vm_ublk_ready blkdiscard mkfs.ext4
  add_device "$hard_ram" -t ram --size 1536M
  # Touch some memory first so there is something to free.
  dd if=/dev/urandom of="/dev/ublkb$hard_ram" bs=1M count=64 oflag=direct 2>/dev/null || vm_fail "write failed"
  blkdiscard "/dev/ublkb$hard_ram" || vm_fail "blkdiscard failed"
  mkfs.ext4 -q -F "/dev/ublkb$hard_ram" || vm_fail "mkfs.ext4 failed"
  rss=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(server_pid "$hard_ram")/status")
  echo "server RSS after blkdiscard and mkfs.ext4 of a 1536 MiB ram device: ${rss} MiB"
  [ "$rss" -lt 256 ] || vm_fail "the server holds ${rss} MiB after discarding the whole device"
}

# A SIGTERM at any moment of a server's setup (before, during or after
# ADD_DEV, before START_DEV) must end it cleanly, leaving no device behind:
# the signals are blocked from the start and read only once serving runs.
signal_during_setup_leaves_no_device() {
  local delay pid rc
  vm_ublk_ready
  for delay in 0 0.005 0.01 0.02 0.03 0.05 0.07 0.1 0.15 0.2 0.3; do
    "$COBLK_BIN" add -n "$hard_sig" -t zram --size 16M --foreground >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    wait_for_exit "$pid" 20
    rc=$EXIT_RC
    # 0: stopped cleanly; 1: refused with a message; 143: killed before it
    # blocked the signals, when nothing existed yet.
    case "$rc" in 0 | 1 | 143) ;; *) vm_fail "SIGTERM after ${delay}s: exit status $rc" ;; esac
    [ ! -e "/dev/ublkc$hard_sig" ] || vm_fail "SIGTERM after ${delay}s of setup left /dev/ublkc$hard_sig behind"
  done
}

# A zram device may be swap: serving its requests must not fault in tag
# buffers while memory is short. They are faulted in (and locked) when the
# server starts: 1 queue x depth 64 x 128 KiB = 8 MiB resident before any I/O.
zram_tag_buffers_are_resident_before_any_io() {
  local rss
  vm_ublk_ready
  add_device "$hard_swap" -t zram --size 64M -q 1 -d 64
  rss=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(server_pid "$hard_swap")/status")
  echo "zram server RSS before any I/O: ${rss} MiB"
  [ "$rss" -ge 8 ] || vm_fail "only ${rss} MiB resident: the tag buffers are not prefaulted"
}

vm_case "a zram server's tag buffers are resident and locked before its first request" \
  zram_tag_buffers_are_resident_before_any_io
vm_case "a SIGTERM at any moment of a server's setup ends it without leaving a device behind" \
  signal_during_setup_leaves_no_device
vm_case "blkdiscard and mkfs.ext4 of a ram device bigger than most of the guest's RAM leave the server's memory small" \
  ram_discard_frees_memory
vm_case "a loop device added with a relative path serves the caller's file, not one of that name in /, also after recover" \
  loop_relative_path_serves_the_callers_file
vm_case "a null device on the copy path reads zeros, not the bytes an earlier write left in the tag buffer" \
  null_reads_zeros_after_a_write --copy
vm_case "a null device on the user-copy path reads zeros, not the bytes an earlier write left in the tag buffer" \
  null_reads_zeros_after_a_write --user-copy
vm_finish
