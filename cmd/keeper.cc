#include "coblk/cmd/keeper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/daemon_log.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/target_factory.h"
#include "coblk/ublk/control.h"
#include "coblk/ublk/features.h"

namespace coblk::cmd {
namespace {

using Clock = std::chrono::steady_clock;

// Most memfds a device hands over: the zram page table and an arena per
// queue (at most 64 queues here; the kernel allows more, coblk's CPUs fewer).
constexpr std::size_t max_memory_fds = 65;
// The window of --max-restarts.
constexpr auto restart_window = std::chrono::seconds(60);

// The kernel state of device `id`, or -errno (-ENODEV when it is gone).
int device_state(std::uint32_t id) {
  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return -EIO;
  ublk::abi::ublksrv_ctrl_dev_info info{};
  const int ret = look_up_device(control, id, info);
  return ret < 0 ? ret : info.state;
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

// How a child ended, in words.
std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

// One memfd held mapped by the keeper.
struct HeldMemory {
  int fd = -1;
  std::byte* map = nullptr;
  std::uint64_t bytes = 0;
};

class Keeper {
 public:
  // `log_fd`: the log file the keeper writes its lines to (owned), or -1
  // when stderr is that file.
  Keeper(const AddOptions& o, std::uint32_t id, const std::vector<int>& fds, pid_t server, int log_fd)
      : o_(o), id_(id), server_(server), log_fd_(log_fd) {
    // The servers it starts recover this device: the id the kernel gave
    // it, which `coblk add` without -n did not know.
    o_.dev_id = id;
    for (const int fd : fds) {
      struct stat st {};
      HeldMemory m;
      m.fd = fd;
      if (::fstat(fd, &st) == 0 && st.st_size > 0) {
        m.bytes = static_cast<std::uint64_t>(st.st_size);
        void* p = ::mmap(nullptr, m.bytes, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
        m.map = p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
      }
      memory_.push_back(m);
    }
  }
  ~Keeper() {
    if (log_fd_ >= 0) ::close(log_fd_);
    for (const HeldMemory& m : memory_) {
      if (m.map != nullptr) ::munmap(m.map, m.bytes);
      ::close(m.fd);
    }
  }
  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  int run(const sigset_t& signals);

 private:
  void log(const std::string& line) {
    if (log_fd_ >= 0) {
      const std::string text = now_text() + " coblk keeper " + std::to_string(id_) + ": " + line + "\n";
      [[maybe_unused]] const ssize_t n = ::write(log_fd_, text.data(), text.size());
      std::fprintf(stderr, "keeper: %s\n", line.c_str());  // the daemon log: syslog stamps the time
      return;
    }
    std::fprintf(stderr, "%s coblk keeper %u: %s\n", now_text().c_str(), id_, line.c_str());
  }
  void status(const std::string& state, const std::string& last);
  void lock_memory();
  bool start_server(const char* why);
  void server_ended(int wait_status);
  std::vector<int> fds() const {
    std::vector<int> out;
    for (const HeldMemory& m : memory_) out.push_back(m.fd);
    return out;
  }

  AddOptions o_;
  const std::uint32_t id_;
  pid_t server_;
  std::vector<HeldMemory> memory_;
  std::deque<Clock::time_point> restarts_;  // within the window
  unsigned restart_count_ = 0;
  bool stopping_ = false;
  bool done_ = false;
  int log_fd_;
};

void Keeper::status(const std::string& state, const std::string& last) {
  const std::string path = keeper_status_path(id_);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "state=" << state << " restarts=" << restart_count_ << " time=" << std::time(nullptr) << " last=" << last
        << '\n';
  }
  ::rename(tmp.c_str(), path.c_str());
}

// While no server runs, nothing maps the data but the keeper: lock every
// page that holds data (walking the memfd's data extents, so that holes
// stay holes) so that none is swapped out, which for a swap device would
// deadlock. Locking a page that was swapped out in the meantime brings it
// back.
void Keeper::lock_memory() {
  for (const HeldMemory& m : memory_) {
    if (m.map == nullptr) continue;
    off_t at = 0;
    const auto end = static_cast<off_t>(m.bytes);
    while (at < end) {
      const off_t data = ::lseek(m.fd, at, SEEK_DATA);
      if (data < 0) break;  // ENXIO: no data after `at`
      off_t hole = ::lseek(m.fd, data, SEEK_HOLE);
      if (hole < 0) hole = end;
      if (::mlock(m.map + data, static_cast<std::size_t>(hole - data)) != 0) {
        log(std::string("cannot lock the device's memory while no server runs: ") + std::strerror(errno));
        return;
      }
      at = hole;
    }
  }
}

bool Keeper::start_server(const char* why) {
  // The kernel quiesces the device once the dead server's rings are gone;
  // recovery can only start then.
  for (int i = 0; i < 500; ++i) {
    const int state = device_state(id_);
    if (state == -ENODEV || state == -ENOENT) {
      log("the device is gone; nothing to serve");
      done_ = true;
      return false;
    }
    if (state == ublk::abi::S_DEV_QUIESCED || state == ublk::abi::S_DEV_FAIL_IO) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    log(std::string("pipe: ") + std::strerror(errno));
    return false;
  }
  status("restarting", std::string(why) + " restart");
  const pid_t child = ::fork();
  if (child < 0) {
    log(std::string("fork: ") + std::strerror(errno));
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return false;
  }
  if (child == 0) {
    ::close(pipe_fds[0]);
    KeeperLink link;
    link.pid = ::getppid();
    link.start_time = process_start_time(link.pid);
    link.recover_from = fds();
    ReadinessReport report(pipe_fds[1], "recover");
    ::_exit(run_server(o_, true, report, &link));
  }
  ::close(pipe_fds[1]);
  const Readiness answer = read_readiness(pipe_fds[0]);
  restarts_.push_back(Clock::now());
  ++restart_count_;
  if (answer.ready) {
    server_ = child;
    log(std::string(why) + " restart: server " + std::to_string(child) + " recovered the device");
    status("serving", std::string(why) + " restart " + std::to_string(restart_count_) + " recovered the device");
    return true;
  }
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  const std::string failure =
      answer.text.empty() ? "the server " + describe_exit(wait_status) + " before the device was live" : answer.text;
  log(std::string(why) + " restart failed: " + failure);
  status("waiting", "restart failed: " + failure);
  return false;
}

void Keeper::server_ended(int wait_status) {
  const pid_t was = server_;
  server_ = 0;
  if (stopping_ || (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)) {
    // Deleted (coblk del, or a stop signal): the memory goes with us.
    done_ = true;
    return;
  }
  log("server " + std::to_string(was) + " " + describe_exit(wait_status));
  lock_memory();
  const int state = device_state(id_);
  if (state == -ENODEV || state == -ENOENT) {
    done_ = true;
    return;
  }
  if (!o_.restart) {
    status("waiting", "server died (" + describe_exit(wait_status) + "); run coblk recover -n " + std::to_string(id_));
    return;
  }
  for (;;) {
    while (!restarts_.empty() && Clock::now() - restarts_.front() > restart_window) restarts_.pop_front();
    if (restarts_.size() >= o_.max_restarts) {
      const std::string why = "gave up after " + std::to_string(restarts_.size()) +
                              " restarts within a minute; the device stays quiesced: coblk recover -n " +
                              std::to_string(id_) + " tries again, coblk del -n " + std::to_string(id_) + " deletes it";
      log(why);
      status("gave-up", why);
      return;
    }
    if (start_server("automatic") || done_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int Keeper::run(const sigset_t& signals) {
  status("serving", "device added");
  while (!done_) {
    siginfo_t info{};
    if (::sigwaitinfo(&signals, &info) < 0) continue;
    switch (info.si_signo) {
      case SIGCHLD: {
        int wait_status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &wait_status, WNOHANG)) > 0) {
          if (pid == server_) server_ended(wait_status);
        }
        break;
      }
      case SIGUSR1:  // coblk recover
        if (server_ == 0) {
          restarts_.clear();
          start_server("requested");
        }
        break;
      default:  // SIGTERM, SIGINT, SIGHUP: coblk del, or the user
        stopping_ = true;
        if (server_ == 0)
          done_ = true;
        else
          ::kill(server_, SIGTERM);
        break;
    }
  }
  ::unlink(keeper_status_path(id_).c_str());
  ::unlink(log_path(id_).c_str());
  return kExitOk;
}

// Receives the first server's memfds; false if it died first.
bool receive_memory(int socket, std::uint32_t& id, std::vector<int>& fds) {
  std::uint32_t message = 0;
  iovec iov{&message, sizeof message};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_memory_fds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof message)) return false;
  id = message;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* data = reinterpret_cast<const int*>(CMSG_DATA(c));
    fds.assign(data, data + count);
  }
  return !fds.empty();
}

}  // namespace

