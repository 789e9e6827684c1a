# shellcheck shell=dash
# lib.sh: the guest-side test library. Guest test scripts (test/vm/guest/*.sh)
# source it and then run named cases:
#
#   . "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"
#   zram_holds_data() { vm_load_module zram; ...; }
#   vm_case "a zram device keeps what fio wrote" zram_holds_data
#   vm_finish
#
# A case is a shell function run in a subshell with `set -e`, so the first
# failing command fails it. Inside a case: vm_fail MSG, vm_skip REASON,
# vm_assert_eq, vm_load_module, vm_require_*, vm_wait_for_path, vm_spawn for
# background servers, and vm_defer CMD for cleanup that runs when the case
# ends (do not set an EXIT trap yourself).
#
# The same scripts run in the VM (COBLK_VM_MODE=vm, busybox sh, modules from
# /lib/modules/coblk) and directly on a host with ublk (COBLK_VM_MODE=host,
# /bin/sh, modprobe). POSIX sh only, plus `local`.
#
# Environment read here:
#   COBLK_VM_MODE          vm | host (default host)
#   COBLK_BIN              the coblk binary, if one was built
#   COBLK_VM_RESULTS       results file shared by run-guest-scripts
#   COBLK_VM_CASE_TIMEOUT  seconds before a case is killed (default 300)

COBLK_VM_MODE=${COBLK_VM_MODE:-host}
COBLK_VM_MODULES=${COBLK_VM_MODULES:-/lib/modules/coblk}
COBLK_VM_CASE_TIMEOUT=${COBLK_VM_CASE_TIMEOUT:-300}
_vm_script=$(basename "$0")
_vm_own_results=0
if [ -z "${COBLK_VM_RESULTS:-}" ]; then
  # Run standalone: keep our own tally and print the verdict in vm_finish.
  COBLK_VM_RESULTS=$(mktemp "${TMPDIR:-/tmp}/coblk-vm-results.XXXXXX")
  _vm_own_results=1
fi
_vm_skip_code=77

vm_log() { echo "coblk-vm: $*"; }

# Seconds since boot with centiseconds; works in busybox and on any Linux.
_vm_now() { cut -d' ' -f1 /proc/uptime; }

# vm_fail MSG: fail the current case.
vm_fail() { echo "FAIL: $*"; exit 1; }

# vm_skip REASON: end the current case as skipped (not a failure).
vm_skip() { echo "SKIP: $*"; exit $_vm_skip_code; }

# vm_assert_eq EXPECTED ACTUAL WHAT
vm_assert_eq() {
  [ "$1" = "$2" ] || vm_fail "$3: expected '$1', got '$2'"
}

# vm_require_cmd CMD...: skip the case unless every command exists.
vm_require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || vm_skip "$c is not available"
  done
}

# vm_require_coblk: skip the case unless the coblk binary was built.
vm_require_coblk() {
  [ -n "${COBLK_BIN:-}" ] && [ -x "$COBLK_BIN" ] || vm_skip "coblk binary not built"
}

# vm_require_root: skip unless running as root (host mode may not be).
vm_require_root() {
  [ "$(id -u)" = 0 ] || vm_skip "needs root"
}

# vm_module_loaded NAME: true when NAME is loaded or built in.
vm_module_loaded() {
  [ -d "/sys/module/$1" ] || [ -d "/sys/module/$(echo "$1" | tr - _)" ]
}

