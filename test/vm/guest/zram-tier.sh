#!/bin/sh
# zram-tier.sh: a zram device with a backing tier (--backing) keeps every
# page when it holds more than its --mem-limit: pages are written back to a
# file, or to kernel zram (/dev/zramN), and read back; bd_stat shows it. A
# backing device that starts failing, or a backing file overwritten under
# it, gives I/O errors, never wrong data, and a failing one stops writeback; `coblk idle`, `coblk writeback` and `coblk
# recompress` act on the pages they name. Bad backing paths are refused
# with one line.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

base_id=180
t="${TMPDIR:-/tmp}"

# ---- helpers ---------------------------------------------------------------

# backing_file and fio_fill: lib.sh.

# new_kernel_zram SIZE: sets $kz to a fresh kernel zram device of SIZE,
# removed when the case ends.
new_kernel_zram() {
  local n
  vm_load_module zram
  n=$(cat /sys/class/zram-control/hot_add) || vm_fail "zram has no hot_add control"
  vm_defer "echo 1 > /sys/block/zram$n/reset; echo $n > /sys/class/zram-control/hot_remove"
  echo "$1" > "/sys/block/zram$n/disksize" || vm_fail "cannot size /dev/zram$n"
  kz="/dev/zram$n"
}

# text_roundtrip ID OFFSET_MIB: 8 MiB of text (compresses about 4:1, so
# objects of many sizes get packed into backing blocks) written at
# OFFSET_MIB, pushed out by more data, and read back byte for byte.
text_roundtrip() {
  local id="$1" dev="/dev/ublkb$1" at="$2" before
  seq 1 1300000 | head -c $((8 << 20)) > "$t/tier-text"
  before=$(stat_value "$id" bd_writes)
  dd if="$t/tier-text" of="$dev" bs=1M seek="$at" oflag=direct conv=fsync 2>/dev/null || vm_fail "writing text to $dev failed"
  "$COBLK_BIN" writeback -n "$id" --type all >/dev/null || vm_fail "coblk writeback --type all failed"
  wait_for_stat "$id" bd_writes -gt $((before + 256)) 10
  echo 3 > /proc/sys/vm/drop_caches
  dd if="$dev" bs=1M skip="$at" count=8 iflag=direct 2>/dev/null | cmp -s - "$t/tier-text" \
    || vm_fail "text read back through the backing tier differs"
  rm -f "$t/tier-text"
}

# ---- cases -----------------------------------------------------------------

# A device whose data is 3x its memory limit stays whole: writes beyond the
# limit wait for writeback instead of failing. TEXT: also round-trip text.
holds_three_times_its_limit() {
  local backing="$1" id="$2" text="$3" dev="/dev/ublkb$2"
  add_device "$id" -t zram --size 64M --mem-limit 4M --backing "$backing"
  # 24 MiB of pages that compress to about half (12 MiB stored, 3x the
  # limit; kept small, as each MiB costs about a second under TCG).
  fio_fill "$dev" 24M
  local wb bd failed used limit
  wait_for_stat "$id" bd_writes -gt 0 10
  wb=$(stat_value "$id" written_back_pages)
  bd=$(stat_value "$id" bd_count)
  failed=$(stat_value "$id" failed_writes)
  used=$(stat_value "$id" mem_used_total)
  limit=$(stat_value "$id" mem_limit)
  vm_log "written back $wb pages in $bd blocks; mem_used_total $used of $limit; failed_writes $failed"
  vm_assert_eq 0 "$failed" "failed_writes"
  vm_assert_eq active "$(stat_text "$id" tier_state)" "tier_state"
  # More than the limit's worth of pages went to the tier, as before the
  # sizes were halved (writeback stops at the low watermark, so about
  # 2200-2400 of the 6144 pages go).
  [ "$wb" -gt 1024 ] || vm_fail "only $wb pages were written back"
  [ "$used" -le "$limit" ] || vm_fail "mem_used_total $used exceeds mem_limit $limit"
  # Read everything again, now mostly from the backing tier.
  echo 3 > /proc/sys/vm/drop_caches
  fio_fill "$dev" 24M --verify_only
  wait_for_stat "$id" bd_reads -gt 0 10
  [ -z "$text" ] || text_roundtrip "$id" 52
  "$COBLK_BIN" stats -n "$id" | grep -q "WRITTEN-BACK" || vm_fail "coblk stats shows no WRITTEN-BACK column"
}

file_tier() {
  vm_ublk_ready fio truncate
  backing_file 64M
  holds_three_times_its_limit "$backing" "$base_id" text
}

