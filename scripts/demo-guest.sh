#!/bin/sh
# demo-guest.sh: what scripts/demo shows, run as root on a kernel with ublk
# (inside the VM harness, or directly on such a host): coblk's main job. A
# program whose data is text (swap_workload: log lines, JSON, prose; about 2x
# compressible with LZ4) needs DEMO_MIB MiB but may keep only DEMO_LIMIT_MIB
# in RAM (a cgroup's memory.max), so most of it goes to swap: first on a
# coblk zram device, then on kernel zram, and a table puts the two side by
# side. Every command is printed as typed, after "+ ".
# shellcheck source-path=SCRIPTDIR source=../test/vm/lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../test/vm/lib.sh}"

DEMO_MIB=${DEMO_MIB:-64}
DEMO_LIMIT_MIB=${DEMO_LIMIT_MIB:-24}
SWAP_SIZE=256M
RESULTS=${TMPDIR:-/tmp}/coblk-demo
mkdir -p "$RESULTS"

# The coblk binary under the name a user types.
coblk() { "$COBLK_BIN" "$@"; }

# run CMD...: print the command as typed, then run it.
run() {
  echo "+ $*"
  "$@"
}

# run_sh 'CMD': the same for a command line with redirections or pipes.
run_sh() {
  echo "+ $1"
  eval "$1"
}

# note TEXT: a line of explanation between the commands.
note() { echo "# $*"; }

vmstat_value() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }

# block_stat DEV FIELD: a field of /sys/block/DEV/stat (1 reads, 5 writes).
block_stat() { awk -v f="$2" '{ print $f }' "/sys/block/$1/stat"; }