# vm_load_module NAME [PARAM=VALUE...]: load a module and its dependencies.
# In the VM there is no modprobe database: fetch-kernel left NAME.ko and
# NAME.dep (one dependency per line) in $COBLK_VM_MODULES. Fails the case if
# the module cannot be loaded. Parameters are ignored (with a warning) when
# the module is already loaded, as the kernel would do.
vm_load_module() {
  local name="$1"
  shift
  if vm_module_loaded "$name"; then
    [ $# -eq 0 ] || vm_log "warning: $name already loaded, parameters '$*' not applied"
    return 0
  fi
  if [ "$COBLK_VM_MODE" = vm ]; then
    local ko="$COBLK_VM_MODULES/$name.ko" dep
    [ -f "$ko" ] || vm_fail "module $name is neither built in nor in $COBLK_VM_MODULES"
    if [ -f "$COBLK_VM_MODULES/$name.dep" ]; then
      for dep in $(cat "$COBLK_VM_MODULES/$name.dep"); do vm_load_module "$dep"; done
    fi
    insmod "$ko" "$@" || vm_fail "insmod $name $* failed"
  else
    modprobe "$name" "$@" || vm_fail "modprobe $name $* failed"
  fi
}

# vm_wait_for_path PATH [SECONDS]: wait until PATH exists (a device node
# appearing after an ioctl, say); fails the case on timeout.
vm_wait_for_path() {
  local path="$1" limit="${2:-10}" i=0
  while [ ! -e "$path" ]; do
    i=$((i + 1))
    [ "$i" -le $((limit * 10)) ] || vm_fail "$path did not appear within ${limit}s"
    sleep 0.1
  done
}

# vm_kill_tree PID: SIGKILL PID and every descendant. A hung case is usually
# a child of the case subshell (fio, coblk, dd), which killing the subshell
# alone would leave behind.
vm_kill_tree() {
  local pids="$1" all="$1" p
  while [ -n "$pids" ]; do
    local next=""
    for p in $pids; do
      next="$next $(awk -v parent="$p" '/^Pid:/ { pid = $2 } /^PPid:/ { if ($2 == parent) print pid }' /proc/[0-9]*/status 2>/dev/null)"
    done
    pids=$(echo $next)
    all="$all $pids"
  done
  kill -STOP $all 2>/dev/null
  kill -KILL $all 2>/dev/null
  return 0
}

# vm_defer COMMAND...: run COMMAND (a shell string) when the current case
# ends, pass or fail; the last deferred runs first. Deferred commands run
# without `set -e` and cannot change the case's result, so cleanup such as
# "swapoff /dev/zram1" may fail harmlessly.
vm_defer() { _vm_deferred="$*
$_vm_deferred"; }

_vm_run_deferred() {
  local rc=$?
  # Untraced, so that the last lines of a failed case's trace (shown in the
  # run's summary) are the command that failed, not this cleanup.
  { set +ex; } 2>/dev/null
  if [ -n "$_vm_deferred" ]; then
    eval "$_vm_deferred" >/dev/null 2>&1
  fi
  exit "$rc"
}

# vm_spawn LOG COMMAND [ARGS...]: start a long-running process (a coblk
# ublk server, say) in the background with its output in LOG, and stop it
# when the case ends: SIGTERM, then SIGKILL for it and its children if it has
# not exited within 5 seconds. Its pid is left in VM_SPAWNED_PID.
vm_spawn() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 </dev/null &
  VM_SPAWNED_PID=$!
  vm_defer "_vm_stop $VM_SPAWNED_PID"
}

_vm_stop() {
  local i=0
  kill -TERM "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  kill -0 "$1" 2>/dev/null && vm_kill_tree "$1"
  wait "$1" 2>/dev/null
  return 0
}

# The kernel log's line count now, and its lines after the first N (the
# whole log if it has since wrapped to fewer). Empty where dmesg is not
# readable (host mode as a user).
_vm_kernel_log_lines() { dmesg 2>/dev/null | wc -l; }
_vm_kernel_log_since() {  # N
  local now
  now=$(_vm_kernel_log_lines)
  if [ "$now" -ge "$1" ]; then
    dmesg 2>/dev/null | tail -n +"$(($1 + 1))"
  else
    dmesg 2>/dev/null
  fi
}

_vm_record() {  # STATUS NAME
  printf '%s\t%s\t%s\n' "$1" "$_vm_script" "$2" >> "$COBLK_VM_RESULTS"
}

# vm_case NAME FUNCTION [ARGS...]: run one test case and record its result.
# The case fails on a non-zero exit, and is killed (with its children) and
# failed after $COBLK_VM_CASE_TIMEOUT seconds.
vm_case() {
  local name="$1" t0 rc flag watchdog pid trace klines
  shift
  echo "=== CASE $name"
  t0=$(_vm_now)
  klines=$(_vm_kernel_log_lines)
  flag=$(mktemp "${TMPDIR:-/tmp}/coblk-vm-timeout.XXXXXX")
  rm -f "$flag"
  trace=$(mktemp "${TMPDIR:-/tmp}/coblk-vm-trace.XXXXXX")
  # The case's shell trace and stderr go to a file that is shown only when
  # the case fails: with `set -e` the last traced command is the culprit.
  ( _vm_deferred=""; trap _vm_run_deferred EXIT; set -ex; "$@" ) 2>"$trace" &
  pid=$!
  ( sleep "$COBLK_VM_CASE_TIMEOUT"; : > "$flag"; vm_kill_tree "$pid" ) &
  watchdog=$!
  wait "$pid"
  rc=$?
  vm_kill_tree "$watchdog"
  wait "$watchdog" 2>/dev/null
  local secs
  secs=$(awk -v a="$t0" -v b="$(_vm_now)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -ne 0 ] && [ "$rc" -ne $_vm_skip_code ] || [ -e "$flag" ]; then
    echo "--- trace and stderr of the failed case (last 40 lines):"
    tail -n 40 "$trace" | sed 's/^/    /'
    # Repeated in the run's summary (run-guest-scripts), at the end of the
    # output, where a log cut short in the middle still shows it.
    { echo "coblk-vm: $_vm_script: $name: the failed case's last lines:"
      tail -n 12 "$trace" | sed 's/^/coblk-vm:     /'
      _vm_kernel_log_since "$klines" | tail -n 8 | sed 's/^/coblk-vm:     kernel: /'; } >> "$COBLK_VM_RESULTS.details"
    # What the kernel logged during the case: an I/O error, a command
    # timeout or a hung task is often the cause, and the console (booted
    # `quiet`) shows only errors.
    echo "--- kernel log during the failed case (last 30 lines):"
    _vm_kernel_log_since "$klines" | tail -n 30 | sed 's/^/    /'
  fi
  rm -f "$trace"
  if [ -e "$flag" ]; then
    rm -f "$flag"
    echo "--- FAIL: $name (timed out after ${COBLK_VM_CASE_TIMEOUT}s)"
    _vm_record FAIL "$name (timed out)"
  elif [ "$rc" -eq 0 ]; then
    echo "--- PASS: $name (${secs}s)"
    _vm_record PASS "$name"
  elif [ "$rc" -eq $_vm_skip_code ]; then
    echo "--- SKIP: $name"
    _vm_record SKIP "$name"
  else
    echo "--- FAIL: $name (exit status $rc, ${secs}s)"
    _vm_record FAIL "$name"
  fi
  return 0
}


# ---- coblk devices (shared by the guest scripts) ----------------------------

# vm_ublk_ready [CMD...]: root, the coblk binary, the ublk driver loaded and
# its control node present, and each CMD on the PATH; else skip the case.
vm_ublk_ready() {
  vm_require_root
  vm_require_coblk
  [ "$#" -eq 0 ] || vm_require_cmd "$@"
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
}

# vm_expect_error PATTERN CMD...: CMD fails (non-zero exit) with exactly
# one stderr line, which matches grep -i PATTERN.
vm_expect_error() {
  local pattern="$1" rc=0 dir="${TMPDIR:-/tmp}"
  shift
  "$@" >"$dir/vm-expect.out" 2>"$dir/vm-expect.err" || rc=$?
  vm_log "$*: exit $rc: $(cat "$dir/vm-expect.err")"
  [ "$rc" -ne 0 ] || vm_fail "$* succeeded"
  vm_assert_eq 1 "$(wc -l < "$dir/vm-expect.err")" "stderr lines"
  grep -qi -e "$pattern" "$dir/vm-expect.err" || vm_fail "the error does not match '$pattern'"
}

# add_device ID ARGS...: `coblk add -n ID ARGS`, deleted when the case ends.
add_device() {
  local id="$1" out
  shift
  vm_defer "$COBLK_BIN del --force -n $id"
  out=$("$COBLK_BIN" add -n "$id" "$@") || vm_fail "coblk add -n $id $* failed"
  vm_assert_eq "/dev/ublkb$id" "$out" "block device printed by coblk add"
  [ -b "$out" ] || vm_fail "$out does not exist right after coblk add returned"
}

# list_field ID COLUMN: a column of device ID's row in `coblk list -n ID`.
list_field() {
  "$COBLK_BIN" list -n "$1" | awk -v id="$1" -v col="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    $1 == id && c { print $c }'
}

# server_pid ID: the pid serving device ID, per `coblk list`.
server_pid() {
  local pid
  pid=$(list_field "$1" PID)
  case "$pid" in
    '' | *[!0-9]*) vm_fail "coblk list shows no server pid for device $1 ('$pid')" ;;
  esac
  echo "$pid"
}

# running PID: the process exists and is not a zombie (a zombie is an
# exited child nobody has reaped yet, and kill -0 still succeeds on it).
running() {
  kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# wait_until_gone PID SECONDS: wait for a process to end; false on timeout.
wait_until_gone() {
  local i=0
  while running "$1"; do
    i=$((i + 1))
    [ "$i" -le $(($2 * 10)) ] || return 1
    sleep 0.1
  done
}

# wait_for_exit PID SECONDS: wait for our child PID, at most SECONDS, and set
# EXIT_RC to its exit status. Fails the case if it is still running then.
# (Not in $(...): a command substitution's subshell cannot wait for its
# parent's children.)
wait_for_exit() {
  wait_until_gone "$1" "$2" || vm_fail "process $1 still runs after $2 s"
  EXIT_RC=0
  wait "$1" || EXIT_RC=$?
}

# seq_job FIO_ARGS...: the write job whose acknowledged writes are checked
# after a server is killed: sequential 64 KiB writes one at a time (psync),
# so the acknowledged writes are exactly a prefix of the range. Each block
# carries fio's crc32c verify header, so --verify_only over the acknowledged
# prefix checks every one of them. The arguments (filename, size, rate,
# verify_only) follow.
seq_job() {
  fio --name=acked --ioengine=psync --rw=write --bs=64k \
      --verify=crc32c --verify_fatal=1 --output-format=terse "$@"
}

# acked_kib PID SECONDS LOG FULL_KIB: waits for the seq_job PID (its terse
# output in LOG) and sets ACKED to the KiB it counted as written; a fio that
# succeeded must have written FULL_KIB.
acked_kib() {
  wait_for_exit "$1" "$2"
  ACKED=$(awk -F';' 'NF > 100 { print $47 }' "$3")
  vm_log "fio ended with status $EXIT_RC after $ACKED KiB acknowledged"
  case "$ACKED" in '' | *[!0-9]*) cat "$3" >&2; vm_fail "cannot read fio's written KiB" ;; esac
  [ "$EXIT_RC" -ne 0 ] || vm_assert_eq "$4" "$ACKED" "KiB written by a fio that succeeded"
}

# stat_value ID KEY: one number from `coblk stats -n ID --json` (kernel
# zram's mm_stat/io_stat/bd_stat names, e.g. orig_data_size, bd_writes);
# fails the case if there is none.
stat_value() {
  local v
  v=$("$COBLK_BIN" stats -n "$1" --json | tr ',{}' '\n\n\n' | sed -n "s/^\"$2\":[[:space:]]*//p" | head -n 1)
  case "$v" in
    '' | *[!0-9]*) vm_fail "coblk stats -n $1 --json has no number '$2': $("$COBLK_BIN" stats -n "$1" --json)" ;;
  esac
  echo "$v"
}

