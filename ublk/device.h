// ublk/device.h - one ublk device: added, configured, served on the program's Runtime, stopped, deleted.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/control.h"
#include "coblk/ublk/io_metrics_file.h"
#include "coblk/ublk/queue.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// How to create a device.
struct DeviceConfig {
  int64_t dev_id = -1;                  ///< -1: the kernel picks
  unsigned queues = 1;                  ///< hardware queues, 1..64
  unsigned depth = 128;                 ///< tags per queue, 1..4096
  uint32_t max_io_bytes = 512 * 1024;   ///< largest request; each tag gets a buffer this big
  DataPath data_path = DataPath::copy;  ///< how request data moves (see DataPath)
  bool recovery = false;                ///< UBLK_F_USER_RECOVERY: the device outlives its server, quiesced
  /// UBLK_F_UNPRIVILEGED_DEV, for a caller without CAP_SYS_ADMIN: copy
  /// data path only, no recovery; configure() waits (up to 5 s) for the
  /// udev rule to give this user /dev/ublkcN.
  bool unprivileged = false;
  /// Fault every tag buffer in at configure() (see QueueConfig::
  /// prefault_buffers): on for devices that may serve as swap.
  bool prefault_buffers = false;
  /// Record per-queue, per-operation requests, bytes, errors and latency
  /// histograms on the I/O path (QueueConfig::metrics); publish them with
  /// publish_metrics(). Off: the queues take no timestamps at all.
  bool metrics = true;
  /// Runs (on the serving core) when a queue of a *live* device failed: an
  /// I/O command came back with an error, so a request may be left in the
  /// kernel that this server can no longer complete. STOP_DEV would wait
  /// for it for ever (and a process stuck in STOP_DEV cannot exit), so the
  /// safe response is the one a crash has: end the io_urings that hold the
  /// queue's commands, i.e. exit the process, after which the kernel fails
  /// (or, with recovery, requeues) every outstanding request. The coblk
  /// daemon exits here. Empty: the device is stopped with STOP_DEV, which
  /// ends well only if no request was left behind.
  std::function<void()> on_unrecoverable;
  /// Runs (on the home core) when serve() of a device being recovered
  /// (recover()) fails before the device is served again: a queue failed
  /// to start, END_USER_RECOVERY failed, or stop() came first; `why` says
  /// which. STOP_DEV would end the device the recovery is for (the kernel
  /// stops a recovering device for good), so this must not return: exit
  /// the process, which ends the queues' commands as a crash does and
  /// leaves the device quiesced for another recovery. The coblk daemon
  /// reports `why` and exits here. Empty: STOP_DEV, as for a new device.
  std::function<void(const std::string& why)> on_recovery_failed;
};

/// The data path of a device added with `flags` (ublksrv_ctrl_dev_info::
/// flags, as GET_DEV_INFO reports them): AUTO_BUF_REG is zero copy,
/// USER_COPY user copy, neither the copy path. Device::create sets them
/// from DeviceConfig::data_path, and Device::recover refuses a config
/// whose data path is another.
DataPath data_path_of(uint64_t flags);
/// "copy", "user_copy" or "zero_copy": the names coblk's command line and
/// device records use for `path`.
const char* data_path_name(DataPath path);

/// io_uring submission-queue size that lets a core serve `total_depth` tags
/// (the depths of every queue placed on it, of every device) without ever
/// waiting for a free SQE: each tag keeps one command in flight plus the
/// target's own I/O. Use it for ReactorConfig::ring_entries.
unsigned ring_entries_for(unsigned total_depth);

/// One ublk device, from ADD_DEV to DEL_DEV, served by coroutines on a
/// runtime::Runtime that the application owns.
///
/// The life of a device:
///   1. create() (ADD_DEV) or recover() (START_USER_RECOVERY of a device
///      whose server died): the kernel's id is known from here on, so a
///      target can be built that depends on it;
///   2. configure(target): SET_PARAMS from the target's geometry, open
///      /dev/ublkcN, map every queue;
///   3. co_await serve(cores): on a reactor of the Runtime, runs queue i as a
///      task on core cores[i], issues START_DEV (or END_USER_RECOVERY) once
///      the queues wait for requests, and completes when every queue has
///      ended: after stop(), after `coblk del` (STOP_DEV from outside), or
///      after a queue failed;
///   4. remove(): STOP_DEV and DEL_DEV, off the reactors.
///
/// Several devices may be served on one Runtime, and several queues (of
/// one device or of several) on one core: each queue is a task, and a core
/// interleaves them. The exception is DataPath::zero_copy, whose queue owns
/// its ring's buffer table: such a queue needs a core no other zero-copy
/// queue uses.
///
/// Nothing here handles signals; see ublk/serve_until_signal.h for the
/// common case. No call blocks a reactor: the control commands that wait in
/// the kernel (START_DEV, END_USER_RECOVERY, STOP_DEV) are issued on a
/// private ring that the driver completes from its worker threads, and
/// serve() awaits that ring's readiness with io_uring.
class Device {
 public:
  /// ADD_DEV: asks the kernel for a new device as `config` describes. Fails
  /// with the kernel's errno and a line that says what to do (the module is
  /// not loaded, the id is taken, root is needed, a feature is missing).
  static Result<std::unique_ptr<Device>> create(const DeviceConfig& config);

  /// Takes over existing device `dev_id`, added with recovery on, whose
  /// server died: START_USER_RECOVERY (retried while the kernel still
  /// releases the dead server's queues). `config.queues` and `config.depth`
  /// must match the kernel's record of the device. serve() then ends the
  /// recovery (END_USER_RECOVERY) instead of starting the device.
  static Result<std::unique_ptr<Device>> recover(uint32_t dev_id, const DeviceConfig& config);

