#!/bin/sh
# zram-pipeline.sh: a zram device with asynchronous compression
# (--compress-cores): writes complete once their pages are staged, and
# compression tasks on the queues' cores and on other cores install them.
# Every byte verifies, whether read while staged or after compression, on
# one queue with a core only for compression, on two queues, and at the
# memory limit with a backing tier; staged_pages drains to 0 once writing
# stops. Bad combinations are refused with one line.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

base_id=240
t="${TMPDIR:-/tmp}"

# fio_verify DEVICE SIZE [OPTIONS...]: writes SIZE bytes and verifies
# them by crc32c (fio's 50%-compressible buffers unless OPTIONS say else).
fio_verify() {
  local dev="$1" size="$2"
  shift 2
  fio --name=pipeline --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=16 \
      --rw=randwrite --bs=4k --size="$size" --buffer_compress_percentage=50 --refill_buffers \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse "$@" >"$t/pipeline-fio.log" 2>&1 \
    || { tail -n 20 "$t/pipeline-fio.log" >&2; vm_fail "fio crc32c verification failed on $dev"; }
}

# drained ID: staged_pages falls to 0 and some data is compressed.
drained() {
  wait_for_stat "$1" staged_pages -eq 0 10
  local orig compr
  orig=$(stat_value "$1" orig_data_size)
  compr=$(stat_value "$1" compr_data_size)
  vm_log "device $1: orig_data_size $orig, compr_data_size $compr, staged_pages 0"
  [ "$compr" -gt 0 ] || vm_fail "nothing was compressed on device $1"
}

# Text (compresses well) written and read back byte for byte at once,
# while its pages are still staged or being compressed.
text_roundtrip() {
  local dev="$1"
  seq 1 900000 | head -c $((4 << 20)) > "$t/pipeline-text"
  dd if="$t/pipeline-text" of="$dev" bs=64k oflag=direct 2>/dev/null || vm_fail "writing text to $dev failed"
  dd if="$dev" bs=64k count=64 iflag=direct 2>/dev/null | cmp -s - "$t/pipeline-text" \
    || vm_fail "text read back from $dev differs"
}

one_queue_two_compression_cores() {
  vm_ublk_ready fio cmp
  local id="$base_id" dev="/dev/ublkb$base_id"
  add_device "$id" -t zram --size 64M --compress-cores 2
  text_roundtrip "$dev"
  fio_verify "$dev" 8M
  drained "$id"
  # Read again once every page is compressed.
  fio_verify "$dev" 8M --verify_only
  dd if="$dev" bs=64k count=64 iflag=direct 2>/dev/null | cmp -s - "$t/pipeline-text" \
    && vm_fail "the text should have been overwritten by fio"
  rm -f "$t/pipeline-text"
  "$COBLK_BIN" stats -n "$id" --json | grep -q '"staged_pages"' || vm_fail "coblk stats --json has no staged_pages"
}

two_queues_two_jobs() {
  vm_ublk_ready fio
  local id=$((base_id + 1)) dev="/dev/ublkb$((base_id + 1))"
  add_device "$id" -t zram --size 64M -q 2 --compress-cores 2
  # Two jobs on disjoint halves: blk-mq spreads them over both queues.
  fio --name=a --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=16 --rw=randwrite --bs=4k \
      --offset=0 --size=4M --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_fatal=1 \
      --name=b --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=16 --rw=randwrite --bs=4k \
      --offset=32M --size=4M --buffer_compress_percentage=50 --refill_buffers --verify=crc32c --verify_fatal=1 \
      --output-format=terse >"$t/pipeline-fio.log" 2>&1 \
    || { tail -n 20 "$t/pipeline-fio.log" >&2; vm_fail "fio crc32c verification failed with two jobs"; }
  drained "$id"
}

at_the_limit_with_a_backing_tier() {
  vm_ublk_ready fio truncate
  local id=$((base_id + 2)) dev="/dev/ublkb$((base_id + 2))" failed
  backing_file 64M
  add_device "$id" -t zram --size 64M --mem-limit 4M --backing "$backing" --compress-cores 2
  # 16 MiB, 8 of them random (stored raw): twice the limit.
  fio_fill "$dev" 16M
  drained "$id"
  failed=$(stat_value "$id" failed_writes)
  vm_assert_eq 0 "$failed" "failed_writes"
  [ "$(stat_value "$id" written_back_pages)" -gt 0 ] || vm_fail "nothing was written back"
  [ "$(stat_value "$id" mem_used_total)" -le "$(stat_value "$id" mem_limit)" ] || vm_fail "mem_used_total exceeds the limit"
}