# stat_text ID KEY: one string from `coblk stats -n ID --json`, unquoted.
stat_text() {
  "$COBLK_BIN" stats -n "$1" --json | tr ',{}' '\n\n\n' | sed -n "s/^\"$2\":[[:space:]]*\"\(.*\)\"/\1/p" | head -n 1
}

# wait_for_stat ID KEY OP VALUE [SECONDS]: the server publishes its
# statistics every few hundred milliseconds; wait up to SECONDS (default 5)
# until "KEY OP VALUE" holds (OP: -gt, -lt, -eq, ...).
wait_for_stat() {
  local i=0 v limit=$((${5:-5} * 10))
  while :; do
    v=$(stat_value "$1" "$2")
    test "$v" "$3" "$4" && return 0
    i=$((i + 1))
    [ "$i" -le "$limit" ] || vm_fail "statistic $2 of device $1 is $v, expected $3 $4: $("$COBLK_BIN" stats -n "$1" --json)"
    sleep 0.1
  done
}

# wait_for_stat_text ID KEY TEXT [SECONDS]: as wait_for_stat, for a text
# statistic (tier_state): wait up to SECONDS (default 5) until it is TEXT.
wait_for_stat_text() {
  local i=0 v limit=$((${4:-5} * 10))
  while :; do
    v=$(stat_text "$1" "$2")
    [ "$v" = "$3" ] && return 0
    i=$((i + 1))
    [ "$i" -le "$limit" ] || vm_fail "statistic $2 of device $1 is '$v', not '$3' after ${4:-5} s: $("$COBLK_BIN" stats -n "$1" --json)"
    sleep 0.1
  done
}