  /// A device this object created is deleted unless remove() already did;
  /// a device being recovered is left to the kernel, quiesced, for another
  /// attempt. Must not run while serve() is in progress.
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// The kernel's device id.
  uint32_t id() const { return info_.dev_id; }
  /// The kernel's view of the device: queues, depth, accepted flags.
  const abi::ublksrv_ctrl_dev_info& info() const { return info_; }
  /// The configuration it was created or recovered with.
  const DeviceConfig& config() const { return config_; }
  /// True for a device taken over by recover().
  bool recovering() const { return recovering_; }
  /// "/dev/ublkbN".
  std::string block_device() const { return block_device_path(id()); }

  /// SET_PARAMS from `target`'s geometry (skipped when recovering: the
  /// kernel kept them), opens /dev/ublkcN and maps every queue. `target`
  /// must outlive the Device. Fails if the target cannot serve the data
  /// path, or the kernel refuses.
  Result<void> configure(Target& target);

  /// Serves the device until every queue has ended; see the class comment.
  /// Must be awaited by a task on a reactor of a Runtime that has every
  /// core in `cores` (one entry per queue). `on_ready` runs on the awaiting
  /// core once /dev/ublkbN exists (START_DEV or END_USER_RECOVERY
  /// succeeded). Succeeds after a clean stop, whether by stop() or from
  /// outside; fails when the device could not start or a queue failed (the
  /// device's other queues are then stopped too, and other devices on the
  /// same Runtime are not disturbed, except by a device being recovered
  /// whose DeviceConfig::on_recovery_failed ends the process). When it ends, the device has let go of
  /// /dev/ublkcN (so a `coblk del` waiting for it can finish); a device is
  /// served once, and remove() is what is left to do.
  runtime::Task<Result<void>> serve(std::vector<unsigned> cores, std::function<void()> on_ready = {});

  /// Asks serve() to end: STOP_DEV, with which the kernel aborts every
  /// queued request fetch, whether or not the device is live yet. Await it from any reactor of the serving Runtime; it
  /// returns once the request is made, and serve() completes afterwards.
  /// Harmless when the device is not being served, or already stopping.
  /// A device being recovered that is not served again yet runs
  /// DeviceConfig::on_recovery_failed instead, when set (which exits).
  runtime::Task<void> stop();

  /// STOP_DEV (when still live) and DEL_DEV; unmaps the queues and closes
  /// /dev/ublkcN first, so the deletion does not wait for us. Blocks until
  /// the kernel has removed the device's nodes, not until it has freed the
  /// device, which it does once the last opener of /dev/ublkbN (a mounted
  /// file system) has let go (DEL_DEV_ASYNC; kernels without it wait for
  /// that too): call it off the reactors (after the Runtime's run()
  /// returned, or from another thread). A device someone else deleted
  /// already is not an error. Safe to call more than once.
  Result<void> remove();

  /// Queue `q` and its counters (read on its core while serving, or after serve()).
  const Queue& queue(unsigned q) const { return *queues_.at(q); }

  /// Publishes the queues' metrics (DeviceConfig::metrics) and their
  /// reactors' counters in a file at `path` that other processes read with
  /// read_io_metrics() while the device serves (ublk/io_metrics_file.h):
  /// each queue's core copies its own figures there every `interval`, and
  /// once more when the device stops. Call after configure() and before
  /// serve(); the file is removed with the Device. Fails if metrics are
  /// off, or with the Error of IoMetricsPublisher::create.
  Result<void> publish_metrics(const std::string& path, std::chrono::nanoseconds interval = std::chrono::seconds(1));

 private:
  explicit Device(const DeviceConfig& config);
  abi::ublk_params make_params() const;
  Result<void> open_queues();
  // Unprivileged devices: waits until this user may use /dev/ublkcN.
  Result<void> wait_for_node_access();
  // Unmaps every queue and closes /dev/ublkcN; the counters stay.
  void release_queues();
  // serve()'s parts; all run on the home core except the queue bodies.
  runtime::Task<void> serve_queue(unsigned q, unsigned core);
  runtime::Task<void> start_and_report(const std::function<void()>& on_ready);
  runtime::Task<void> stop_here();
  // A queue failed (`error`: its errno, 0 if unknown): on_unrecoverable
  // for a live device, abandon_recovery for a recovering one, else stop.
  runtime::Task<void> fail_here(int error = 0);
  // A recovery that has not served the device yet failed: hands `why` to
  // on_recovery_failed, once, which exits. Nothing when there is no such
  // recovery or no callback, or if the callback returns: the caller then
  // stops the device (STOP_DEV), as without the callback.
  void abandon_recovery(const std::string& why);
  runtime::Task<void> cancel_fetches();

  DeviceConfig config_;
  Target* target_ = nullptr;
  ControlDevice control_;
  // STOP_DEV's own control ring: a stop may come while START_DEV (or
  // END_USER_RECOVERY) still waits on control_, and a ring's completions
  // carry no owner, so two waiters on one ring could take each other's
  // answers (and a cancelled START_DEV closes its ring).
  ControlDevice stop_control_;
  abi::ublksrv_ctrl_dev_info info_{};
  bool added_ = false;
  bool recovering_ = false;
  int char_fd_ = -1;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::unique_ptr<IoMetricsPublisher> metrics_publisher_;

  // State of one serve(), owned by its home core (the core serve() was
  // awaited on); stop() hops there before touching it.
  struct Serving;
  std::unique_ptr<Serving> serving_;
  // The core serve() runs on, or -1 when not serving.
  std::atomic<int> home_core_{-1};
};

}  // namespace coblk::ublk
