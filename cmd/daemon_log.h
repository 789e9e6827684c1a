// cmd/daemon_log.h - a device daemon's stderr, forwarded to syslog (and so journald) with the device in each line.
#pragma once

// A daemon's stderr used to be /dev/null, so its warnings (memory not
// locked), queue errors and stall reports were lost. Everything in the
// daemon writes to stderr (the runtime, the ublk layer, the command), so the
// daemon makes its stderr a pipe and a thread of its own turns each line
// into a syslog(3) message: "coblk[PID]: ublkb3: <line>", facility daemon,
// priority from the line. The write end is non-blocking: a logger that
// falls behind loses lines, it never blocks a queue's core. Repeated
// reports (a stall every few milliseconds) are rate-limited by DaemonLogFilter.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// One message for syslog: its priority (LOG_ERR, LOG_WARNING, LOG_INFO...)
/// and its text, device prefix included.
struct LogMessage {
  int priority = 0;  ///< a syslog priority (<syslog.h>)
  std::string text;  ///< one line, no newline
};

/// What the forwarding thread does with each line, as a pure object: names
/// the device, picks a priority, and lets at most one warning or error of
/// each kind through per window (informational lines, events such as a
/// restart, always pass; a kind is the line with its numbers left out, so
/// "core 0: task 'x' ran 12.1 ms" and "... ran 15.7 ms" are one kind); at
/// the end of a window in which lines were held back, one line says how
/// many.
class DaemonLogFilter {
 public:
  /// Lines before the device is known are prefixed with `command` ("add",
  /// "recover"); one kind passes at most once per `window_ns`.
  explicit DaemonLogFilter(std::string command, std::uint64_t window_ns = 10'000'000'000ULL);

  /// From now on lines name device `id` ("ublkb3: ..."), the lines kept
  /// while it was unknown too.
  void set_device(std::uint32_t id);
  /// The messages line `line` (without its newline) makes at `now_ns`
  /// (a monotonic clock): none if empty or held back, else one, after the
  /// lines kept until the device was known. Before the device is known a
  /// line is kept (up to 32 of them, then they go out with the command's
  /// name), so that even the first lines name it.
  std::vector<LogMessage> feed(const std::string& line, std::uint64_t now_ns);
  /// The "held back" summaries of the windows that ended by `now_ns`, and
  /// the kept lines once the device is known or 5 s after the first.
  std::vector<LogMessage> tick(std::uint64_t now_ns);
  /// The kept lines and the summaries of every window still open (at exit).
  std::vector<LogMessage> flush();

  /// The syslog priority of a line: LOG_WARNING for warnings and stall
  /// reports, LOG_ERR for failures, LOG_INFO otherwise.
  static int priority_of(const std::string& line);

 private:
  struct Kind {
    std::uint64_t window_end = 0;
    std::uint64_t held = 0;
    std::string example;
    int priority = 0;
  };
  std::string prefix() const;
  LogMessage summary(const Kind& k) const;
  std::vector<LogMessage> pass(const std::string& raw, std::uint64_t now_ns);
  void release_kept(std::vector<LogMessage>& out, std::uint64_t now_ns);

  std::string command_;
  std::optional<std::uint32_t> device_;
  std::uint64_t window_ns_;
  std::map<std::string, Kind> kinds_;
  std::vector<std::string> kept_;    // lines before the device was known
  std::uint64_t first_kept_ns_ = 0;  // when the first of them came
};

/// Where the forwarded messages go: syslog(3) in a daemon, a test's vector in tests.
using LogSink = std::function<void(const LogMessage&)>;

/// Makes this process's stderr (fd 2, and so every child's) the write end
/// of a non-blocking pipe whose lines a new thread hands, through a
/// DaemonLogFilter, to `sink`; by default openlog("coblk", LOG_PID,
/// LOG_DAEMON) and syslog. The thread blocks every signal. Call it once,
/// in a daemon, before the threads that should inherit a blocked signal
/// mask are made. Error of the failed pipe or dup2, with one line; an
/// exception from starting the thread is Error EAGAIN.
Result<void> start_daemon_log(const char* command, LogSink sink = {});
/// Whether start_daemon_log succeeded and stop_daemon_log has not run.
bool daemon_log_active();
/// Names device `id` in every line from now on (lines already in the pipe
/// may still carry the command's name).
void set_daemon_log_device(std::uint32_t id);
/// Puts back the stderr start_daemon_log found, forwards what is left in
/// the pipe (at most a second's wait for children that still hold it) and
/// the pending summaries, and joins the thread. Once, from any thread of
/// the process that started the log (a server about to _Exit calls it from
/// a queue's core); a no-op elsewhere.
void stop_daemon_log();

}  // namespace coblk::cmd
