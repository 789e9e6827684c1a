#!/bin/sh
# bench.sh: coblk's ublk targets against their kernel counterparts, in one
# boot, side by side. Runs in the VM harness (or on a host with ublk, as root).
#
# For each pair (coblk null vs null_blk, coblk ram vs brd, coblk loop on a
# tmpfs file vs that file, coblk zram vs kernel zram; asked for by name,
# nbd (coblk -t nbd vs the kernel's nbd client on one nbdkit server) and
# nbd_scaling (coblk -t nbd at 2 queues vs 1); and, asked for by
# name, ram_keep/zram_keep/ram_now/zram_now: this build against an earlier
# one, and null_metrics: a null device with I/O metrics against one with
# --no-metrics; see below) and each workload, it
# alternates A and B for COBLK_BENCH_ROUNDS rounds (A first in odd rounds, B
# first in even ones, so drift in the emulator hits both alike) and prints
#   COBLK-BENCH {"pair":"null","workload":"randread_4k_qd32","round":1,"ours":..,"baseline":..,"unit":"iops"}
# The host side (perf/ublk/vm-bench) turns the rounds into median ratios.
. "${COBLK_VM_LIB:-$(dirname "$0")/../../../test/vm/lib.sh}"

# In the VM the host's settings arrive as a file (perf/ublk/vm-bench).
[ -f /coblk/extra/bench.env ] && . /coblk/extra/bench.env
ROUNDS=${COBLK_BENCH_ROUNDS:-5}
RUNTIME=${COBLK_BENCH_RUNTIME:-3}
QUEUES=${COBLK_BENCH_QUEUES:-1}
PAIRS=${COBLK_BENCH_PAIRS:-"null ram loop zram"}
SIZE_MB=256

# fio_run DEV RW BS QD -> prints IOPS (4k) or KiB/s (1M) on stdout
fio_run() {
  local dev=$1 rw=$2 bs=$3 qd=$4 out direct=1
  # A regular file (the loop baseline lives on tmpfs) cannot take O_DIRECT.
  [ -f "$dev" ] && direct=0
  out=$(fio --name=b --filename="$dev" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      ${JOBS:+--numjobs=$JOBS --group_reporting --cpus_allowed_policy=split} \
      --ioengine=io_uring --direct=$direct --size=${SIZE_MB}M --runtime="$RUNTIME" --time_based \
      --buffer_compress_percentage=50 --refill_buffers --randrepeat=0 --norandommap \
      --output-format=terse --terse-version=3 2>/dev/null) || return 1
  # terse v3: field 7/8 read KiB/s / IOPS, 48/49 write KiB/s / IOPS
  case "$rw" in
    randread) echo "$out" | awk -F';' '{ print $8 }' ;;
    randwrite) echo "$out" | awk -F';' '{ print $49 }' ;;
    read) echo "$out" | awk -F';' '{ print $7 }' ;;
    write) echo "$out" | awk -F';' '{ print $48 }' ;;
  esac
}

# Fill a device once so reads hit stored data, not holes.
precondition() {
  fio --name=fill --filename="$1" --rw=write --bs=1M --iodepth=8 --ioengine=io_uring --direct=1 \
      --size=${SIZE_MB}M --buffer_compress_percentage=50 --refill_buffers >/dev/null 2>&1
}

compare() {  # pair devA devB [WORKLOAD...]: only the named workloads, if any are given
  local pair=$1 a=$2 b=$3 w rw bs qd unit r first ours base only
  shift 3
  only=" $* "
  for w in randread_4k_qd32:randread:4k:32:iops randread_4k_qd1:randread:4k:1:iops \
           randwrite_4k_qd32:randwrite:4k:32:iops seqread_1m:read:1M:8:KiB/s seqwrite_1m:write:1M:8:KiB/s; do
    IFS=: read -r name rw bs qd unit <<EOW
$w
EOW
    [ "$only" = "  " ] || case "$only" in *" $name "*) ;; *) continue ;; esac
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
      if [ $((r % 2)) -eq 1 ]; then
        ours=$(fio_run "$a" "$rw" "$bs" "$qd"); base=$(fio_run "$b" "$rw" "$bs" "$qd")
      else
        base=$(fio_run "$b" "$rw" "$bs" "$qd"); ours=$(fio_run "$a" "$rw" "$bs" "$qd")
      fi
      echo "COBLK-BENCH {\"pair\":\"$pair\",\"workload\":\"$name\",\"round\":$r,\"ours\":${ours:-0},\"baseline\":${base:-0},\"unit\":\"$unit\"}"
      r=$((r + 1))
    done
  done
}