kernel_zram_tier() {
  vm_ublk_ready fio
  new_kernel_zram 64M
  holds_three_times_its_limit "$kz" $((base_id + 1)) ""
  local orig
  orig=$(awk '{ print $1 }' "/sys/block/${kz#/dev/}/mm_stat")
  vm_log "kernel zram $kz holds $orig bytes of written-back blocks"
  [ "$orig" -gt 0 ] || vm_fail "kernel zram $kz received nothing"
}

# The backing device fails under the device (dm table switched to
# `error`): reads of written-back pages fail with EIO, never return other
# data; writeback stops and says so; the server lives, del works.
failing_backing() {
  vm_ublk_ready fio dmsetup blockdev
  local id=$((base_id + 2)) dev="/dev/ublkb$((base_id + 2))" sectors rc=0 pid
  vm_load_module dm_mod
  new_kernel_zram 64M
  sectors=$(blockdev --getsz "$kz")
  dmsetup create coblk-tier-bk --noudevsync --table "0 $sectors linear $kz 0" || vm_fail "dmsetup create failed"
  vm_defer "dmsetup remove --noudevsync coblk-tier-bk 2>/dev/null"
  dmsetup mknodes coblk-tier-bk
  add_device "$id" -t zram --size 64M --mem-limit 8M --backing /dev/mapper/coblk-tier-bk
  pid=$(server_pid "$id")
  fio_fill "$dev" 32M
  wait_for_stat "$id" written_back_pages -gt 1024 10
  dmsetup suspend --noudevsync coblk-tier-bk
  dmsetup reload --noudevsync coblk-tier-bk --table "0 $sectors error"
  dmsetup resume --noudevsync coblk-tier-bk
  echo 3 > /proc/sys/vm/drop_caches
  # Verifying must fail with I/O errors, not with a checksum mismatch.
  fio --name=tier --filename="$dev" --ioengine=psync --direct=1 --rw=write --bs=64k --size=32M \
      --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_only --continue_on_error=read \
      --output-format=normal >"$t/tier-fail.log" 2>&1 || rc=$?
  vm_log "fio verify over the failed tier: exit $rc; $(grep -c -i 'input/output error' "$t/tier-fail.log") I/O errors"
  grep -qi "input/output error" "$t/tier-fail.log" || { tail -n 20 "$t/tier-fail.log" >&2; vm_fail "no I/O error from a failed backing tier"; }
  if grep -qi "verify: bad\|bad magic\|crc32c: verify failed" "$t/tier-fail.log"; then
    tail -n 20 "$t/tier-fail.log" >&2
    vm_fail "a read over the failed backing tier returned wrong data"
  fi
  wait_for_stat "$id" backing_read_errors -gt 0 10
  # New data beyond the limit: writeback fails once, then stops.
  dd if=/dev/urandom of="$dev" bs=1M seek=40 count=16 oflag=direct 2>/dev/null || true
  wait_for_stat "$id" backing_write_errors -gt 0 10
  vm_assert_eq failed "$(stat_text "$id" tier_state)" "tier_state"
  running "$pid" || vm_fail "the server died when its backing device failed"
  "$COBLK_BIN" del -n "$id" || vm_fail "coblk del failed after the backing device failed"
}

