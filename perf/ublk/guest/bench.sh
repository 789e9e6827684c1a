#!/bin/sh
# bench.sh: coblk's ublk targets against their kernel counterparts, in one
# boot, side by side. Runs in the VM harness (or on a host with ublk, as root).
#
# For each pair (coblk null vs null_blk, coblk ram vs brd, coblk loop on a
# tmpfs file vs that file, coblk zram vs kernel zram; asked for by name,
# nbd (coblk -t nbd vs the kernel's nbd client on one nbdkit server),
# nbd_scaling (coblk -t nbd at 2 queues vs 1), nbd_zc (coblk -t nbd
# --zero-copy vs the kernel's nbd client), nbd_zc_copy (--zero-copy vs the
# copy path), zram_tier (zram with a
# backing device vs kernel zram with one, everything written back) and
# zram_mem (orig_data_size / mem_used_total vs kernel zram); and, asked for by
# name, ram_keep/zram_keep/ram_now/zram_now/nbd_now: this build against an
# earlier one, and null_metrics: a null device with I/O metrics against one with
# --no-metrics; null_sqpoll: --sqpoll against without, with the
# io_uring_enter rate of both; nvme: the loop target with --iopoll and with
# --passthrough against plain O_DIRECT, on the emulated NVMe disk; see below)
# and each workload, it
# alternates A and B for COBLK_BENCH_ROUNDS rounds (A first in odd rounds, B
# first in even ones, so drift in the emulator hits both alike) and prints
#   COBLK-BENCH {"pair":"null","workload":"randread_4k_qd32","round":1,"ours":..,"baseline":..,"unit":"iops"}
# The host side (perf/ublk/vm-bench) turns the rounds into median ratios.
. "${COBLK_VM_LIB:-$(dirname "$0")/../../../test/vm/lib.sh}"

# In the VM the host's settings arrive as a file (perf/ublk/vm-bench).
[ -f /coblk/extra/bench.env ] && . /coblk/extra/bench.env
ROUNDS=${COBLK_BENCH_ROUNDS:-5}
RUNTIME=${COBLK_BENCH_RUNTIME:-3}
QUEUE_COUNTS=${COBLK_BENCH_QUEUES:-1}
QUEUES=1 JOBS=1 QSUFFIX=
PAIRS=${COBLK_BENCH_PAIRS:-"null ram loop zram"}
SIZE_MB=256
# Extra `coblk add` options of the zram_tier pair's device. By default no
# re-admission, so that both sides keep reading from their tiers (the
# fraction written back stays the same); e.g. "--readmit-reads 2" shows it.
ZRAM_TIER_ARGS=${COBLK_BENCH_ZRAM_TIER_ARGS:---readmit-reads 0}

