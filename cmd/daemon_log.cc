#include "coblk/cmd/daemon_log.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace coblk::cmd {

// ---------------------------------------------------------------------------
// The filter

namespace {

constexpr size_t kMostKept = 32;
constexpr std::uint64_t kKeepNs = 5'000'000'000ULL;
constexpr size_t kMostKinds = 256;

bool has_any(const std::string& line, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (line.find(w) != std::string::npos) return true;
  }
  return false;
}

// The line without the program's own "coblk: " or "coblk add: " (syslog's
// ident already says coblk).
std::string without_program_name(const std::string& line) {
  for (const char* p : {"coblk: ", "coblk add: ", "coblk recover: "}) {
    if (line.rfind(p, 0) == 0) return line.substr(std::strlen(p));
  }
  return line;
}

// A line's kind: its text with each run of digits (and the points within
// numbers) replaced by one '#'.
std::string kind_of(const std::string& line) {
  std::string out;
  bool in_number = false;
  for (const char c : line) {
    const bool digit = c >= '0' && c <= '9';
    if (digit || (in_number && c == '.')) {
      if (!in_number) out += '#';
      in_number = true;
    } else {
      in_number = false;
      out += c;
    }
  }
  return out;
}

}  // namespace

DaemonLogFilter::DaemonLogFilter(std::string command, std::uint64_t window_ns)
    : command_(std::move(command)), window_ns_(window_ns) {}

void DaemonLogFilter::set_device(std::uint32_t id) { device_ = id; }

std::string DaemonLogFilter::prefix() const {
  return device_ ? "ublkb" + std::to_string(*device_) + ": " : command_ + ": ";
}

int DaemonLogFilter::priority_of(const std::string& line) {
  if (has_any(line, {"warning", "without yielding"})) return LOG_WARNING;
  if (has_any(line,
              {"fail", "error", "cannot", "gives up", "gave up", "exiting", "lost", "exception", "threw", "did not"})) {
    return LOG_ERR;
  }
  return LOG_INFO;
}

LogMessage DaemonLogFilter::summary(const Kind& k) const {
  return {k.priority, prefix() + std::to_string(k.held) + " more like this in " +
                          std::to_string(window_ns_ / 1000000000) + " s not logged: " + k.example};
}

std::vector<LogMessage> DaemonLogFilter::pass(const std::string& raw, std::uint64_t now_ns) {
  const std::string line = without_program_name(raw);
  if (line.find_first_not_of(" \t\r") == std::string::npos) return {};
  const int priority = priority_of(line);
  std::vector<LogMessage> out;
  // Events (a start, a restart, a recovery) are few and each matters: only
  // warnings and errors, which can come by the thousand, are limited.
  if (priority == LOG_INFO) {
    out.push_back({priority, prefix() + line});
    return out;
  }
  const std::string kind = kind_of(line);
  auto it = kinds_.find(kind);
  if (it != kinds_.end() && now_ns < it->second.window_end) {
    ++it->second.held;
    it->second.example = line;
    return out;
  }
  if (it != kinds_.end() && it->second.held != 0) out.push_back(summary(it->second));
  if (it == kinds_.end()) {
    if (kinds_.size() >= kMostKinds) {
      // Forget the kinds whose window is over and nothing held: they would
      // pass next time anyway.
      for (auto k = kinds_.begin(); k != kinds_.end();) {
        k = k->second.window_end <= now_ns && k->second.held == 0 ? kinds_.erase(k) : std::next(k);
      }
    }
    if (kinds_.size() >= kMostKinds) {
      out.push_back({priority, prefix() + line});  // too many kinds at once: no limit rather than no memory
      return out;
    }
    it = kinds_.emplace(kind, Kind{}).first;
  }
  it->second = Kind{now_ns + window_ns_, 0, line, priority};
  out.push_back({priority, prefix() + line});
  return out;
}

void DaemonLogFilter::release_kept(std::vector<LogMessage>& out, std::uint64_t now_ns) {
  std::vector<std::string> kept = std::move(kept_);
  kept_.clear();
  for (const std::string& line : kept) {
    for (LogMessage& m : pass(line, now_ns)) out.push_back(std::move(m));
  }
}

std::vector<LogMessage> DaemonLogFilter::feed(const std::string& line, std::uint64_t now_ns) {
  std::vector<LogMessage> out;
  if (!device_ && kept_.size() < kMostKept) {
    if (kept_.empty()) first_kept_ns_ = now_ns;
    kept_.push_back(line);
    return out;
  }
  release_kept(out, now_ns);
  for (LogMessage& m : pass(line, now_ns)) out.push_back(std::move(m));
  return out;
}

std::vector<LogMessage> DaemonLogFilter::tick(std::uint64_t now_ns) {
  std::vector<LogMessage> out;
  if (!kept_.empty() && (device_ || now_ns - first_kept_ns_ >= kKeepNs)) release_kept(out, now_ns);
  for (auto& [kind, k] : kinds_) {
    if (k.held != 0 && now_ns >= k.window_end) {
      out.push_back(summary(k));
      k.held = 0;
    }
  }
  return out;
}

