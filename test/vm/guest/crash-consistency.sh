#!/bin/sh
# crash-consistency.sh: ext4 on a coblk loop device is consistent at every
# point a crash could leave it, and the device holds exactly what was
# written to it.
#
# dm-log-writes sits between ext4 and /dev/ublkbN and records every write,
# discard and flush in completion order on a ram disk. log_replay then plays
# that history onto a zeroed image (the loop file's state before mkfs) one
# FLUSH at a time; at each flush after mkfs, a copy of the image gets its
# journal replayed (e2fsck -E journal_only) and `e2fsck -fn` must find it
# clean. At the end (the log then holds every write, flushed or not), the
# replayed image must equal the loop target's backing file byte for byte:
# every write the device acknowledged is in the file, and nothing else is.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device id of this script (high, so a host's own ublk devices are left alone).
base_id=160

# A file workload with many commits: files written and fsynced one by one,
# a directory tree, renames over existing files, unlinks, a truncate.
file_workload() {
  local mnt="$1" i
  mkdir -p "$mnt/a/b/c"
  for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    head -c $((i * 24576)) /dev/urandom > "$mnt/a/f$i"
    sync "$mnt/a/f$i" 2>/dev/null || sync
    [ $((i % 3)) -ne 0 ] || mv "$mnt/a/f$i" "$mnt/a/b/c/g$i"
    [ $((i % 4)) -ne 0 ] || rm -f "$mnt/a/f$((i - 1))"
  done
  head -c 300000 /dev/urandom > "$mnt/a/b/new" && mv "$mnt/a/b/new" "$mnt/a/f1"
  truncate -s 4096 "$mnt/a/f2"
  sync
}

every_flush_is_consistent() {
  local id="$base_id" t="${TMPDIR:-/tmp}" sectors mnt list flushes n checked prev k line mark_at
  vm_ublk_ready mkfs.ext4 e2fsck dmsetup log_replay blockdev
  vm_load_module dm_mod
  [ "$COBLK_VM_MODE" != vm ] || [ -f "$COBLK_VM_MODULES/dm_log_writes.ko" ] \
    || vm_skip "the VM kernel has no dm-log-writes module"
  vm_load_module dm_log_writes
  vm_load_module brd rd_nr=1 rd_size=131072
  vm_defer "rmmod brd"
  truncate -s 32M "$t/cc.img"
  vm_defer "rm -f $t/cc.img $t/replay.img $t/check.img"
  add_device "$id" -t loop -f "$t/cc.img"
  sectors=$(blockdev --getsz "/dev/ublkb$id")
  dmsetup create coblk-lw --noudevsync --table "0 $sectors log-writes /dev/ublkb$id /dev/ram0" \
    || vm_fail "dmsetup create log-writes failed"
  vm_defer "dmsetup remove --noudevsync coblk-lw 2>/dev/null"
  dmsetup mknodes coblk-lw
  [ -b /dev/mapper/coblk-lw ] || vm_fail "no /dev/mapper/coblk-lw"

  mnt="$t/cc-mnt"
  mkdir -p "$mnt"
  mkfs.ext4 -q /dev/mapper/coblk-lw || vm_fail "mkfs.ext4 failed"
  dmsetup message coblk-lw 0 mark mkfs-done
  mount -o commit=1 /dev/mapper/coblk-lw "$mnt" || vm_fail "mount failed"
  vm_defer "umount $mnt 2>/dev/null"
  file_workload "$mnt"
  umount "$mnt"
  dmsetup remove --noudevsync coblk-lw || vm_fail "dmsetup remove failed"

  list=$(log_replay /dev/ram0 --list) || vm_fail "log_replay cannot read the log"
  mark_at=$(echo "$list" | awk '$2 == "mark" && $3 == "mkfs-done" { print $1; exit }')
  [ -n "$mark_at" ] || vm_fail "the log has no mkfs-done mark"
  flushes=$(echo "$list" | awk -v m="$mark_at" '$2 == "flush" && $1 > m { print $1 }')
  n=$(echo "$flushes" | wc -w)
  vm_log "log: $(echo "$list" | wc -l) flushes and marks, $n flushes after mkfs"
  [ "$n" -ge 10 ] || vm_fail "only $n flushes after mkfs: the workload did not commit often enough to test anything"

  truncate -s 32M "$t/replay.img"
  log_replay /dev/ram0 "$t/replay.img" 0 "$mark_at" || vm_fail "replaying up to mkfs failed"
  prev=$((mark_at + 1))
  checked=0
  for k in $flushes; do
    log_replay /dev/ram0 "$t/replay.img" "$prev" "$k" || vm_fail "replaying entries $prev..$k failed"
    prev=$((k + 1))
    cp "$t/replay.img" "$t/check.img"
    e2fsck -E journal_only -y "$t/check.img" >/dev/null 2>&1
    e2fsck -fn "$t/check.img" >"$t/fsck.log" 2>&1 \
      || { cat "$t/fsck.log" >&2; vm_fail "e2fsck -fn found errors after replaying to the flush at entry $k"; }
    checked=$((checked + 1))
  done
  vm_log "e2fsck -fn clean at all $checked flushes after mkfs"

  line=$(echo "$list" | tail -n 1)
  log_replay /dev/ram0 "$t/replay.img" "$prev" "${line%% *}" || vm_fail "replaying the rest failed"
  cmp "$t/replay.img" "$t/cc.img" || vm_fail "the loop file differs from every write logged"
}

vm_case "ext4 on a coblk loop device is clean (e2fsck -fn) at every flush of a dm-log-writes replay, and the loop file equals the logged writes" \
  every_flush_is_consistent
vm_finish