Result<void> hand_memory_to_keeper(int socket, std::uint32_t dev_id, std::span<const int> fds) {
  if (fds.empty() || fds.size() > max_memory_fds) {
    return Error(EINVAL, "the target has no shared memory to hand to the keeper");
  }
  iovec iov{&dev_id, sizeof dev_id};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_memory_fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (::sendmsg(socket, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof dev_id)) {
    return Error(EPIPE, "the keeper of the device's memory is gone");
  }
  char ack = 0;
  if (::read(socket, &ack, 1) != 1) return Error(EPIPE, "the keeper of the device's memory did not take it");
  return ok();
}

int run_keeper(const AddOptions& o, ReadinessReport& report) {
  // Signals the keeper waits for, blocked before the server is forked (it
  // blocks its own on top).
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, s);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return report.failed(std::string("socketpair: ") + std::strerror(errno));
  }
  const pid_t server = ::fork();
  if (server < 0) return report.failed(std::string("fork: ") + std::strerror(errno));
  if (server == 0) {
    ::close(sv[0]);
    KeeperLink link;
    link.socket = sv[1];
    link.pid = ::getppid();
    link.start_time = process_start_time(link.pid);
    ::_exit(run_server(o, false, report, &link));
  }
  ::close(sv[1]);
  report.forget();  // the server reports readiness itself
  std::uint32_t id = 0;
  std::vector<int> fds;
  const bool received = receive_memory(sv[0], id, fds);
  if (!received) {
    // The server failed before the device took any data, and said why.
    ::close(sv[0]);
    int status = 0;
    ::waitpid(server, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
  }
  // A daemon's stderr is /dev/null: from now on the keeper and the servers
  // it starts log to the run directory, where `coblk del` removes it.
  // With the daemon log (cmd/daemon_log.h) running, stderr stays its pipe
  // to syslog, for the keeper and the servers it restarts, and the keeper
  // also writes its own lines to the file; without it, stderr is the file.
  set_daemon_log_device(id);
  int log_fd = -1;
  if (!o.foreground) {
    const int log = ::open(log_path(id).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (log >= 0 && daemon_log_active()) {
      log_fd = log;
    } else if (log >= 0) {
      ::dup2(log, STDERR_FILENO);
      ::close(log);
    }
  }
  Keeper keeper(o, id, fds, server, log_fd);
  const char ack = 1;
  [[maybe_unused]] const ssize_t n = ::write(sv[0], &ack, 1);
  ::close(sv[0]);
  return keeper.run(signals);
}

std::uint64_t process_start_time(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return 0;
  // The command name (field 2) is in parentheses and may hold spaces or
  // parentheses itself: the fields after it start after the last ')'.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int n = 3; n <= 22 && fields >> field; ++n) {
    if (n == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

bool keeper_alive(pid_t pid, std::uint64_t start) {
  if (pid <= 0 || start == 0) return false;
  if (process_start_time(pid) != start) return false;
  // A zombie keeper (its parent has not reaped it) is gone all the same.
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("State:", 0) == 0) return line.find('Z') == std::string::npos;
  }
  return false;
}

std::optional<KeeperStatus> load_keeper_status(std::uint32_t dev_id) {
  std::ifstream in(keeper_status_path(dev_id));
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  KeeperStatus s;
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    if (word.rfind("state=", 0) == 0) s.state = word.substr(6);
    if (word.rfind("restarts=", 0) == 0)
      s.restarts = static_cast<unsigned>(std::strtoul(word.c_str() + 9, nullptr, 10));
    if (word.rfind("last=", 0) == 0) {
      s.last = line.substr(line.find("last=") + 5);
      break;
    }
  }
  return s;
}

