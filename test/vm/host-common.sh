# shellcheck shell=bash
# Shared by the host-side harness scripts (fetch-kernel, build-initramfs,
# run-vm, run-host, run-tests). Sourced, never executed.

die() { echo "$*" >&2; exit 1; }

vm_repo_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }

# The cache of downloaded kernels and built initramfs parts; ignored by git.
vm_cache_dir() {
  local d=${COBLK_VM_CACHE:-$(vm_repo_root)/.vm-cache}
  mkdir -p "$d" || die "cannot create VM cache dir $d"
  (cd "$d" && pwd)
}

# Exit status for "this machine cannot run the VM tests" (no qemu, kernel
# download failed): CTest reports it as skipped (SKIP_RETURN_CODE), not failed.
readonly VM_UNAVAILABLE=77
unavailable() { echo "$*" >&2; exit "$VM_UNAVAILABLE"; }

# print_usage SCRIPT: the comment block at the top of SCRIPT, without the '#'.
print_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

# host_has_ublk: true when this machine's own kernel can serve ublk devices
# (so the guest scripts can run here without a VM). Loads ublk_drv if needed.
host_has_ublk() {
  [[ $(id -u) == 0 ]] || return 1
  [[ -c /dev/ublk-control ]] && return 0
  modprobe ublk_drv 2>/dev/null || return 1
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    [[ -c /dev/ublk-control ]] && return 0
    sleep 0.2
  done
  return 1
}
