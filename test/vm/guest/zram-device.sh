#!/bin/sh
# zram-device.sh: coblk's zram target keeps what is written to it on both data
# paths (copy, user copy) with one and two queues: fio crc32c verification of
# half-compressible, mostly-zero and random data, ext4 across a remount;
# `coblk stats` shows the data stored compressed and zero pages stored as
# metadata, and a discard frees them; --mem-limit turns writes beyond it into
# I/O errors while the data written before stays intact.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
base_id=100

# ---- helpers ---------------------------------------------------------------

# add_zram ID PATH QUEUES ARGS...: a zram device on the data path PATH
# (copy | user-copy), skipped when the kernel lacks that path.
add_zram() {
  local id="$1" path="$2" queues="$3"
  shift 3
  if [ "$path" = user-copy ]; then
    "$COBLK_BIN" features | grep -qw USER_COPY || vm_skip "the kernel lacks USER_COPY (needs Linux 6.5+)"
  fi
  add_device "$id" -t zram -q "$queues" "--$path" "$@"
}

# nonzero_bytes DEVICE SKIP_MIB COUNT_MIB: how many bytes of the range are not zero.
nonzero_bytes() {
  dd if="$1" bs=1M skip="$2" count="$3" iflag=direct 2>/dev/null | tr -d '\000' | wc -c
}

# fio_verify DEVICE JOBS OFFSET SIZE [FIO OPTIONS...]: random writes of
# 4 KiB..256 KiB with crc32c verification from JOBS jobs pinned to their own
# CPUs (so that each queue sees traffic), each job SIZE bytes of its own
# stripe starting at OFFSET.
fio_verify() {
  local dev="$1" jobs="$2" offset="$3" size="$4" log="${TMPDIR:-/tmp}/zram-fio.log"
  shift 4
  fio --name=verify --filename="$dev" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange=4k-256k --iodepth=16 --offset="$offset" --size="$size" \
      --numjobs="$jobs" --offset_increment="$size" \
      --cpus_allowed=0-$((jobs - 1)) --cpus_allowed_policy=split \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse "$@" >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; vm_fail "fio crc32c verification failed on $dev ($*)"; }
}

# ---- cases -----------------------------------------------------------------

# Three kinds of data, each in its own region of a 128 MiB device:
# half-compressible, mostly zeros (only fio's verify headers are not zero)
# and random (incompressible, stored raw).
fio_verify_kinds() {
  local path="$1" queues="$2" id="$3" dev="/dev/ublkb$3" orig compr
  vm_ublk_ready fio
  add_zram "$id" "$path" "$queues" --size 128M
  fio_verify "$dev" "$queues" 0 8M --buffer_compress_percentage=50 --refill_buffers
  fio_verify "$dev" "$queues" 32M 8M --zero_buffers
  fio_verify "$dev" "$queues" 64M 8M --refill_buffers
  wait_for_stat "$id" orig_data_size -gt 0
  orig=$(stat_value "$id" orig_data_size)
  compr=$(stat_value "$id" compr_data_size)
  vm_log "zram device $id holds $orig bytes in $compr"
  [ "$compr" -gt 0 ] && [ "$compr" -lt "$orig" ] || vm_fail "expected 0 < compr_data_size ($compr) < orig_data_size ($orig)"
}

stats_and_discard() {
  local path="$1" queues="$2" id="$3" dev="/dev/ublkb$3" orig compr same before
  vm_ublk_ready fio
  vm_require_cmd blkdiscard
  add_zram "$id" "$path" "$queues" --size 64M
  vm_assert_eq 0 "$(stat_value "$id" orig_data_size)" "orig_data_size of a new device"
  vm_assert_eq 67108864 "$(stat_value "$id" disksize)" "disksize"

  # Compressible data: stored, and smaller.
  fio --name=fill --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=64k \
      --size=16M --buffer_compress_percentage=50 --refill_buffers --output-format=terse >/dev/null \
    || vm_fail "fio could not write compressible data"
  wait_for_stat "$id" orig_data_size -ge $((16 << 20))
  orig=$(stat_value "$id" orig_data_size)
  compr=$(stat_value "$id" compr_data_size)
  vm_log "after 16 MiB of 50%-compressible data: orig_data_size $orig, compr_data_size $compr"
  [ "$compr" -gt 0 ] && [ "$compr" -lt "$orig" ] || vm_fail "expected 0 < compr_data_size ($compr) < orig_data_size ($orig)"

  # Zero pages: metadata only, and they read back as zeros.
  before=$(stat_value "$id" same_pages)
  dd if=/dev/zero of="$dev" bs=1M seek=32 count=8 oflag=direct 2>/dev/null
  wait_for_stat "$id" same_pages -ge $((before + 2048))
  same=$(stat_value "$id" same_pages)
  vm_log "after 8 MiB of zeros: same_pages $same"
  vm_assert_eq 0 "$(nonzero_bytes "$dev" 32 8)" "non-zero bytes read back from zero pages"

  # Both outputs of coblk stats say the same.
  "$COBLK_BIN" stats -n "$id"
  # The table has zramctl's columns; ZERO-PAGES is same_pages.
  "$COBLK_BIN" stats -n "$id" | awk -v want="$same" '
      NR == 1 { for (i = 1; i <= NF; i++) if ($i == "ZERO-PAGES") col = i; next }
      col && $col == want { found = 1 } END { exit !found }' \
    || vm_fail "coblk stats -n $id does not show ZERO-PAGES $same"
  "$COBLK_BIN" stats --json | grep -q "\"dev_id\":${id}[,}]" || vm_fail "coblk stats --json does not list device $id"

  # A discard of the whole device frees everything.
  blkdiscard "$dev"
  wait_for_stat "$id" orig_data_size -eq 0
  wait_for_stat "$id" same_pages -eq 0
  wait_for_stat "$id" compr_data_size -eq 0
  vm_log "after blkdiscard: mem_used_total $(stat_value "$id" mem_used_total)"
  vm_assert_eq 0 "$(nonzero_bytes "$dev" 0 64)" "non-zero bytes read back after a discard of the device"
}