# backing_file SIZE: sets $backing to a fresh file of SIZE (truncate's
# syntax) in $TMPDIR, removed when the case ends. (Not run in $(...): the
# defer must stay in the case's shell.)
_vm_backing_seq=0
backing_file() {
  _vm_backing_seq=$((_vm_backing_seq + 1))
  backing="${TMPDIR:-/tmp}/coblk-backing.$$.$_vm_backing_seq"
  rm -f "$backing"
  truncate -s "$1" "$backing" || vm_fail "cannot create a backing file of $1"
  vm_defer "rm -f $backing"
}

# fio_fill DEVICE SIZE [OPTIONS...]: sequential 64 KiB writes over SIZE
# bytes, verified by crc32c after all are written. With fio's
# buffer_compress_percentage=50 and verify, about half the pages come out
# zero (same-filled) and half random (stored raw, "huge" in a zram).
fio_fill() {
  local dev="$1" size="$2" log="${TMPDIR:-/tmp}/coblk-fio-fill.log"
  shift 2
  fio --name=fill --filename="$dev" --ioengine=io_uring --direct=1 --iodepth=8 \
      --rw=write --bs=64k --size="$size" --buffer_compress_percentage=50 --refill_buffers \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse "$@" >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; vm_fail "fio crc32c verification failed on $dev"; }
}

