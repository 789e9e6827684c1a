// cmd/server.h - the device server process behind `coblk add` and `coblk recover`, and how it reports readiness.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "coblk/cmd/add_options.h"
#include "coblk/cmd/commands.h"

namespace coblk::cmd {

/// Tells systemd that the device at `block_device` is live, when this
/// process runs under a Type=notify unit ($NOTIFY_SOCKET is set, as in
/// coblk@.service): READY=1 and a STATUS= line, with libsystemd's
/// sd_notify. Does nothing without $NOTIFY_SOCKET; a failure to notify is
/// one warning on stderr (systemd then times the start out).
void notify_service_ready(const std::string& block_device);

/// Where a server reports "ready" (the block device) or its one-line
/// error, once: the terminal in the foreground (fd -1), else a pipe to the
/// waiting command or keeper, which reads "OK <device>" or "ERR <message>"
/// to EOF.
class ReadinessReport {
 public:
  /// Reports to `pipe_fd` (owned from now on), or to the terminal if -1;
  /// `command` ("add", "recover") prefixes terminal errors.
  ReadinessReport(int pipe_fd, const char* command) : fd_(pipe_fd), command_(command) {}
  ~ReadinessReport() { forget(); }
  ReadinessReport(const ReadinessReport&) = delete;
  ReadinessReport& operator=(const ReadinessReport&) = delete;

  /// The device is serving at `block_device`.
  void ready(const std::string& block_device) {
    if (fd_ < 0) {
      std::cout << block_device << std::endl;
      notify_service_ready(block_device);
      return;
    }
    send("OK " + block_device + "\n");
  }
  /// The command name errors are reported under.
  const char* command() const { return command_; }
  /// Reports `message` as the failure; returns the exit status to use.
  int failed(const std::string& message) {
    if (fd_ < 0 && !reported_) return report_error(command_, message);
    if (fd_ >= 0) send("ERR " + message + "\n");
    return kExitFailure;
  }
  /// Closes the pipe without reporting: this process is not the one that
  /// will (a keeper, once it forked the server that reports).
  void forget() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void send(const std::string& line) {
    [[maybe_unused]] ssize_t n = ::write(fd_, line.data(), line.size());
    forget();  // the reader reads to EOF: closing is the signal
    reported_ = true;
  }
  int fd_;
  const char* command_;
  bool reported_ = false;
};

/// What a server reported through a ReadinessReport pipe.
struct Readiness {
  bool ready = false;  ///< "OK": the device is live
  std::string text;    ///< the block device when ready, else the one-line error ("" if the server said nothing)
};

/// Reads the pipe `fd` to EOF (then closes it) and parses what a
/// ReadinessReport at its other end wrote. EOF with nothing written means
/// the server ended without reporting: not ready, empty text.
Readiness read_readiness(int fd);

/// A server's link to the keeper of its device's memory (cmd/keeper.h).
struct KeeperLink {
  int socket = -1;                ///< first server only: where to hand the memfds over
  pid_t pid = 0;                  ///< the keeper, for the device record
  std::uint64_t start_time = 0;   ///< when the keeper started (process_start_time), for the record
  std::vector<int> recover_from;  ///< restarted servers: the memfds to recover from
};

/// Creates (or, with `recover`, takes over) the device `o` describes and
/// serves it until it is stopped. With `keeper`, the target's memory is
/// handed to the keeper before the device starts, or recovered from the
/// keeper's memfds. Returns the exit status; every failure is one line on
/// `report`.
int run_server(const AddOptions& o, bool recover, ReadinessReport& report, const KeeperLink* keeper);

}  // namespace coblk::cmd
