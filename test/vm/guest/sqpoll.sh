#!/bin/sh
# sqpoll.sh: `coblk add --sqpoll[=CPU]`. The queues' rings are SQPOLL rings,
# so the kernel's poller thread, not the server's own, issues ublk's
# FETCH_REQ and COMMIT_AND_FETCH_REQ commands: ram and loop devices served
# that way pass fio's crc32c verification; =CPU pins the poller; under
# sustained load the server's io_uring_enter counter (coblk metrics) is far
# below the same device's without --sqpoll, and agrees with strace -c -f;
# CPUs that do not exist are refused with one line, before any device.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

base_id=250
t="${TMPDIR:-/tmp}"

# verify DEV SIZE [FIO ARGS...]: random 4 KiB writes over SIZE at QD16,
# every block checked by crc32c after all are written.
verify() {
  local dev="$1" size="$2"
  shift 2
  fio --name=sqpoll --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=16 \
      --rw=randwrite --bs=4k --size="$size" --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --output-format=terse "$@" >"$t/sqpoll-fio.log" 2>&1 \
    || { tail -n 20 "$t/sqpoll-fio.log" >&2; vm_fail "fio crc32c verification failed on $dev"; }
}

# enters ID: "ENTERS PUBLISHED REQUESTS" of device ID's server: its
# io_uring_enter calls summed over its cores, its queues' latest publish
# time in seconds, and the requests it completed (coblk metrics --print;
# the queues publish every second).
enters() {
  "$COBLK_BIN" metrics --print | awk -v dev="ublkb$1" '
    index($0, "device=\"" dev "\"") == 0 { next }
    index($0, "coblk_reactor_io_uring_enters_total{") == 1 { n += $NF }
    index($0, "coblk_io_requests_total{") == 1 { r += $NF }
    index($0, "coblk_metrics_last_publish_timestamp_seconds{") == 1 && $NF + 0 > t { t = $NF + 0 }
    END { printf "%d %.6f %d\n", n, t, r }'
}

# next_publish ID: waits for the device's next publish, prints enters then.
next_publish() {
  local first now i=0
  first=$(enters "$1")
  while :; do
    now=$(enters "$1")
    [ "$(echo "$now" | cut -d' ' -f2)" = "$(echo "$first" | cut -d' ' -f2)" ] || break
    i=$((i + 1))
    [ "$i" -lt 40 ] || vm_fail "device $1 published nothing for 4 s"
    sleep 0.1
  done
  echo "$now"
}

# rate_under_load ID SECONDS: "PER_SECOND PER_REQUEST", the server's
# io_uring_enter calls per second and per request completed between two
# publishes while fio reads randomly at QD32 (sustained load).
rate_under_load() {
  local id="$1" secs="$2" a b pid
  fio --name=load --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --iodepth=32 \
      --rw=randread --bs=4k --size=64M --runtime=$((secs + 3)) --time_based \
      --output-format=terse >"$t/sqpoll-load-$id.log" 2>&1 &
  pid=$!
  sleep 1
  a=$(next_publish "$id")
  sleep "$secs"
  b=$(next_publish "$id")
  wait "$pid" || { tail -n 20 "$t/sqpoll-load-$id.log" >&2; vm_fail "fio failed on /dev/ublkb$id"; }
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]; n = y[3] - x[3]
    if (dt <= 0 || n <= 0) { print "no two publishes with requests between them" > "/dev/stderr"; exit 1 }
    printf "%.1f %.5f\n", (y[1] - x[1]) / dt, (y[1] - x[1]) / n }'
}

# The poller's thread: "iou-sqp-PID" among the server's threads.
sqpoll_thread() {
  local pid="$1" task
  for task in /proc/"$pid"/task/*; do
    case "$(cat "$task/comm" 2>/dev/null)" in
      iou-sqp-*) echo "${task##*/}"; return 0 ;;
    esac
  done
  return 1
}

# ---- cases -----------------------------------------------------------------

a_ram_device_with_sqpoll_passes_fio_verify() {
  vm_ublk_ready fio
  local id=$base_id pid tid
  add_device "$id" -t ram --size 32M --sqpoll
  pid=$(server_pid "$id")
  tid=$(sqpoll_thread "$pid") || vm_fail "server $pid has no iou-sqp thread: its ring is not an SQPOLL ring"
  vm_log "server $pid, SQPOLL thread $tid"
  verify "/dev/ublkb$id" 8M
  # A second pass with reads after the poller has idled (sq_thread_idle is
  # 10 ms): the first submission must wake it.
  sleep 0.5
  verify "/dev/ublkb$id" 8M --rw=randrw
}