ext4_on_zram() {
  local path="$1" queues="$2" id="$3" dev="/dev/ublkb$3" mnt="/mnt/coblk-$3" sums="${TMPDIR:-/tmp}/zram-ext4.sums" i
  vm_ublk_ready fio
  vm_require_cmd mkfs.ext4
  grep -qw ext4 /proc/filesystems || vm_load_module ext4
  add_zram "$id" "$path" "$queues" --size 128M
  mkfs.ext4 -q -F "$dev"
  mkdir -p "$mnt"
  mount -t ext4 "$dev" "$mnt"
  vm_defer "umount $mnt"
  for i in 1 2 3; do
    dd if=/dev/urandom of="$mnt/random$i" bs=1M count=$i 2>/dev/null
  done
  # Text compresses well, which exercises the compressed (not raw) pages.
  seq 1 200000 > "$mnt/numbers.txt"
  mkdir -p "$mnt/dir"
  for i in 1 2 3 4 5 6 7 8; do echo "small file $i" > "$mnt/dir/small$i"; done
  (cd "$mnt" && sha256sum random1 random2 random3 numbers.txt dir/small*) > "$sums"
  umount "$mnt"
  echo 3 > /proc/sys/vm/drop_caches
  mount -t ext4 "$dev" "$mnt"
  (cd "$mnt" && sha256sum -c "$sums" >/dev/null) || vm_fail "file checksums changed across remount of $dev"
  umount "$mnt"
}