# --entropy-routing with a backing tier and no memory pressure: random
# pages (fio's 50%-compressible buffers are half random) are stored raw
# and written back at the next maintenance tick; text goes through the
# codecs; everything verifies.
entropy_routing_sends_random_pages_to_the_tier() {
  vm_ublk_ready fio truncate cmp
  local id=$((base_id + 4)) dev="/dev/ublkb$((base_id + 4))"
  truncate -s 32M "$t/pipeline-backing2" || vm_fail "cannot create a backing file"
  vm_defer "rm -f $t/pipeline-backing2"
  add_device "$id" -t zram --size 32M --recompress zstd:3 --entropy-routing --backing "$t/pipeline-backing2" \
    --compress-cores 1
  fio --name=routing --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=8 --rw=write --bs=64k --size=4M \
      --buffer_compress_percentage=0 --refill_buffers --output-format=terse >"$t/pipeline-fio.log" 2>&1 \
    || { tail -n 20 "$t/pipeline-fio.log" >&2; vm_fail "fio failed"; }
  text_roundtrip "$dev"  # over the first 4 MiB: text replaces the random pages there
  fio --name=routing --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=8 --rw=write --bs=64k \
      --offset=8M --size=4M --buffer_compress_percentage=0 --refill_buffers --verify=crc32c --do_verify=1 \
      --verify_fatal=1 --output-format=terse >"$t/pipeline-fio.log" 2>&1 \
    || { tail -n 20 "$t/pipeline-fio.log" >&2; vm_fail "fio verification failed with entropy routing"; }
  # 1024 random pages: written back at the next ticks, without any limit.
  wait_for_stat "$id" written_back_pages -ge 1000 10
  vm_log "written back $(stat_value "$id" written_back_pages) pages; compr_data_size $(stat_value "$id" compr_data_size)"
  echo 3 > /proc/sys/vm/drop_caches
  dd if="$dev" bs=64k count=64 iflag=direct 2>/dev/null | cmp -s - "$t/pipeline-text" || vm_fail "text differs"
  fio --name=routing --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=8 --rw=write --bs=64k \
      --offset=8M --size=4M --buffer_compress_percentage=0 --refill_buffers --verify=crc32c --verify_only \
      --verify_fatal=1 --output-format=terse >"$t/pipeline-fio.log" 2>&1 \
    || { tail -n 20 "$t/pipeline-fio.log" >&2; vm_fail "fio verification of written-back pages failed"; }
  rm -f "$t/pipeline-text"
}


bad_options() {
  vm_ublk_ready
  local id=$((base_id + 3)) cpus
  cpus=$(grep -c ^processor /proc/cpuinfo)
  vm_expect_error "at most 64 with --recovery" "$COBLK_BIN" add -n "$id" -t zram --size 16M --compress-cores 65 --recovery
  vm_expect_error "only valid with -t zram" "$COBLK_BIN" add -n "$id" -t ram --size 16M --compress-cores 1
  vm_expect_error "whole number from 0 to 256" "$COBLK_BIN" add -n "$id" -t zram --size 16M --compress-cores 300
  vm_expect_error "whole number from 0 to 256" "$COBLK_BIN" add -n "$id" -t zram --size 16M --compress-cores two
  vm_expect_error "needs --recompress" "$COBLK_BIN" add -n "$id" -t zram --size 16M --entropy-routing
  vm_expect_error "CPUs available" "$COBLK_BIN" add -n "$id" -t zram --size 16M --compress-cores $((cpus + 1))
  [ ! -e "/sys/class/ublk-char/ublkc$id" ] || vm_fail "a refused add left device $id behind"
}

vm_case "one queue with --compress-cores 2: text reads back while staged, fio crc32c verifies, and staged pages drain to compressed objects" one_queue_two_compression_cores
vm_case "two queues with --compress-cores 2: two fio jobs verify and staged pages drain" two_queues_two_jobs
vm_case "at a 4 MiB limit with a backing file, --compress-cores 2 holds twice the limit: fio verifies, no write fails, mem_used_total stays under the limit" at_the_limit_with_a_backing_tier
vm_case "--entropy-routing with a backing tier: random pages are stored raw and written back without memory pressure, text is compressed, everything verifies" entropy_routing_sends_random_pages_to_the_tier
vm_case "bad --compress-cores uses are refused with one line: over 64 with --recovery, on a ram device, out of range, more cores than CPUs" bad_options
vm_finish
