#include "coblk/cmd/serve_device.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/daemon_log.h"
#include "coblk/cmd/device_ops.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/keeper.h"
#include "coblk/cmd/loop_backing.h"
#include "coblk/cmd/server.h"
#include "coblk/cmd/target_factory.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/signals.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/serve_until_signal.h"
#include "coblk/ublk/swap_safety.h"

namespace coblk::cmd {
namespace {

ublk::DataPath to_data_path(DataPathKind k) {
  switch (k) {
    case DataPathKind::copy:
      return ublk::DataPath::copy;
    case DataPathKind::user_copy:
      return ublk::DataPath::user_copy;
    case DataPathKind::zero_copy:
      return ublk::DataPath::zero_copy;
  }
  return ublk::DataPath::copy;
}

// The first `n` CPUs this process may run on (fewer if it may use fewer).
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

// "...; device ID stays quiesced: ...": the end of the one line a failed
// recovery reports when the device is left for another attempt.
std::string stays_quiesced(uint32_t id) {
  const std::string n = std::to_string(id);
  return "; device " + n + " stays quiesced: 'coblk recover -n " + n + "' tries again, 'coblk del -n " + n +
         "' removes it";
}

// False only on evidence that device `id` no longer waits for a server:
// the kernel has no such device, or has it dead (stopped) or live. A
// lookup that fails otherwise (no memory for a ring, say, when memory ran
// out for the runtime too) keeps it: deleting a device that waits for
// recovery would take its data with it.
bool may_wait_for_recovery(uint32_t id) {
  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return true;
  ublk::abi::ublksrv_ctrl_dev_info info{};
  const int ret = look_up_device(control, id, info);
  if (ret == -ENODEV) return false;
  if (ret < 0) return true;
  return info.state != ublk::abi::S_DEV_DEAD && info.state != ublk::abi::S_DEV_LIVE;
}

}  // namespace

int run_server(const AddOptions& o, bool recover, ReadinessReport& report, const KeeperLink* keeper) {
  // Before any thread exists, so that every reactor inherits the mask and a
  // stop signal is only ever read by serve_until_signal.
  Result<runtime::SignalSet> signals = runtime::SignalSet::block();
  if (!signals) return report.failed(signals.error().message());
  // Before any reactor, ring or target memory exists, so all of it is locked.
  // The warnings also go into the record, for `coblk list`.
  const std::vector<std::string> swap_warnings = ublk::protect_server_process();
  for (const std::string& problem : swap_warnings) {
    std::fprintf(stderr, "coblk %s: warning: %s\n", recover ? "recover" : "add", problem.c_str());
  }
  ublk::DeviceConfig config;
  config.dev_id = o.dev_id;
  config.queues = o.queues;
  config.depth = o.depth;
  config.data_path = to_data_path(o.data_path);
  config.recovery = o.recovery;
  config.unprivileged = o.unprivileged;
  config.metrics = o.metrics;
  // A request left in the kernel by a failed I/O command can only be failed
  // by the end of this process's rings: exit rather than hang (see
  // DeviceConfig::on_unrecoverable). The record stays: list shows the
  // server gone, and del (or recover, with --recovery) takes it from there.
  config.on_unrecoverable = [] {
    std::fprintf(stderr, "coblk: exiting so that the kernel fails the requests this server cannot complete\n");
    stop_daemon_log();  // forwards that line (and any before it) before the log's thread dies with the process
    std::_Exit(kExitFailure);
  };
  // A recovery that fails before it serves the device exits the same way:
  // STOP_DEV would end the device (DeviceConfig::on_recovery_failed).
  if (recover) {
    const auto id = static_cast<uint32_t>(o.dev_id);
    config.on_recovery_failed = [&report, id](const std::string& why) {
      report.failed(why + stays_quiesced(id));
      stop_daemon_log();
      std::_Exit(kExitFailure);
    };
  }
  if (o.target == TargetKind::zram) {
    // A zram device is the swap candidate: its requests come when memory is
    // short, so serving one must not fault in a tag buffer. Prefault them,
    // and keep them small enough to afford that (swap writes rarely exceed
    // 128 KiB; larger requests are split by the block layer).
    config.prefault_buffers = true;
    config.max_io_bytes = 128 * 1024;
  }
  if (o.target == TargetKind::nbd && o.data_path == DataPathKind::zero_copy) {
    // Zero copy has no tag buffers, so requests cost nothing in memory to
    // enlarge: a 1 MiB read is then one request and one NBD command, not
    // two (the kernel's nbd client takes up to 4 MiB). The copy paths keep
    // 512 KiB: a tag buffer each, and in the VM the larger size gained
    // nothing measurable there (docs/nbd.md).
    config.max_io_bytes = 1024 * 1024;
  }
  if (o.target == TargetKind::nbd) {
    // A request may not exceed what the server accepts in one go.
    const uint32_t most = o.nbd_info.max_block - o.nbd_info.max_block % 4096;
    if (most >= 4096 && most < config.max_io_bytes) config.max_io_bytes = most;
  }
  // The device id is known only once the kernel created it (or from -n when
  // recovering); the target is built then, as zram names its stats by id.
  // A fresh device that cannot be served is deleted again by its
  // destructor; a device being recovered is left quiesced for another try.
  Result<std::unique_ptr<ublk::Device>> created =
      recover ? ublk::Device::recover(static_cast<uint32_t>(o.dev_id), config) : ublk::Device::create(config);
  if (!created) return report.failed(created.error().message());
  ublk::Device& device = **created;
  const uint32_t id = device.id();
  set_daemon_log_device(id);
  Result<std::unique_ptr<ublk::Target>> made =
      make_target(o, id, keeper != nullptr ? std::span<const int>(keeper->recover_from) : std::span<const int>());
  if (!made) return report.failed(made.error().message());
  std::unique_ptr<ublk::Target> target = std::move(made).value();
  // The identity of the file the target holds open, taken from its fd:
  // the path may name another file by now, or again.
  std::string served_identity;
  if (const auto* loop = dynamic_cast<const ublk::LoopTarget*>(target.get()); loop != nullptr)
    served_identity = backing_identity_of_fd(loop->backing_fd());
  // A loop device being recovered: the file the target just opened must
  // be the one the dead server served. `coblk recover` checked the path
  // before this process started; another file may have taken it since.
  if (recover && o.target == TargetKind::loop) {
    if (const Result<DeviceRecord> served_before = load_record(id); served_before) {
      if (std::string other = backing_mismatch(*served_before, served_identity); !other.empty())
        return report.failed(other + stays_quiesced(id));
    }
  }
  // The keeper holds the data's memory before the device takes a single
  // write: from then on the data outlives this process.
  if (keeper != nullptr && keeper->socket >= 0) {
    if (Result<void> handed = hand_memory_to_keeper(keeper->socket, id, target->memory_fds()); !handed) {
      return report.failed(handed.error().message());
    }
  }
  if (Result<void> configured = device.configure(*target); !configured) {
    return report.failed(configured.error().message());
  }
  // Best effort, like the record: the device serves without it, and
  // `coblk metrics` then has nothing to show for it.
  if (o.metrics) {
    Result<void> published = ensure_run_directory();
    if (published) published = device.publish_metrics(metrics_path(id));
    if (!published) {
      std::fprintf(stderr, "coblk %s: warning: no metrics: %s\n", report.command(),
                   published.error().message().c_str());
    }
  }

  // Queue q on core q, and core q on the q-th CPU this process may use.
  runtime::RuntimeConfig rc;
  // Compression workers beyond the queues get cores of their own.
  const unsigned cores_needed = std::max(o.queues, o.compress_cores);
  rc.cpus = allowed_cpus(cores_needed);
  if (rc.cpus.size() < cores_needed) {
    return report.failed("only " + std::to_string(rc.cpus.size()) + " CPUs available for " +
                         (o.compress_cores > o.queues ? std::to_string(o.compress_cores) + " compression cores"
                                                      : std::to_string(o.queues) + " queues"));
  }
  rc.reactor.ring_entries = ublk::ring_entries_for(o.depth);
  rc.reactor.idle_poll_us = o.poll_us;
  rc.reactor.sqpoll = o.sqpoll;
  rc.reactor.sqpoll_cpus = o.sqpoll_cpus;
  // NVMe passthrough commands need 128-byte SQEs and 32-byte CQEs.
  rc.reactor.sqe128 = o.passthrough;
  rc.reactor.cqe32 = o.passthrough;
  if (!o.registered_files) {
    rc.reactor.register_ring_fd = false;
    rc.reactor.fixed_file_slots = 0;
  }
  std::vector<unsigned> cores(o.queues);
  for (unsigned q = 0; q < o.queues; ++q) cores[q] = q;

  DeviceRecord record;
  record.dev_id = id;
  record.target = to_string(o.target);
  record.data_path = to_string(o.data_path);
  record.size_bytes = o.size_bytes;
  record.block_size = o.block_size;
  record.queues = o.queues;
  record.depth = o.depth;
  record.pid = ::getpid();
  record.keeper_pid = keeper != nullptr ? keeper->pid : 0;
  record.keeper_start = keeper != nullptr ? keeper->start_time : 0;
  record.unprivileged = o.unprivileged;
  record.backing =
      o.target == TargetKind::nbd ? o.connect + (o.export_name.empty() ? "" : " export " + o.export_name) : o.file;
  // The identity of what this server serves, which a recovery must find
  // again (backing_mismatch).
  record.backing_id = served_identity;
  if (o.target == TargetKind::zram) record.compression = o.algorithm;
  record.args = o.args;
  record.name = o.name;
  record.warnings = swap_warnings;

  bool ready = false;
  std::vector<ublk::ServedDevice> served_devices(1);
  served_devices[0].device = &device;
  served_devices[0].cores = cores;
  served_devices[0].on_ready = [&] {
    ready = true;
    // Best effort: list, stats and recover degrade without it.
    if (Result<void> saved = save_record(record); !saved) {
      std::fprintf(stderr, "coblk %s: warning: %s\n", report.command(), saved.error().message().c_str());
    }
    report.ready(ublk::block_device_path(id));
    // The daemon's log says when it started serving what (in the
    // foreground, stdout already said it).
    if (daemon_log_active()) {
      std::fprintf(stderr, "%s %s: target %s, %u queue(s) of depth %u, data path %s, server pid %d\n",
                   recover ? "recovered" : "serving", ublk::block_device_path(id).c_str(), record.target.c_str(),
                   record.queues, record.depth, record.data_path.c_str(), static_cast<int>(record.pid));
    }
  };
  Result<void> served = Error(EIO, "the queue runtime did not run");
  try {
    Result<std::unique_ptr<runtime::Runtime>> rt = runtime::Runtime::create(rc);
    if (!rt) return report.failed(rt.error().message());
    served = (*rt)->run([&]() -> runtime::Task<Result<void>> {
      co_return co_await ublk::serve_until_signal(*signals, std::move(served_devices));
    });
  } catch (const std::exception& e) {
    served = Error(EIO, std::string("the queue runtime failed: ") + e.what());
  }
  // A recovery that failed before the device was served again leaves it
  // quiesced, with its record, for another `coblk recover` (or `coblk
  // del`), as Device leaves it when the failure comes earlier (and as
  // on_recovery_failed does inside serve()): deleting it here would take
  // the block device from under its users, and with it the data a keeper
  // holds for it.
  // The kernel's state decides, not this process's view: a stop that
  // raced with END_USER_RECOVERY may have ended the device meanwhile.
  if (recover && !ready && may_wait_for_recovery(id)) {
    return report.failed((served ? std::string("stopped before serving the device") : served.error().message()) +
                         stays_quiesced(id));
  }
  remove_record(id);
  const Result<void> removed = device.remove();
  if (daemon_log_active() && served && removed) std::fprintf(stderr, "stopped: the device is removed\n");
  if (!served) {
    if (!ready) return report.failed(served.error().message());
    std::fprintf(stderr, "coblk %s: device %u: %s\n", report.command(), id, served.error().message().c_str());
    return kExitFailure;
  }
  if (!removed) {
    std::fprintf(stderr, "coblk %s: %s\n", report.command(), removed.error().message().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

namespace {

// Daemonizes before any thread or io_uring exists: the child does all the
// work and tells the parent, through a pipe, the block device or the error.
Readiness spawn_server(const AddOptions& o, bool recover) {
  const char* command = recover ? "recover" : "add";
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return {false, std::string("pipe: ") + std::strerror(errno)};
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) return {false, std::string("fork: ") + std::strerror(errno)};
  if (child == 0) {
    ::close(fds[0]);
    ::setsid();
    if (::chdir("/") < 0) {
      // Not fatal: only keeps a mount point busy.
    }
    const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
      ::close(null_fd);
    }
    // stderr to syslog from here on (best effort: without it, /dev/null).
    [[maybe_unused]] const Result<void> logging = start_daemon_log(command);
    int status = kExitFailure;
    {
      ReadinessReport report(fds[1], command);
      status = !recover && keeps_memory(o) ? run_keeper(o, report) : run_server(o, recover, report, nullptr);
    }
    stop_daemon_log();
    ::_exit(status);
  }
  ::close(fds[1]);
  Readiness answer = read_readiness(fds[0]);
  if (answer.ready) return answer;
  int status = 0;
  ::waitpid(child, &status, 0);
  if (answer.text.empty()) answer.text = "the device server exited before the device was ready";
  return answer;
}

int serve_device(const AddOptions& o, bool recover) {
  const char* command = recover ? "recover" : "add";
  if (o.foreground) {
    ReadinessReport report(-1, command);
    if (!recover && keeps_memory(o)) return run_keeper(o, report);
    return run_server(o, recover, report, nullptr);
  }
  const Readiness answer = spawn_server(o, recover);
  if (!answer.ready) return report_error(command, answer.text);
  std::cout << answer.text << std::endl;
  return kExitOk;
}

}  // namespace

void notify_service_ready(const std::string& block_device) {
  if (::getenv("NOTIFY_SOCKET") == nullptr) return;
  const std::string message = "READY=1\nSTATUS=serving " + block_device;
  // 0: keep $NOTIFY_SOCKET, so that a server the keeper restarts (its
  // child, which inherits the environment) may report too.
  const int ret = ::sd_notify(0, message.c_str());
  if (ret < 0) std::fprintf(stderr, "coblk: warning: cannot notify systemd: %s\n", std::strerror(-ret));
}

Readiness read_readiness(int fd) {
  std::string line;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.rfind("OK ", 0) == 0) return {true, line.substr(3)};
  if (line.rfind("ERR ", 0) == 0) return {false, line.substr(4)};
  return {false, line};
}

int serve_new_device(const AddOptions& o) { return serve_device(o, false); }

Result<std::string> start_device(const AddOptions& o) {
  Readiness answer = spawn_server(o, false);
  if (!answer.ready) return Error(EIO, answer.text);
  return std::move(answer.text);
}
int serve_recovered_device(const AddOptions& o) { return serve_device(o, true); }

}  // namespace coblk::cmd