# 8 MiB of memory for a 64 MiB device: random data cannot fit past it.
mem_limit_fails_writes() {
  local path="$1" queues="$2" id="$3" dev="/dev/ublkb$3" t="${TMPDIR:-/tmp}" pid used limit failed
  vm_ublk_ready fio
  add_zram "$id" "$path" "$queues" --size 64M --mem-limit 8M
  vm_assert_eq $((8 << 20)) "$(stat_value "$id" mem_limit)" "mem_limit"
  pid=$("$COBLK_BIN" list -n "$id" | awk -v id="$id" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PID") c = i; next } $1 == id { print $c }')
  # 4 MiB within the limit, verified.
  fio --name=early --filename="$dev" --ioengine=psync --direct=1 --rw=write --bs=64k \
      --size=4M --refill_buffers --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --output-format=terse >"$t/early.log" 2>&1 \
    || { tail -n 5 "$t/early.log" >&2; vm_fail "writing 4 MiB under an 8 MiB limit failed"; }
  # 32 MiB of random data further on must fail part way.
  if dd if=/dev/urandom of="$dev" bs=1M seek=16 count=32 oflag=direct 2>"$t/dd.err"; then
    vm_fail "32 MiB of random data fit under an 8 MiB memory limit"
  fi
  vm_log "dd beyond the limit: $(grep -i -m1 'error' "$t/dd.err" || tail -n 1 "$t/dd.err")"
  kill -0 "$pid" || vm_fail "the server died when its memory limit was reached"
  wait_for_stat "$id" failed_writes -gt 0
  used=$(stat_value "$id" mem_used_total)
  limit=$(stat_value "$id" mem_limit)
  failed=$(stat_value "$id" failed_writes)
  vm_log "mem_used_total $used of mem_limit $limit, failed_writes $failed"
  [ "$used" -le "$limit" ] || vm_fail "mem_used_total $used exceeds mem_limit $limit"
  # What was written before the limit is intact, and the device still serves.
  fio --name=early --filename="$dev" --ioengine=psync --direct=1 --rw=write --bs=64k \
      --size=4M --refill_buffers --verify=crc32c --verify_only --verify_fatal=1 \
      --output-format=terse >"$t/early.log" 2>&1 \
    || { tail -n 5 "$t/early.log" >&2; vm_fail "data written before the limit was reached no longer verifies"; }
  # Zero pages cost no memory, so they are still accepted.
  dd if=/dev/zero of="$dev" bs=1M seek=56 count=4 oflag=direct 2>/dev/null \
    || vm_fail "zero pages were refused at the memory limit"
}

algorithms_keep_data() {
  local alg="$1" id="$2"
  vm_ublk_ready fio
  add_zram "$id" copy 1 --size 64M --algorithm "$alg"
  "$COBLK_BIN" stats --json | grep "\"dev_id\":${id}[,}]" | grep -q "\"compression\":\"${alg%%:*}" \
    || vm_fail "coblk stats does not show algorithm $alg: $("$COBLK_BIN" stats --json)"
  fio_verify "/dev/ublkb$id" 1 0 16M --buffer_compress_percentage=60 --refill_buffers
}

# expect_add_error PATTERN ARGS...: coblk add ARGS fails with one stderr line
# matching PATTERN, and leaves no device behind.
expect_add_error() {
  local pattern="$1" rc=0 t="${TMPDIR:-/tmp}"
  shift
  "$COBLK_BIN" add "$@" >"$t/add.out" 2>"$t/add.err" || rc=$?
  vm_log "coblk add $*: exit $rc: $(cat "$t/add.err")"
  [ "$rc" -ne 0 ] || { "$COBLK_BIN" del -n "$base_id"; vm_fail "coblk add $* succeeded"; }
  vm_assert_eq 1 "$(wc -l < "$t/add.err")" "stderr lines"
  grep -qi -e "$pattern" "$t/add.err" || vm_fail "the error does not match '$pattern'"
  [ ! -e "/sys/class/ublk-char/ublkc$base_id" ] || vm_fail "a device was left behind"
}

bad_zram_options() {
  vm_ublk_ready fio
  expect_add_error "algorithm\|lzo" -t zram -n "$base_id" --size 64M --algorithm lzo
  expect_add_error "level\|zstd" -t zram -n "$base_id" --size 64M --algorithm zstd:99
  expect_add_error "accel\|lz4" -t zram -n "$base_id" --size 64M --algorithm lz4:0
  expect_add_error "not a size" -t zram -n "$base_id" --size 64M --mem-limit lots
  expect_add_error "4096\|multiple" -t zram -n "$base_id" --size 6K
}

stats_of_non_zram() {
  local id=$((base_id + 1)) rc=0
  vm_ublk_ready fio
  add_device "$id" -t ram --size 16M
  "$COBLK_BIN" stats -n "$id" 2>"${TMPDIR:-/tmp}/stats.err" || rc=$?
  vm_log "coblk stats of a ram device: exit $rc: $(cat "${TMPDIR:-/tmp}/stats.err")"
  [ "$rc" -ne 0 ] || vm_fail "coblk stats of a ram device succeeded"
}

id=$((base_id + 2))
for q in 1 2; do
  for path in copy user-copy; do
    vm_case "a zram device with $q queue(s) on the $path path passes fio verification of half-compressible, mostly-zero and random data and stores them compressed" \
      fio_verify_kinds "$path" "$q" "$id"
    id=$((id + 1))
  done
done
vm_case "coblk stats shows compressed data and zero pages of a 1-queue copy-path zram device, and blkdiscard frees them" \
  stats_and_discard copy 1 "$id"; id=$((id + 1))
vm_case "coblk stats shows compressed data and zero pages of a 2-queue user-copy zram device, and blkdiscard frees them" \
  stats_and_discard user-copy 2 "$id"; id=$((id + 1))
vm_case "ext4 on a 2-queue copy-path zram device keeps file checksums across a remount" \
  ext4_on_zram copy 2 "$id"; id=$((id + 1))
vm_case "ext4 on a 1-queue user-copy zram device keeps file checksums across a remount" \
  ext4_on_zram user-copy 1 "$id"; id=$((id + 1))
vm_case "writes beyond --mem-limit fail with I/O errors, the server lives on and earlier data still verifies (copy, 1 queue)" \
  mem_limit_fails_writes copy 1 "$id"; id=$((id + 1))
vm_case "writes beyond --mem-limit fail with I/O errors, the server lives on and earlier data still verifies (user-copy, 2 queues)" \
  mem_limit_fails_writes user-copy 2 "$id"; id=$((id + 1))
for alg in zstd zstd:1 lz4:8; do
  vm_case "a zram device compressing with $alg passes fio verification" algorithms_keep_data "$alg" "$id"
  id=$((id + 1))
done
vm_case "bad zram options (unknown algorithm, zstd level 99, lz4 acceleration 0, --mem-limit lots, size not a page multiple) are refused" bad_zram_options
vm_case "coblk stats of a device that is not zram fails" stats_of_non_zram
vm_finish
