#!/bin/sh
# hardening.sh: failure paths and data-leak paths found by review (issue 12),
# each proven on a real ublk device.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
hard_null=160

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

vm_case "a null device on the copy path reads zeros, not the bytes an earlier write left in the tag buffer" \
  null_reads_zeros_after_a_write --copy
vm_case "a null device on the user-copy path reads zeros, not the bytes an earlier write left in the tag buffer" \
  null_reads_zeros_after_a_write --user-copy
vm_finish
