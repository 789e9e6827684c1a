#!/bin/sh
# zram-swap.sh: a coblk zram device works as the machine's only swap under
# memory pressure. swap_check runs in a cgroup v2 group whose memory.max is
# far below what it allocates, so most of its pages go to swap on the ublk
# device and come back; every page must come back right, nothing may
# deadlock, the coblk server (outside the group) must not be OOM-killed, and
# `coblk stats` must show the swapped pages stored.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device id of this script (high, so a host's own ublk devices are left alone).
swap_id=120
# swap_check allocates this much; the group may keep this much in RAM.
# (Under TCG each swapped MiB costs about half a second, so this stays small:
# 56 MiB must go to swap, over 3x what the kill case waits for.)
check_mib=80
group_mib=24
check_passes=1

# stat_or_empty ID KEY: one statistic from `coblk stats -n ID --json`, or
# nothing while the server is restarting (lib.sh's stat_value would fail).
stat_or_empty() {
  "$COBLK_BIN" stats -n "$1" --json | tr ',{}' '\n\n\n' | sed -n "s/^\"$2\":[[:space:]]*//p" | head -n 1
}

# swap_under_pressure [kill]: with "kill", the device is added with
# --recovery and its server is killed with SIGKILL once swap holds 16 MiB;
# its keeper restarts it, and swap_check must still see every page right.
swap_under_pressure() {
  local mode="${1:-}" id="$swap_id" dev="/dev/ublkb$swap_id" t="${TMPDIR:-/tmp}" root group pid check rc max_orig orig dmesg_start
  local recovery= killed= tier=
  [ "$mode" = kill ] && recovery=--recovery
  if [ "$mode" = backing ]; then
    # An 8 MiB memory limit and a backing file: most of the swap must go
    # through the tier (about 25 MiB of the 56 swapped are stored, as
    # swap_check's pages compress to about half).
    truncate -s 256M "$t/swap-backing" || vm_fail "cannot create the backing file"
    vm_defer "rm -f $t/swap-backing"
    tier="--mem-limit 8M --backing $t/swap-backing"
  fi
  vm_ublk_ready swap_check mkswap swapon swapoff
  # The device must be the only swap: on a host with swap of its own, leave it be.
  if [ "$(wc -l < /proc/swaps)" -gt 1 ]; then
    [ "$COBLK_VM_MODE" = vm ] || vm_skip "this host has swap of its own"
    swapoff -a
  fi
  root=$(cgroup2_root)
  grep -qw memory "$root/cgroup.controllers" || vm_skip "cgroup v2 has no memory controller"
  echo +memory > "$root/cgroup.subtree_control"
  group="$root/coblk-swap-$$"
  mkdir "$group"
  vm_defer "rmdir $group"
  [ -e "$group/memory.swap.max" ] || vm_skip "no swap accounting in cgroup v2 (memory.swap.max missing)"
  echo $((group_mib << 20)) > "$group/memory.max"
  echo max > "$group/memory.swap.max"

  # The server stays in this shell's cgroup, outside the limited group.
  vm_defer "$COBLK_BIN del --force -n $id"
  # shellcheck disable=SC2086 # $recovery is one word or none
  # shellcheck disable=SC2086 # $recovery and $tier are lists of options
  "$COBLK_BIN" add -n "$id" -t zram --size 1G -q 2 $recovery $tier >/dev/null
  pid=$("$COBLK_BIN" list -n "$id" | awk -v id="$id" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PID") c = i; next } $1 == id { print $c }')
  ! grep -qx "0::/${group#"$root"/}" "/proc/$pid/cgroup" || vm_fail "the coblk server is inside the limited group"
  mkswap "$dev" >/dev/null
  swapon "$dev"
  vm_defer "swapoff $dev"
  grep -q "^$dev " /proc/swaps || vm_fail "$dev is not in /proc/swaps"
  vm_assert_eq 2 "$(wc -l < /proc/swaps)" "lines of /proc/swaps (header + the ublk device)"

  # Only kernel messages from here on count.
  dmesg_start=$(($(dmesg | wc -l) + 1))
  # swap_check reads its pages back in a scattered order, for which swap
  # readahead only fetches pages that are evicted again before use.
  local cluster
  cluster=$(cat /proc/sys/vm/page-cluster)
  echo 0 > /proc/sys/vm/page-cluster
  vm_defer "echo $cluster > /proc/sys/vm/page-cluster"
  # swap_check enters the group before it allocates anything.
  sh -c "echo \$\$ > $group/cgroup.procs && exec swap_check $check_mib $check_passes" >"$t/swap_check.log" 2>&1 &
  check=$!
  vm_defer "kill -9 $check"
  # While it runs, sample what the device stores.
  max_orig=0
  while kill -0 "$check" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$check/status" 2>/dev/null; do
    orig=$(stat_or_empty "$id" orig_data_size)
    case "$orig" in '' | *[!0-9]*) orig=0 ;; esac
    [ "$orig" -le "$max_orig" ] || max_orig=$orig
    if [ "$mode" = kill ] && [ -z "$killed" ] && [ "$orig" -ge $((16 << 20)) ]; then
      kill -KILL "$pid"
      killed=$pid
      local i=0
      while [ "$(list_field "$id" STATE)" != live ] || [ "$(list_field "$id" PID)" = "$killed" ]; do
        i=$((i + 1))
        [ "$i" -le 600 ] || vm_fail "the swap device was not live again within 60 s of kill -9"
        sleep 0.1
      done
      pid=$(list_field "$id" PID)
      vm_log "killed server $killed with $orig bytes swapped; the keeper restarted it as $pid"
    fi
    sleep 1
  done
  [ "$mode" != kill ] || [ -n "$killed" ] || vm_fail "swap never held 16 MiB, so the server was not killed"
  rc=0
  wait "$check" || rc=$?
  cat "$t/swap_check.log"
  vm_log "swap stored up to $max_orig bytes in the zram device; group events: $(tr '\n' ' ' < "$group/memory.events")"
  "$COBLK_BIN" stats -n "$id"

  dmesg | tail -n +"$dmesg_start" > "$t/swap.dmesg"
  if grep -i 'killed process' "$t/swap.dmesg" | grep -q coblk; then
    grep -i -B2 -A2 'killed process' "$t/swap.dmesg" >&2
    vm_fail "the OOM killer killed the coblk server"
  fi
  kill -0 "$pid" || vm_fail "the coblk server ($pid) is gone"
  ! grep -q 'blocked for more than' "$t/swap.dmesg" || { grep -A10 'blocked for more than' "$t/swap.dmesg" >&2; vm_fail "a task hung"; }
  vm_assert_eq 0 "$rc" "swap_check's exit status"
  grep -q '^swap_check: OK' "$t/swap_check.log" || vm_fail "swap_check did not report OK"
  # The group had to swap: at least what did not fit in it went to the device.
  [ "$max_orig" -ge $(((check_mib - group_mib) << 20)) ] \
    || vm_fail "coblk stats showed at most $max_orig bytes stored, less than the $((check_mib - group_mib)) MiB that had to be swapped"
  if [ "$mode" = backing ]; then
    local writes failed
    writes=$(stat_value "$id" bd_writes)
    failed=$(stat_value "$id" failed_writes)
    vm_log "the tier took $writes pages; failed_writes $failed"
    [ "$writes" -gt 4096 ] || vm_fail "only $writes pages went to the backing tier"
    vm_assert_eq 0 "$failed" "failed_writes (a write at the limit must wait for writeback, not fail)"
  fi
  swapoff "$dev"
}

vm_case "a coblk zram device as the only swap serves a cgroup squeezed to ${group_mib} MiB through ${check_mib} MiB of swap_check without corruption, OOM kill of coblk or deadlock" swap_under_pressure
vm_case "a coblk zram swap device whose server is killed with SIGKILL mid-swap is restarted by its keeper, and swap_check sees every page right with nothing OOM-killed" \
  swap_under_pressure kill
vm_case "a coblk zram swap device with an 8 MiB --mem-limit and a backing file serves the same squeeze: pages go through the tier, none fails, every page verifies" \
  swap_under_pressure backing
vm_finish