a_loop_device_with_its_poller_pinned_passes_fio_verify() {
  vm_ublk_ready fio
  local id=$((base_id + 1)) pid tid cpus
  truncate -s 32M "$t/sqpoll-loop.img"
  vm_defer "rm -f $t/sqpoll-loop.img"
  add_device "$id" -t loop -f "$t/sqpoll-loop.img" --sqpoll=1
  pid=$(server_pid "$id")
  tid=$(sqpoll_thread "$pid") || vm_fail "server $pid has no iou-sqp thread"
  cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$pid/task/$tid/status")
  vm_assert_eq 1 "$cpus" "CPUs the SQPOLL thread may run on"
  verify "/dev/ublkb$id" 8M
}

a_cpu_that_does_not_exist_is_refused_with_one_line() {
  vm_ublk_ready
  vm_expect_error "CPU 64 is not online" "$COBLK_BIN" add -n $((base_id + 2)) -t null --sqpoll=64
  vm_expect_error "expected a CPU number" "$COBLK_BIN" add -n $((base_id + 2)) -t null --sqpoll=one
  [ ! -e /dev/ublkb$((base_id + 2)) ] || vm_fail "a refused add left /dev/ublkb$((base_id + 2))"
}

under_sustained_load_sqpoll_makes_far_fewer_io_uring_enters() {
  vm_ublk_ready fio
  local sq=$((base_id + 3)) plain=$((base_id + 4)) r_sq r_plain
  # Queue 0's reactor runs on CPU 0, its poller on CPU 1: sharing one CPU
  # they take turns, and the reactor sleeps (an io_uring_enter) while the
  # poller has the CPU. --poll-us 1000: between two completions the
  # reactor polls rather than sleeping. The other device has the defaults.
  add_device "$sq" -t null --size 256M --sqpoll=1 --poll-us 1000
  add_device "$plain" -t null --size 256M
  r_sq=$(rate_under_load "$sq" 3)
  r_plain=$(rate_under_load "$plain" 3)
  vm_log "io_uring_enter under fio randread QD32, per second and per request: --sqpoll=1 --poll-us 1000: $r_sq; defaults: $r_plain (goal with SQPOLL: < 10/s)"
  # Per request: the devices' IOPS swing with the host's load, and the
  # defaults' enters with them (14.5/s to 211/s seen); a syscall per
  # request does not.
  awk -v s="${r_sq#* }" -v p="${r_plain#* }" 'BEGIN { exit !(p > 0 && s * 5 < p) }' \
    || vm_fail "io_uring_enter per request: --sqpoll ${r_sq#* }, without ${r_plain#* }: expected under a fifth"
}

the_enter_counter_agrees_with_strace() {
  vm_ublk_ready fio strace
  local id=$((base_id + 5)) pid a b counted traced spid
  add_device "$id" -t null --size 256M
  pid=$(server_pid "$id")
  # strace follows every thread of the server; -c counts the calls it saw
  # and prints the table when interrupted.
  vm_spawn "$t/sqpoll-strace.log" strace -c -f -e trace=io_uring_enter -p "$pid"
  spid=$VM_SPAWNED_PID
  sleep 1
  a=$(next_publish "$id")
  fio --name=traced --filename="/dev/ublkb$id" --ioengine=io_uring --direct=1 --iodepth=8 \
      --rw=randread --bs=4k --size=64M --io_size=8M --output-format=terse >"$t/sqpoll-traced.log" 2>&1 \
    || vm_fail "fio failed under strace"
  b=$(next_publish "$id")
  kill -INT "$spid"
  wait "$spid" 2>/dev/null || true
  counted=$(( $(echo "$b" | cut -d' ' -f1) - $(echo "$a" | cut -d' ' -f1) ))
  traced=$(awk '$NF == "io_uring_enter" { print $4 }' "$t/sqpoll-strace.log")
  vm_log "io_uring_enter between two publishes: counter $counted; strace over a longer window: $traced"
  [ -n "$traced" ] || { cat "$t/sqpoll-strace.log" >&2; vm_fail "strace counted no io_uring_enter"; }
  # strace's window holds the counter's, plus up to a second of idle
  # serving on each side (a few calls: the publish timer's wake-ups).
  awk -v c="$counted" -v s="$traced" 'BEGIN { exit !(c > 100 && s >= c && s <= c * 1.05 + 20) }' \
    || vm_fail "counter $counted, strace $traced: expected strace >= counter, within 5% + 20"
}

vm_case a_ram_device_with_sqpoll_passes_fio_verify a_ram_device_with_sqpoll_passes_fio_verify
vm_case a_loop_device_with_its_poller_pinned_passes_fio_verify a_loop_device_with_its_poller_pinned_passes_fio_verify
vm_case a_cpu_that_does_not_exist_is_refused_with_one_line a_cpu_that_does_not_exist_is_refused_with_one_line
vm_case under_sustained_load_sqpoll_makes_far_fewer_io_uring_enters under_sustained_load_sqpoll_makes_far_fewer_io_uring_enters
vm_case the_enter_counter_agrees_with_strace the_enter_counter_agrees_with_strace
vm_finish
