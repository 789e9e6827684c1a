#!/bin/sh
# run-dir.sh: who may keep coblk's device state where, and who may manage
# which device. Root refuses a run directory (COBLK_RUN_DIR) that another
# user could tamper with: a symbolic link, a directory others can write, one
# another user owns. An ordinary user adds, lists, uses and deletes
# unprivileged devices with their state in a directory of their own, and
# root can still list and delete those devices.
#
# The guest has no udev. The ublk udev rule (ublksrv's 70-ublk.rules and
# ublk_chown.sh: /dev/ublk-control for everyone, a device's /dev/ublkcN and
# /dev/ublkbN to the user who added it) is done by hand, by a root loop that
# chowns the nodes of the device under test to the test user.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# Device ids of this script (high, so a host's own ublk devices are left alone).
rd_id=170
# The ordinary user of these tests.
rd_user=coblkuser
rd_uid=4242

# ---- helpers ---------------------------------------------------------------

# refused STATUS NEEDLE COMMAND...: COMMAND exits STATUS with exactly one
# line on stderr, which contains NEEDLE, and nothing on stdout.
refused() {
  local want="$1" needle="$2" rc=0 t="${TMPDIR:-/tmp}"
  shift 2
  "$@" >"$t/rd.out" 2>"$t/rd.err" || rc=$?
  echo "coblk-vm: '$*' exit $rc, stderr: $(cat "$t/rd.err")"
  vm_assert_eq "$want" "$rc" "exit status of '$*'"
  vm_assert_eq 1 "$(wc -l <"$t/rd.err")" "stderr lines of '$*'"
  grep -qF -e "$needle" "$t/rd.err" || vm_fail "stderr of '$*' lacks '$needle': $(cat "$t/rd.err")"
  [ ! -s "$t/rd.out" ] || vm_fail "'$*' printed on stdout: $(cat "$t/rd.out")"
}

# no_device ID: device ID does not exist, and no coblk server serves it.
no_device() {
  [ ! -e "/sys/class/ublk-char/ublkc$1" ] || vm_fail "device $1 exists"
}

# make_user: the test user, added to /etc/passwd and /etc/group for the case.
make_user() {
  vm_require_cmd su
  grep -q "^$rd_user:" /etc/passwd && return 0
  [ "$COBLK_VM_MODE" = vm ] || vm_skip "this host has no user $rd_user"
  echo "$rd_user:x:$rd_uid:$rd_uid:coblk test user:/tmp:/bin/sh" >>/etc/passwd
  echo "$rd_user:x:$rd_uid:" >>/etc/group
  vm_defer "sed -i '/^$rd_user:/d' /etc/passwd /etc/group"
}

# as_user COMMAND: runs the shell command COMMAND as the test user.
as_user() { su -s /bin/sh "$rd_user" -c "$*"; }

# need_unprivileged: skip unless the kernel offers unprivileged devices.
need_unprivileged() {
  "$COBLK_BIN" features | grep -q UNPRIVILEGED_DEV || vm_skip "this kernel has no UNPRIVILEGED_DEV"
}

# udev_rule_by_hand ID: what the ublk udev rule does, for device ID.
udev_rule_by_hand() {
  local id="$1"
  chmod 0666 /dev/ublk-control
  vm_defer "chmod 0600 /dev/ublk-control"
  (
    set +e
    while :; do
      for n in "/dev/ublkc$id" "/dev/ublkb$id"; do
        [ -e "$n" ] && [ "$(stat -c %u "$n")" != "$rd_uid" ] && chown "$rd_uid:$rd_uid" "$n"
      done
      sleep 0.05
    done
  ) &
  vm_defer "kill $!"
}

# ---- the run directory, as root --------------------------------------------

root_refuses_a_run_directory_that_is_a_planted_link() {
  local t="${TMPDIR:-/tmp}" id="$rd_id"
  vm_ublk_ready
  make_user
  mkdir -p "$t/rd-target"
  vm_defer "rm -rf $t/rd-target $t/rd-link"
  ln -sfn "$t/rd-target" "$t/rd-link"
  chown -h "$rd_user" "$t/rd-link"
  vm_defer "$COBLK_BIN del --force -n $id"  # should a refused add have made it
  refused 1 "run directory '$t/rd-link' is a symbolic link" env COBLK_RUN_DIR="$t/rd-link" "$COBLK_BIN" add -t null -n "$id"
  no_device "$id"
  for cmd in "list" "stats" "del -n $id" "recover -n $id"; do
    # shellcheck disable=SC2086
    refused 1 "is a symbolic link" env COBLK_RUN_DIR="$t/rd-link" "$COBLK_BIN" $cmd
  done
  [ -z "$(ls -A "$t/rd-target")" ] || vm_fail "coblk wrote through the link: $(ls -A "$t/rd-target")"
  # The user's link on the way to a directory is refused too.
  mkdir -p "$t/rd-target/run"
  refused 1 "is a symbolic link owned by uid $rd_uid" env COBLK_RUN_DIR="$t/rd-link/run" "$COBLK_BIN" add -t null -n "$id"
  no_device "$id"
}

