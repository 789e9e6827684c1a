#!/bin/sh
# coblk-bench.sh: runs `coblk bench` in the VM harness (or on a host with
# ublk, as root) for perf/ublk/vm-bench, once per queue count, and sends
# its results out through the log, the harness's only way out of the VM:
#   COBLK-BENCH-RESULT qN {"bench":"ublk_null_randread_4k_qd32",...}   one per series
#   COBLK-BENCH-FILE NAME <base64 line>                                the reports
#   COBLK-BENCH-SHA NAME <sha256>                                      to check them against
# (prefixed lines, so kernel messages on the console cannot mix in).
# Settings: COBLK_BENCH_TARGETS ("null ram loop zram"), COBLK_BENCH_WORKLOADS
# (empty: coblk bench's default), COBLK_BENCH_ROUNDS, COBLK_BENCH_RUNTIME,
# COBLK_BENCH_QUEUES ("1 2"), COBLK_BENCH_SIZE (256M); in the VM from
# /coblk/extra/bench.env, which perf/ublk/vm-bench writes.
# shellcheck source-path=SCRIPTDIR source=../../../test/vm/lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../../../test/vm/lib.sh}"

[ -f /coblk/extra/bench.env ] && . /coblk/extra/bench.env
bench_lib=${COBLK_VM_LIB:-$(cd "$(dirname "$0")/../../../test/vm" && pwd)/lib.sh}

# A modprobe for `coblk bench --modprobe`: the VM has no modprobe database;
# lib.sh's vm_load_module loads a module and its dependencies either way.
bench_modprobe() {
  local w="${TMPDIR:-/tmp}/coblk-bench-modprobe"
  printf '#!/bin/sh\nCOBLK_VM_RESULTS=/dev/null\n. "%s"\nvm_load_module "$@"\n' "$bench_lib" > "$w"
  chmod +x "$w"
  echo "$w"
}

send_file() {  # PATH NAME
  base64 "$1" | sed "s/^/COBLK-BENCH-FILE $2 /"
  echo "COBLK-BENCH-SHA $2 $(sha256sum "$1" | cut -d' ' -f1)"
}

run_coblk_bench() {  # QUEUES
  vm_ublk_ready fio base64 sha256sum
  local q=$1 dir="${TMPDIR:-/tmp}/coblk-bench-q$1" workloads=
  rm -rf "$dir"; mkdir -p "$dir"
  vm_defer "rm -rf $dir"
  [ -z "${COBLK_BENCH_WORKLOADS:-}" ] || workloads="-w $(echo "$COBLK_BENCH_WORKLOADS" | tr ' ' ',')"
  # shellcheck disable=SC2086 # $workloads is an option and its value, or nothing
  "$COBLK_BIN" bench -t "$(echo "${COBLK_BENCH_TARGETS:-null ram loop zram}" | tr ' ' ',')" $workloads \
    --rounds "${COBLK_BENCH_ROUNDS:-3}" --runtime "${COBLK_BENCH_RUNTIME:-3}" --size "${COBLK_BENCH_SIZE:-256M}" \
    -q "$q" --modprobe "$(bench_modprobe)" --json "$dir/coblk-bench.json" --html "$dir/coblk-bench.html" \
    2> "$dir/err" | tee "$dir/out" | grep -v '^{' | sed 's/^/coblk-vm: /'
  # Its progress went out live (vm-bench notes the host's load at each
  # round); whether it succeeded: its last line, and nothing on stderr.
  [ ! -s "$dir/err" ] && grep -q '^wrote ' "$dir/out" || vm_fail "coblk bench failed: $(cat "$dir/err")"
  grep '^{' "$dir/out" | sed "s/^/COBLK-BENCH-RESULT q$q /"
  send_file "$dir/coblk-bench.json" "coblk-bench-q$q.json"
  send_file "$dir/coblk-bench.html" "coblk-bench-q$q.html"
}

for q in ${COBLK_BENCH_QUEUES:-1}; do
  vm_case "coblk_bench_q$q" run_coblk_bench "$q"
done
vm_finish
