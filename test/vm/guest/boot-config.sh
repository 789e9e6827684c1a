#!/bin/sh
# boot-config.sh: `coblk up` / `coblk down` from a config file: swap that
# /proc/swaps lists (with discards reaching the device), a mounted file
# system, `up` twice making one device, `down` removing them, `up`
# refusing to format a device that holds something, and a bad key refused
# with FILE:LINE: KEY.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

conf_dir="${TMPDIR:-/tmp}/coblk-boot-conf"
mnt="${TMPDIR:-/tmp}/coblk-boot-mnt"

# devices_named NAME: how many records in the run directory carry NAME.
devices_named() {
  cat /run/coblk/*.json 2>/dev/null | grep -c "\"name\":\"$1\"" || true
}

write_config() {
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir/coblk.conf.d"
  cat > "$conf_dir/coblk.conf" <<CONF
# a swap device, zram-generator style; the size is in MiB of ram
[bootswap]
zram-size = min(ram / 64, 24)
swap-priority = 7
queues = 1
CONF
  cat > "$conf_dir/coblk.conf.d/50-scratch.conf" <<CONF
[bootfs]
type = ram
size = 32M
fs-type = ext4
mount-point = $mnt
CONF
}

up_twice_then_down() {
  vm_ublk_ready mkswap mkfs.ext4 mount
  write_config
  vm_defer "$COBLK_BIN down --config-dir $conf_dir"
  "$COBLK_BIN" up --config-dir "$conf_dir" > up1.out
  cat up1.out
  grep -q '^bootswap: /dev/ublkb[0-9]*: swap, priority 7, discard' up1.out || vm_fail "up did not report the swap"
  local swapdev fsdev
  swapdev=$(sed -n 's/^bootswap: \(\/dev\/ublkb[0-9]*\):.*/\1/p' up1.out)
  fsdev=$(sed -n 's/^bootfs: \(\/dev\/ublkb[0-9]*\):.*/\1/p' up1.out)
  grep -q "^$swapdev " /proc/swaps || vm_fail "$swapdev is not in /proc/swaps: $(cat /proc/swaps)"
  vm_assert_eq 7 "$(awk -v d="$swapdev" '$1 == d { print $5 }' /proc/swaps)" "priority of $swapdev in /proc/swaps"
  grep -q "^$fsdev $mnt ext4 " /proc/mounts || vm_fail "$fsdev is not mounted at $mnt: $(grep ublk /proc/mounts)"
  echo hello > "$mnt/file"
  sync
  # swapon --discard discards the whole area at once: the device counted it
  # (the queues publish their metrics every second).
  sleep 2
  "$COBLK_BIN" list 2> list.err
  ! grep -q "received no discards" list.err || vm_fail "list warns of a swap that had discards: $(cat list.err)"

  "$COBLK_BIN" up --config-dir "$conf_dir" > up2.out
  cat up2.out
  grep -q "^bootswap: $swapdev (already up): swap, already on" up2.out || vm_fail "second up did not find the swap"
  grep -q "^bootfs: $fsdev (already up): mounted at $mnt, already" up2.out || vm_fail "second up did not find the fs"
  vm_assert_eq 1 "$(devices_named bootswap)" "devices named bootswap after up twice"
  vm_assert_eq 1 "$(devices_named bootfs)" "devices named bootfs after up twice"
  vm_assert_eq 2 "$(wc -l < /proc/swaps)" "lines of /proc/swaps"
  vm_assert_eq hello "$(cat "$mnt/file")" "the file on the mounted device"

  "$COBLK_BIN" down --config-dir "$conf_dir" > down.out
  cat down.out
  ! grep -q "^$swapdev " /proc/swaps || vm_fail "$swapdev still in /proc/swaps after down"
  ! grep -q "^$fsdev " /proc/mounts || vm_fail "$fsdev still mounted after down"
  vm_assert_eq 0 "$(devices_named bootswap)" "devices named bootswap after down"
  ! "$COBLK_BIN" list | grep -q " $swapdev\$" || vm_fail "$swapdev still exists after down"
  # down again: nothing is up, which is fine.
  "$COBLK_BIN" down --config-dir "$conf_dir" > down2.out
  grep -q '^bootswap: not up' down2.out || vm_fail "second down: $(cat down2.out)"
}

