#!/usr/bin/env bash
# Installs exactly the Debian (bookworm) packages coblk needs to build, test
# and run its VM harness. Safe to run twice: packages already present are
# reported and skipped, and apt is asked only for what is missing.
set -euo pipefail

build_packages=(
  g++ cmake pkg-config make
  # LLVM's linker: links the test programs in about half GNU ld's CPU time
  # (COBLK_USE_LLD; the build falls back to GNU ld without it).
  lld
  liburing-dev liblz4-dev libzstd-dev libmimalloc-dev
  # XXH3, the checksum of pages on a zram backing tier (header only here).
  libxxhash-dev
  libboost1.81-dev libboost-program-options1.81-dev libboost-test1.81-dev
  # The JSON `coblk list --json` and `stats --json` write.
  libboost-json1.81-dev
  # The house-style checks (docs/contributing.md): check-style, check-tidy
  # (clang-tidy 14 on bookworm), check-api-docs.
  clang-format clang-tidy doxygen
  # perf/ublk/bench_nbd_client's baseline (docs/nbd.md): libnbd's client.
  libnbd-dev
  # sd_notify, for coblk@.service (Type=notify; docs/cli.md, coblk up).
  libsystemd-dev
  # libblkid: `coblk up` makes swap or a file system only on a device
  # where it finds no signature of something else (cmd/boot_commands.cc).
  libblkid-dev
  # coblk(8) is generated from coblk --help (cmd/man/make-man-page); its
  # test renders it with groff and man. bash-completion tells where the
  # completion (cmd/completion) goes.
  help2man groff-base man-db bash-completion
)
# `coblk metrics`' test (test/cmd/metrics_exporter_test.cc) checks the
# exposition with promtool, which comes with Debian's prometheus package
# (its service is not started in a container without an init system).
exporter_packages=(
  prometheus
  # `coblk top`'s test runs it in a real terminal (test/cmd/top-tmux-test).
  tmux
  # `coblk bench`'s HTML report is opened in headless chromium by
  # test/cmd/bench_report_chromium_test.cc.
  chromium
)
# The fuzz harnesses (test/fuzz): libFuzzer and the sanitizer run-times
# come with clang, not g++.
fuzz_packages=(
  clang-14 libclang-rt-14-dev
)
# The VM harness (test/vm): an emulated machine, a static busybox for the
# initramfs, and the tools the end-to-end tests drive inside it.
vm_packages=(
  qemu-system-x86 busybox-static fio e2fsprogs dmsetup cpio xz-utils util-linux kmod
  # NBD servers for the nbd target's tests (test/vm/guest/nbd-target.sh):
  # nbdkit with its memory and file plugins, and qemu-nbd.
  nbdkit qemu-utils
  # strace: test/vm/guest/sqpoll.sh checks the io_uring_enter counter with it.
  strace
  # The kernel NBD client's tool, for the baseline of vm-bench's nbd pairs
  # (perf/ublk/guest/bench.sh: nbd.ko through nbd-client; docs/nbd.md).
  nbd-client
)

want=("${build_packages[@]}" "${exporter_packages[@]}" "${fuzz_packages[@]}")
[[ "${COBLK_SETUP_NO_VM:-0}" == 1 ]] || want+=("${vm_packages[@]}")

missing=()
for p in "${want[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "setup: $p is already installed"
  else
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: nothing to install"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: need root to install: ${missing[*]} (run: sudo $0)" >&2
  exit 1
fi
echo "setup: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# prometheus is wanted for promtool only: its package must not start a
# server. policy-rc.d (honoured by invoke-rc.d and deb-systemd-invoke)
# refuses every service start while apt runs, unless the machine has one.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# setup.sh: no service starts during package installation\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