# Another program overwrites the backing file under the device: each page
# written back there fails to read with EIO (its entry's checksum does not
# match the bytes read back), never returns the other bytes, even for raw
# pages that need no decoding; the server logs it, counts it in
# backing_checksum_errors, and lives.
overwritten_backing() {
  vm_ublk_ready fio truncate
  local id=$((base_id + 8)) dev="/dev/ublkb$((base_id + 8))" rc=0 pid
  # The server's log must name the mismatch.
  servers_log_to "$t/tier-messages"
  backing_file 32M
  add_device "$id" -t zram --size 32M --mem-limit 8M --backing "$backing"
  pid=$(server_pid "$id")
  fio_fill "$dev" 16M
  "$COBLK_BIN" writeback -n "$id" --type all >/dev/null || vm_fail "coblk writeback --type all failed"
  wait_for_stat "$id" written_back_pages -gt 1024 10
  # Every block but block 0 (the tier's header) gets other bytes.
  dd if=/dev/urandom of="$backing" bs=1M count=31 seek=1 conv=notrunc 2>/dev/null || vm_fail "cannot overwrite $backing"
  dd if=/dev/urandom of="$backing" bs=4k count=255 seek=1 conv=notrunc 2>/dev/null || vm_fail "cannot overwrite $backing"
  echo 3 > /proc/sys/vm/drop_caches
  fio --name=tier --filename="$dev" --ioengine=psync --direct=1 --rw=write --bs=64k --size=16M \
      --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_only --continue_on_error=read \
      --output-format=normal >"$t/tier-overwritten.log" 2>&1 || rc=$?
  vm_log "fio verify over the overwritten tier: exit $rc; $(grep -c -i 'input/output error' "$t/tier-overwritten.log") I/O errors"
  if grep -qi "verify: bad\|bad magic\|crc32c: verify failed" "$t/tier-overwritten.log"; then
    tail -n 20 "$t/tier-overwritten.log" >&2
    vm_fail "a read of an overwritten backing tier returned the other bytes"
  fi
  grep -qi "input/output error" "$t/tier-overwritten.log" \
    || { tail -n 20 "$t/tier-overwritten.log" >&2; vm_fail "no I/O error from an overwritten backing tier"; }
  wait_for_stat "$id" backing_checksum_errors -gt 0 10
  vm_log "backing_checksum_errors $(stat_value "$id" backing_checksum_errors), backing_read_errors $(stat_value "$id" backing_read_errors)"
  if [ -f "$t/tier-messages" ]; then
    local i=0
    while ! grep -q "checksum mismatch" "$t/tier-messages" && [ "$i" -lt 50 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    grep -q "does not hold the bytes written to it (checksum mismatch)" "$t/tier-messages" \
      || { tail -n 20 "$t/tier-messages" >&2; vm_fail "the server's log does not name the checksum mismatch"; }
  fi
  running "$pid" || vm_fail "the server died reading an overwritten backing tier"
  # New writes over the lost pages make them whole again.
  fio_fill "$dev" 16M
}

# `coblk idle` marks every page; reading half of them clears their marks;
# `coblk writeback --type idle` then moves exactly the other half.
manual_commands() {
  vm_ublk_ready fio truncate
  local id=$((base_id + 3)) dev="/dev/ublkb$((base_id + 3))" out n before
  backing_file 32M
  add_device "$id" -t zram --size 32M --backing "$backing"
  # Random data: every page is an object (stored raw), none same-filled.
  fio_fill "$dev" 8M --buffer_compress_percentage=0
  out=$("$COBLK_BIN" idle -n "$id") || vm_fail "coblk idle failed"
  vm_log "coblk idle: $out"
  n=${out%% *}
  [ "$n" -ge 2048 ] || vm_fail "coblk idle marked $n pages of 8 MiB"
  # Exactly the first 4 MiB (O_DIRECT: no readahead touches more).
  fio --name=read --filename="$dev" --ioengine=psync --direct=1 --rw=read --bs=64k --size=4M \
      --output-format=terse >/dev/null 2>&1 || vm_fail "reading 4 MiB of $dev failed"
  out=$("$COBLK_BIN" writeback -n "$id" --type idle) || vm_fail "coblk writeback --type idle failed"
  vm_log "coblk writeback --type idle: $out"
  n=${out%% *}
  vm_assert_eq 1024 "$n" "pages written back by --type idle (the unread half)"
  wait_for_stat "$id" written_back_pages -eq "$n" 10
  before=$n
  out=$("$COBLK_BIN" writeback -n "$id" --type all --max-pages 100) || vm_fail "coblk writeback --type all failed"
  vm_assert_eq "100 pages written back" "$out" "writeback --max-pages 100"
  wait_for_stat "$id" written_back_pages -eq $((before + 100)) 10
  out=$("$COBLK_BIN" writeback -n "$id" --type huge) || vm_fail "coblk writeback --type huge failed"
  vm_assert_eq "924 pages written back" "$out" "writeback --type huge (every page left in RAM is raw)"
  fio_fill "$dev" 8M --buffer_compress_percentage=0 --verify_only
}

# The server dies (kill -9) holding pages on the tier: its keeper starts a
# new one, which recovers the page table, finds every written-back page on
# the same backing file, and all data verifies.
recovery_keeps_written_back_pages() {
  vm_ublk_ready fio truncate
  local id=$((base_id + 8)) dev="/dev/ublkb$((base_id + 8))" pid new i=0 wb
  backing_file 64M
  add_device "$id" -t zram --size 32M --mem-limit 4M --backing "$backing" --recovery
  # 16 MiB of random pages (stored raw): 4x the limit.
  fio_fill "$dev" 16M --buffer_compress_percentage=0
  wait_for_stat "$id" written_back_pages -gt 1024 10
  wb=$(stat_value "$id" written_back_pages)
  pid=$(server_pid "$id")
  kill -KILL "$pid"
  wait_until_gone "$pid" 20 || vm_fail "the server ($pid) survived SIGKILL"
  while :; do
    new=$(list_field "$id" PID)
    [ "$(list_field "$id" STATE)" = live ] && [ -n "$new" ] && [ "$new" != "$pid" ] && [ "$new" != - ] && break
    i=$((i + 1))
    [ "$i" -le 600 ] || vm_fail "device $id was not live again within 60 s of kill -9"
    sleep 0.1
  done
  vm_log "server $pid (with $wb pages written back) replaced by $new"
  wait_for_stat "$id" written_back_pages -ge "$wb" 10
  fio_fill "$dev" 16M --buffer_compress_percentage=0 --verify_only
}

# --recompress zstd:9 on an lz4 device: `coblk recompress` makes text
# pages smaller, the statistics say so, and the text reads back intact.
recompress_command() {
  vm_ublk_ready cmp
  local id=$((base_id + 9)) dev="/dev/ublkb$((base_id + 9))" out n before after
  add_device "$id" -t zram --size 16M --algorithm lz4 --recompress zstd:9
  seq 1 400000 | head -c $((2 << 20)) > "$t/tier-text"
  dd if="$t/tier-text" of="$dev" bs=1M oflag=direct conv=fsync 2>/dev/null || vm_fail "writing text to $dev failed"
  sleep 0.5
  before=$(stat_value "$id" compr_data_size)
  out=$("$COBLK_BIN" recompress -n "$id" --type all) || vm_fail "coblk recompress failed"
  n=${out%% *}
  vm_assert_eq "$n pages recompressed" "$out" "coblk recompress output"
  [ "$n" -gt 256 ] || vm_fail "only $n of 512 text pages were recompressed"
  # The maintenance task may have recompressed a raw page of its own.
  wait_for_stat "$id" recompressed_pages -ge "$n" 10
  after=$(stat_value "$id" compr_data_size)
  vm_log "recompressed $n pages: compr_data_size $before -> $after bytes"
  [ "$after" -lt "$before" ] || vm_fail "compr_data_size did not fall ($before -> $after)"
  dd if="$dev" bs=1M count=2 iflag=direct 2>/dev/null | cmp -s - "$t/tier-text" || vm_fail "recompressed text differs"
  rm -f "$t/tier-text"
  # Once tried, pages are passed by.
  vm_assert_eq "0 pages recompressed" "$("$COBLK_BIN" recompress -n "$id")" "a second coblk recompress"
}


bad_backing() {
  vm_ublk_ready truncate
  local id=$((base_id + 4)) small
  backing_file 64K
  small=$backing
  vm_expect_error "does not exist\|no such" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$t/no-such-file"
  vm_expect_error "neither" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$t"
  vm_expect_error "at least" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$small"
  vm_expect_error "only valid with --backing" "$COBLK_BIN" add -n "$id" -t zram --size 16M --writeback-limit 1M
  vm_expect_error "only valid with -t zram" "$COBLK_BIN" add -n "$id" -t ram --size 16M --backing "$small"
  backing_file 1M
  vm_expect_error "below" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$backing" --writeback-high 50 --writeback-low 60
  # A block device in use (here: as another coblk device's tier) is busy.
  new_kernel_zram 16M
  add_device $((base_id + 5)) -t zram --size 16M --backing "$kz"
  vm_expect_error "busy\|in use" "$COBLK_BIN" add -n "$id" -t zram --size 16M --backing "$kz"
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "a refused add left device $id behind"
  # Commands to a device without a tier, or to no device.
  add_device $((base_id + 6)) -t zram --size 16M
  vm_expect_error "no backing tier" "$COBLK_BIN" writeback -n $((base_id + 6)) --type idle
  vm_expect_error "type must be" "$COBLK_BIN" writeback -n $((base_id + 5)) --type cold
  vm_expect_error "no coblk device" "$COBLK_BIN" idle -n $((base_id + 7))
  vm_expect_error "no second codec" "$COBLK_BIN" recompress -n $((base_id + 6))
  vm_expect_error "recompress" "$COBLK_BIN" add -n "$id" -t zram --size 16M --recompress lzo
}

vm_case "a zram device with a 4 MiB limit and a backing file holds 3x that: fio verifies, bd_stat shows the writeback and the reads back, and packed compressed text reads back byte for byte" file_tier
vm_case "kernel zram as the backing tier (/dev/zramN) takes the written-back pages and fio verifies" kernel_zram_tier
vm_case "a backing device that fails gives I/O errors on written-back pages (never wrong data), stops writeback, and the device is deleted cleanly" failing_backing
vm_case "a backing file overwritten under the device gives I/O errors on the pages written back there, never the other bytes: the checksums catch raw pages too, the log and backing_checksum_errors say so, and new writes make the pages whole" overwritten_backing
vm_case "coblk idle marks pages, a read clears the mark, and coblk writeback moves exactly the idle pages, --max-pages of all, and huge ones" manual_commands
vm_case "a --recovery zram device whose server is killed holding written-back pages recovers them from the same backing file, and fio verifies" recovery_keeps_written_back_pages
vm_case "coblk recompress with --recompress zstd:9 shrinks lz4 text pages, counts them, and the text reads back" recompress_command
vm_case "bad backing paths and options are refused with one line: missing, a directory, too small, busy, watermarks, options without --backing" bad_backing
vm_finish
