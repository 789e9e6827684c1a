#!/bin/sh
# demo-guest.sh: what scripts/demo shows, run as root on a kernel with ublk
# (inside the VM harness, or directly on such a host): a compressed RAM swap
# device and a compressed RAM disk with a file system, with their stats.
. "${COBLK_VM_LIB:-$(dirname "$0")/../test/vm/lib.sh}"

show() { echo "\$ $*"; "$@"; }

compressed_swap() {
  vm_require_coblk; vm_require_root
  vm_load_module ublk_drv
  echo "\$ coblk add -t zram --size 512M --algorithm lz4"
  dev=$("$COBLK_BIN" add -t zram --size 512M --algorithm lz4)
  echo "$dev"
  vm_defer "$COBLK_BIN del -n ${dev#/dev/ublkb}"
  # Write 128 MiB of half-compressible data through the device first.
  show fio --name=demo --filename="$dev" --rw=randwrite --bs=4k --size=128M --ioengine=io_uring \
      --iodepth=16 --direct=1 --buffer_compress_percentage=50 --refill_buffers \
      --output-format=terse --terse-version=3 | awk -F';' '$1 == "3" { printf "fio: %d write IOPS\n", $49 }'
  sleep 1
  show "$COBLK_BIN" stats
  show mkswap "$dev" >/dev/null
  show swapon "$dev"
  vm_defer "swapoff $dev"
  show cat /proc/swaps
}

compressed_ramdisk_with_ext4() {
  vm_require_coblk; vm_require_root
  echo "\$ coblk add -t zram --size 256M --algorithm zstd"
  dev=$("$COBLK_BIN" add -t zram --size 256M --algorithm zstd)
  echo "$dev"
  vm_defer "$COBLK_BIN del -n ${dev#/dev/ublkb}"
  show mkfs.ext4 -q "$dev"
  mkdir -p /mnt/demo
  show mount "$dev" /mnt/demo
  vm_defer "umount /mnt/demo"
  cp -r /usr/bin /mnt/demo/ 2>/dev/null || true
  show sync
  show df -h /mnt/demo
  show "$COBLK_BIN" list
  sleep 1
  show "$COBLK_BIN" stats
}

vm_case "a zram device serves as compressed swap" compressed_swap
vm_case "a zram device holds an ext4 file system" compressed_ramdisk_with_ext4
vm_finish