# fio_stats DEV RW BS QD [FIO ARGS...] -> one line on stdout:
#   VALUE FIO_CPU_US SRV_CPU_US SYNC_P99_US WRITE_P99_US
# VALUE is IOPS (4k) or KiB/s (1M); FIO_CPU_US fio's own CPU (usr+sys) per
# I/O in microseconds; SRV_CPU_US the ublk server's CPU per I/O (0 for a
# kernel device); SYNC_P99_US the 99th percentile of fio's fsync latency
# (0 without --fsync/--fdatasync); WRITE_P99_US that of the writes'
# completion latency (0 without writes). $JOBS (default 1) sets numjobs.
fio_stats() {
  local dev=$1 rw=$2 bs=$3 qd=$4 out direct=1 pid t0 t1
  shift 4
  # A regular file (the loop baseline lives on tmpfs) cannot take O_DIRECT.
  [ -f "$dev" ] && direct=0
  pid=$(server_pid "$dev")
  t0=$(proc_ticks "$pid")
  out=$(fio --name=b --filename="$dev" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      --numjobs="${JOBS:-1}" --group_reporting --cpus_allowed_policy=split \
      --ioengine=io_uring --direct=$direct --size=${SIZE_MB}M --runtime="$RUNTIME" --time_based \
      --buffer_compress_percentage=50 --refill_buffers --randrepeat=0 --norandommap \
      "$@" --output-format=json 2>/dev/null) || return 1
  t1=$(proc_ticks "$pid")
  # The job's figures (group_reporting: one job). Sections "read", "write",
  # "trim", "sync" open an object each; "iops" and "total_ios" are read in
  # the section they belong to, the fsync p99 only inside "sync".
  echo "$out" | awk -v rw="$rw" -v srv_ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
    function val(s) { sub(/,$/, "", s); return s + 0 }
    $1 ~ /^"(read|write|trim|sync)"$/ && $3 == "{" { sec = $1; gsub(/"/, "", sec); next }
    sec != "" && $1 == "\"iops\"" && !(sec in iops) { iops[sec] = val($3) }
    sec != "" && $1 == "\"bw\"" && !(sec in bw) { bw[sec] = val($3) }
    sec != "" && $1 == "\"total_ios\"" && !(sec in ios) { ios[sec] = val($3) }
    sec == "sync" && $1 == "\"99.000000\"" && p99 == "" { p99 = val($3) / 1000 }
    sec == "write" && $1 == "\"99.000000\"" && wp99 == "" { wp99 = val($3) / 1000 }
    $1 == "\"job_runtime\"" { runtime_ms = val($3); sec = "" }
    $1 == "\"usr_cpu\"" { usr = val($3) }
    $1 == "\"sys_cpu\"" { sys = val($3) }
    END {
      n = ios["read"] + ios["write"]
      if (rw == "randread") v = iops["read"]; else if (rw == "randwrite") v = iops["write"]
      else if (rw == "read") v = bw["read"]; else v = bw["write"]
      # usr/sys are % of one CPU over the job (summed over its jobs).
      fcpu = n > 0 ? (usr + sys) / 100 * runtime_ms * 1000 / n : 0
      scpu = n > 0 ? srv_ticks * 1000000 / hz / n : 0
      printf "%.6g %.4g %.4g %.6g %.6g\n", v, fcpu, scpu, p99 + 0, wp99 + 0 }'
}

# fio_run DEV RW BS QD -> prints IOPS (4k) or KiB/s (1M) on stdout
fio_run() {
  local out
  out=$(fio_stats "$@") || return 1
  echo "${out%% *}"
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# The pid of the ublk server behind /dev/ublkbN (nothing for another device).
server_pid() {
  case "$1" in
    /dev/ublkb*) "$COBLK_BIN" list -n "${1#/dev/ublkb}" --json 2>/dev/null | sed -n 's/.*"pid":\([0-9]*\).*/\1/p' ;;
  esac
}

# utime + stime of process $1 in clock ticks (0 without one). Fields 14 and
# 15 of /proc/PID/stat, counted after the ")" that ends the command name.
proc_ticks() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

guest_load() { cut -d' ' -f1-3 /proc/loadavg; }

# Fill a device once so reads hit stored data, not holes.
precondition() {
  fio --name=fill --filename="$1" --rw=write --bs=1M --iodepth=8 --ioengine=io_uring --direct=1 \
      --size=${SIZE_MB}M --buffer_compress_percentage=50 --refill_buffers >/dev/null 2>&1
}

compare() {  # pair devA devB [WORKLOAD...]: only the named workloads, if any are given
  local pair=$1 a=$2 b=$3 w rw bs qd unit r ours base only
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
        ours=$(fio_stats "$a" "$rw" "$bs" "$qd"); base=$(fio_stats "$b" "$rw" "$bs" "$qd")
      else
        base=$(fio_stats "$b" "$rw" "$bs" "$qd"); ours=$(fio_stats "$a" "$rw" "$bs" "$qd")
      fi
      emit "$pair" "$name$QSUFFIX" "$r" "$unit" "$ours" "$base" 1
      r=$((r + 1))
    done
  done
}

# emit PAIR WORKLOAD ROUND UNIT "OURS_STATS" "BASE_STATS" FIELD: one
# COBLK-BENCH line from two fio_stats lines; FIELD says which of their
# numbers is the headline (1: the throughput, 4: the fsync p99, 5: the
# write p99). The guest's
# load average goes with every round (the host adds its own, vm-bench).
emit() {
  echo "$5|$6" | awk -F'|' -v pair="$1" -v w="$2" -v r="$3" -v unit="$4" -v f="$7" -v load="$(guest_load)" \
      -v q="$QUEUES" -v j="${JOBS:-1}" '{
    split($1, o, " "); split($2, b, " ")
    printf "COBLK-BENCH {\"pair\":\"%s\",\"workload\":\"%s\",\"round\":%d,\"ours\":%s,\"baseline\":%s,\"unit\":\"%s\",", pair, w, r, o[f] + 0, b[f] + 0, unit
    printf "\"ours_fio_cpu_us\":%s,\"baseline_fio_cpu_us\":%s,\"ours_srv_cpu_us\":%s,\"baseline_srv_cpu_us\":%s,", o[2] + 0, b[2] + 0, o[3] + 0, b[3] + 0
    printf "\"queues\":%d,\"numjobs\":%d,\"guest_load\":\"%s\"}\n", q, j, load }'
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

# The backing tier: coblk zram with --backing against kernel zram with the
# same kind of backing_dev (each on a loop device over a tmpfs file), after
# both have written back every page (kernel: idle=all, writeback=idle;
# coblk: idle, writeback --type idle). Random 4 KiB reads then come from
# the tier on both. Skipped without the kernel's CONFIG_ZRAM_WRITEBACK.
# The fraction written back goes into the log (bd_count against the pages).
loop_on_tmpfs() {  # NAME -> prints a loop device over /dev/shm/NAME
  local lo
  dd if=/dev/zero of="/dev/shm/$1" bs=1M count=$SIZE_MB 2>/dev/null || vm_fail "cannot make /dev/shm/$1"
  lo=$(losetup -f) || vm_fail "no free loop device"
  losetup "$lo" "/dev/shm/$1" || vm_fail "losetup $lo /dev/shm/$1 failed"
  vm_defer "losetup -d $lo; rm -f /dev/shm/$1"
  echo "$lo"
}
bench_zram_tier() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  vm_load_module zram
  vm_load_module loop
  local id kdev lk lc dev n pages kbd cbd SIZE_MB=64  # small: everything is written back under TCG
  id=$(cat /sys/class/zram-control/hot_add)
  kdev=/sys/block/zram$id
  vm_defer "echo 1 > $kdev/reset; echo $id > /sys/class/zram-control/hot_remove"
  [ -e "$kdev/backing_dev" ] || vm_skip "this kernel's zram has no writeback (CONFIG_ZRAM_WRITEBACK)"
  lk=$(loop_on_tmpfs zram-tier-k.img)
  lc=$(loop_on_tmpfs zram-tier-c.img)
  echo "$lk" > "$kdev/backing_dev" || vm_fail "kernel zram refused backing_dev $lk"
  echo lz4 > "$kdev/comp_algorithm"
  echo ${SIZE_MB}M > "$kdev/disksize"
  dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm lz4 --backing "$lc" $ZRAM_TIER_ARGS)
  vm_defer "coblk_del_dev $dev"
  n=${dev#/dev/ublkb}
  precondition "$dev"; precondition "/dev/zram$id"
  echo all > "$kdev/idle"
  echo idle > "$kdev/writeback" || vm_fail "kernel zram writeback failed"
  "$COBLK_BIN" idle -n "$n" >/dev/null || vm_fail "coblk idle failed"
  "$COBLK_BIN" writeback -n "$n" --type idle >/dev/null || vm_fail "coblk writeback failed"
  pages=$((SIZE_MB * 256))
  kbd=$(awk '{ print $1 }' "$kdev/bd_stat")
  wait_for_stat "$n" bd_count -gt 0 10
  cbd=$(stat_value "$n" bd_count)
  vm_log "written back: kernel zram $kbd of $pages pages, coblk zram $cbd of $pages pages"
  echo "COBLK-BENCH-NOTE {\"pair\":\"zram_tier\",\"pages\":$pages,\"kernel_bd_count\":$kbd,\"coblk_bd_count\":$cbd}"
  compare zram_tier "$dev" "/dev/zram$id" randread_4k_qd32 randread_4k_qd1
}

# Memory efficiency, orig_data_size / mem_used_total, of coblk zram against
# kernel zram on the same data: fio's 50 %-compressible buffers, and the
# guest's own binaries and modules. Kernel: lz4 (its default), and lz4 with
# zstd recompression of every page when its zram has recomp_algorithm.
# Ours: lz4 with --recompress zstd and `coblk recompress --type all`, and
# plain zstd. One COBLK-BENCH line per corpus and variant (unit "ratio",
# ours and baseline are the two efficiencies).
fill_corpus() {  # DEV CORPUS
  case "$2" in
    fio50) precondition "$1" ;;
    binaries)
      # Every regular file of the guest, concatenated, up to the device size.
      find /bin /sbin /usr /lib /coblk -type f 2>/dev/null | while read -r f; do cat "$f"; done 2>/dev/null \
        | head -c $((SIZE_MB * 1048576)) | dd of="$1" bs=1M oflag=direct iflag=fullblock 2>/dev/null ;;
  esac
  sync
}
efficiency_kernel() {  # SYSFS_DIR -> orig/used from mm_stat
  awk '{ if ($3 > 0) printf "%.4f", $1 / $3; else print 0 }' "$1/mm_stat"
}
efficiency_coblk() {  # ID
  local orig used
  orig=$(stat_value "$1" orig_data_size); used=$(stat_value "$1" mem_used_total)
  awk -v o="$orig" -v u="$used" 'BEGIN { if (u > 0) printf "%.4f", o / u; else print 0 }'
}
bench_zram_mem() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  vm_load_module zram
  local corpus id kdev dev n k_lz4 k_rec c_rec c_zstd SIZE_MB=64
  for corpus in fio50 binaries; do
    id=$(cat /sys/class/zram-control/hot_add)
    kdev=/sys/block/zram$id
    echo lz4 > "$kdev/comp_algorithm"
    k_rec=
    if [ ! -e "$kdev/recomp_algorithm" ]; then
      vm_log "kernel zram has no recomp_algorithm (CONFIG_ZRAM_MULTI_COMP off); its codecs: $(cat "$kdev/comp_algorithm")"
    elif echo "algo=zstd" > "$kdev/recomp_algorithm" 2>/dev/null; then
      k_rec=yes
    else
      vm_log "kernel zram refused recomp_algorithm algo=zstd; its codecs: $(cat "$kdev/comp_algorithm")"
    fi
    echo ${SIZE_MB}M > "$kdev/disksize"
    fill_corpus "/dev/zram$id" "$corpus"
    k_lz4=$(efficiency_kernel "$kdev")
    if [ -n "$k_rec" ]; then
      echo all > "$kdev/idle"
      echo "type=idle" > "$kdev/recompress" 2>/dev/null || vm_log "kernel zram recompress refused"
      k_rec=$(efficiency_kernel "$kdev")
    fi
    echo 1 > "$kdev/reset"; echo "$id" > /sys/class/zram-control/hot_remove

    dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm lz4 --recompress zstd)
    n=${dev#/dev/ublkb}
    fill_corpus "$dev" "$corpus"
    "$COBLK_BIN" recompress -n "$n" --type all >/dev/null || vm_fail "coblk recompress failed"
    sleep 1  # the statistics are published every few hundred ms
    c_rec=$(efficiency_coblk "$n")
    coblk_del_dev "$dev"
    dev=$(coblk_add -t zram --size ${SIZE_MB}M --algorithm zstd)
    n=${dev#/dev/ublkb}
    fill_corpus "$dev" "$corpus"
    sleep 1
    c_zstd=$(efficiency_coblk "$n")
    coblk_del_dev "$dev"
    vm_log "$corpus: orig/used kernel lz4 $k_lz4, kernel lz4+zstd recompress ${k_rec:--}, coblk lz4+zstd recompress $c_rec, coblk zstd $c_zstd"
    emit_ratio zram_mem "${corpus}_lz4recomp_vs_kernel_lz4" "$c_rec" "$k_lz4"
    emit_ratio zram_mem "${corpus}_zstd_vs_kernel_lz4" "$c_zstd" "$k_lz4"
    [ -z "$k_rec" ] || emit_ratio zram_mem "${corpus}_lz4recomp_vs_kernel_lz4recomp" "$c_rec" "$k_rec"
  done
}
emit_ratio() {  # PAIR WORKLOAD OURS BASELINE: one round of a measured (not timed) figure
  echo "COBLK-BENCH {\"pair\":\"$1\",\"workload\":\"$2\",\"round\":1,\"ours\":$3,\"baseline\":$4,\"unit\":\"ratio\",\"queues\":1,\"numjobs\":1,\"guest_load\":\"$(guest_load)\"}"
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

# coblk -t nbd --zero-copy (read data received from the socket straight
# into the request's pages, write data sent from them) against the
# kernel's nbd client, as the pair nbd (all workloads, or those of vm-bench
# --workloads).
bench_nbd_zc() {
  vm_require_coblk; vm_require_root; vm_require_cmd nbdkit nbd-client
  vm_load_module ublk_drv
  vm_load_module nbd nbds_max=2
  local sock=$NBD_SOCK dev
  nbd_server
  dev=$(coblk_add -t nbd --connect "unix:$sock" --block-size 4096 --zero-copy)
  vm_defer "coblk_del_dev $dev"
  nbd-client -unix "$sock" /dev/nbd0 -b 4096 -C "$QUEUES" >/tmp/nbd-client.log 2>&1 \
    || { cat /tmp/nbd-client.log >&2; vm_fail "nbd-client could not attach /dev/nbd0"; }
  vm_defer "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
  vm_wait_for_path /sys/block/nbd0/pid 10
  precondition "$dev"; precondition /dev/nbd0
  # shellcheck disable=SC2086
  compare nbd_zc "$dev" /dev/nbd0 ${COBLK_BENCH_WORKLOADS:-}
}

# coblk -t nbd --zero-copy against coblk -t nbd (the copy path), this
# build, one nbdkit server: what zero copy gains or costs per workload.
bench_nbd_zc_copy() {
  vm_require_coblk; vm_require_root; vm_require_cmd nbdkit
  vm_load_module ublk_drv
  local sock=$NBD_SOCK zc copy
  nbd_server
  zc=$(coblk_add -t nbd --connect "unix:$sock" --block-size 4096 --zero-copy)
  vm_defer "coblk_del_dev $zc"
  copy=$(coblk_add -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $copy"
  precondition "$zc"; precondition "$copy"
  # shellcheck disable=SC2086
  compare nbd_zc_copy "$zc" "$copy" ${COBLK_BENCH_WORKLOADS:-}
}

# This build's coblk -t nbd against an earlier build's (vm-bench --before),
# on the same nbdkit server: what a change to the NBD client gained, in
# one boot (all workloads, or those of vm-bench --workloads).
bench_nbd_now() {
  vm_require_coblk; vm_require_root; vm_require_cmd nbdkit
  vm_load_module ublk_drv
  local sock=$NBD_SOCK dev base
  nbd_server
  dev=$(coblk_add -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $dev"
  base=$(before_add -t nbd --connect "unix:$sock" --block-size 4096)
  vm_defer "coblk_del_dev $base"
  precondition "$dev"; precondition "$base"
  # vm-bench --workloads "..." narrows it to the named workloads (split on purpose).
  # shellcheck disable=SC2086
  compare nbd_now "$dev" "$base" ${COBLK_BENCH_WORKLOADS:-}
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

# Group commit (issue 13 part 5): the latency of durable writes on a loop
# device whose file lives on ext4 on a null_blk with 100 us per request and
# a volatile cache (cache_size: without one the block layer drops flushes),
# so an fdatasync costs a writeback and a cache flush, as on a disk.
# Each round runs three ways, in rotating order: coblk loop with group
# commit (the default), the same with --no-group-commit, and fio on a file
# of that ext4 directly. Workloads: 4k random writes with an fsync after
# each (--fsync=1: FLUSH requests; headline the fsync p99) and with O_DSYNC
# (--sync=dsync: FUA writes; headline the write p99), at QD1 and QD32.
# Pairs: loop_flush_gc (group commit against without), loop_flush_file
# (group commit against the file), in microseconds, lower is better; also
# IOPS, and the cache flushes null_blk received per 4k write (field 16 of
# /sys/block/nullb0/stat): the fdatasyncs that group commit saves, counted
# rather than timed (timing swings widely under TCG on a shared host).
bench_loop_flush() {
  vm_require_coblk; vm_require_root; vm_require_cmd mkfs.ext4
  vm_load_module ublk_drv
  vm_load_module null_blk nr_devices=1 gb=1 queue_mode=2 memory_backed=1 cache_size=256 irqmode=2 completion_nsec=100000
  vm_defer "rmmod null_blk"
  mkfs.ext4 -q /dev/nullb0
  local mnt=/mnt/coblk-flush gc nogc file w name qd arg field r g n f
  mkdir -p "$mnt"
  mount /dev/nullb0 "$mnt"
  vm_defer "umount $mnt"
  SIZE_MB=64
  for f in gc nogc file; do dd if=/dev/zero of="$mnt/$f.img" bs=1M count=$SIZE_MB 2>/dev/null; done
  sync
  gc=$(coblk_add -t loop -f "$mnt/gc.img")
  vm_defer "coblk_del_dev $gc"
  nogc=$(coblk_add -t loop -f "$mnt/nogc.img" --no-group-commit)
  vm_defer "coblk_del_dev $nogc"
  file=$mnt/file.img
  for w in fsync_qd1:1:--fsync=1:4 fsync_qd32:32:--fsync=1:4 dsync_qd1:1:--sync=dsync:5 dsync_qd32:32:--sync=dsync:5; do
    IFS=: read -r name qd arg field <<EOW
$w
EOW
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
      case $((r % 3)) in
        1) g=$(flush_run "$gc" "$qd" "$arg"); n=$(flush_run "$nogc" "$qd" "$arg"); f=$(flush_run "$file" "$qd" "$arg") ;;
        2) n=$(flush_run "$nogc" "$qd" "$arg"); f=$(flush_run "$file" "$qd" "$arg"); g=$(flush_run "$gc" "$qd" "$arg") ;;
        0) f=$(flush_run "$file" "$qd" "$arg"); g=$(flush_run "$gc" "$qd" "$arg"); n=$(flush_run "$nogc" "$qd" "$arg") ;;
      esac
      emit loop_flush_gc "${name}_p99" "$r" us "$g" "$n" "$field"
      emit loop_flush_file "${name}_p99" "$r" us "$g" "$f" "$field"
      emit loop_flush_gc "${name}_iops" "$r" iops "$g" "$n" 1
      emit loop_flush_file "${name}_iops" "$r" iops "$g" "$f" 1
      emit loop_flush_gc "${name}_devflush_per_write" "$r" flushes "$g" "$n" 6
      emit loop_flush_file "${name}_devflush_per_write" "$r" flushes "$g" "$f" 6
      r=$((r + 1))
    done
  done
}

# flush_run DEV QD FIO_ARG: fio_stats of 4k random writes, plus a sixth
# number, the flushes nullb0 completed per write during the run.
flush_run() {
  local before after stats
  before=$(awk '{ print $16 }' /sys/block/nullb0/stat)
  stats=$(fio_stats "$1" randwrite 4k "$2" "$3") || return 1
  after=$(awk '{ print $16 }' /sys/block/nullb0/stat)
  echo "$stats" | awk -v d=$((after - before)) -v rt="$RUNTIME" '{ printf "%s %.4g\n", $0, ($1 > 0 ? d / ($1 * rt) : 0) }'
}

# coblk null with 2 queues against 1 queue, both driven by 2 fio jobs: how
# the queues scale (issue 13's goal: >= 1.8 at QD32).
bench_null_scaling() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local two one
  two=$("$COBLK_BIN" add -q 2 -t null --size 1G)
  vm_defer "coblk_del_dev $two"
  one=$("$COBLK_BIN" add -q 1 -t null --size 1G)
  vm_defer "coblk_del_dev $one"
  JOBS=2
  compare null_scaling "$two" "$one" randread_4k_qd32 randread_4k_qd1
}

# SQPOLL (issue 13 part 6): a null device with --sqpoll against one
# without, same build, same boot, the same fio job alternating. Besides
# IOPS (pair null_sqpoll), the io_uring_enter system calls per second of
# each device's server under that load (pair null_sqpoll_enters, unit
# enters/s: ours the --sqpoll device's, baseline the other's), read from
# `coblk metrics --print` twice while fio runs. The poller is pinned to the
# guest's last CPU (queue 0's reactor runs on CPU 0; a poller that shares
# the reactor's CPU makes it sleep, see docs/performance.md);
# COBLK_BENCH_SQPOLL replaces that option (e.g. "--sqpoll" unpinned), and
# COBLK_BENCH_SQPOLL_ARGS adds options to both devices (e.g. "--poll-us 1000").
bench_null_sqpoll() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local sq plain w qd r o b last
  last=$(($(grep -c '^processor' /proc/cpuinfo) - 1))
  # shellcheck disable=SC2086 # option lists are word lists on purpose
  sq=$(coblk_add -t null --size 1G ${COBLK_BENCH_SQPOLL:---sqpoll=$last} ${COBLK_BENCH_SQPOLL_ARGS:-})
  vm_defer "coblk_del_dev $sq"
  # shellcheck disable=SC2086
  plain=$(coblk_add -t null --size 1G ${COBLK_BENCH_SQPOLL_ARGS:-})
  vm_defer "coblk_del_dev $plain"
  vm_log "null_sqpoll: $sq with ${COBLK_BENCH_SQPOLL:---sqpoll=$last} ${COBLK_BENCH_SQPOLL_ARGS:-}, $plain with ${COBLK_BENCH_SQPOLL_ARGS:-(defaults)}"
  for w in randread_4k_qd32:32 randread_4k_qd1:1; do
    qd=${w##*:}
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
      if [ $((r % 2)) -eq 1 ]; then
        o=$(sqpoll_run "$sq" "$qd"); b=$(sqpoll_run "$plain" "$qd")
      else
        b=$(sqpoll_run "$plain" "$qd"); o=$(sqpoll_run "$sq" "$qd")
      fi
      emit null_sqpoll "${w%%:*}$QSUFFIX" "$r" iops "$o" "$b" 1
      emit null_sqpoll_enters "${w%%:*}$QSUFFIX" "$r" enters/s "$o" "$b" 6
      r=$((r + 1))
    done
  done
}

# enters_snapshot DEV: "ENTERS PUBLISHED" of /dev/ublkbN's server: its
# io_uring_enter count summed over its cores, and the latest publish time
# (seconds) of its queues, from `coblk metrics --print`.
enters_snapshot() {
  "$COBLK_BIN" metrics --print | awk -v dev="${1#/dev/}" '
    index($0, "device=\"" dev "\"") == 0 { next }
    index($0, "coblk_reactor_io_uring_enters_total{") == 1 { n += $NF }
    index($0, "coblk_metrics_last_publish_timestamp_seconds{") == 1 && $NF + 0 > t { t = $NF + 0 }
    END { printf "%d %.6f\n", n, t }'
}

# sqpoll_run DEV QD: fio_stats of 4k random reads for at least 5 s, plus a
# sixth number: the server's io_uring_enter calls per second between two
# publishes taken while fio runs (the first after 1.5 s of load).
sqpoll_run() {
  local dev="$1" qd="$2" runtime="$RUNTIME" out="/tmp/sqpoll-run.$$" a b pid
  [ "$runtime" -ge 5 ] || runtime=5
  RUNTIME=$runtime fio_stats "$dev" randread 4k "$qd" > "$out" &
  pid=$!
  sleep 1.5
  a=$(enters_snapshot "$dev")
  sleep $((runtime - 3))
  b=$(enters_snapshot "$dev")
  wait "$pid" || { rm -f "$out"; return 1; }
  awk -v a="$a" -v b="$b" '{ split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]
    printf "%s %.4g\n", $0, (dt > 0 ? (y[1] - x[1]) / dt : 0) }' "$out"
  rm -f "$out"
}

