#!/bin/sh
# otlp.sh: `coblk metrics --otlp-endpoint` pushes a device's I/O counters as
# OTLP/HTTP JSON to a receiver (test/cmd/otlp_receiver, which writes each
# push's data points as text) while fio runs against the device, and the
# read and write counters agree with fio's own counts within 5%; a receiver
# that goes away is logged once, and pushes resume when it is back.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device id and port of this script (high, so a host's own are left alone).
base_id=230
port=14318

# metric FILE NAME DEVICE OP: NAME summed over DEVICE's queues for OP.
metric() {
  awk -v name="$2" -v dev="$3" -v op="$4" '
    index($0, name "{") == 1 && index($0, "device=\"" dev "\"") && index($0, "op=\"" op "\"") { sum += $NF }
    END { printf "%d\n", sum }' "$1"
}

# within_5_percent WHAT EXPECTED GOT
within_5_percent() {
  vm_log "$1: fio $2, OTLP $3"
  [ "$2" -gt 0 ] || vm_fail "$1: fio counted nothing"
  awk -v a="$2" -v b="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= a * 0.05) }' \
    || vm_fail "$1: the OTLP push says $3, fio $2 (more than 5% apart)"
}

pushes() { cat "$1/count" 2>/dev/null || echo 0; }

# next_push DIR: waits for a push after now (10 s at most); its file is
# left in PUSH_FILE.
next_push() {
  local before i=0
  before=$(pushes "$1")
  until [ "$(pushes "$1")" -gt "$before" ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || vm_fail "no push arrived within 10 s (after push $before)"
    sleep 0.1
  done
  PUSH_FILE="$1/$(pushes "$1").txt"
}

start_receiver() {  # DIR
  mkdir -p "$1"
  vm_spawn "$1.log" otlp_receiver "$port" "$1"
  local i=0
  until grep -q listening "$1.log" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || { cat "$1.log" >&2; vm_fail "the receiver did not come up"; }
    sleep 0.1
  done
}

loopback_up() {
  # The guest's init leaves the network alone; the loopback is all we need.
  if [ "$COBLK_VM_MODE" = vm ]; then
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || vm_fail "cannot bring up the loopback interface"
  fi
}

counters_arrive_and_follow_fio() {
  vm_ublk_ready fio otlp_receiver
  local id=$base_id dev=ublkb$base_id dir="${TMPDIR:-/tmp}/otlp" m0 m1 q exporter
  rm -rf "$dir" && mkdir -p "$dir"
  loopback_up
  start_receiver "$dir/recv"
  add_device "$id" -t null --size 1G -q 2
  vm_spawn "$dir/metrics.log" "$COBLK_BIN" metrics --otlp-endpoint "http://127.0.0.1:$port" --otlp-interval 1s
  exporter=$VM_SPAWNED_PID
  # The device's next publish (each queue publishes every second), then
  # the push after it: the baseline.
  sleep 1.2
  next_push "$dir/recv"
  m0=$PUSH_FILE
  vm_assert_eq "POST /v1/metrics application/json" "$(head -n 1 "$m0")" "request line and content type"
  grep -q "^coblk_device_info{device=\"$dev\",target=\"null\"" "$m0" || vm_fail "no coblk_device_info for $dev"
  fio --name=otlp --filename="/dev/$dev" --ioengine=io_uring --direct=1 \
      --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --size=512M --runtime=3 --time_based \
      --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
      --group_reporting --output-format=terse >"$dir/fio.log" 2>&1 || { tail -n 20 "$dir/fio.log" >&2; vm_fail "fio failed"; }
  sleep 1.2
  next_push "$dir/recv"
  m1=$PUSH_FILE
  local rkib wkib reads writes rbytes wbytes
  # Terse v3: field 6 the KiB read, 47 the KiB written.
  rkib=$(awk -F';' 'NF > 100 { print $6 }' "$dir/fio.log")
  wkib=$(awk -F';' 'NF > 100 { print $47 }' "$dir/fio.log")
  reads=$(($(metric "$m1" coblk_io_requests_total "$dev" read) - $(metric "$m0" coblk_io_requests_total "$dev" read)))
  writes=$(($(metric "$m1" coblk_io_requests_total "$dev" write) - $(metric "$m0" coblk_io_requests_total "$dev" write)))
  rbytes=$(($(metric "$m1" coblk_io_bytes_total "$dev" read) - $(metric "$m0" coblk_io_bytes_total "$dev" read)))
  wbytes=$(($(metric "$m1" coblk_io_bytes_total "$dev" write) - $(metric "$m0" coblk_io_bytes_total "$dev" write)))
  within_5_percent "reads" $((rkib / 4)) "$reads"
  within_5_percent "writes" $((wkib / 4)) "$writes"
  within_5_percent "KiB read" "$rkib" $((rbytes / 1024))
  within_5_percent "KiB written" "$wkib" $((wbytes / 1024))
  for q in 0 1; do
    grep -q "^coblk_io_requests_total{device=\"$dev\",queue=\"$q\",op=\"read\"} [1-9]" "$m1" \
      || vm_fail "queue $q pushed no reads"
  done
  vm_assert_eq "$(metric "$m1" coblk_io_requests_total "$dev" read)" \
    "$(metric "$m1" coblk_io_latency_seconds_count "$dev" read)" "latency samples of reads"
  vm_assert_eq 0 "$(metric "$m1" coblk_io_errors_total "$dev" read)" "read errors"
  # Under TCG with fio on both CPUs a push may miss its deadline (3/4 of
  # the 1 s interval) and be dropped; the exporter logs it and goes on.
  kill -0 "$exporter" || vm_fail "the exporter died"
  sed 's/^/coblk-vm: exporter: /' "$dir/metrics.log"
}

a_receiver_that_goes_away_is_logged_and_pushes_resume() {
  vm_ublk_ready otlp_receiver
  local dir="${TMPDIR:-/tmp}/otlp-away" exporter receiver
  rm -rf "$dir" && mkdir -p "$dir"
  loopback_up
  start_receiver "$dir/recv"
  receiver=$VM_SPAWNED_PID
  vm_spawn "$dir/metrics.log" "$COBLK_BIN" metrics --otlp-endpoint "http://127.0.0.1:$port" --otlp-interval 1s
  exporter=$VM_SPAWNED_PID
  next_push "$dir/recv"
  kill "$receiver"
  wait "$receiver" 2>/dev/null || true
  sleep 3  # three pushes, each refused
  kill -0 "$exporter" || vm_fail "the exporter died when the receiver went away"
  vm_assert_eq 1 "$(grep -c "failed: cannot connect" "$dir/metrics.log")" "failure lines for three refused pushes"
  start_receiver "$dir/recv2"
  next_push "$dir/recv2"
  sleep 0.5
  grep -q "work again" "$dir/metrics.log" || { cat "$dir/metrics.log" >&2; vm_fail "no line saying pushes work again"; }
}

vm_case "OTLP pushes carry a device's counters, which follow fio's" counters_arrive_and_follow_fio
vm_case "a receiver that goes away is logged once, and pushes resume when it is back" \
  a_receiver_that_goes_away_is_logged_and_pushes_resume
vm_finish
