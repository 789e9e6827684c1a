// cmd/bench_devices.h - the two devices `coblk bench` compares: a coblk device and the kernel's matching one.
#pragma once

// null -> a null_blk device made through configfs (the module's own
// devices are left alone); ram -> brd, which coblk bench loads itself with
// one disk of the size asked for; zram -> a kernel zram device from
// hot_add, lz4 like coblk's; loop -> a kernel loop device (LOOP_CONFIGURE)
// on a file of its own in the same directory as coblk's. The coblk side is
// made and deleted with this very executable's `add` and `del`, so it is a
// daemon like any other. Everything made is taken down again, in reverse
// order, when the BenchDevices object goes, also after a failure half-way.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// What the pair is made of.
struct BenchDeviceOptions {
  std::string target;                    ///< null, ram, zram or loop
  unsigned long long size_bytes = 0;     ///< each device's size, a multiple of 1 MiB
  unsigned queues = 1;                   ///< the coblk device's queues
  std::string dir = "/dev/shm";          ///< where the loop target's two backing files are made
  std::string modprobe = "modprobe";     ///< loads a module: PROGRAM NAME [PARAM=VALUE...]
  std::string coblk = "/proc/self/exe";  ///< the coblk executable that adds and deletes the coblk device
};

/// The coblk device and its kernel reference, both ready for fio.
class BenchDevices {
 public:
  /// Makes both devices. Fails with one line (and leaves nothing behind)
  /// when the target is unknown, a kernel module is missing or cannot be
  /// loaded, brd is already loaded (its disks may hold someone's data),
  /// configfs is not mounted, or `coblk add` fails.
  static Result<std::unique_ptr<BenchDevices>> create(const BenchDeviceOptions& options);

  /// Takes both devices down (warnings on stderr for what could not be).
  ~BenchDevices();
  BenchDevices(const BenchDevices&) = delete;             ///< owns devices: not copyable
  BenchDevices& operator=(const BenchDevices&) = delete;  ///< owns devices: not copyable

  /// The coblk block device, e.g. "/dev/ublkb3".
  const std::string& ours() const { return ours_; }
  /// The kernel's block device, e.g. "/dev/nullb1".
  const std::string& baseline() const { return baseline_; }
  /// The kernel driver behind baseline(): null_blk, brd, zram or loop.
  const std::string& baseline_kind() const { return kind_; }
  /// The process serving ours(), from its record in the run directory; 0
  /// when it is not known (its CPU time is then not reported).
  pid_t server_pid() const { return server_pid_; }
  /// Whether reads need the devices filled first (everything but null).
  bool needs_fill() const { return kind_ != "null_blk"; }

 private:
  BenchDevices() = default;
  Result<void> make_kernel_device(const BenchDeviceOptions& options);
  Result<void> make_coblk_device(const BenchDeviceOptions& options);
  Result<void> ensure_module(const BenchDeviceOptions& options, const std::string& name,
                             const std::vector<std::string>& params, bool remove_after);

  std::string ours_;
  std::string baseline_;
  std::string kind_;
  std::string loop_file_;                    // the coblk loop device's backing file
  pid_t server_pid_ = 0;                     // the coblk device\'s server, for its CPU time
  std::vector<std::function<void()>> undo_;  // run last first by the destructor
};

}  // namespace coblk::cmd