# Polled I/O and NVMe passthrough (issue 13 part 7): loop devices on the
# same emulated NVMe disk (vm-bench --pairs nvme boots with it: run-vm
# --nvme, 64 MiB, nvme.poll_queues=1): one with --direct-io --iopoll on
# /dev/nvme0n1, one with --passthrough on /dev/ng0n1, one each with
# --passthrough --iopoll and --passthrough --zero-copy there, and the
# baseline of all, plain interrupt-driven --direct-io on /dev/nvme0n1.
# Random 4 KiB reads, and 1 MiB reads for zero copy, only, so all may
# share the disk.
# Pairs: nvme_iopoll (--iopoll against the plain one), nvme_passthrough
# (--passthrough against it), nvme_passthrough_iopoll and
# nvme_passthrough_zc (each against --passthrough alone, so the polling or
# the zero copy alone), each alternating A and B every round.
bench_nvme() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local polled plain pt pt_polled pt_zc i=0
  while [ ! -b /dev/nvme0n1 ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -b /dev/nvme0n1 ] || vm_skip "no NVMe disk in this boot (vm-bench attaches one for --pairs nvme)"
  [ "$COBLK_VM_MODE" = vm ] || vm_skip "overwrites /dev/nvme0n1: only on the VM's emulated disk"
  SIZE_MB=64
  precondition /dev/nvme0n1
  polled=$(coblk_add -t loop -f /dev/nvme0n1 --direct-io --iopoll)
  vm_defer "coblk_del_dev $polled"
  plain=$(coblk_add -t loop -f /dev/nvme0n1 --direct-io)
  vm_defer "coblk_del_dev $plain"
  pt=$(coblk_add -t loop -f /dev/ng0n1 --passthrough)
  vm_defer "coblk_del_dev $pt"
  pt_polled=$(coblk_add -t loop -f /dev/ng0n1 --passthrough --iopoll)
  vm_defer "coblk_del_dev $pt_polled"
  compare nvme_iopoll "$polled" "$plain" randread_4k_qd1 randread_4k_qd32
  compare nvme_passthrough "$pt" "$plain" randread_4k_qd1 randread_4k_qd32
  pt_zc=$(coblk_add -t loop -f /dev/ng0n1 --passthrough --zero-copy)
  vm_defer "coblk_del_dev $pt_zc"
  compare nvme_passthrough_iopoll "$pt_polled" "$pt" randread_4k_qd1 randread_4k_qd32
  compare nvme_passthrough_zc "$pt_zc" "$pt" randread_4k_qd32 seqread_1m
}

