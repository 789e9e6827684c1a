#!/bin/sh
# bench-report.sh: `coblk bench` end to end on one small target: it makes a
# coblk null device and a null_blk device, runs fio on both, writes a JSON
# and an HTML report whose numbers agree, and leaves no device behind.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

bench_lib=${COBLK_VM_LIB:-$(cd "$(dirname "$0")/.." && pwd)/lib.sh}

# A modprobe for `coblk bench --modprobe`: the VM has no modprobe database,
# lib.sh's vm_load_module loads a module and its dependencies either way.
bench_modprobe() {
  local w="${TMPDIR:-/tmp}/coblk-bench-modprobe"
  printf '#!/bin/sh\nCOBLK_VM_RESULTS=/dev/null\n. "%s"\nvm_load_module "$@"\n' "$bench_lib" > "$w"
  chmod +x "$w"
  echo "$w"
}

# json_field FILE KEY: the first value of "KEY": after "summary" in FILE.
json_summary_field() {
  sed 's/.*"summary":{//' "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | cut -d: -f2
}

# html_cell FILE ID: the text of the table cell with that id.
html_cell() {
  grep -o "id=\"$2\">[^<]*" "$1" | head -n 1 | cut -d'>' -f2
}

# Fails the case if a null_blk device of coblk bench's is left in configfs.
no_bench_nullb() {
  local d
  for d in /sys/kernel/config/nullb/coblk-bench-*; do
    [ ! -e "$d" ] || vm_fail "the null_blk device $d is still there"
  done
}

bench_writes_consistent_reports() {
  vm_ublk_ready fio
  local dir="${TMPDIR:-/tmp}/coblk-bench-report" before_devs after_devs key json html
  rm -rf "$dir"; mkdir -p "$dir"
  vm_defer "rm -rf $dir"
  before_devs=$("$COBLK_BIN" list | wc -l)
  "$COBLK_BIN" bench -t null -w randread_4k_qd32 --rounds 2 --runtime 1 --size 16M \
    --modprobe "$(bench_modprobe)" --json "$dir/r.json" --html "$dir/r.html" > "$dir/out" 2> "$dir/err" \
    || { cat "$dir/out" "$dir/err"; vm_fail "coblk bench failed"; }
  sed 's/^/coblk-vm: /' "$dir/out"
  [ ! -s "$dir/err" ] || { cat "$dir/err"; vm_fail "coblk bench wrote to stderr"; }
  [ -s "$dir/r.json" ] && [ -s "$dir/r.html" ] || vm_fail "a report is missing"
  grep -q '"workload":"randread_4k_qd32"' "$dir/r.json" || vm_fail "the JSON has no randread_4k_qd32 series"
  grep -q '"baseline_kind":"null_blk"' "$dir/r.json" || vm_fail "the JSON names no null_blk reference"
  for key in "<svg id=\"plot-iops\"" "<svg id=\"plot-bandwidth\"" "<svg id=\"plot-latency\"" "<svg id=\"plot-ratio\""; do
    grep -qF "$key" "$dir/r.html" || vm_fail "the HTML has no $key"
  done
  ! grep -qi '<script\|https\?:' "$dir/r.html" || vm_fail "the HTML refers to something outside it"
  # The same figures in both (awk compares them as numbers: the JSON may
  # write 1.5E-1 where the page shows 0.15).
  for key in ratio ratio_min ratio_max; do
    json=$(json_summary_field "$dir/r.json" "$key")
    html=$(html_cell "$dir/r.html" "s0-$key")
    vm_log "$key: JSON $json, HTML $html"
    awk -v a="$json" -v b="$html" 'BEGIN { exit !(a != "" && b != "" && a + 0 == b + 0) }' \
      || vm_fail "$key: JSON $json, HTML $html"
  done
  json=$(sed 's/.*"summary":{"ours":{//' "$dir/r.json" | grep -o '"iops":[^,}]*' | head -n 1 | cut -d: -f2)
  html=$(html_cell "$dir/r.html" s0-ours-iops)
  awk -v a="$json" -v b="$html" 'BEGIN { exit !(a > 0 && a + 0 == b + 0) }' || vm_fail "IOPS: JSON $json, HTML $html"
  # The server's CPU per I/O was measured (the pid from its record).
  json=$(grep -o '"ours_srv_cpu_us":[^,}]*' "$dir/out" | cut -d: -f2)
  awk -v a="$json" 'BEGIN { exit !(a > 0) }' || vm_fail "no server CPU per I/O: '$json'"
  # Both devices are gone again.
  after_devs=$("$COBLK_BIN" list | wc -l)
  vm_assert_eq "$before_devs" "$after_devs" "lines of coblk list after the bench"
  no_bench_nullb
}

bench_refuses_a_bad_workload_before_making_devices() {
  vm_ublk_ready
  vm_expect_error "unknown workload" "$COBLK_BIN" bench -w randread_3k --json /tmp/x.json --html /tmp/x.html
  [ ! -e /tmp/x.json ] || vm_fail "a report was written"
}

# fio failing after both devices exist (here: a "fio" that exits 1): one
# line, no report, and both devices removed again.
bench_removes_its_devices_when_fio_fails() {
  vm_ublk_ready
  local dir="${TMPDIR:-/tmp}/coblk-bench-fail" before_devs
  rm -rf "$dir"; mkdir -p "$dir"
  vm_defer "rm -rf $dir"
  printf '#!/bin/sh\necho "fio: simulated failure" >&2\nexit 1\n' > "$dir/fio"
  chmod +x "$dir/fio"
  before_devs=$("$COBLK_BIN" list | wc -l)
  vm_expect_error "fio on /dev/ublkb.*simulated failure" "$COBLK_BIN" bench -t null -w randread_4k_qd1 --rounds 1 \
    --runtime 1 --size 16M --fio "$dir/fio" --modprobe "$(bench_modprobe)" --json "$dir/r.json" --html "$dir/r.html"
  [ ! -e "$dir/r.json" ] && [ ! -e "$dir/r.html" ] || vm_fail "a report was written"
  vm_assert_eq "$before_devs" "$("$COBLK_BIN" list | wc -l)" "lines of coblk list after the failed bench"
  no_bench_nullb
}

vm_case "coblk bench writes a JSON and an HTML report that agree" bench_writes_consistent_reports
vm_case "coblk bench removes its devices when fio fails" bench_removes_its_devices_when_fio_fails
vm_case "coblk bench refuses an unknown workload in one line" bench_refuses_a_bad_workload_before_making_devices
vm_finish