# fio_verify_striped DEVICE JOBS SIZE BSRANGE [STRIDE]: random writes of
# BSRANGE with crc32c verification from JOBS jobs, each pinned to its own
# CPU (blk-mq maps a queue per submitting CPU, so each queue sees traffic)
# and writing SIZE bytes in its own stripe, STRIDE (default SIZE) apart;
# logs what fio wrote and verified (terse v3: field 47 the KiB written, 6
# the KiB read back).
fio_verify_striped() {
  local dev="$1" jobs="$2" size="$3" bs="$4" stride="${5:-$3}" log="${TMPDIR:-/tmp}/coblk-fio-striped.log"
  fio --name=verify --filename="$dev" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange="$bs" --iodepth=16 --size="$size" \
      --numjobs="$jobs" --offset_increment="$stride" \
      --cpus_allowed=0-$((jobs - 1)) --cpus_allowed_policy=split \
      --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --group_reporting --output-format=terse >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; vm_fail "fio crc32c verification failed on $dev"; }
  awk -F';' -v dev="$dev" 'NF > 100 { print "coblk-vm: fio on " dev ": wrote " $47 " KiB, verified " $6 " KiB" }' "$log"
}

# ---- NBD servers (nbd-target.sh, nbd-zero-copy.sh, zram-nbd-tier.sh) ----

# nbd_ready [COMMAND...]: as vm_ublk_ready with fio and nbdkit, and the
# loopback interface up for TCP (the guest's init brings up no network).
nbd_ready() {
  vm_ublk_ready fio nbdkit "$@"
  if command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi
  ifconfig lo 127.0.0.1 up 2>/dev/null || true
}

# wait_for_port PORT: something listens on 127.0.0.1:PORT (polls
# /proc/net/tcp for a listener; nbdkit's --print-uri would need a pipe).
wait_for_port() {
  local hex i=0
  hex=$(printf '%04X' "$1")
  while [ "$i" -lt 200 ]; do
    awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp 2>/dev/null && return 0
    sleep 0.1
    i=$((i + 1))
  done
  vm_fail "nothing listens on 127.0.0.1:$1"
}

# servers_log_to FILE: in the VM, a syslogd of the case's own that writes
# what coblk's servers log (syslog) to FILE, for the case to look for a
# line in it. The guest has no logger of its own, and a /dev/log left by an
# earlier case's syslogd is stale. Does nothing outside the VM (a host has
# its own logger) or without busybox's syslogd: FILE then does not exist.
servers_log_to() {
  if [ "$COBLK_VM_MODE" = vm ] && command -v syslogd >/dev/null; then
    rm -f "$1" /dev/log
    vm_spawn "$1.syslogd.out" syslogd -n -O "$1"
    vm_defer "rm -f /dev/log"
    vm_wait_for_path /dev/log 5
  fi
}