int recover_through_keeper(std::uint32_t dev_id, pid_t keeper_pid, std::uint64_t keeper_start) {
  const std::string id = std::to_string(dev_id);
  if (!keeper_alive(keeper_pid, keeper_start)) {
    return report_error("recover", "device " + id +
                                       " lost its data: the keeper that held its memory is gone; it stays quiesced, "
                                       "delete it with 'coblk del -n " +
                                       id + "'");
  }
  const std::optional<KeeperStatus> before = load_keeper_status(dev_id);
  if (::kill(keeper_pid, SIGUSR1) != 0) {
    return report_error("recover", "cannot reach the keeper of device " + id + ": " + std::strerror(errno));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (device_state(dev_id) == ublk::abi::S_DEV_LIVE) {
      std::cout << ublk::block_device_path(dev_id) << std::endl;
      return kExitOk;
    }
    const std::optional<KeeperStatus> now = load_keeper_status(dev_id);
    if (now && before && now->restarts != before->restarts && now->state != "serving" && now->state != "restarting") {
      return report_error("recover", "device " + id + ": " + now->last);
    }
    if (!keeper_alive(keeper_pid, keeper_start)) {
      return report_error("recover", "the keeper of device " + id + " ended while recovering it");
    }
  }
  return report_error("recover", "device " + id + " did not become live within 60 s");
}

}  // namespace coblk::cmd
