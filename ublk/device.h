// A ublk device's whole life: add, configure, serve on pinned reactors,
// stop, delete.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coblk/ublk/abi.h"
#include "coblk/ublk/control.h"
#include "coblk/ublk/queue.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// How to create a device.
struct DeviceConfig {
  int64_t dev_id = -1;  ///< -1: the kernel picks
  unsigned queues = 1;
  unsigned depth = 128;
  uint32_t max_io_bytes = 512 * 1024;  ///< largest request; each tag gets a buffer this big
  DataPath data_path = DataPath::copy;
  bool recovery = false;      ///< UBLK_F_USER_RECOVERY
  bool unprivileged = false;  ///< UBLK_F_UNPRIVILEGED_DEV
  /// CPUs for the queues' reactors (queue i on cpus[i]); empty: the first
  /// `queues` CPUs this process may run on.
  std::vector<unsigned> cpus;
};

/// Drives one ublk device through ADD_DEV, SET_PARAMS, START_DEV, serving,
/// STOP_DEV and DEL_DEV. Every step reports failure as -errno plus one line
/// in `error`; nothing throws.
///
/// serve() runs a runtime::Runtime with one pinned reactor per queue on a
/// thread of its own, issues START_DEV from a helper thread (it blocks until
/// every tag has its FETCH queued), and waits in the calling thread for
/// SIGINT/SIGTERM/SIGHUP or for the queues to end (someone ran `coblk del`).
/// A signal stops the device cleanly: STOP_DEV aborts the queued FETCHes,
/// the tag loops end, the runtime stops.
class Device {
 public:
  /// A device to be created (create() + configure()) or recovered
  /// (attach_for_recovery()).
  explicit Device(DeviceConfig config);
  /// Deletes a device it created (unless remove() already did); leaves a
  /// device it was recovering to the kernel, quiesced.
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// ADD_DEV: the kernel creates /dev/ublkcN and assigns the id. Split from
  /// configure() so a target can be built knowing the id (zram publishes
  /// its statistics under it).
  int create(std::string& error);
  /// SET_PARAMS from `target`'s geometry, opens /dev/ublkcN and maps the
  /// queues. `target` must outlive the Device.
  int configure(Target& target, std::string& error);
  /// Takes over existing device `dev_id` whose server died (it was added
  /// with recovery on and is quiesced): START_USER_RECOVERY, opens
  /// /dev/ublkcN and maps the queues. serve() then ends the recovery with
  /// END_USER_RECOVERY instead of START_DEV. The queue count and depth come
  /// from the kernel's record of the device.
  int attach_for_recovery(uint32_t dev_id, Target& target, std::string& error);

  /// The kernel's device id (valid after add()).
  uint32_t id() const { return info_.dev_id; }
  /// The kernel's view of the device (valid after add()).
  const abi::ublksrv_ctrl_dev_info& info() const { return info_; }

  /// Serves until stopped. `on_ready` runs in the calling thread once
  /// /dev/ublkbN exists. Returns 0 after a clean stop, else -errno.
  /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in
  /// the threads it starts) to receive them synchronously.
  int serve(const std::function<void()>& on_ready, std::string& error);

  /// STOP_DEV (if still live) and DEL_DEV; closes /dev/ublkcN first so the
  /// deletion does not wait for us. Safe to call more than once.
  int remove(std::string& error);

 private:
  abi::ublk_params make_params() const;
  // Opens /dev/ublkcN and maps every queue.
  int open_queues(std::string& error);

  DeviceConfig config_;
  Target* target_ = nullptr;
  ControlDevice control_;
  abi::ublksrv_ctrl_dev_info info_{};
  bool added_ = false;
  bool recovering_ = false;
  int char_fd_ = -1;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace coblk::ublk
