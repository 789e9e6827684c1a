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