root_refuses_a_run_directory_others_can_write_or_own() {
  local t="${TMPDIR:-/tmp}" id="$rd_id" mode
  vm_ublk_ready
  make_user
  mkdir -p "$t/rd-open"
  vm_defer "rm -rf $t/rd-open"
  vm_defer "$COBLK_BIN del --force -n $id"  # should a refused add have made it
  for mode in 0777 1777 0775; do
    chmod "$mode" "$t/rd-open"
    refused 1 "is writable by other users" env COBLK_RUN_DIR="$t/rd-open" "$COBLK_BIN" add -t null -n "$id"
    refused 1 "is writable by other users" env COBLK_RUN_DIR="$t/rd-open" "$COBLK_BIN" list
    no_device "$id"
  done
  chmod 0755 "$t/rd-open"
  chown "$rd_user" "$t/rd-open"
  refused 1 "is owned by uid $rd_uid" env COBLK_RUN_DIR="$t/rd-open" "$COBLK_BIN" add -t null -n "$id"
  no_device "$id"
  [ -z "$(ls -A "$t/rd-open")" ] || vm_fail "coblk left files in the refused directory: $(ls -A "$t/rd-open")"
}

root_keeps_its_state_in_a_directory_only_it_can_write() {
  local t="${TMPDIR:-/tmp}" id=$((rd_id + 1)) dir
  vm_ublk_ready
  dir="$t/rd-good/run"
  mkdir -p "$t/rd-good"
  vm_defer "rm -rf $t/rd-good"
  vm_defer "$COBLK_BIN del --force -n $id"
  COBLK_RUN_DIR="$dir" "$COBLK_BIN" add -t zram --size 64M -n "$id" >/dev/null
  [ "$(stat -c '%a %u' "$dir")" = "755 0" ] || vm_fail "run directory is $(stat -c '%a %u' "$dir")"
  [ "$(stat -c '%a %u' "$dir/$id.json")" = "644 0" ] || vm_fail "record is $(stat -c '%a %u' "$dir/$id.json")"
  vm_assert_eq "$id.json $id.metrics $id.zram-stats" "$(ls "$dir" | tr '\n' ' ' | sed 's/ $//')" \
    "files in the run directory"
  [ "$(stat -c '%a %u' "$dir/$id.metrics")" = "644 0" ] || vm_fail "metrics file is $(stat -c '%a %u' "$dir/$id.metrics")"
  COBLK_RUN_DIR="$dir" "$COBLK_BIN" stats -n "$id" | grep -q "/dev/ublkb$id" || vm_fail "coblk stats shows no device $id"
  COBLK_RUN_DIR="$dir" "$COBLK_BIN" del -n "$id"
  vm_assert_eq "" "$(ls -A "$dir")" "files left in the run directory after coblk del"
}

# ---- unprivileged devices, as an ordinary user -------------------------------

an_ordinary_user_manages_an_unprivileged_device() {
  local t="${TMPDIR:-/tmp}" id=$((rd_id + 2)) out dir="/tmp/coblk-$rd_uid" row
  vm_ublk_ready dd cmp
  need_unprivileged
  make_user
  udev_rule_by_hand "$id"
  vm_defer "$COBLK_BIN del --force -n $id"
  vm_defer "rm -rf $dir"
  out=$(as_user "$COBLK_BIN add --unprivileged -t ram --size 64M -n $id") || vm_fail "coblk add --unprivileged failed as $rd_user"
  vm_assert_eq "/dev/ublkb$id" "$out" "block device printed by coblk add"
  # Its state is the user's: their own directory, their record.
  [ "$(stat -c '%a %u' "$dir")" = "755 $rd_uid" ] || vm_fail "the user's run directory is $(stat -c '%a %u' "$dir")"
  [ "$(stat -c %u "$dir/$id.json")" = "$rd_uid" ] || vm_fail "the record is not the user's"
  grep -q '"unprivileged":true' "$dir/$id.json" || vm_fail "the record does not say unprivileged: $(cat "$dir/$id.json")"
  row=$(as_user "$COBLK_BIN list -n $id" | awk -v id="$id" '$1 == id')
  echo "coblk list as $rd_user: $row"
  echo "$row" | grep -q "live .* ram .* copy" || vm_fail "coblk list as the user shows '$row'"
  # The user does I/O on the device they own.
  dd if=/dev/urandom of="$t/rd-pattern" bs=64k count=16 2>/dev/null
  chmod 0644 "$t/rd-pattern"
  as_user "dd if=$t/rd-pattern of=/dev/ublkb$id bs=64k oflag=direct 2>/dev/null" || vm_fail "the user cannot write the device"
  as_user "dd if=/dev/ublkb$id bs=64k count=16 iflag=direct 2>/dev/null" | cmp - "$t/rd-pattern" \
    || vm_fail "the device does not read back what the user wrote"
  # recover looks the device up as the kernel requires (it was not added
  # with --recovery, which an unprivileged device cannot be).
  refused 1 "was not added with --recovery" su -s /bin/sh "$rd_user" -c "$COBLK_BIN recover -n $id"
  # Root sees it too (without its record, which is the user's).
  "$COBLK_BIN" list -n "$id" | awk -v id="$id" '$1 == id' | grep -q " live " || vm_fail "root's coblk list does not show it live"
  as_user "$COBLK_BIN del -n $id" || vm_fail "coblk del as the user failed"
  no_device "$id"
  [ ! -e "$dir/$id.json" ] || vm_fail "the record was left behind"
}

