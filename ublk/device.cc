#include "coblk/ublk/device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stop_token>
#include <thread>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"

namespace coblk::ublk {
namespace {

uint8_t shift_of(uint32_t power_of_two) { return static_cast<uint8_t>(std::countr_zero(power_of_two)); }

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

Error zero_copy_refused() {
  return Error(EINVAL, "this target cannot serve the zero-copy data path (it needs the request data in memory)");
}

// For refusals: the data path with the kernel flag that selects it.
const char* describe(DataPath path) {
  switch (path) {
    case DataPath::user_copy:
      return "user copy (USER_COPY)";
    case DataPath::zero_copy:
      return "zero copy (AUTO_BUF_REG)";
    case DataPath::copy:
      break;
  }
  return "copy";
}

}  // namespace

DataPath data_path_of(uint64_t flags) {
  if ((flags & abi::F_AUTO_BUF_REG) != 0) return DataPath::zero_copy;
  if ((flags & abi::F_USER_COPY) != 0) return DataPath::user_copy;
  return DataPath::copy;
}

const char* data_path_name(DataPath path) {
  switch (path) {
    case DataPath::user_copy:
      return "user_copy";
    case DataPath::zero_copy:
      return "zero_copy";
    case DataPath::copy:
      break;
  }
  return "copy";
}

unsigned ring_entries_for(unsigned total_depth) {
  return std::bit_ceil(std::max(256U, std::min(4096U, total_depth * 2)));
}

// What one serve() shares between its parts. Touched only on the home core.
struct Device::Serving {
  unsigned home = 0;
  std::vector<unsigned> cores;
  unsigned queues_running = 0;
  bool start_pending = true;       // START_DEV / END_USER_RECOVERY not answered yet
  bool started = false;            // /dev/ublkbN exists
  bool stopping = false;           // stop() or a failure asked the queues to end
  bool stopped_by_caller = false;  // stop() was called: a START_DEV cut short is no failure
  int start_result = 0;
  std::stop_source start_cancel;  // abandons the wait for START_DEV
  bool failed = false;            // a queue failed (fail_here ran)
  bool abandoned = false;         // on_recovery_failed was called (at most once)
};

Device::Device(const DeviceConfig& config) : config_(config) {}

Device::~Device() {
  // A device being recovered stays for another attempt; one we created is
  // not left behind half-configured.
  if (!recovering_) (void)remove();
  queues_.clear();
  if (char_fd_ >= 0) ::close(char_fd_);
}

abi::ublk_params Device::make_params() const {
  const TargetGeometry g = target_->geometry();
  abi::ublk_params p{};
  p.len = sizeof(p);
  p.types = abi::PARAM_TYPE_BASIC;
  p.basic.attrs = (g.volatile_cache ? abi::ATTR_VOLATILE_CACHE | abi::ATTR_FUA : 0U) |
                  (g.rotational ? abi::ATTR_ROTATIONAL : 0U) | (g.read_only ? abi::ATTR_READ_ONLY : 0U);
  p.basic.logical_bs_shift = shift_of(g.logical_block_size);
  p.basic.physical_bs_shift = shift_of(g.physical_block_size);
  p.basic.io_min_shift = p.basic.logical_bs_shift;
  p.basic.io_opt_shift = p.basic.physical_bs_shift;
  // The kernel refuses requests larger than the tag buffers it was told of.
  p.basic.max_sectors = info_.max_io_buf_bytes >> 9;
  p.basic.dev_sectors = g.size_bytes >> 9;
  if (g.discard || g.write_zeroes) {
    p.types |= abi::PARAM_TYPE_DISCARD;
    p.discard.discard_granularity = g.discard_granularity;  // the kernel wants it non-zero
    p.discard.max_discard_sectors = g.discard ? UINT32_MAX >> 9 : 0;
    p.discard.max_write_zeroes_sectors = g.write_zeroes ? UINT32_MAX >> 9 : 0;
    p.discard.max_discard_segments = 1;  // the only value the kernel accepts
  }
  return p;
}

Result<std::unique_ptr<Device>> Device::create(const DeviceConfig& config) {
  // What the kernel refuses an unprivileged device (or, for recovery,
  // silently drops from it).
  if (config.unprivileged && config.data_path != DataPath::copy) {
    return Error(EINVAL,
                 "an unprivileged device can only use the copy data path: the kernel refuses user copy and zero copy "
                 "for it");
  }
  if (config.unprivileged && config.recovery) {
    return Error(EINVAL, "the kernel offers no user recovery for unprivileged devices");
  }
  std::unique_ptr<Device> device(new Device(config));
  ControlDevice& control = device->control_;
  if (const int ret = control.open(); ret < 0) {
    if (ret == -ENOENT) {
      return Error(ENOENT, std::string(kControlPath) +
                               " does not exist: load the driver with 'modprobe ublk_drv' (on a host without ublk, "
                               "use the VM harness: test/vm/run-vm --shell)");
    }
    return Error::from_errno(-ret, std::string("cannot open ") + kControlPath);
  }
  abi::ublksrv_ctrl_dev_info info{};
  info.nr_hw_queues = static_cast<uint16_t>(config.queues);
  info.queue_depth = static_cast<uint16_t>(config.depth);
  info.max_io_buf_bytes = config.max_io_bytes;
  info.dev_id = config.dev_id < 0 ? UINT32_MAX : static_cast<uint32_t>(config.dev_id);
  uint64_t wanted = 0;
  if (control.ioctl_encoded()) wanted |= abi::F_CMD_IOCTL_ENCODE;
  if (config.data_path == DataPath::user_copy) wanted |= abi::F_USER_COPY;
  if (config.data_path == DataPath::zero_copy) wanted |= abi::F_AUTO_BUF_REG;
  if (config.recovery) {
    wanted |= abi::F_USER_RECOVERY;
    // With REISSUE the kernel re-sends the requests a dead server had taken
    // to the recovered one, instead of failing them with EIO.
    if ((control.features() & abi::F_USER_RECOVERY_REISSUE) != 0) wanted |= abi::F_USER_RECOVERY_REISSUE;
  }
  if (config.unprivileged) wanted |= abi::F_UNPRIVILEGED_DEV;
  info.flags = wanted;
  control.set_unprivileged(config.unprivileged);

  if (const int ret = control.add_device(info); ret < 0) {
    if (ret == -EEXIST) return Error(EEXIST, "device id " + std::to_string(config.dev_id) + " is already in use");
    if (ret == -EACCES && config.unprivileged) {
      return Error(EACCES, "the kernel's limit of unprivileged ublk devices is reached (ublk_drv parameter ublks_max)");
    }
    if (ret == -EPERM || ret == -EACCES) {
      return Error(-ret, (control.features() & abi::F_UNPRIVILEGED_DEV) != 0 && !config.unprivileged
                             ? "operation not permitted: run as root, or use --unprivileged (the kernel supports "
                               "unprivileged devices)"
                             : "operation not permitted: ublk devices need root (CAP_SYS_ADMIN)");
    }
    return Error::from_errno(-ret, "cannot add the device");
  }
  device->info_ = info;
  device->added_ = true;
  // The kernel makes every device of a caller with CAP_SYS_ADMIN
  // privileged; the destructor deletes it again.
  if (config.unprivileged && (info.flags & abi::F_UNPRIVILEGED_DEV) == 0) {
    return Error(EPERM,
                 "the kernel makes every device added by a user with CAP_SYS_ADMIN (root) privileged: "
                 "--unprivileged is for ordinary users");
  }
  // Unknown flags are dropped by the kernel rather than refused; the
  // destructor deletes the device again.
  if ((info.flags & wanted) != wanted) {
    return Error(EOPNOTSUPP, "the kernel did not accept the device features " + std::to_string(wanted & ~info.flags));
  }
  return device;
}

Result<std::unique_ptr<Device>> Device::recover(uint32_t dev_id, const DeviceConfig& config) {
  std::unique_ptr<Device> device(new Device(config));
  // From here on the destructor leaves the device alone: it is the kernel's
  // and the next recovery attempt's, whatever happens to this one.
  device->recovering_ = true;
  ControlDevice& control = device->control_;
  if (const int ret = control.open(); ret < 0) {
    return Error::from_errno(-ret, std::string("cannot open ") + kControlPath);
  }
  control.set_unprivileged(config.unprivileged);
  int ret = control.get_device_info(dev_id, device->info_);
  if (ret < 0) return Error::from_errno(-ret, "no ublk device " + std::to_string(dev_id));
  const abi::ublksrv_ctrl_dev_info& info = device->info_;
  if (info.nr_hw_queues != config.queues || info.queue_depth != config.depth) {
    return Error(EINVAL, "device " + std::to_string(dev_id) + " has " + std::to_string(info.nr_hw_queues) +
                             " queues of depth " + std::to_string(info.queue_depth) + ", not what its record says");
  }
  // The kernel moves a request's data by the flags the device was added
  // with, and a server on another data path expects it to move it another
  // way. Linux 7.3 refuses such a server's FETCH commands (EINVAL, seen
  // for copy on a USER_COPY and on an AUTO_BUF_REG device), but only after
  // START_USER_RECOVERY and without saying why; no kernel must be relied
  // on to catch it. Refuse before touching the device, with the reason.
  if (const DataPath added_with = data_path_of(info.flags); added_with != config.data_path) {
    return Error(EINVAL, "device " + std::to_string(dev_id) + " was added with the " + describe(added_with) +
                             " data path, not " + describe(config.data_path) +
                             ": refusing to serve it with another one");
  }
  // The dead server's /dev/ublkcN is released by deferred kernel work;
  // until that ran, the kernel answers -EBUSY.
  for (int attempt = 0; attempt < 50; ++attempt) {
    ret = control.start_user_recovery(dev_id);
    if (ret != -EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (ret < 0) {
    return Error(-ret,
                 "cannot start recovering device " + std::to_string(dev_id) + ": " + errno_text(ret) +
                     (ret == -EINVAL ? " (is its server still running, or was it added without --recovery?)" : ""));
  }
  device->added_ = true;
  return device;
}

Result<void> Device::configure(Target& target) {
  if (!added_) return Error(EINVAL, "the device was not created");
  if (target_ != nullptr) return Error(EINVAL, "the device is configured already");
  if (config_.data_path == DataPath::zero_copy && !target.supports_zero_copy()) return zero_copy_refused();
  target_ = &target;
  if (config_.unprivileged) {
    if (Result<void> access = wait_for_node_access(); !access) return access;
  }
  if (!recovering_) {
    const abi::ublk_params params = make_params();
    if (const int ret = control_.set_params(info_.dev_id, params); ret < 0) {
      return Error::from_errno(-ret, "cannot set the device parameters");
    }
  }
  return open_queues();
}

Result<void> Device::wait_for_node_access() {
  // The kernel checks every command on an unprivileged device against the
  // caller's access to /dev/ublkcN, which is root's until the udev rule
  // (ublksrv's ublk_chown.sh) gives it to the device's owner, a moment
  // after ADD_DEV.
  const std::string path = char_device_path(info_.dev_id);
  for (int attempt = 0; attempt < 250; ++attempt) {
    if (::faccessat(AT_FDCWD, path.c_str(), R_OK | W_OK, AT_EACCESS) == 0) return ok();
    if (errno != ENOENT && errno != EACCES && errno != EPERM) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Error(EACCES, path +
                           " is not readable and writable by this user after 5 s: unprivileged devices need the ublk "
                           "udev rule that gives a device's nodes to its owner (only root can delete device " +
                           std::to_string(info_.dev_id) + " now)");
}

Result<void> Device::open_queues() {
  // devtmpfs creates the node at once; with udev it may take a moment.
  const std::string path = char_device_path(info_.dev_id);
  for (int attempt = 0; attempt < 100; ++attempt) {
    char_fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (char_fd_ >= 0 || errno != ENOENT) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (char_fd_ < 0) return Error::from_errno(errno, "cannot open " + path);

  for (unsigned q = 0; q < info_.nr_hw_queues; ++q) {
    QueueConfig qc;
    qc.char_fd = char_fd_;
    qc.queue_id = static_cast<uint16_t>(q);
    qc.depth = info_.queue_depth;
    qc.max_io_bytes = info_.max_io_buf_bytes;
    qc.prefault_buffers = config_.prefault_buffers;
    qc.metrics = config_.metrics;
    // Runs on the queue's core; the stop itself belongs to the home core.
    qc.on_failure = [this] {
      runtime::spawn(
          [](Device* d) -> runtime::Task<void> {
            const int home = d->home_core_.load(std::memory_order_acquire);
            if (home < 0) co_return;
            co_await runtime::submit_to(
                static_cast<unsigned>(home), [d] { return d->fail_here(); }, "ublk-fail");
          }(this),
          "ublk-queue-failed");
    };
    qc.data_path = config_.data_path;
    qc.ioctl_encoded = (info_.flags & abi::F_CMD_IOCTL_ENCODE) != 0;
    auto queue = std::make_unique<Queue>(qc, *target_);
    std::string error;
    if (const int ret = queue->map(error); ret < 0) return Error(-ret, error);
    queues_.push_back(std::move(queue));
  }
  return ok();
}

Result<void> Device::publish_metrics(const std::string& path, std::chrono::nanoseconds interval) {
  if (!config_.metrics) return Error(EINVAL, "device " + std::to_string(id()) + " records no metrics");
  if (queues_.empty()) return Error(EINVAL, "the device is not configured");
  if (serving_) return Error(EBUSY, "the device is being served already");
  Result<std::unique_ptr<IoMetricsPublisher>> created =
      IoMetricsPublisher::create(path, id(), static_cast<unsigned>(queues_.size()));
  if (!created) return created.error();
  metrics_publisher_ = std::move(created).value();
  for (auto& q : queues_) q->publish_metrics_to(metrics_publisher_.get(), interval);
  return ok();
}

runtime::Task<Result<void>> Device::serve(std::vector<unsigned> cores, std::function<void()> on_ready) {
  runtime::Reactor* here = runtime::Reactor::current();
  if (here == nullptr || here->runtime() == nullptr) {
    co_return Error(EINVAL, "Device::serve must be awaited by a task on a reactor of a Runtime");
  }
  if (char_fd_ < 0 || queues_.empty()) {
    co_return Error(EINVAL, queues_.empty() ? "the device is not configured"
                                            : "the device was served already; remove() is all that is left");
  }
  if (serving_) co_return Error(EBUSY, "the device is being served already");
  if (cores.size() != queues_.size()) {
    co_return Error(EINVAL, "device " + std::to_string(id()) + " has " + std::to_string(queues_.size()) +
                                " queues but " + std::to_string(cores.size()) + " cores were given");
  }
  for (unsigned core : cores) {
    if (core >= here->runtime()->cores()) {
      co_return Error(EINVAL, "core " + std::to_string(core) + " is not a core of this runtime (it has " +
                                  std::to_string(here->runtime()->cores()) + ")");
    }
  }

  serving_ = std::make_unique<Serving>();
  serving_->home = here->core();
  // Published for stop() on other cores, which hop here before touching
  // serving_; release pairs with stop()'s acquire load.
  home_core_.store(static_cast<int>(here->core()), std::memory_order_release);
  serving_->cores = std::move(cores);
  serving_->queues_running = static_cast<unsigned>(queues_.size());

  std::vector<runtime::Task<void>> parts;
  parts.reserve(queues_.size() + 1);
  for (unsigned q = 0; q < queues_.size(); ++q) parts.push_back(serve_queue(q, serving_->cores[q]));
  parts.push_back(start_and_report(on_ready));
  co_await runtime::when_all(std::move(parts));

  home_core_.store(-1, std::memory_order_release);
  const std::unique_ptr<Serving> done = std::move(serving_);
  // Let go of /dev/ublkcN: the kernel frees a deleted device only once its
  // node is closed and unmapped, so a `coblk del` of this device (waiting in
  // DEL_DEV) would otherwise wait for the whole process. The counters stay.
  release_queues();
  // A failed queue comes first: it is usually why START_DEV failed too.
  for (const auto& q : queues_) {
    if (q->last_error() != 0) {
      co_return Error(-q->last_error(),
                      "device " + std::to_string(id()) + ": a queue failed: " + errno_text(q->last_error()));
    }
  }
  if (done->start_result < 0 && done->start_result != -ECANCELED && !done->stopped_by_caller) {
    co_return Error(-done->start_result,
                    "cannot start device " + std::to_string(id()) + ": " + errno_text(done->start_result));
  }
  if (!done->started && done->start_result == -ECANCELED && !done->stopping) {
    co_return Error(EIO, "device " + std::to_string(id()) + ": its queues ended before it started");
  }
  co_return ok();
}

runtime::Task<void> Device::serve_queue(unsigned q, unsigned core) {
  Queue& queue = *queues_[q];
  co_await runtime::submit_to(
      core, [&queue] { return queue.serve(); }, "ublk-queue");
  // Back on the home core. A queue that failed (rather than being stopped
  // by the kernel) takes the device's other queues down with it: they
  // would otherwise wait for a START_DEV that can never complete.
  if (queue.last_error() != 0) co_await fail_here(queue.last_error());
  if (--serving_->queues_running == 0 && serving_->start_pending) serving_->start_cancel.request_stop();
}

void Device::abandon_recovery(const std::string& why) {
  if (!recovering_ || !serving_ || serving_->started || serving_->abandoned || !config_.on_recovery_failed) return;
  serving_->abandoned = true;
  config_.on_recovery_failed(why);
  // It returned, against its contract: the caller stops the device as it
  // would without the callback, which at least ends serve().
}

runtime::Task<void> Device::fail_here(int error) {
  if (!serving_ || serving_->failed) co_return;
  serving_->failed = true;
  if (serving_->started && config_.on_unrecoverable) {
    // A live device whose I/O command failed may hold a request that this
    // server can no longer complete. STOP_DEV would wait for that request
    // for ever, and a process waiting in STOP_DEV cannot even exit (its
    // io_uring worker is stuck), so the kernel could never fail it. The
    // way out that always works is the one a crash takes: the end of the
    // io_urings that hold the queue's commands, after which the kernel
    // fails (or, with recovery, requeues) every outstanding request.
    std::fprintf(stderr, "coblk: device %u: a queue failed while live; the server gives up the device\n", id());
    config_.on_unrecoverable();
    co_return;
  }
  abandon_recovery(std::string("a queue failed before the device was served again") +
                   (error != 0 ? std::string(": ") + std::strerror(-error) : std::string()));
  co_await stop_here();
}

runtime::Task<void> Device::start_and_report(const std::function<void()>& on_ready) {
  Serving& s = *serving_;
  // START_DEV returns once every tag of every queue has its FETCH queued;
  // the queues were spawned just before this, so they are doing so now.
  const pid_t pid = ::getpid();
  if (!control_.is_open()) {
    if (const int ret = control_.open(); ret < 0) {
      s.start_pending = false;
      s.start_result = ret;
      abandon_recovery(std::string("cannot open ") + kControlPath + ": " + errno_text(ret));
      co_await stop_here();
      co_return;
    }
    control_.set_unprivileged(config_.unprivileged);
  }
  // if/else, never co_await in both arms of ?: (GCC 12 may run both;
  // docs/contributing.md).
  int ret = 0;
  if (recovering_) {
    ret = co_await control_.end_user_recovery_async(id(), pid, s.start_cancel.get_token());
  } else {
    ret = co_await control_.start_device_async(id(), pid, s.start_cancel.get_token());
  }
  s.start_pending = false;
  s.start_result = ret;
  if (ret == 0) {
    s.started = true;
    if (!s.stopping && on_ready) on_ready();
    // stop() came while START_DEV was in flight: it could only cancel the
    // fetches; now that the device is live, STOP_DEV finishes the job.
    if (s.stopping) {
      s.stopping = false;
      co_await stop_here();
    }
    co_return;
  }
  if (ret == -ECANCELED) co_return;
  abandon_recovery("END_USER_RECOVERY failed: " + errno_text(ret));
  co_await stop_here();
}

runtime::Task<void> Device::stop() {
  runtime::Reactor* here = runtime::Reactor::current();
  const int home = home_core_.load(std::memory_order_acquire);
  if (here == nullptr || home < 0) co_return;
  // On the home core, which owns serving_: the caller asked for this stop,
  // so a START_DEV it cuts short (the kernel refuses it once STOP_DEV came
  // first) is no failure of serve().
  auto stop_on_home = [this] {
    if (serving_) serving_->stopped_by_caller = true;
    // A recovery stopped before it served the device: STOP_DEV would end
    // the device itself, which the recovery was to keep.
    abandon_recovery("stopped before the device was served again");
    return stop_here();
  };
  if (here->core() == static_cast<unsigned>(home)) {
    co_await stop_on_home();
  } else {
    co_await runtime::submit_to(static_cast<unsigned>(home), stop_on_home, "ublk-stop");
  }
}

runtime::Task<void> Device::stop_here() {
  if (!serving_ || serving_->stopping) co_return;
  serving_->stopping = true;
  // STOP_DEV ends every queued fetch with IO_RES_ABORT, live device or not:
  // the kernel cancels a device's I/O commands whenever it is stopped. An
  // io_uring cancel cannot do this (the driver's commands are cancellable
  // only when their ring exits), so it is the one way to end the queues of
  // a device that never started, e.g. when a queue failed before START_DEV.
  int ret = 0;
  if (!stop_control_.is_open()) {
    ret = stop_control_.open();
    if (ret == 0) stop_control_.set_unprivileged(config_.unprivileged);
  }
  if (ret == 0) ret = co_await stop_control_.stop_device_async(id());
  if (ret == 0 || ret == -ENODEV) co_return;
  // The control node refused: try a cancel, which at least ends the fetches
  // of kernels whose driver supports it.
  co_await cancel_fetches();
}

runtime::Task<void> Device::cancel_fetches() {
  // Every request fetch of this device is an operation on char_fd_ in the
  // ring of the core that serves its queue; cancelling by fd reaches all of
  // them and nothing of any other device.
  std::vector<unsigned> cores = serving_->cores;
  std::sort(cores.begin(), cores.end());
  cores.erase(std::unique(cores.begin(), cores.end()), cores.end());
  const int fd = char_fd_;
  for (unsigned core : cores) {
    co_await runtime::submit_to(
        core, [fd]() -> runtime::Task<void> { (void)co_await runtime::cancel_fd(fd); }, "ublk-cancel");
  }
}

void Device::release_queues() {
  for (auto& q : queues_) q->unmap();
  if (char_fd_ >= 0) {
    ::close(char_fd_);
    char_fd_ = -1;
  }
}

Result<void> Device::remove() {
  if (!added_) return ok();
  release_queues();
  if (!control_.is_open()) {
    if (const int ret = control_.open(); ret < 0) {
      return Error::from_errno(
          -ret, "cannot delete device " + std::to_string(info_.dev_id) + ": cannot open " + kControlPath);
    }
    control_.set_unprivileged(config_.unprivileged);
  }
  control_.stop_device(info_.dev_id);  // harmless if never started or already stopped
  // Without waiting for the kernel to free the device: it does once the
  // last opener of /dev/ublkbN is gone, and a file system still mounted
  // from the stopped device (coblk del --force, SIGTERM) would keep this
  // server waiting in DEL_DEV until the unmount. The nodes go at once
  // either way; a kernel without DEL_DEV_ASYNC waits as before.
  const int ret = control_.delete_device(info_.dev_id, false);
  added_ = false;
  // -ENODEV: somebody else (coblk del) deleted it first, which is fine.
  if (ret < 0 && ret != -ENODEV) return Error::from_errno(-ret, "cannot delete device " + std::to_string(info_.dev_id));
  return ok();
}

}  // namespace coblk::ublk