coblk_add() {  # prints the block device
  "$COBLK_BIN" add -q "$QUEUES" "$@"
}

# The coblk of an earlier build, for the *_keep pairs (perf/ublk/vm-bench
# --before): shipped as /coblk/extra/coblk-before, or named by
# COBLK_BENCH_BEFORE in host mode. Without it the baseline is this build.
BEFORE_BIN=${COBLK_BENCH_BEFORE:-}
[ -x /coblk/extra/coblk-before ] && BEFORE_BIN=/coblk/extra/coblk-before
before_add() {  # prints the block device
  "${BEFORE_BIN:-$COBLK_BIN}" add -q "$QUEUES" "$@"
}
coblk_del_dev() {  # /dev/ublkbN
  "$COBLK_BIN" del -n "${1#/dev/ublkb}"
}

bench_null() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  vm_load_module null_blk nr_devices=1 gb=1 submit_queues="$QUEUES" queue_mode=2
  vm_defer "rmmod null_blk"
  local dev; dev=$(coblk_add -t null --size 1G)
  vm_defer "coblk_del_dev $dev"
  compare null "$dev" /dev/nullb0
}

bench_ram() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  vm_load_module brd rd_nr=1 rd_size=$((SIZE_MB * 1024))
  vm_defer "rmmod brd"
  local dev; dev=$(coblk_add -t ram --size ${SIZE_MB}M)
  vm_defer "coblk_del_dev $dev"
  precondition "$dev"; precondition /dev/ram0
  compare ram "$dev" /dev/ram0
}

bench_loop() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  # The baseline is fio on the backing file itself (tmpfs: buffered, since
  # tmpfs has no O_DIRECT); coblk's side is the block device with O_DIRECT.
  dd if=/dev/zero of=/dev/shm/loop-a.img bs=1M count=$SIZE_MB 2>/dev/null
  dd if=/dev/zero of=/dev/shm/loop-b.img bs=1M count=$SIZE_MB 2>/dev/null
  vm_defer "rm -f /dev/shm/loop-a.img /dev/shm/loop-b.img"
  local dev; dev=$(coblk_add -t loop -f /dev/shm/loop-a.img)
  vm_defer "coblk_del_dev $dev"
  compare loop "$dev" /dev/shm/loop-b.img
}

bench_zram() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  vm_load_module zram
  local id; id=$(cat /sys/class/zram-control/hot_add)
  vm_defer "echo 1 > /sys/block/zram$id/reset; echo $id > /sys/class/zram-control/hot_remove"
  echo lz4 > "/sys/block/zram$id/comp_algorithm"
  echo ${SIZE_MB}M > "/sys/block/zram$id/disksize"
  local dev; dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm lz4)
  vm_defer "coblk_del_dev $dev"
  precondition "$dev"; precondition "/dev/zram$id"
  compare zram "$dev" "/dev/zram$id"
}

# The I/O metrics (per-request timestamps, counters and latency histograms,
# published every second): a null device with them against one added with
# --no-metrics, same build, same boot. What the metrics cost in IOPS.
bench_null_metrics() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local dev base
  dev=$(coblk_add -t null --size 1G)
  vm_defer "coblk_del_dev $dev"
  base=$(coblk_add -t null --size 1G --no-metrics)
  vm_defer "coblk_del_dev $base"
  compare null_metrics "$dev" "$base" randread_4k_qd32 randread_4k_qd1
}

