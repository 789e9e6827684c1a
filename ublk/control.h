// ublk/control.h - a synchronous client of /dev/ublk-control.
#pragma once

// Adds, configures, starts, stops and deletes ublk devices.

#include <liburing.h>
#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "coblk/runtime/task.h"
#include "coblk/ublk/abi.h"

namespace coblk::ublk {

/// The default control node created by the ublk_drv module.
inline constexpr const char* kControlPath = "/dev/ublk-control";

/// "/dev/ublkcN": the device's character node (I/O commands, mmap).
std::string char_device_path(uint32_t dev_id);
/// "/dev/ublkbN": the block device users see once the device is started.
std::string block_device_path(uint32_t dev_id);

/// Sends control commands to /dev/ublk-control, one at a time, on a small
/// private io_uring (IORING_SETUP_SQE128: the command lives in the SQE's
/// 80-byte command area).
///
/// Every command returns 0 (or a non-negative count) on success and a
/// negative errno on failure; nothing on this path throws. Commands block the
/// calling thread until the kernel answers, and START_DEV blocks until every
/// tag of every queue has a FETCH_REQ queued, so a reactor uses the
/// *_async forms, which wait in the kernel's worker threads instead.
///
/// Not thread-safe: the ring is used by one thread at a time. Threads that
/// need to issue commands concurrently each open their own ControlDevice.
class ControlDevice {
 public:
  ControlDevice() = default;
  ~ControlDevice();
  ControlDevice(const ControlDevice&) = delete;
  ControlDevice& operator=(const ControlDevice&) = delete;

  /// Opens `path`, creates the ring and asks the kernel which features it
  /// has (GET_FEATURES). A kernel too old for GET_FEATURES (it answers
  /// -EINVAL/-EOPNOTSUPP) is not an error: features() is then 0 and the
  /// legacy plain opcodes are used. Returns 0 or -errno (-ENOENT: the
  /// module is not loaded; -EACCES: no permission on the node).
  int open(const char* path = kControlPath);
  /// Closes the node and the ring; open() may be called again.
  void close();
  /// True between a successful open() and close().
  bool is_open() const { return fd_ >= 0; }

  /// The kernel's feature mask from GET_FEATURES (0 if the kernel predates it).
  uint64_t features() const { return features_; }
  /// True if GET_FEATURES answered, i.e. features() is meaningful.
  bool features_known() const { return features_known_; }
  /// True if commands are sent with ioctl-encoded opcodes (U_CMD_*).
  bool ioctl_encoded() const { return ioctl_encoded_; }

  /// Makes every per-device command prefix the device's char node path to
  /// its buffer, as the kernel requires for UBLK_F_UNPRIVILEGED_DEV devices.
  void set_unprivileged(bool on) { unprivileged_ = on; }

  /// GET_FEATURES: the kernel's feature mask into `features`.
  int get_features(uint64_t& features);
  /// ADD_DEV: creates a device from `info` (nr_hw_queues, queue_depth,
  /// max_io_buf_bytes, flags, dev_id or UINT32_MAX to let the kernel pick).
  /// On success the kernel's view (chosen dev_id, accepted flags) is written
  /// back into `info`. -EEXIST: the id is taken.
  int add_device(abi::ublksrv_ctrl_dev_info& info);
  /// DEL_DEV: removes a stopped device, waiting until it is gone. With
  /// `wait` false and a kernel that has DEL_DEV_ASYNC, returns at once.
  int delete_device(uint32_t dev_id, bool wait = true);
  /// SET_PARAMS: `params.len` and `params.types` must be set; the basic part is mandatory.
  int set_params(uint32_t dev_id, const abi::ublk_params& params);
  /// GET_PARAMS into `params` (its len is set here to the full size).
  int get_params(uint32_t dev_id, abi::ublk_params& params);
  /// START_DEV with the serving process's pid. Blocks until every tag has a
  /// FETCH_REQ queued; /dev/ublkbN exists when it returns 0.
  int start_device(uint32_t dev_id, pid_t server_pid);
  /// STOP_DEV: removes /dev/ublkbN and aborts the queued FETCH commands.
  int stop_device(uint32_t dev_id);

  /// START_DEV for a task on a reactor: the command waits in the kernel's
  /// worker thread, not in the reactor, and this completes when it is done
  /// (0: /dev/ublkbN exists) or when `cancel` is stopped (-ECANCELED; the
  /// ControlDevice is then closed, which makes the kernel abandon the
  /// command). `cancel` must be stopped on the awaiting reactor's core.
  runtime::Task<int> start_device_async(uint32_t dev_id, pid_t server_pid, std::stop_token cancel = {});
  /// END_USER_RECOVERY for a task on a reactor; as start_device_async.
  runtime::Task<int> end_user_recovery_async(uint32_t dev_id, pid_t server_pid, std::stop_token cancel = {});
  /// STOP_DEV for a task on a reactor: STOP_DEV waits for the device's
  /// in-flight requests, which the reactors themselves complete.
  runtime::Task<int> stop_device_async(uint32_t dev_id);
  /// GET_DEV_INFO (GET_DEV_INFO2 with set_unprivileged) into `info`.
  /// Without set_unprivileged, a device that turns out to be unprivileged
  /// (the kernel refuses the plain command with -EINVAL) is asked again
  /// with GET_DEV_INFO2; its flags then say so, and the caller should
  /// set_unprivileged before addressing it further.
  int get_device_info(uint32_t dev_id, abi::ublksrv_ctrl_dev_info& info);
  /// GET_QUEUE_AFFINITY: the CPUs the block layer maps to queue `queue_id`.
  int get_queue_affinity(uint32_t dev_id, uint16_t queue_id, cpu_set_t& cpus);
  /// START_USER_RECOVERY: prepares a quiesced device for a new server.
  int start_user_recovery(uint32_t dev_id);
  /// END_USER_RECOVERY: blocks, like START_DEV, until the new server's
  /// queues have their FETCH commands queued.
  int end_user_recovery(uint32_t dev_id, pid_t server_pid);
  /// UPDATE_SIZE (needs F_UPDATE_SIZE): new size in 512-byte sectors.
  int update_size(uint32_t dev_id, uint64_t sectors);

 private:
  // Sends one command. `encoded` is the U_CMD_* opcode, `legacy` the plain
  // one (0 if the command has no legacy form). `buf`/`len` is the command's
  // in/out buffer, `data` its inline argument.
  int issue(uint32_t encoded, uint32_t legacy, uint32_t dev_id, void* buf, uint32_t len, uint64_t data,
            bool with_path = false);
  // Fills the ring's next SQE with the command; `staging` holds the path
  // prefix (and a copy of buf) for with_path commands. 0 or -errno.
  int prepare(uint32_t encoded, uint32_t legacy, uint32_t dev_id, void* buf, uint32_t len, uint64_t data,
              bool with_path, std::vector<char>& staging, uint16_t& path_len);
  // A command without a buffer, awaited on the calling reactor.
  runtime::Task<int> issue_async(uint32_t encoded, uint32_t legacy, uint32_t dev_id, uint64_t data,
                                 std::stop_token cancel);

  int fd_ = -1;
  bool ring_ready_ = false;
  io_uring ring_{};
  uint64_t features_ = 0;
  bool features_known_ = false;
  bool ioctl_encoded_ = false;
  bool unprivileged_ = false;
  std::vector<char> async_staging_;
};

}  // namespace coblk::ublk
