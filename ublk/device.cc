#include "coblk/ublk/device.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"

namespace coblk::ublk {
namespace {

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

uint8_t shift_of(uint32_t power_of_two) { return static_cast<uint8_t>(std::countr_zero(power_of_two)); }

// Runs one queue's serve() on its core and waits for it from core 0. A
// queue that failed (rather than being stopped by the kernel) stops the
// whole runtime: the other queues' FETCHes are then cancelled instead of
// waiting for a START_DEV that can never complete without this queue.
runtime::Task<void> serve_on_core(Queue& queue, unsigned core) {
  co_await runtime::submit_to(
      core, [&queue] { return queue.serve(); }, "ublk-queue");
  if (queue.last_error() != 0) runtime::Reactor::current()->runtime()->request_stop();
}

runtime::Task<void> serve_all(std::vector<std::unique_ptr<Queue>>& queues) {
  std::vector<runtime::Task<void>> parts;
  parts.reserve(queues.size());
  for (unsigned q = 0; q < queues.size(); ++q) parts.push_back(serve_on_core(*queues[q], q));
  co_await runtime::when_all(std::move(parts));
}

// The first `n` CPUs this process may run on.
std::vector<unsigned> allowed_cpus(unsigned n) {
  std::vector<unsigned> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE && out.size() < n; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

}  // namespace

Device::Device(DeviceConfig config) : config_(std::move(config)) {}

Device::~Device() {
  // A device being recovered stays for another attempt; one we created is
  // not left behind half-configured.
  std::string ignored;
  if (!recovering_) remove(ignored);
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

int Device::create(std::string& error) {
  if (const int ret = control_.open(); ret < 0) {
    error = ret == -ENOENT ? std::string(kControlPath) + " does not exist: load the driver with 'modprobe ublk_drv'"
                           : std::string("cannot open ") + kControlPath + ": " + errno_text(ret);
    return ret;
  }
  abi::ublksrv_ctrl_dev_info info{};
  info.nr_hw_queues = static_cast<uint16_t>(config_.queues);
  info.queue_depth = static_cast<uint16_t>(config_.depth);
  info.max_io_buf_bytes = config_.max_io_bytes;
  info.dev_id = config_.dev_id < 0 ? UINT32_MAX : static_cast<uint32_t>(config_.dev_id);
  uint64_t wanted = 0;
  if (control_.ioctl_encoded()) wanted |= abi::F_CMD_IOCTL_ENCODE;
  if (config_.data_path == DataPath::user_copy) wanted |= abi::F_USER_COPY;
  if (config_.data_path == DataPath::zero_copy) wanted |= abi::F_AUTO_BUF_REG;
  if (config_.recovery) {
    wanted |= abi::F_USER_RECOVERY;
    // With REISSUE the kernel re-sends the requests a dead server had taken
    // to the recovered one, instead of failing them with EIO.
    if ((control_.features() & abi::F_USER_RECOVERY_REISSUE) != 0) wanted |= abi::F_USER_RECOVERY_REISSUE;
  }
  if (config_.unprivileged) wanted |= abi::F_UNPRIVILEGED_DEV;
  info.flags = wanted;
  control_.set_unprivileged(config_.unprivileged);

  int ret = control_.add_device(info);
  if (ret < 0) {
    if (ret == -EEXIST) {
      error = "device id " + std::to_string(config_.dev_id) + " is already in use";
    } else if (ret == -EPERM || ret == -EACCES) {
      error =
          (control_.features() & abi::F_UNPRIVILEGED_DEV) != 0 && !config_.unprivileged
              ? "operation not permitted: run as root, or use --unprivileged (the kernel supports unprivileged devices)"
              : "operation not permitted: ublk devices need root (CAP_SYS_ADMIN)";
    } else {
      error = "cannot add the device: " + errno_text(ret);
    }
    return ret;
  }
  info_ = info;
  added_ = true;
  // Unknown flags are dropped by the kernel rather than refused.
  if ((info_.flags & wanted) != wanted) {
    error = "the kernel did not accept the device features " + std::to_string(wanted & ~info_.flags);
    return -EOPNOTSUPP;
  }

  return 0;
}

int Device::configure(Target& target, std::string& error) {
  if (!added_) {
    error = "the device was not created";
    return -EINVAL;
  }
  if (config_.data_path == DataPath::zero_copy && !target.supports_zero_copy()) {
    error = "this target cannot serve the zero-copy data path (it needs the request data in memory)";
    return -EINVAL;
  }
  target_ = &target;
  const abi::ublk_params params = make_params();
  if (const int ret = control_.set_params(info_.dev_id, params); ret < 0) {
    error = "cannot set the device parameters: " + errno_text(ret);
    return ret;
  }
  return open_queues(error);
}

int Device::attach_for_recovery(uint32_t dev_id, Target& target, std::string& error) {
  if (config_.data_path == DataPath::zero_copy && !target.supports_zero_copy()) {
    error = "this target cannot serve the zero-copy data path (it needs the request data in memory)";
    return -EINVAL;
  }
  target_ = &target;
  if (const int ret = control_.open(); ret < 0) {
    error = std::string("cannot open ") + kControlPath + ": " + errno_text(ret);
    return ret;
  }
  control_.set_unprivileged(config_.unprivileged);
  int ret = control_.get_device_info(dev_id, info_);
  if (ret < 0) {
    error = "no ublk device " + std::to_string(dev_id) + ": " + errno_text(ret);
    return ret;
  }
  if (info_.nr_hw_queues != config_.queues || info_.queue_depth != config_.depth) {
    error = "device " + std::to_string(dev_id) + " has " + std::to_string(info_.nr_hw_queues) + " queues of depth " +
            std::to_string(info_.queue_depth) + ", not what its record says";
    return -EINVAL;
  }
  // The dead server's /dev/ublkcN is released by deferred kernel work;
  // until that ran, the kernel answers -EBUSY.
  for (int attempt = 0; attempt < 50; ++attempt) {
    ret = control_.start_user_recovery(dev_id);
    if (ret != -EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (ret < 0) {
    error = "cannot start recovering device " + std::to_string(dev_id) + ": " + errno_text(ret) +
            (ret == -EINVAL ? " (is its server still running, or was it added without --recovery?)" : "");
    return ret;
  }
  added_ = true;
  recovering_ = true;
  return open_queues(error);
}

int Device::open_queues(std::string& error) {
  int ret = 0;
  // devtmpfs creates the node at once; with udev it may take a moment.
  const std::string path = char_device_path(info_.dev_id);
  for (int attempt = 0; attempt < 100; ++attempt) {
    char_fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (char_fd_ >= 0 || errno != ENOENT) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (char_fd_ < 0) {
    ret = -errno;
    error = "cannot open " + path + ": " + errno_text(ret);
    return ret;
  }

  for (unsigned q = 0; q < config_.queues; ++q) {
    QueueConfig qc;
    qc.char_fd = char_fd_;
    qc.queue_id = static_cast<uint16_t>(q);
    qc.depth = static_cast<uint16_t>(config_.depth);
    qc.max_io_bytes = info_.max_io_buf_bytes;
    qc.data_path = config_.data_path;
    qc.ioctl_encoded = (info_.flags & abi::F_CMD_IOCTL_ENCODE) != 0;
    auto queue = std::make_unique<Queue>(qc, *target_);
    if ((ret = queue->map(error)) < 0) return ret;
    queues_.push_back(std::move(queue));
  }
  return 0;
}

int Device::serve(const std::function<void()>& on_ready, std::string& error) {
  if (!added_ || char_fd_ < 0) {
    error = "the device was not added";
    return -EINVAL;
  }
  std::vector<unsigned> cpus = config_.cpus.empty() ? allowed_cpus(config_.queues) : config_.cpus;
  if (cpus.size() < config_.queues) {
    error = "only " + std::to_string(cpus.size()) + " CPUs available for " + std::to_string(config_.queues) + " queues";
    return -EINVAL;
  }
  cpus.resize(config_.queues);

  // Signals arrive through a signalfd; blocking them first makes every
  // thread started below inherit the mask, so none of them is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  const int queues_done_fd = ::eventfd(0, EFD_CLOEXEC);
  const int started_fd = ::eventfd(0, EFD_CLOEXEC);
  if (signal_fd < 0 || queues_done_fd < 0 || started_fd < 0) {
    error = std::string("cannot create the server's event descriptors: ") + std::strerror(errno);
    for (int fd : {signal_fd, queues_done_fd, started_fd}) {
      if (fd >= 0) ::close(fd);
    }
    return -EMFILE;
  }

  // Each tag keeps one command in flight plus the target's I/O; size the
  // rings so a full queue never waits for SQEs.
  runtime::RuntimeConfig rc;
  rc.cpus = cpus;
  rc.reactor.ring_entries = std::bit_ceil(std::max(256U, std::min(4096U, config_.depth * 2)));

  std::string runtime_error;
  // The running Runtime, for stopping it from this thread when the kernel
  // cannot end the queues (the device never started). Guarded by a mutex:
  // this is the control path, and it keeps the Runtime alive while used.
  std::mutex runtime_mutex;
  runtime::Runtime* running = nullptr;
  std::thread runtime_thread([&] {
    try {
      runtime::Runtime rt(rc);
      {
        std::lock_guard lock(runtime_mutex);
        running = &rt;
      }
      rt.run([this] { return serve_all(queues_); });
      std::lock_guard lock(runtime_mutex);
      running = nullptr;
    } catch (const std::exception& e) {
      std::lock_guard lock(runtime_mutex);
      running = nullptr;
      runtime_error = e.what();
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(queues_done_fd, &one, sizeof(one));
  });

  // START_DEV returns only when every tag's FETCH is queued, so it runs on
  // its own thread while this one keeps watching for signals. It is
  // interrupted by io_uring itself if we exit first (ring teardown).
  // The result is published with release order and read after the eventfd
  // says it is there, with acquire.
  // The starter's state is shared with its thread, which may outlive this
  // call (stuck in the kernel when a queue failed), so it lives on the heap
  // and owns its eventfd: a late write can never hit a reused descriptor.
  struct StartState {
    ControlDevice control;
    std::atomic<int> result{1};
    int event_fd = -1;
    ~StartState() {
      if (event_fd >= 0) ::close(event_fd);
    }
  };
  auto start = std::make_shared<StartState>();
  start->event_fd = started_fd;
  int ret = start->control.open();
  if (ret == 0) start->control.set_unprivileged(config_.unprivileged);
  std::thread start_thread([start, ret, recovering = recovering_, id = info_.dev_id] {
    const int r = ret < 0      ? ret
                  : recovering ? start->control.end_user_recovery(id, ::getpid())
                               : start->control.start_device(id, ::getpid());
    start->result.store(r, std::memory_order_release);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(start->event_fd, &one, sizeof(one));
  });
  std::atomic<int>& start_result = start->result;

  // Ends the queues: STOP_DEV makes the kernel abort every FETCH once the
  // device is live; before that only cancelling the runtime's I/O can.
  auto stop_queues = [&](bool live) {
    if (live && control_.stop_device(info_.dev_id) == 0) return;
    std::lock_guard lock(runtime_mutex);
    if (running != nullptr) running->request_stop();
  };
  bool started = false;
  bool stopping = false;
  bool queues_done = false;
  int status = 0;
  while (!queues_done) {
    pollfd fds[3] = {{signal_fd, POLLIN, 0}, {queues_done_fd, POLLIN, 0}, {started_fd, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(started_fd, &v, sizeof(v));
      const int r = start_result.load(std::memory_order_acquire);
      if (r == 0) {
        started = true;
        if (!stopping) on_ready();
      } else if (status == 0) {
        status = r;
        error = "cannot start the device: " + errno_text(r);
        stopping = true;
        stop_queues(false);
      }
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      [[maybe_unused]] ssize_t n = ::read(signal_fd, &si, sizeof(si));
      if (!stopping) {
        stopping = true;
        stop_queues(started);
      }
    }
    if (fds[1].revents & POLLIN) queues_done = true;
  }
  runtime_thread.join();
  if (start_result.load(std::memory_order_acquire) != 1) {
    start_thread.join();
  } else {
    start_thread.detach();  // stuck in START_DEV; process exit cancels it
  }
  ::close(signal_fd);
  ::close(queues_done_fd);  // started_fd is closed with the last owner of `start`

  if (!runtime_error.empty() && status == 0) {
    status = -EIO;
    error = "the queue runtime failed: " + runtime_error;
  }
  for (const auto& q : queues_) {
    if (q->last_error() != 0 && status == 0) {
      status = q->last_error();
      error = "a queue failed: " + errno_text(q->last_error());
    }
  }
  return status;
}

int Device::remove(std::string& error) {
  if (!added_) return 0;
  queues_.clear();  // unmaps the descriptor arrays and buffers
  if (char_fd_ >= 0) {
    ::close(char_fd_);
    char_fd_ = -1;
  }
  control_.stop_device(info_.dev_id);  // harmless if never started or already stopped
  const int ret = control_.delete_device(info_.dev_id);
  added_ = false;
  // -ENODEV: somebody else (coblk del) deleted it first, which is fine.
  if (ret < 0 && ret != -ENODEV) {
    error = "cannot delete device " + std::to_string(info_.dev_id) + ": " + errno_text(ret);
    return ret;
  }
  return 0;
}

}  // namespace coblk::ublk
