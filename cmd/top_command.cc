// coblk top: a live view of every device, redrawn every --interval seconds
// in an ANSI terminal. The frame itself is cmd/top_frame.cc; this file owns
// the terminal: raw mode (restored on every way out), the alternate screen,
// keys, signals and the terminal's size.
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/top_frame.h"

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

TopSnapshot take_snapshot() {
  TopSnapshot s;
  s.devices = collect_device_metrics();
  s.taken_ns = monotonic_ns();
  return s;
}

TopLayout terminal_layout(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return {};
  return {ws.ws_col, ws.ws_row};
}

std::string title_line(double interval, bool interactive) {
  char clock[16] = "";
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  if (::localtime_r(&t, &tm) != nullptr) std::strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
  char text[128];
  std::snprintf(text, sizeof(text), "coblk top  %s  every %gs%s", clock, interval, interactive ? "  (q quits)" : "");
  return text;
}

void write_all(const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal went away: nothing left to draw on
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// The terminal as the user had it, put back when this goes out of scope:
// on q, on a signal (they arrive through a signalfd, so the loop ends
// normally) and on an exception.
class TerminalSession {
 public:
  TerminalSession() = default;
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  // Raw keys (no echo, no line buffering, no signal keys: Ctrl-C is read as
  // a key and quits), the alternate screen, the cursor hidden.
  bool enter() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return false;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) return false;
    active_ = true;
    write_all("\x1b[?1049h\x1b[?25l");
    return true;
  }

  ~TerminalSession() {
    if (!active_) return;
    write_all("\x1b[?25h\x1b[?1049l");
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

// The signals that end or redraw the view, taken from the default actions
// into a descriptor the loop polls; the mask is put back on the way out.
class SignalDescriptor {
 public:
  SignalDescriptor() {
    sigemptyset(&set_);
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH}) sigaddset(&set_, s);
    ::sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~SignalDescriptor() {
    if (fd_ >= 0) ::close(fd_);
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalDescriptor(const SignalDescriptor&) = delete;
  SignalDescriptor& operator=(const SignalDescriptor&) = delete;

  int fd() const { return fd_; }

 private:
  sigset_t set_{};
  sigset_t old_{};
  int fd_ = -1;
};

void draw(const std::vector<std::string>& lines) {
  // Home, each line cleared to its end, and the rest of the screen cleared:
  // no flicker from clearing the whole screen first.
  std::string out = "\x1b[H";
  for (size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    out += "\x1b[K";
    if (i + 1 < lines.size()) out += "\r\n";
  }
  out += "\x1b[J";
  write_all(out);
}

int run_interactive(double interval) {
  SignalDescriptor signals;
  if (signals.fd() < 0) return report_error("top", std::string("signalfd: ") + std::strerror(errno));
  TerminalSession terminal;
  if (!terminal.enter()) return report_error("top", std::string("cannot set up the terminal: ") + std::strerror(errno));

  TopSnapshot previous = take_snapshot();
  TopSnapshot current = previous;
  bool have_rates = false;
  TopLayout layout = terminal_layout(STDOUT_FILENO);
  draw(render_top_frame(nullptr, current, layout, title_line(interval, true)));
  const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(interval * 1e9));
  auto next = std::chrono::steady_clock::now() + period;
  for (;;) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - std::chrono::steady_clock::now());
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    if (ready < 0 && errno != EINTR) return report_error("top", std::string("poll: ") + std::strerror(errno));
    bool redraw = false;
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      while (::read(signals.fd(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
        if (info.ssi_signo != SIGWINCH) return kExitOk;  // the terminal is put back by the destructors
        layout = terminal_layout(STDOUT_FILENO);
        redraw = true;
      }
    }
    if (ready > 0 && (fds[0].revents & (POLLHUP | POLLERR)) != 0) return kExitOk;  // the terminal is gone
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      char keys[64];
      const ssize_t n = ::read(STDIN_FILENO, keys, sizeof(keys));
      if (n == 0) return kExitOk;
      for (ssize_t i = 0; i < n; ++i) {
        if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* Ctrl-C */) return kExitOk;
      }
    }
    if (std::chrono::steady_clock::now() >= next) {
      previous = std::move(current);
      current = take_snapshot();
      have_rates = true;
      next += period;
      if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + period;
      redraw = true;
    }
    if (redraw) draw(render_top_frame(have_rates ? &previous : nullptr, current, layout, title_line(interval, true)));
  }
}

}  // namespace

int run_top(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk top [--interval SECONDS] [--once]\n"
      "A live view of every device: per device and per queue, read and write IOPS and MB/s, the p99\n"
      "service time and the core's busy share; for zram, the compression ratio, memory used against\n"
      "the limit and the pages written back. q quits.\nOptions");
  desc.add_options()("help,h", "show this help")(
      "interval,i", po::value<double>()->value_name("SECONDS")->default_value(1.0, "1"),
      "time between frames (0.1 to 3600)")("once", "print one frame (rates over one interval) and exit");
  po::variables_map vm;
  if (auto done = parse_command_line("top", args, desc, vm)) return *done;
  const double interval = vm["interval"].as<double>();
  if (!std::isfinite(interval) || interval < 0.1 || interval > 3600) {
    return report_error("top", "--interval must be between 0.1 and 3600 seconds", kExitUsage);
  }
  const bool once = vm.count("once") != 0;
  const bool tty_out = ::isatty(STDOUT_FILENO) == 1;
  if (!once && (!tty_out || ::isatty(STDIN_FILENO) != 1)) {
    return report_error("top", "not a terminal: use --once to print one frame", kExitUsage);
  }
  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT) {
    return report_error("top", dir.error().message());
  }
  // No device to show: one line, like `list`, and done (a device added
  // later needs a new `coblk top`).
  if (collect_device_metrics().empty()) {
    std::cout << "no coblk devices\n";
    return kExitOk;
  }
  if (!once) return run_interactive(interval);

  // One frame: two snapshots an interval apart, so the rates are real. No
  // escape codes; fitted to the terminal's width only when there is one.
  const TopSnapshot first = take_snapshot();
  std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<std::int64_t>(interval * 1e9)));
  const TopSnapshot second = take_snapshot();
  TopLayout layout;
  if (tty_out) layout.width = terminal_layout(STDOUT_FILENO).width;
  for (const std::string& line : render_top_frame(&first, second, layout, title_line(interval, false))) {
    std::cout << line << '\n';
  }
  return kExitOk;
}

}  // namespace coblk::cmd
