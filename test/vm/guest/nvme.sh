#!/bin/sh
# nvme.sh: the VM's emulated NVMe disk: its block and char devices and its
# polled queue are there.
# The next line makes run-vm attach the emulated NVMe disk to this boot
# (64 MiB, nvme.poll_queues=1; docs/vm-harness.md):
# coblk-vm: nvme
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

# nvme_ready: the disk's block and generic char devices exist, else skip
# (run-host never attaches one, and a host's own NVMe disk is not ours to
# overwrite).
nvme_ready() {
  vm_require_root
  [ "$COBLK_VM_MODE" = vm ] || vm_skip "needs the VM's emulated NVMe disk (its contents are overwritten)"
  vm_wait_for_path /dev/nvme0n1 10
  vm_wait_for_path /dev/ng0n1 10
}

nvme_disk_has_a_polled_queue() {
  nvme_ready
  [ -b /dev/nvme0n1 ] || vm_fail "/dev/nvme0n1 is not a block device"
  [ -c /dev/ng0n1 ] || vm_fail "/dev/ng0n1 is not a character device"
  vm_assert_eq 67108864 "$(blockdev --getsize64 /dev/nvme0n1)" "size of /dev/nvme0n1"
  vm_assert_eq 1 "$(cat /sys/block/nvme0n1/queue/io_poll)" "io_poll of /dev/nvme0n1 (nvme.poll_queues=1)"
}

vm_case "the emulated NVMe disk has a block and a char device and a polled queue" nvme_disk_has_a_polled_queue
vm_finish
