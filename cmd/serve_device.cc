#include "coblk/cmd/serve_device.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/target_factory.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/device_record.h"
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

// Where the server reports "ready" or its error: the terminal in the
// foreground, the pipe to the waiting parent when daemonized.
class ReadinessReport {
 public:
  ReadinessReport(int pipe_fd, const char* command) : fd_(pipe_fd), command_(command) {}
  void ready(const std::string& block_device) {
    if (fd_ < 0) {
      std::cout << block_device << std::endl;
      return;
    }
    send("OK " + block_device + "\n");
  }
  const char* command() const { return command_; }
  int failed(const std::string& message) {
    if (fd_ < 0) return report_error(command_, message);
    send("ERR " + message + "\n");
    return kExitFailure;
  }

 private:
  void send(const std::string& line) {
    [[maybe_unused]] ssize_t n = ::write(fd_, line.data(), line.size());
    ::close(fd_);  // the parent reads to EOF: closing is the signal
    fd_ = -1;
    reported_ = true;
  }
  int fd_;
  const char* command_;
  bool reported_ = false;
};

int run_server(const AddOptions& o, bool recover, ReadinessReport& report) {
  // Before any reactor, ring or target memory exists, so all of it is locked.
  for (const std::string& problem : ublk::protect_server_process()) {
    std::fprintf(stderr, "coblk %s: warning: %s\n", recover ? "recover" : "add", problem.c_str());
  }
  std::string error;
  ublk::DeviceConfig config;
  config.dev_id = o.dev_id;
  config.queues = o.queues;
  config.depth = o.depth;
  config.data_path = to_data_path(o.data_path);
  config.recovery = o.recovery;
  config.unprivileged = o.unprivileged;
  ublk::Device device(config);
  // The device id is known only once the kernel created it (or from -n when
  // recovering); the target is built then, as zram names its stats by id.
  if (!recover && device.create(error) < 0) {
    std::string ignored;
    device.remove(ignored);
    return report.failed(error);
  }
  const uint32_t id = recover ? static_cast<uint32_t>(o.dev_id) : device.id();
  auto made = make_target(o, id);
  if (!made) error = made.error().message();
  std::unique_ptr<ublk::Target> target = made ? std::move(made).value() : nullptr;
  const int ready_to_serve = !target   ? -EINVAL
                             : recover ? device.attach_for_recovery(id, *target, error)
                                       : device.configure(*target, error);
  if (ready_to_serve < 0) {
    // A fresh device that cannot be served is deleted again; a device being
    // recovered is left quiesced for another attempt.
    std::string ignored;
    if (!recover) device.remove(ignored);
    return report.failed(error);
  }
  ublk::DeviceRecord record;
  record.dev_id = id;
  record.target = to_string(o.target);
  record.data_path = to_string(o.data_path);
  record.size_bytes = o.size_bytes;
  record.block_size = o.block_size;
  record.queues = o.queues;
  record.depth = o.depth;
  record.pid = ::getpid();
  record.backing = o.file;
  if (o.target == TargetKind::zram) record.compression = o.algorithm;
  record.args = o.args;

  bool ready = false;
  const int ret = device.serve(
      [&] {
        ready = true;
        ublk::save_record(record);  // best effort: list/stats degrade without it
        report.ready(ublk::block_device_path(id));
      },
      error);
  ublk::remove_record(id);
  std::string remove_error;
  device.remove(remove_error);
  if (ret < 0) {
    if (!ready) return report.failed(error);
    std::fprintf(stderr, "coblk %s: device %u: %s\n", report.command(), id, error.c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int serve_device(const AddOptions& o, bool recover) {
  const char* command = recover ? "recover" : "add";
  if (o.foreground) {
    ReadinessReport report(-1, command);
    return run_server(o, recover, report);
  }
  // Daemonize before any thread or io_uring exists: the child does all the
  // work and tells the parent, through a pipe, the block device or the error.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return report_error(command, std::string("pipe: ") + std::strerror(errno));
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) return report_error(command, std::string("fork: ") + std::strerror(errno));
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
    ReadinessReport report(fds[1], command);
    ::_exit(run_server(o, recover, report));
  }
  ::close(fds[1]);
  std::string answer;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (answer.rfind("OK ", 0) == 0) {
    std::cout << answer.substr(3);
    return kExitOk;
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (answer.rfind("ERR ", 0) == 0) {
    answer = answer.substr(4);
    if (!answer.empty() && answer.back() == '\n') answer.pop_back();
    return report_error(command, answer);
  }
  return report_error(command, "the device server exited before the device was ready");
}

}  // namespace

int serve_new_device(const AddOptions& o) { return serve_device(o, false); }
int serve_recovered_device(const AddOptions& o) { return serve_device(o, true); }

}  // namespace coblk::cmd