std::vector<LogMessage> DaemonLogFilter::flush() {
  std::vector<LogMessage> out;
  release_kept(out, first_kept_ns_);
  for (auto& [kind, k] : kinds_) {
    if (k.held != 0) out.push_back(summary(k));
    k.held = 0;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The forwarding thread

namespace {

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

struct DaemonLog {
  DaemonLog(const char* command, LogSink s) : filter(command), sink(std::move(s)) {}

  void run();
  void emit(const std::vector<LogMessage>& messages) {
    for (const LogMessage& m : messages) sink(m);
  }

  std::mutex mutex;  // the filter: set_daemon_log_device comes from another thread
  DaemonLogFilter filter;
  LogSink sink;
  int read_fd = -1;
  int stop_fds[2] = {-1, -1};
  int saved_stderr = -1;
  std::thread thread;
};

// The log of this process, and the process that started it: after a fork,
// the child (a keeper's server) writes to the same pipe, but the thread and
// the log are its parent's, so only the owner may touch them.
DaemonLog* g_log = nullptr;
pid_t g_owner = 0;
// Set in the process that starts the log and inherited by its children:
// their stderr is the log's pipe.
bool g_active = false;

void DaemonLog::run() {
  std::string pending;
  char buf[4096];
  bool stopping = false;
  std::uint64_t drain_until = 0;
  for (;;) {
    pollfd fds[2] = {{read_fd, POLLIN, 0}, {stop_fds[0], POLLIN, 0}};
    const int ready = ::poll(fds, stopping ? 1 : 2, stopping ? 100 : 1000);
    bool eof = false;
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      const ssize_t n = ::read(read_fd, buf, sizeof(buf));
      if (n == 0) eof = true;
      if (n > 0) pending.append(buf, static_cast<size_t>(n));
    }
    if (!stopping && ready > 0 && (fds[1].revents & POLLIN) != 0) {
      stopping = true;
      drain_until = monotonic_ns() + 1'000'000'000ULL;
    }
    const std::uint64_t now = monotonic_ns();
    std::vector<LogMessage> out;
    {
      const std::lock_guard lock(mutex);
      for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        for (LogMessage& m : filter.feed(line, now)) out.push_back(std::move(m));
      }
      for (LogMessage& m : filter.tick(now)) out.push_back(std::move(m));
    }
    emit(out);
    if (eof || (stopping && (ready == 0 || now >= drain_until))) break;
  }
  const std::lock_guard lock(mutex);
  if (!pending.empty()) emit(filter.feed(pending, monotonic_ns()));
  emit(filter.flush());
}

void to_syslog(const LogMessage& m) { ::syslog(m.priority, "%s", m.text.c_str()); }

}  // namespace

Result<void> start_daemon_log(const char* command, LogSink sink) {
  if (g_log != nullptr && g_owner == ::getpid()) return Error(EBUSY, "the daemon log is already running");
  if (!sink) {
    ::openlog("coblk", LOG_PID, LOG_DAEMON);
    sink = to_syslog;
  }
  auto log = std::make_unique<DaemonLog>(command, std::move(sink));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error(errno, std::string("daemon log: pipe: ") + std::strerror(errno));
  // Non-blocking for writers: a full pipe loses a line rather than stop a
  // queue's core in a write.
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  if (::pipe2(log->stop_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Error(err, std::string("daemon log: pipe: ") + std::strerror(err));
  }
  log->read_fd = fds[0];
  log->saved_stderr = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  // dup2 clears close-on-exec: stderr stays the pipe in children.
  if (::dup2(fds[1], STDERR_FILENO) < 0) {
    const int err = errno;
    for (const int fd : {fds[0], fds[1], log->stop_fds[0], log->stop_fds[1], log->saved_stderr}) ::close(fd);
    return Error(err, std::string("daemon log: dup2: ") + std::strerror(err));
  }
  ::close(fds[1]);
  // The thread takes no signal: a daemon's stop signals are for the thread
  // that waits for them (runtime::SignalSet), and this one exists before
  // that mask is set.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    log->thread = std::thread([l = log.get()] { l->run(); });
  } catch (const std::exception& e) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::dup2(log->saved_stderr, STDERR_FILENO);
    for (const int fd : {log->read_fd, log->stop_fds[0], log->stop_fds[1], log->saved_stderr}) ::close(fd);
    return Error(EAGAIN, std::string("daemon log: cannot start its thread: ") + e.what());
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  g_log = log.release();
  g_owner = ::getpid();
  g_active = true;
  return {};
}

bool daemon_log_active() { return g_active; }

void set_daemon_log_device(std::uint32_t id) {
  if (g_log == nullptr || g_owner != ::getpid()) return;
  const std::lock_guard lock(g_log->mutex);
  g_log->filter.set_device(id);
}

void stop_daemon_log() {
  if (g_log == nullptr || g_owner != ::getpid()) return;
  std::unique_ptr<DaemonLog> log(g_log);
  g_log = nullptr;
  g_active = false;
  std::fflush(stderr);
  ::dup2(log->saved_stderr, STDERR_FILENO);  // our end of the pipe closes: the thread reads to EOF
  ::close(log->saved_stderr);
  const char stop = 1;
  [[maybe_unused]] const ssize_t n = ::write(log->stop_fds[1], &stop, 1);
  log->thread.join();
  for (const int fd : {log->read_fd, log->stop_fds[0], log->stop_fds[1]}) ::close(fd);
}

}  // namespace coblk::cmd