# A/B: two option sets, or two builds (vm-bench --before), on one target in
# one boot: A is this build with $COBLK_BENCH_AB_A, B the --before build (or
# this one) with $COBLK_BENCH_AB_B; target $COBLK_BENCH_AB_TARGET (null,
# ram, zram or loop on a tmpfs file); workloads $COBLK_BENCH_AB_WORKLOADS
# (default: all).
bench_ab() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  local a b
  # shellcheck disable=SC2086 # the option sets are word lists on purpose
  case "${COBLK_BENCH_AB_TARGET:-null}" in
    loop)
      dd if=/dev/zero of=/dev/shm/ab-a.img bs=1M count=$SIZE_MB 2>/dev/null
      dd if=/dev/zero of=/dev/shm/ab-b.img bs=1M count=$SIZE_MB 2>/dev/null
      vm_defer "rm -f /dev/shm/ab-a.img /dev/shm/ab-b.img"
      a=$(coblk_add -t loop -f /dev/shm/ab-a.img ${COBLK_BENCH_AB_A:-})
      vm_defer "coblk_del_dev $a"
      b=$(before_add -t loop -f /dev/shm/ab-b.img ${COBLK_BENCH_AB_B:-})
      vm_defer "coblk_del_dev $b" ;;
    null|ram|zram)
      a=$(coblk_add -t "$COBLK_BENCH_AB_TARGET" --size ${SIZE_MB}M ${COBLK_BENCH_AB_A:-})
      vm_defer "coblk_del_dev $a"
      b=$(before_add -t "$COBLK_BENCH_AB_TARGET" --size ${SIZE_MB}M ${COBLK_BENCH_AB_B:-})
      vm_defer "coblk_del_dev $b" ;;
    *) vm_fail "COBLK_BENCH_AB_TARGET must be null, ram, zram or loop, not '$COBLK_BENCH_AB_TARGET'" ;;
  esac
  case "${COBLK_BENCH_AB_TARGET:-null}" in ram|zram) precondition "$a"; precondition "$b" ;; esac
  # shellcheck disable=SC2086
  compare ab "$a" "$b" ${COBLK_BENCH_AB_WORKLOADS:-}
}

# Every pair runs once per queue count in COBLK_BENCH_QUEUES ("1 2": both
# in this boot), with as many fio jobs as queues (blk-mq maps a submitting
# CPU to a queue, so one job would keep the other queues idle); workloads
# then carry the suffix _qN. The *_scaling pairs and loop_flush choose
# their own queue counts and run once.
for p in $PAIRS; do
  case "$p" in
    *_scaling|loop_flush|zram_mem|nvme) QUEUES=1; JOBS=1; QSUFFIX=; vm_case "bench_$p" "bench_$p"; continue ;;
  esac
  for q in $QUEUE_COUNTS; do
    QSUFFIX=
    [ "$q" = "$QUEUE_COUNTS" ] || QSUFFIX=_q$q
    QUEUES=$q; JOBS=$q
    vm_case "bench_$p$QSUFFIX" "bench_$p"
  done
done
vm_finish
