#!/bin/sh
# metrics.sh: `coblk metrics` serves a device's I/O counters while fio runs
# against it, scraped over HTTP as Prometheus would (busybox wget), and the
# read and write counters agree with fio's own counts within 5%; a device
# added with --no-metrics is listed without I/O series.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids and port of this script (high, so a host's own are left alone).
base_id=60
port=19477

scrape() {  # FILE: the exposition, or fail
  wget -q -O "$1" "http://127.0.0.1:$port/metrics" || vm_fail "scraping http://127.0.0.1:$port/metrics failed"
}

# metric FILE NAME DEVICE OP: NAME summed over DEVICE's queues for OP.
metric() {
  awk -v name="$2" -v dev="$3" -v op="$4" '
    index($0, name "{") == 1 && index($0, "device=\"" dev "\"") && index($0, "op=\"" op "\"") { sum += $NF }
    END { printf "%d\n", sum }' "$1"
}

# within_5_percent WHAT EXPECTED GOT
within_5_percent() {
  vm_log "$1: fio $2, coblk metrics $3"
  [ "$2" -gt 0 ] || vm_fail "$1: fio counted nothing"
  awk -v a="$2" -v b="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= a * 0.05) }' \
    || vm_fail "$1: coblk metrics say $3, fio $2 (more than 5% apart)"
}

start_exporter() {
  # The guest's init leaves the network alone; the loopback is all we need.
  if [ "$COBLK_VM_MODE" = vm ]; then
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || vm_fail "cannot bring up the loopback interface"
  fi
  vm_spawn "${TMPDIR:-/tmp}/coblk-metrics.log" "$COBLK_BIN" metrics --listen "127.0.0.1:$port"
  local i=0
  until wget -q -O /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || { cat "${TMPDIR:-/tmp}/coblk-metrics.log" >&2; vm_fail "the exporter did not come up"; }
    sleep 0.1
  done
}

counters_follow_fio() {
  vm_ublk_ready fio wget
  local id=$base_id dev=ublkb$base_id dir="${TMPDIR:-/tmp}" fio_pid scrapes=0
  add_device "$id" -t null --size 1G -q 2
  start_exporter
  # The device's next publish (each queue publishes every second) holds
  # whatever the kernel read while adding it: the baseline.
  sleep 1.2
  scrape "$dir/m0.txt"
  # Random reads and writes of 4 KiB from two jobs, one per CPU and so one
  # per hardware queue, while the endpoint is scraped every half second.
  fio --name=metrics --filename="/dev/$dev" --ioengine=io_uring --direct=1 \
      --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --size=512M --runtime=3 --time_based \
      --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
      --group_reporting --output-format=terse >"$dir/fio-metrics.log" 2>&1 &
  fio_pid=$!
  while kill -0 "$fio_pid" 2>/dev/null; do
    scrape "$dir/mid.txt"
    scrapes=$((scrapes + 1))
    sleep 0.5
  done
  wait "$fio_pid" || { tail -n 20 "$dir/fio-metrics.log" >&2; vm_fail "fio failed"; }
  [ "$scrapes" -ge 2 ] || vm_fail "only $scrapes scrapes while fio ran"
  # Scrapes during the run saw the counters move.
  [ "$(metric "$dir/mid.txt" coblk_io_requests_total "$dev" read)" -gt \
    "$(metric "$dir/m0.txt" coblk_io_requests_total "$dev" read)" ] || vm_fail "reads did not move while fio ran"
  # After the next publish, the totals.
  sleep 1.2
  scrape "$dir/m1.txt"
  local rkib wkib reads writes rbytes wbytes lat
  # Terse v3: field 6 the KiB read, 47 the KiB written.
  rkib=$(awk -F';' 'NF > 100 { print $6 }' "$dir/fio-metrics.log")
  wkib=$(awk -F';' 'NF > 100 { print $47 }' "$dir/fio-metrics.log")
  reads=$(($(metric "$dir/m1.txt" coblk_io_requests_total "$dev" read) - \
    $(metric "$dir/m0.txt" coblk_io_requests_total "$dev" read)))
  writes=$(($(metric "$dir/m1.txt" coblk_io_requests_total "$dev" write) - \
    $(metric "$dir/m0.txt" coblk_io_requests_total "$dev" write)))
  rbytes=$(($(metric "$dir/m1.txt" coblk_io_bytes_total "$dev" read) - \
    $(metric "$dir/m0.txt" coblk_io_bytes_total "$dev" read)))
  wbytes=$(($(metric "$dir/m1.txt" coblk_io_bytes_total "$dev" write) - \
    $(metric "$dir/m0.txt" coblk_io_bytes_total "$dev" write)))
  within_5_percent "reads" $((rkib / 4)) "$reads"
  within_5_percent "writes" $((wkib / 4)) "$writes"
  within_5_percent "KiB read" "$rkib" $((rbytes / 1024))
  within_5_percent "KiB written" "$wkib" $((wbytes / 1024))
  # Both queues served, every request has a latency sample, none failed.
  local q
  for q in 0 1; do
    grep -q "^coblk_io_requests_total{device=\"$dev\",queue=\"$q\",op=\"read\"} [1-9]" "$dir/m1.txt" \
      || vm_fail "queue $q served no reads"
  done
  lat=$(metric "$dir/m1.txt" coblk_io_latency_seconds_count "$dev" read)
  vm_assert_eq "$(metric "$dir/m1.txt" coblk_io_requests_total "$dev" read)" "$lat" "latency samples of reads"
  vm_assert_eq 0 "$(metric "$dir/m1.txt" coblk_io_errors_total "$dev" read)" "read errors"
  grep -q "^coblk_reactor_cqes_reaped_total{device=\"$dev\",core=\"1\"} [1-9]" "$dir/m1.txt" \
    || vm_fail "no reactor counters for core 1"
  # The human view agrees.
  "$COBLK_BIN" metrics --summary >"$dir/summary.txt"
  sed 's/^/coblk-vm: /' "$dir/summary.txt"
  grep -q "^$dev " "$dir/summary.txt" || vm_fail "coblk metrics --summary does not show $dev"
}

no_metrics_device_is_listed_without_io() {
  vm_ublk_ready wget
  local id=$((base_id + 1)) dir="${TMPDIR:-/tmp}"
  add_device "$id" -t null --size 64M --no-metrics
  [ ! -e "/run/coblk/$id.metrics" ] || vm_fail "a --no-metrics device publishes metrics"
  start_exporter
  scrape "$dir/m2.txt"
  grep -q "^coblk_device_metrics_published{device=\"ublkb$id\"} 0$" "$dir/m2.txt" \
    || vm_fail "the --no-metrics device is not listed as unpublished"
  ! grep -q "coblk_io_requests_total{device=\"ublkb$id\"" "$dir/m2.txt" || vm_fail "I/O series for a --no-metrics device"
}

vm_case "coblk metrics counts what fio did, scraped while it ran" counters_follow_fio
vm_case "a --no-metrics device is listed without I/O series" no_metrics_device_is_listed_without_io
vm_finish
