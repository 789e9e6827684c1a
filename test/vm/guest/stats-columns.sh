#!/bin/sh
# stats-columns.sh: zramctl's output options on `coblk stats` against real
# zram devices: -o picks columns in the order given, --raw --bytes
# --noheadings print what --json says, MOUNTPOINT follows swapon and mount,
# --output-all prints every column --help lists, and an unknown column is
# one line and exit 2. Small devices, a few seconds per case.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=140

# stats_line ID ARGS...: the one line `coblk stats -n ID --raw --noheadings ARGS` prints.
stats_line() {
  local id="$1" out
  shift
  out=$("$COBLK_BIN" stats -n "$id" --raw --noheadings "$@") || vm_fail "coblk stats -n $id --raw --noheadings $* failed"
  vm_log "coblk stats -n $id --raw --noheadings $*: $out" >&2  # stdout is the line
  vm_assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "lines of coblk stats -n $id --raw --noheadings $*"
  echo "$out"
}

columns_in_order_and_in_bytes() {
  local id=$base_id dev="/dev/ublkb$base_id" text="${TMPDIR:-/tmp}/stats-columns.txt" orig total
  vm_ublk_ready
  add_device "$id" -t zram --size 32M --algorithm zstd
  # 4 MiB of text: compressible, not zero (from a file: a pipe's short
  # reads would make unaligned direct writes).
  yes "coblk stats columns" | head -c $((4 << 20)) >"$text"
  vm_defer "rm -f $text"
  dd if="$text" of="$dev" bs=1M oflag=direct 2>/dev/null || vm_fail "cannot write $dev"
  wait_for_stat "$id" orig_data_size -ge $((4 << 20))
  orig=$(stat_value "$id" orig_data_size)
  total=$(stat_value "$id" mem_used_total)
  vm_assert_eq "$dev 33554432 $orig $total zstd" \
    "$(stats_line "$id" -o NAME,DISKSIZE,DATA,TOTAL,ALGORITHM --bytes)" "NAME,DISKSIZE,DATA,TOTAL,ALGORITHM in bytes"
  # The same columns in another order, in any case, and in human units.
  vm_assert_eq "zstd 32M $id" "$(stats_line "$id" -o algorithm,Disksize,ID)" "algorithm,Disksize,ID"
  # COMP-RATIO is DATA/TOTAL.
  vm_assert_eq "$(awk -v o="$orig" -v t="$total" 'BEGIN { printf "%.2f", o / t }')" \
    "$(stats_line "$id" -o COMP-RATIO)" "COMP-RATIO"
  # The default table still has zramctl's heading, aligned.
  "$COBLK_BIN" stats -n "$id" | head -n 1 | grep -q '^NAME  *DISKSIZE  *DATA  *COMPR  *ALGORITHM ' \
    || vm_fail "the default heading is not zramctl's: $("$COBLK_BIN" stats -n "$id" | head -n 1)"
}

mountpoint_follows_swap_and_mount() {
  local id=$((base_id + 1)) dev="/dev/ublkb$((base_id + 1))" mnt="/mnt/coblk-stats-$((base_id + 1))"
  vm_ublk_ready mkswap swapon swapoff mkfs.ext4
  grep -qw ext4 /proc/filesystems || vm_load_module ext4
  add_device "$id" -t zram -q 2 --size 32M
  vm_assert_eq "- 2" "$(stats_line "$id" -o MOUNTPOINT,STREAMS)" "MOUNTPOINT,STREAMS of an unused 2-queue device"
  mkswap "$dev" >/dev/null
  swapon "$dev"
  vm_defer "swapoff $dev 2>/dev/null"
  vm_assert_eq "$dev [SWAP]" "$(stats_line "$id" -o NAME,MOUNTPOINT)" "MOUNTPOINT of a device in use as swap"
  swapoff "$dev"
  mkfs.ext4 -q -F "$dev"
  mkdir -p "$mnt"
  mount -t ext4 "$dev" "$mnt"
  vm_defer "umount $mnt 2>/dev/null"
  vm_assert_eq "$mnt" "$(stats_line "$id" -o MOUNTPOINT)" "MOUNTPOINT of a mounted device"
  umount "$mnt"
  vm_assert_eq "-" "$(stats_line "$id" -o MOUNTPOINT)" "MOUNTPOINT once unmounted"
}

output_all_and_plus() {
  local id=$((base_id + 2)) columns heading line
  vm_ublk_ready
  add_device "$id" -t zram --size 16M
  columns=$("$COBLK_BIN" stats --help | awk '/^Available columns/ { on = 1; next } on && /^  [A-Z]/ { print $1 }' | tr '\n' ' ')
  heading=$("$COBLK_BIN" stats -n "$id" --output-all --raw | head -n 1)
  vm_assert_eq "${columns% }" "$heading" "--output-all's heading against the columns --help lists"
  # Raw: one cell per column, none empty ("-" where there is no value).
  line=$(stats_line "$id" --output-all)
  vm_assert_eq "$(echo "$heading" | wc -w)" "$(echo "$line" | wc -w)" "cells of a raw --output-all row"
  # "+LIST" adds to the default columns.
  heading=$("$COBLK_BIN" stats -n "$id" -o +STREAMS,ID --raw | head -n 1)
  vm_assert_eq "NAME DISKSIZE DATA COMPR ALGORITHM ZERO-PAGES TOTAL MEM-LIMIT MEM-USED COMP-RATIO STREAMS ID" \
    "$heading" "the heading of -o +STREAMS,ID"
}

bad_column_options() {
  local id=$((base_id + 3)) rc=0
  vm_ublk_ready
  add_device "$id" -t zram --size 16M
  vm_expect_error "unknown column 'FOO' (valid: NAME, DISKSIZE," "$COBLK_BIN" stats -n "$id" -o NAME,FOO
  "$COBLK_BIN" stats -n "$id" -o NAME,FOO >/dev/null 2>&1 || rc=$?
  vm_assert_eq 2 "$rc" "exit status of an unknown column"
  vm_expect_error "empty column name" "$COBLK_BIN" stats -n "$id" -o NAME,
  vm_expect_error "not valid with --json" "$COBLK_BIN" stats -n "$id" --json --raw
  vm_expect_error "mutually exclusive" "$COBLK_BIN" stats -n "$id" -o NAME --output-all
}

vm_case "coblk stats -o prints the columns asked for, in their order; --raw --bytes --noheadings match --json" \
  columns_in_order_and_in_bytes
vm_case "coblk stats' MOUNTPOINT is [SWAP] under swapon and the mount point under mount; STREAMS is the queue count" \
  mountpoint_follows_swap_and_mount
vm_case "coblk stats --output-all prints every column --help lists, and -o +LIST adds to the default ones" \
  output_all_and_plus
vm_case "coblk stats refuses an unknown or empty column, --json with table options, and -o with --output-all (one line each, exit 2)" \
  bad_column_options
vm_finish
