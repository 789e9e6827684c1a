#!/bin/sh
# zram-readmit.sh: a zram device with a backing tier brings a written-back
# page back to RAM when it is read again soon (--readmit-reads, default 2):
# the second read of a range re-admits its pages (readmitted_pages counts
# them), a third read no longer touches the tier (bd_reads stays), and the
# data reads back byte for byte. --readmit-reads 0 never re-admits;
# re-admission stops below --writeback-high; bad values are refused with
# one line.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

base_id=270
t="${TMPDIR:-/tmp}"

# make_data: $t/readmit-data, 12 MiB: 4 MiB of text (compressed objects of
# many sizes, packed into backing blocks), then 8 MiB random (raw pages).
# Made once and shared by the cases; the last case removes it.
make_data() {
  [ -s "$t/readmit-data" ] && return 0
  seq 1 700000 | head -c $((4 << 20)) > "$t/readmit-data"
  head -c $((8 << 20)) /dev/urandom >> "$t/readmit-data"
}

# fill_and_write_back ID: writes the data to device ID and writes every
# page back to the tier.
fill_and_write_back() {
  local id="$1" out
  dd if="$t/readmit-data" of="/dev/ublkb$id" bs=1M oflag=direct conv=fsync 2>/dev/null \
    || vm_fail "writing 12 MiB to /dev/ublkb$id failed"
  out=$("$COBLK_BIN" writeback -n "$id" --type all) || vm_fail "coblk writeback --type all failed"
  vm_log "coblk writeback --type all: $out"
  wait_for_stat "$id" written_back_pages -ge 3000 10
}

# read_range ID MIB: reads the first MIB MiB of device ID (O_DIRECT: no
# page cache, no readahead beyond) and compares them with the data.
read_range() {
  head -c $(($2 << 20)) "$t/readmit-data" > "$t/readmit-want"
  dd if="/dev/ublkb$1" bs=1M count="$2" iflag=direct 2>/dev/null | cmp -s - "$t/readmit-want" \
    || vm_fail "the first $2 MiB of /dev/ublkb$1 differ from what was written"
  rm -f "$t/readmit-want"
}

# The default (2): the first read leaves the pages on the tier, the second
# brings them back, the third is served from RAM.
second_read_readmits() {
  vm_ublk_ready truncate cmp
  local id=$base_id wb reads
  backing_file 32M
  make_data
  add_device "$id" -t zram --size 16M --mem-limit 24M --backing "$backing"
  fill_and_write_back "$id"
  wb=$(stat_value "$id" written_back_pages)
  read_range "$id" 6
  vm_assert_eq 0 "$(stat_value "$id" readmitted_pages)" "pages re-admitted by the first read"
  read_range "$id" 6
  # 6 MiB: 1536 pages, every one written back and read twice now.
  wait_for_stat "$id" readmitted_pages -eq 1536 5
  vm_assert_eq $((wb - 1536)) "$(stat_value "$id" written_back_pages)" "pages left on the tier"
  reads=$(stat_value "$id" bd_reads)
  read_range "$id" 6
  sleep 0.5  # the stats are published every 200 ms
  vm_assert_eq "$reads" "$(stat_value "$id" bd_reads)" "tier reads of a third read of re-admitted pages"
  "$COBLK_BIN" stats -n "$id" -o NAME,WRITTEN-BACK,BD-READS,READMITTED | grep -q '[[:space:]]1536[[:space:]]*$' \
    || vm_fail "coblk stats -o ...,READMITTED does not show 1536: $("$COBLK_BIN" stats -n "$id" -o READMITTED)"
  read_range "$id" 12
}

# --readmit-reads 0: pages read any number of times stay on the tier;
# --readmit-reads 1: the first read brings them back.
zero_never_one_at_once() {
  vm_ublk_ready truncate cmp
  local id=$((base_id + 1)) wb
  backing_file 32M
  make_data
  add_device "$id" -t zram --size 16M --mem-limit 24M --backing "$backing" --readmit-reads 0
  fill_and_write_back "$id"
  wb=$(stat_value "$id" written_back_pages)
  read_range "$id" 6
  read_range "$id" 6
  read_range "$id" 6
  vm_assert_eq 0 "$(stat_value "$id" readmitted_pages)" "pages re-admitted with --readmit-reads 0"
  vm_assert_eq "$wb" "$(stat_value "$id" written_back_pages)" "pages on the tier with --readmit-reads 0"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del -n $id failed"
  backing_file 32M
  add_device "$id" -t zram --size 16M --mem-limit 24M --backing "$backing" --readmit-reads 1
  fill_and_write_back "$id"
  read_range "$id" 2
  wait_for_stat "$id" readmitted_pages -eq 512 5
  read_range "$id" 12
}

# With a 4 MiB limit (high watermark 90 %), reading all 12 MiB twice
# re-admits only while memory is below the mark: the rest stays on the
# tier, memory stays within the limit, and every byte reads back.
stops_at_the_high_watermark() {
  vm_ublk_ready truncate cmp
  local id=$((base_id + 2)) n wb used
  backing_file 32M
  make_data
  vm_defer "rm -f $t/readmit-data"
  add_device "$id" -t zram --size 16M --mem-limit 4M --backing "$backing"
  fill_and_write_back "$id"
  read_range "$id" 12
  read_range "$id" 12
  n=$(stat_value "$id" readmitted_pages)
  wb=$(stat_value "$id" written_back_pages)
  used=$(stat_value "$id" mem_used_max)
  vm_log "readmitted $n, still written back $wb, mem_used_max $used"
  [ "$n" -gt 0 ] || vm_fail "nothing was re-admitted below the watermark"
  [ "$wb" -gt 1024 ] || vm_fail "only $wb pages stayed on the tier: re-admission went past the watermark"
  [ "$used" -le $((4 << 20)) ] || vm_fail "mem_used_max $used is above the 4 MiB limit"
  [ "$(stat_value "$id" failed_reads)" -eq 0 ] || vm_fail "reads failed"
  read_range "$id" 12
}

bad_values() {
  vm_ublk_ready truncate
  local id=$((base_id + 3))
  backing_file 1M
  vm_expect_error "readmit-reads must be a whole number from 0 to 2" \
    "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$backing" --readmit-reads 3
  vm_expect_error "readmit-reads must be" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$backing" --readmit-reads x
  vm_expect_error "only valid with --backing" "$COBLK_BIN" add -n "$id" -t zram --size 16M --readmit-reads 1
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "a refused add left device $id behind"
}

vm_case "a page written back is re-admitted to RAM at its second read: readmitted_pages counts it, a third read makes no tier read, and the data reads back byte for byte" second_read_readmits
vm_case "--readmit-reads 0 never re-admits; --readmit-reads 1 re-admits at the first read" zero_never_one_at_once
vm_case "re-admission stops at the high watermark: the rest stays on the tier, memory stays within --mem-limit, every byte reads back" stops_at_the_high_watermark
vm_case "bad --readmit-reads values are refused with one line" bad_values
vm_finish