# Crash-safe memory: this build's ram/zram with --recovery (data in memfds
# held by a keeper, journalled entry updates) against the earlier build's
# device without it (private memory): what keeping the data costs.
bench_ram_keep() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local dev base
  dev=$(coblk_add -t ram --size ${SIZE_MB}M --recovery)
  vm_defer "coblk_del_dev $dev"
  base=$(before_add -t ram --size ${SIZE_MB}M)
  vm_defer "coblk_del_dev $base"
  precondition "$dev"; precondition "$base"
  compare ram_keep "$dev" "$base"
}

bench_zram_keep() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local dev base
  dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm lz4 --recovery)
  vm_defer "coblk_del_dev $dev"
  base=$(before_add -t zram --size ${SIZE_MB}M --algorithm lz4)
  vm_defer "coblk_del_dev $base"
  precondition "$dev"; precondition "$base"
  compare zram_keep "$dev" "$base"
}

# The same without --recovery: this build's plain ram/zram against the
# earlier build's (the journal is on every zram write either way).
bench_ram_now() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local dev base
  dev=$(coblk_add -t ram --size ${SIZE_MB}M)
  vm_defer "coblk_del_dev $dev"
  base=$(before_add -t ram --size ${SIZE_MB}M)
  vm_defer "coblk_del_dev $base"
  precondition "$dev"; precondition "$base"
  compare ram_now "$dev" "$base"
}

bench_zram_now() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local dev base
  dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm lz4)
  vm_defer "coblk_del_dev $dev"
  base=$(before_add -t zram --size ${SIZE_MB}M --algorithm lz4)
  vm_defer "coblk_del_dev $base"
  precondition "$dev"; precondition "$base"
  compare zram_now "$dev" "$base"
}

# coblk -t nbd against the kernel's nbd client (nbd.ko, set up by
# nbd-client), both on one nbdkit memory server over one unix socket, with
# as many connections as queues (nbd-client -C), 4096-byte blocks.
# Not in $(...): the server must be a child of the case, not of a subshell.
NBD_SOCK=/tmp/bench-nbdkit.sock
nbd_server() {  # starts nbdkit on $NBD_SOCK
  rm -f "$NBD_SOCK"
  vm_spawn /tmp/bench-nbdkit.log nbdkit -f -U "$NBD_SOCK" --threads 16 memory $((SIZE_MB * 2))M
  vm_wait_for_path "$NBD_SOCK" 20
}

bench_nbd() {
  vm_require_coblk; vm_require_root; vm_require_cmd nbdkit nbd-client
  vm_load_module ublk_drv
  vm_load_module nbd nbds_max=2
  local sock=$NBD_SOCK dev
  nbd_server
  dev=$(coblk_add -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $dev"
  nbd-client -unix "$sock" /dev/nbd0 -b 4096 -C "$QUEUES" >/tmp/nbd-client.log 2>&1 \
    || { cat /tmp/nbd-client.log >&2; vm_fail "nbd-client could not attach /dev/nbd0"; }
  vm_defer "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
  vm_wait_for_path /sys/block/nbd0/pid 10
  precondition "$dev"; precondition /dev/nbd0
  compare nbd "$dev" /dev/nbd0
}

# coblk -t nbd with 2 queues (2 connections) against 1 queue, same server:
# how the queues scale (needs multi-threaded TCG to mean anything: run
# vm-bench with COBLK_VM_TCG_THREAD=multi).
bench_nbd_scaling() {
  vm_require_coblk; vm_require_root; vm_require_cmd nbdkit
  vm_load_module ublk_drv
  local sock=$NBD_SOCK two one
  nbd_server
  two=$("$COBLK_BIN" add -q 2 -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $two"
  one=$("$COBLK_BIN" add -q 1 -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $one"
  precondition "$two"; precondition "$one"
  JOBS=2 compare nbd_scaling "$two" "$one"
}

for p in $PAIRS; do
  vm_case "bench_$p" "bench_$p"
done
vm_finish