# wait_for_writes DEV: DEV (ublkbN) has completed a write, within 10 s.
# The kill-mid-fio cases kill their server once fio is under way, not after
# a fixed time: a faster guest finished fio's 24 MiB within a 2 s sleep.
wait_for_writes() {
  local i=0
  while [ "$(awk '{ print $5 }' "/sys/block/$1/stat")" -eq 0 ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || vm_fail "no write to $1 completed within 10 s"
    sleep 0.1
  done
}

# verifying_fio_under_way DEV BSRANGE LOG: starts a 2-job fio that writes
# 12 MiB per job in BSRANGE blocks to DEV (/dev/ublkbN) and then verifies
# them (crc32c), in the background, and returns once a write has
# completed and fio still runs: the moment the kill-mid-fio cases kill a
# server. Leaves fio's pid in FIO_BG_PID (killed when the case ends); the
# case waits for it with fio_bg_succeeded.
verifying_fio_under_way() {
  fio --name=midfio --filename="$1" --ioengine=io_uring --direct=1 \
      --rw=randwrite --bsrange="$2" --iodepth=16 --size=12M \
      --numjobs=2 --offset_increment=12M --cpus_allowed=0-1 --cpus_allowed_policy=split \
      --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --group_reporting --output-format=terse >"$3" 2>&1 &
  FIO_BG_PID=$!
  vm_defer "kill $FIO_BG_PID 2>/dev/null || true"
  wait_for_writes "${1#/dev/}"
  running "$FIO_BG_PID" || { cat "$3" >&2; vm_fail "fio ended before the server was killed"; }
}

# fio_bg_succeeded LOG WHAT: the fio of verifying_fio_under_way (log LOG)
# completed and verified; WHAT names the event it ran across.
fio_bg_succeeded() {
  local rc=0
  wait "$FIO_BG_PID" || rc=$?
  [ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; vm_fail "fio failed across $2 (exit $rc)"; }
  awk -F';' -v what="$2" 'NF > 100 { print "coblk-vm: fio across " what ": wrote " $47 " KiB, verified " $6 " KiB" }' "$1"
}

# start_nbdkit SOCKET|PORT PLUGIN ARGS...: nbdkit in the foreground of a
# vm_spawn (killed when the case ends), on a unix socket (a path) or a
# loopback TCP port (a number). Leaves its pid in NBDKIT_PID.
start_nbdkit() {
  local where="$1" log="${TMPDIR:-/tmp}/nbdkit-$1.log"
  shift
  case "$where" in
    /*)
      rm -f "$where"
      log="${TMPDIR:-/tmp}/nbdkit-$(basename "$where").log"
      vm_spawn "$log" nbdkit -f -U "$where" "$@"
      NBDKIT_PID=$VM_SPAWNED_PID
      vm_wait_for_path "$where" 20 ;;
    *)
      vm_spawn "$log" nbdkit -f -i 127.0.0.1 -p "$where" "$@"
      NBDKIT_PID=$VM_SPAWNED_PID
      wait_for_port "$where" ;;
  esac
}

# cgroup2_root: where the cgroup v2 hierarchy is mounted (mounting it at
# /sys/fs/cgroup if it is not yet). Skips the script on a kernel without
# cgroup v2.
cgroup2_root() {
  local root
  root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  if [ -z "$root" ]; then
    grep -qw cgroup2 /proc/filesystems || vm_skip "the kernel has no cgroup v2"
    root=/sys/fs/cgroup
    mkdir -p "$root"
    mount -t cgroup2 cgroup2 "$root"
  fi
  echo "$root"
}

# vm_finish: print this script's tally; exit status 0 unless a case failed.
# Run standalone (no run-guest-scripts), it also prints the verdict line.
vm_finish() {
  local p f s
  p=$(grep -c "^PASS	$_vm_script	" "$COBLK_VM_RESULTS")
  f=$(grep -c "^FAIL	$_vm_script	" "$COBLK_VM_RESULTS")
  s=$(grep -c "^SKIP	$_vm_script	" "$COBLK_VM_RESULTS")
  echo "coblk-vm: $_vm_script: $p passed, $f failed, $s skipped"
  if [ "$_vm_own_results" = 1 ]; then
    rm -f "$COBLK_VM_RESULTS"
    local verdict=PASS
    [ "$f" -eq 0 ] && [ "$p" -gt 0 ] || verdict=FAIL
    echo "COBLK-VM-RESULT: $verdict $p passed, $f failed, $s skipped"
  fi
  [ "$f" -eq 0 ]
}