root_deletes_an_ordinary_users_device() {
  local id=$((rd_id + 3)) dir="/tmp/coblk-$rd_uid" pid
  vm_ublk_ready
  need_unprivileged
  make_user
  udev_rule_by_hand "$id"
  vm_defer "$COBLK_BIN del --force -n $id"
  vm_defer "rm -rf $dir"
  as_user "$COBLK_BIN add --unprivileged -t zram --size 64M -n $id" >/dev/null || vm_fail "coblk add --unprivileged -t zram failed"
  as_user "$COBLK_BIN stats -n $id" | grep -q "/dev/ublkb$id" || vm_fail "coblk stats as the user shows no device $id"
  pid=$(server_pid "$id")
  vm_assert_eq "$rd_uid" "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" "uid of the server"
  "$COBLK_BIN" del -n "$id" || vm_fail "root's coblk del of the user's device failed"
  no_device "$id"
  wait_until_gone "$pid" 10 || vm_fail "the user's server ($pid) outlived its device"
  [ ! -e "$dir/$id.json" ] || vm_fail "the user's server left its record behind"
}

unprivileged_mode_refuses_what_it_cannot_do() {
  local id=$((rd_id + 4)) dir="/tmp/coblk-$rd_uid"
  vm_ublk_ready
  need_unprivileged
  make_user
  vm_defer "rm -rf $dir"
  refused 1 "--unprivileged is for ordinary users" "$COBLK_BIN" add --unprivileged -t null -n "$id"
  no_device "$id"
  chmod 0666 /dev/ublk-control
  vm_defer "chmod 0600 /dev/ublk-control"
  refused 2 "--unprivileged and --recovery exclude each other" \
    su -s /bin/sh "$rd_user" -c "$COBLK_BIN add --unprivileged --recovery -t null -n $id"
  refused 1 "use --unprivileged" su -s /bin/sh "$rd_user" -c "$COBLK_BIN add -t null -n $id"
  # Without the udev rule the device's nodes stay root's: refused. The
  # kernel lets only those who may open /dev/ublkcN delete the device, so
  # the user's server cannot; root can.
  vm_defer "$COBLK_BIN del --force -n $id"
  refused 1 "need the ublk udev rule" su -s /bin/sh "$rd_user" -c "$COBLK_BIN add --unprivileged -t null -n $id"
  "$COBLK_BIN" del -n "$id" || vm_fail "root could not delete the user's half-made device"
  no_device "$id"
}

vm_case "root refuses a run directory that is a symbolic link another user planted, and writes nothing through it" \
  root_refuses_a_run_directory_that_is_a_planted_link
vm_case "root refuses a run directory that other users can write (sticky or not) or that another user owns" \
  root_refuses_a_run_directory_others_can_write_or_own
vm_case "root keeps records and stats in a 0755 directory of its own, files 0644, nothing left after del" \
  root_keeps_its_state_in_a_directory_only_it_can_write
vm_case "an ordinary user adds, lists, uses and deletes an unprivileged ram device; root lists it" \
  an_ordinary_user_manages_an_unprivileged_device
vm_case "root deletes an ordinary user's unprivileged zram device, whose stats the user reads" \
  root_deletes_an_ordinary_users_device
vm_case "unprivileged mode refuses root, --recovery, and a device whose nodes the user never gets" \
  unprivileged_mode_refuses_what_it_cannot_do
vm_finish