# swap_run NAME DEV: runs the workload in a memory-limited cgroup with DEV as
# the only swap, shows what swap holds while the workload still holds its
# memory, and leaves key=value results in $RESULTS/NAME.
swap_run() {
  local name="$1" dev="$2" root group pid out i
  local out0 in0 r0 w0 blk="${2#/dev/}"
  run mkswap "$dev"
  run swapon -d "$dev"
  vm_defer "swapoff $dev"
  run cat /proc/swaps
  [ "$(wc -l < /proc/swaps)" -eq 2 ] || vm_fail "$dev must be the only swap for the figures to mean anything"

  root=$(cgroup2_root)
  grep -qw memory "$root/cgroup.controllers" || vm_skip "cgroup v2 has no memory controller"
  echo +memory > "$root/cgroup.subtree_control"
  group="$root/demo-$name"
  note "a memory cgroup: the workload needs $DEMO_MIB MiB and may keep $DEMO_LIMIT_MIB MiB in RAM"
  run mkdir "$group"
  vm_defer "rmdir $group"
  run_sh "echo ${DEMO_LIMIT_MIB}M > $group/memory.max"
  out0=$(vmstat_value pswpout) in0=$(vmstat_value pswpin)
  r0=$(block_stat "$blk" 1) w0=$(block_stat "$blk" 5)
  out="$RESULTS/$name.log"
  run_sh "sh -c 'echo \$\$ > $group/cgroup.procs; exec swap_workload $DEMO_MIB --hold' > $out &"
  pid=$!
  vm_defer "kill $pid 2>/dev/null"
  i=0
  until grep -q '^swap_workload: wrote' "$out"; do
    kill -0 "$pid" 2>/dev/null || { cat "$out"; vm_fail "swap_workload ended before it had written its memory"; }
    i=$((i + 1))
    [ "$i" -le 2400 ] || vm_fail "swap_workload did not finish writing within 240 s"
    sleep 0.1
  done
  cat "$out"
  if [ "$name" = coblk ]; then
    note "while it reads its memory back, from swap:"
    run coblk top --once
  fi
  until grep -q '^swap_workload: holding' "$out"; do
    kill -0 "$pid" 2>/dev/null || { cat "$out"; vm_fail "swap_workload ended before it had read its memory back"; }
    i=$((i + 1))
    [ "$i" -le 4800 ] || vm_fail "swap_workload did not finish reading within 480 s"
    sleep 0.1
  done
  sed 1d "$out"
  note "the workload now holds its memory; swap holds what did not fit:"
  run cat /proc/swaps
  if [ "$name" = coblk ]; then
    run coblk stats
    run coblk metrics --summary
    coblk stats --json > "$RESULTS/$name.json"
    {
      echo "orig=$(tr ',{}' '\n\n\n' < "$RESULTS/$name.json" | sed -n 's/^"orig_data_size":[[:space:]]*//p')"
      echo "used=$(tr ',{}' '\n\n\n' < "$RESULTS/$name.json" | sed -n 's/^"mem_used_total":[[:space:]]*//p')"
      echo "rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(coblk list -n "${dev#/dev/ublkb}" --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')/status")"
    } > "$RESULTS/$name"
  else
    note "mm_stat: orig_data_size compr_data_size mem_used_total mem_limit mem_used_max same_pages ..."
    run cat "/sys/block/$blk/mm_stat"
    awk '{ print "orig=" $1; print "used=" $3 }' "/sys/block/$blk/mm_stat" > "$RESULTS/$name"
  fi
  {
    sed -n 's/^swap_workload: wrote .* in \([0-9.]*\) s$/write_s=\1/p' "$out"
    sed -n 's/^swap_workload: read all .* in \([0-9.]*\) s; total \([0-9.]*\) s$/read_s=\1 total_s=\2/p' "$out"
    echo "out=$(($(vmstat_value pswpout) - out0))"
    echo "in=$(($(vmstat_value pswpin) - in0))"
    echo "swap_kib=$(awk -v d="$dev" '$1 == d { print $4 }' /proc/swaps)"
    echo "requests=$(($(block_stat "$blk" 1) - r0 + $(block_stat "$blk" 5) - w0))"
  } >> "$RESULTS/$name"
  run kill "$pid"
  wait "$pid" 2>/dev/null || true
  run swapoff "$dev"
}

coblk_zram_swap() {
  vm_require_coblk; vm_require_root; vm_require_cmd swap_workload mkswap swapon swapoff
  [ "$(wc -l < /proc/swaps)" -eq 1 ] || vm_skip "this machine has swap of its own; the figures would mix it in"
  vm_load_module ublk_drv
  local dev
  echo "+ coblk add -t zram --size $SWAP_SIZE --algorithm lz4"
  dev=$(coblk add -t zram --size "$SWAP_SIZE" --algorithm lz4)
  echo "$dev"
  vm_defer "$COBLK_BIN del --force -n ${dev#/dev/ublkb}"
  swap_run coblk "$dev"
  run coblk del -n "${dev#/dev/ublkb}"
}

kernel_zram_swap() {
  vm_require_root; vm_require_cmd swap_workload mkswap swapon swapoff
  [ "$(wc -l < /proc/swaps)" -eq 1 ] || vm_skip "this machine has swap of its own; the figures would mix it in"
  note "kernel zram (in the VM: vm_load_module insmods zram.ko and its dependencies)"
  run vm_load_module zram
  local id
  echo "+ cat /sys/class/zram-control/hot_add"
  id=$(cat /sys/class/zram-control/hot_add)
  echo "$id"
  vm_defer "echo 1 > /sys/block/zram$id/reset; echo $id > /sys/class/zram-control/hot_remove"
  run_sh "echo lz4 > /sys/block/zram$id/comp_algorithm"
  run_sh "echo $SWAP_SIZE > /sys/block/zram$id/disksize"
  swap_run kernel "/dev/zram$id"
}

# The two runs side by side.
side_by_side() {
  [ -f "$RESULTS/coblk" ] && [ -f "$RESULTS/kernel" ] || vm_skip "a run above did not finish"
  echo "$DEMO_MIB MiB of text in a cgroup with memory.max = $DEMO_LIMIT_MIB MiB; swap on a 256 MiB device, lz4"
  # Each results file is key=value lines; awk reads both and prints rows.
  awk '
    FNR == 1 { side = (FILENAME ~ /coblk$/) ? "c" : "k" }
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[side, kv[1]] = kv[2] } }
    function mib(b) { return sprintf("%.1f", b / 1048576) }
    function ratio(s) { return v[s, "used"] > 0 && v[s, "orig"] > 0 ? sprintf("%.2f", v[s, "orig"] / v[s, "used"]) : "-" }
    function row(label, c, k) { printf "%-36s %12s %12s\n", label, c, k }
    END {
      row("", "coblk zram", "kernel zram")
      row("workload: write its memory (s)", v["c", "write_s"], v["k", "write_s"])
      row("workload: read it back (s)", v["c", "read_s"], v["k", "read_s"])
      row("pages swapped out", v["c", "out"], v["k", "out"])
      row("pages swapped in", v["c", "in"], v["k", "in"])
      row("requests to the swap device", v["c", "requests"], v["k", "requests"])
      row("swap in use at the end (MiB)", mib(v["c", "swap_kib"] * 1024), mib(v["k", "swap_kib"] * 1024))
      row("data stored (MiB)", mib(v["c", "orig"]), mib(v["k", "orig"]))
      row("memory used for it (MiB)", mib(v["c", "used"]), mib(v["k", "used"]))
      row("compression ratio", ratio("c"), ratio("k"))
      row("server process RSS (MiB)", mib(v["c", "rss_kib"] * 1024), "-")
    }' "$RESULTS/coblk" "$RESULTS/kernel"
  cat <<'EOT'
Reading the table:
- Times are the emulator's (TCG: 10-50x slower than hardware), and a ublk request
  is a round trip to a userspace server; latency per request is in `coblk metrics
  --summary` above. Compare sizes and ratios; take times only as this VM's.
- Kernel zram is a synchronous device: a page read back from it leaves swap at once.
  A page read back from coblk stays in the swap cache, its slot still allocated,
  until it changes: coblk holds more data at the end, and pages evicted again
  unchanged need no second write (fewer pages swapped out).
- The block layer merges swap I/O to coblk into requests of up to 128 KiB;
  kernel zram is handed it page by page.
- The server's RSS is everything its process holds: the data's memory, its
  prefaulted, locked tag buffers and what its allocators keep. Here that is well
  above the data's memory; kernel zram's own overhead shows in no comparable figure.
EOT
}

vm_case "coblk zram as swap for a program bigger than its memory" coblk_zram_swap
vm_case "kernel zram as swap for the same program" kernel_zram_swap
vm_case "coblk zram and kernel zram side by side" side_by_side
vm_finish