swap_without_discard_warns() {
  vm_ublk_ready mkswap swapon swapoff
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  printf '[nodiscard]\nzram-size = 16\noptions =\n' > "$conf_dir/coblk.conf"
  vm_defer "$COBLK_BIN down --config-dir $conf_dir"
  "$COBLK_BIN" up --config-dir "$conf_dir" nodiscard > up.out
  cat up.out
  local dev
  dev=$(sed -n 's/^nodiscard: \(\/dev\/ublkb[0-9]*\):.*/\1/p' up.out)
  grep -q "^$dev " /proc/swaps || vm_fail "$dev is not swap"
  # mkswap wrote the header and swapon discarded nothing: within a publish
  # (every second) the metrics show writes and no discard.
  local i=0
  while ! "$COBLK_BIN" list 2>&1 >/dev/null | grep -q "received no discards"; do
    i=$((i + 1))
    [ "$i" -le 10 ] || vm_fail "coblk list never warned about $dev: $("$COBLK_BIN" list 2>&1)"
    sleep 1
  done
  "$COBLK_BIN" list 2>&1 >/dev/null | grep "received no discards"
}

# What coblk@.service runs, without systemd: ExecStart serves the device in
# the foreground, ExecStartPost (`up NAME`) puts that same device to use,
# ExecStop (`down NAME`) takes it out of use and deletes it, and the
# foreground server then ends by itself.
unit_like_start_and_stop() {
  vm_ublk_ready mkswap
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  printf '[unitswap]\nzram-size = 16\n' > "$conf_dir/coblk.conf"
  vm_defer "$COBLK_BIN down --config-dir $conf_dir"
  vm_spawn fg.log "$COBLK_BIN" up --foreground --config-dir "$conf_dir" unitswap
  local server="$VM_SPAWNED_PID" i=0 dev
  while ! grep -q '^/dev/ublkb' fg.log; do
    i=$((i + 1))
    [ "$i" -le 100 ] || vm_fail "up --foreground never reported its device: $(cat fg.log)"
    sleep 0.1
  done
  # (the log also holds its stderr: a stall report under a loaded host)
  dev=$(grep -m 1 "^/dev/ublkb" fg.log)
  ! grep -q "^$dev " /proc/swaps || vm_fail "up --foreground put $dev to use"
  "$COBLK_BIN" up --config-dir "$conf_dir" unitswap > post.out
  cat post.out
  vm_assert_eq "unitswap: $dev (already up): swap, priority 100, discard" "$(cat post.out)" "ExecStartPost's line"
  grep -q "^$dev " /proc/swaps || vm_fail "$dev is not swap after up NAME"
  vm_assert_eq 1 "$(devices_named unitswap)" "devices named unitswap"
  "$COBLK_BIN" down --config-dir "$conf_dir" unitswap
  ! grep -q "^$dev " /proc/swaps || vm_fail "$dev still swap after down"
  wait_for_exit "$server" 10
  vm_assert_eq 0 "$EXIT_RC" "exit status of the foreground server after down"
}

# up makes swap or a file system only where nothing is lost: a loop
# section (swap by default) over an ext4 image is refused, and a section
# with a mount point over an image whose only signature is a btrfs magic at
# 64 KiB (its first 64 KiB zero, as a btrfs keeps them) is not reformatted:
# both images are byte for byte as before, and no device is left.
up_never_formats_what_a_device_holds() {
  vm_ublk_ready mkswap mkfs.ext4 md5sum
  local t="${TMPDIR:-/tmp}" ext4img btrfsimg before rc=0
  ext4img="$t/boot-ext4.img"
  btrfsimg="$t/boot-btrfs.img"
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  vm_defer "rm -f $ext4img $btrfsimg"
  truncate -s 16M "$ext4img"
  mkfs.ext4 -q -F "$ext4img"
  before=$(md5sum < "$ext4img")
  printf '[keepswap]\ntype = loop\nfile = %s\n' "$ext4img" > "$conf_dir/coblk.conf"
  vm_defer "$COBLK_BIN down --config-dir $conf_dir"
  "$COBLK_BIN" up --config-dir "$conf_dir" > up.out 2> up.err || rc=$?
  cat up.out up.err
  [ "$rc" -ne 0 ] || vm_fail "up made swap of a device holding ext4"
  grep -q "holds ext4, not swap" up.err || vm_fail "the refusal does not name the ext4: $(cat up.err)"
  vm_assert_eq 1 "$(wc -l < up.err)" "lines on stderr"
  vm_assert_eq "$before" "$(md5sum < "$ext4img")" "the ext4 image after the refused up"
  vm_assert_eq 0 "$(devices_named keepswap)" "devices left of the refused section"
  truncate -s 16M "$btrfsimg"
  printf '_BHRfS_M' | dd of="$btrfsimg" bs=1 seek=65600 conv=notrunc 2>/dev/null
  before=$(md5sum < "$btrfsimg")
  printf '[keepfs]\ntype = loop\nfile = %s\nfs-type = ext4\nmount-point = %s\n' "$btrfsimg" "$mnt" \
    > "$conf_dir/coblk.conf"
  rc=0
  "$COBLK_BIN" up --config-dir "$conf_dir" > up.out 2> up.err || rc=$?
  cat up.out up.err
  [ "$rc" -ne 0 ] || vm_fail "up mounted ext4 from an image that holds a btrfs signature"
  vm_assert_eq "$before" "$(md5sum < "$btrfsimg")" "the btrfs-signed image after up"
  vm_assert_eq 0 "$(devices_named keepfs)" "devices left of the failed section"
}

