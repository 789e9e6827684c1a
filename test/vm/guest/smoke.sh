#!/bin/sh
# smoke.sh: proves the harness and the guest kernel work before coblk's own
# ublk targets exist: the ublk driver loads, zram/brd/null_blk serve verified
# I/O, ext4 keeps data across a remount, and zram works as swap.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# A fresh zram device, so a host that already uses zram0 is left alone.
# Prints the device number.
new_zram() {
  vm_load_module zram
  [ -e /sys/class/zram-control/hot_add ] || vm_fail "zram has no hot_add control"
  cat /sys/class/zram-control/hot_add
}

drop_zram() {
  echo 1 > "/sys/block/zram$1/reset"
  echo "$1" > /sys/class/zram-control/hot_remove
}

ublk_control_appears() {
  vm_require_root
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
  [ -c /dev/ublk-control ] || vm_fail "/dev/ublk-control is not a character device"
}

zram_lz4_passes_fio_verify() {
  vm_require_root
  vm_require_cmd fio blkdiscard
  local id
  id=$(new_zram)
  vm_defer "drop_zram $id"
  grep -qw lz4 "/sys/block/zram$id/comp_algorithm" || vm_skip "zram offers no lz4: $(cat "/sys/block/zram$id/comp_algorithm")"
  echo lz4 > "/sys/block/zram$id/comp_algorithm"
  echo 128M > "/sys/block/zram$id/disksize"
  grep -q '\[lz4\]' "/sys/block/zram$id/comp_algorithm" || vm_fail "lz4 was not selected"
  # buffer_compress_percentage makes the data compressible, so zram really
  # compresses instead of storing incompressible pages as-is.
  fio --name=zram-verify --filename="/dev/zram$id" --ioengine=psync --direct=1 \
      --rw=randwrite --bs=4k --size=64M --verify=crc32c --do_verify=1 \
      --buffer_compress_percentage=50 --refill_buffers --output-format=terse >/dev/null \
    || vm_fail "fio verify failed on /dev/zram$id"
  local orig compr
  orig=$(awk '{ print $1 }' "/sys/block/zram$id/mm_stat")
  compr=$(awk '{ print $2 }' "/sys/block/zram$id/mm_stat")
  vm_log "zram$id holds $orig bytes in $compr compressed"
  [ "$orig" -gt 0 ] || vm_fail "zram stored nothing"
  [ "$compr" -lt "$orig" ] || vm_fail "zram did not compress ($compr >= $orig)"
  blkdiscard "/dev/zram$id"
  orig=$(awk '{ print $1 }' "/sys/block/zram$id/mm_stat")
  vm_assert_eq 0 "$orig" "zram data size after blkdiscard"
}

ext4_on_brd_survives_remount() {
  vm_require_root
  vm_require_cmd mkfs.ext4
  vm_module_loaded brd && vm_skip "brd is already loaded on this host"
  vm_load_module brd rd_nr=1 rd_size=131072
  vm_defer "rmmod brd"
  vm_defer "umount /mnt/coblk-brd"
  vm_wait_for_path /dev/ram0 5
  grep -qw ext4 /proc/filesystems || vm_load_module ext4
  mkfs.ext4 -q -F /dev/ram0
  mkdir -p /mnt/coblk-brd
  mount -t ext4 /dev/ram0 /mnt/coblk-brd
  local i
  for i in 1 2 3 4; do
    dd if=/dev/urandom of="/mnt/coblk-brd/file$i" bs=1M count=8 2>/dev/null
  done
  (cd /mnt/coblk-brd && sha256sum file1 file2 file3 file4) > "${TMPDIR:-/tmp}/brd.sums"
  umount /mnt/coblk-brd
  mount -t ext4 /dev/ram0 /mnt/coblk-brd
  (cd /mnt/coblk-brd && sha256sum -c "${TMPDIR:-/tmp}/brd.sums") || vm_fail "checksums changed across remount"
}

null_blk_devices_follow_module_parameters() {
  vm_require_root
  vm_module_loaded null_blk && vm_skip "null_blk is already loaded on this host"
  vm_load_module null_blk nr_devices=2 gb=1 queue_mode=2
  vm_defer "rmmod null_blk"
  vm_wait_for_path /dev/nullb0 5
  vm_wait_for_path /dev/nullb1 5
  vm_assert_eq 1073741824 "$(blockdev --getsize64 /dev/nullb1)" "nullb1 size"
  # io_uring is what coblk itself runs on; make sure fio can drive it here.
  fio --name=nullb-uring --filename=/dev/nullb0 --ioengine=io_uring --direct=1 \
      --rw=randread --bs=4k --iodepth=16 --size=64M --output-format=terse >/dev/null \
    || vm_fail "fio io_uring on /dev/nullb0 failed"
}

zram_works_as_swap() {
  vm_require_root
  vm_require_cmd mkswap swapon swapoff
  local id
  id=$(new_zram)
  vm_defer "drop_zram $id"
  vm_defer "swapoff /dev/zram$id"
  echo 64M > "/sys/block/zram$id/disksize"
  mkswap "/dev/zram$id" >/dev/null
  swapon "/dev/zram$id"
  grep -q "^/dev/zram$id " /proc/swaps || vm_fail "zram$id is not listed in /proc/swaps"
  swapoff "/dev/zram$id"
}

vm_case "the ublk driver loads and creates /dev/ublk-control" ublk_control_appears
vm_case "a zram device using lz4 passes fio crc32c verification and frees on discard" zram_lz4_passes_fio_verify
vm_case "ext4 on brd keeps file checksums across unmount and remount" ext4_on_brd_survives_remount
vm_case "null_blk creates the devices its module parameters ask for" null_blk_devices_follow_module_parameters
vm_case "a zram device can be used as swap" zram_works_as_swap
vm_finish