# down never deletes a device something still holds, also where
# /proc/self/mounts cannot show it: here a mount in another mount
# namespace. Once that is gone, down deletes the device.
down_refuses_a_device_mounted_in_another_namespace() {
  vm_ublk_ready mkfs.ext4 mount unshare
  local t="${TMPDIR:-/tmp}" dev holder rc=0 i=0
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir" "$t/ns-mnt"
  printf '[nsfs]\ntype = ram\nsize = 16M\nfs-type = ext4\nmount-point = %s\n' "$mnt" > "$conf_dir/coblk.conf"
  vm_defer "$COBLK_BIN down --config-dir $conf_dir"
  "$COBLK_BIN" up --config-dir "$conf_dir" > up.out || vm_fail "up failed"
  dev=$(sed -n 's/^nsfs: \(\/dev\/ublkb[0-9]*\):.*/\1/p' up.out)
  [ -b "$dev" ] || vm_fail "up did not report its device: $(cat up.out)"
  umount "$mnt"
  vm_spawn ns.log unshare -m --propagation private sh -c "mount -t ext4 $dev $t/ns-mnt && echo mounted && exec sleep 120"
  holder=$VM_SPAWNED_PID
  while ! grep -q mounted ns.log; do
    i=$((i + 1))
    [ "$i" -le 100 ] || vm_fail "the mount in another namespace did not happen: $(cat ns.log)"
    sleep 0.1
  done
  "$COBLK_BIN" down --config-dir "$conf_dir" > down.out 2> down.err || rc=$?
  cat down.out down.err
  [ "$rc" -ne 0 ] || vm_fail "down succeeded while another namespace had the device mounted"
  grep -q "is in use" down.err || vm_fail "the refusal does not say the device is in use: $(cat down.err)"
  [ -b "$dev" ] || vm_fail "down deleted $dev although it is mounted in another namespace"
  kill "$holder"
  wait "$holder" 2>/dev/null || true
  # The namespace's mount goes with its last process; the claim with it.
  i=0
  until "$COBLK_BIN" down --config-dir "$conf_dir" > down.out 2> down.err; do
    i=$((i + 1))
    [ "$i" -le 50 ] || vm_fail "down still refused after the other namespace ended: $(cat down.err)"
    sleep 0.1
  done
  grep -q "^nsfs: $dev deleted" down.out || vm_fail "down did not delete $dev: $(cat down.out)"
}

bad_key_is_refused() {
  vm_ublk_ready
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  printf '[bad]\nzram-size = 16\n\ncompresion-algorithm = zstd\n' > "$conf_dir/coblk.conf"
  local rc=0
  "$COBLK_BIN" up --config-dir "$conf_dir" 2> err.txt || rc=$?
  cat err.txt
  [ "$rc" -ne 0 ] || vm_fail "up with a bad key succeeded"
  vm_assert_eq "coblk up: $conf_dir/coblk.conf:4: compresion-algorithm: unknown key" "$(cat err.txt)" "the error"
  vm_assert_eq 1 "$(wc -l < err.txt)" "lines on stderr"
  vm_assert_eq 0 "$(devices_named bad)" "devices made from a bad config"
}

vm_case "coblk up gives configured swap and a mounted fs; twice makes one device; down removes them" up_twice_then_down
vm_case "coblk list warns about swap on a device that received no discards" swap_without_discard_warns
vm_case "coblk@.service's steps: up --foreground serves, up NAME swaps on, down NAME ends it" unit_like_start_and_stop
vm_case "coblk up never formats what a device holds: no mkswap over ext4, no mkfs over a btrfs whose first 64 KiB are zero" \
  up_never_formats_what_a_device_holds
vm_case "coblk down refuses a device mounted in another mount namespace, and deletes it once that is gone" \
  down_refuses_a_device_mounted_in_another_namespace
vm_case "a config with an unknown key names file, line and key, and makes nothing" bad_key_is_refused
vm_finish
