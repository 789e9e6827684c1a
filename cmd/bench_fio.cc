// `coblk bench`'s fio runs (cmd/bench_fio.h).
#include "coblk/cmd/bench_fio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace coblk::cmd {
namespace {

double number_at(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return 0;
}

// The percentile `key` ("99.000000") of a section's completion latency, in us.
double percentile_us(const boost::json::object& section, std::string_view key) {
  const boost::json::value* clat = section.if_contains("clat_ns");
  if (clat == nullptr || !clat->is_object()) return 0;
  const boost::json::value* pct = clat->as_object().if_contains("percentile");
  if (pct == nullptr || !pct->is_object()) return 0;
  return number_at(pct->as_object(), key) / 1000;
}

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const std::size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

const std::vector<BenchWorkload>& bench_workloads() {
  static const std::vector<BenchWorkload> kAll = {
      {"randread_4k_qd32", "randread", "4k", 32, Headline::iops},
      {"randread_4k_qd1", "randread", "4k", 1, Headline::iops},
      {"randwrite_4k_qd32", "randwrite", "4k", 32, Headline::iops},
      {"seqread_1m", "read", "1M", 8, Headline::bandwidth},
      {"seqwrite_1m", "write", "1M", 8, Headline::bandwidth},
  };
  return kAll;
}

const BenchWorkload* find_bench_workload(std::string_view name) {
  for (const BenchWorkload& w : bench_workloads()) {
    if (name == w.name) return &w;
  }
  return nullptr;
}

std::vector<std::string> fio_arguments(const FioJob& job) {
  char runtime[32];
  std::snprintf(runtime, sizeof(runtime), "%g", job.runtime_s);
  return {job.fio,
          "--name=coblk-bench",
          "--filename=" + job.filename,
          std::string("--rw=") + job.workload.rw,
          std::string("--bs=") + job.workload.bs,
          "--iodepth=" + std::to_string(job.workload.iodepth),
          "--numjobs=" + std::to_string(job.jobs),
          "--group_reporting",
          "--ioengine=io_uring",
          "--direct=1",
          "--size=" + std::to_string(job.size_bytes),
          std::string("--runtime=") + runtime,
          "--time_based",
          "--buffer_compress_percentage=50",
          "--refill_buffers",
          "--randrepeat=0",
          "--norandommap",
          "--percentile_list=50:99:99.9",
          "--output-format=json"};
}

std::vector<std::string> fio_fill_arguments(const std::string& fio, const std::string& device,
                                            unsigned long long size_bytes) {
  return {fio,
          "--name=coblk-bench-fill",
          "--filename=" + device,
          "--rw=write",
          "--bs=1M",
          "--iodepth=8",
          "--ioengine=io_uring",
          "--direct=1",
          "--size=" + std::to_string(size_bytes),
          "--buffer_compress_percentage=50",
          "--refill_buffers",
          "--output-format=json"};
}

Result<FioFigures> parse_fio_json(std::string_view text) {
  const std::size_t brace = text.find('{');
  if (brace == std::string_view::npos) return Error(EINVAL, "fio printed no JSON");
  boost::system::error_code ec;
  const boost::json::value root = boost::json::parse(text.substr(brace), ec);
  if (ec || !root.is_object()) return Error(EINVAL, "fio's output is not JSON: " + ec.message());
  const boost::json::value* jobs = root.as_object().if_contains("jobs");
  if (jobs == nullptr || !jobs->is_array() || jobs->as_array().empty() || !jobs->as_array()[0].is_object()) {
    return Error(EINVAL, "fio's JSON has no job");
  }
  const boost::json::object& job = jobs->as_array()[0].as_object();
  if (number_at(job, "error") != 0) {
    return Error(EIO,
                 "fio reported error " + std::to_string(static_cast<long>(number_at(job, "error"))) + " in its job");
  }
  FioFigures f;
  const boost::json::object* busiest = nullptr;
  double busiest_ios = -1;
  for (const char* name : {"read", "write"}) {
    const boost::json::value* v = job.if_contains(name);
    if (v == nullptr || !v->is_object()) continue;
    const boost::json::object& section = v->as_object();
    f.iops += number_at(section, "iops");
    f.bw_mib += number_at(section, "bw_bytes") / (1024.0 * 1024.0);
    const double ios = number_at(section, "total_ios");
    f.ios += static_cast<unsigned long long>(ios);
    if (ios > busiest_ios) {
      busiest_ios = ios;
      busiest = &section;
    }
  }
  if (busiest == nullptr) return Error(EINVAL, "fio's JSON job has neither reads nor writes");
  f.p50_us = percentile_us(*busiest, "50.000000");
  f.p99_us = percentile_us(*busiest, "99.000000");
  f.p999_us = percentile_us(*busiest, "99.900000");
  // usr_cpu and sys_cpu are percentages of one CPU over the job's runtime
  // (summed over its jobs when they are reported as one group).
  const double cpu_us =
      (number_at(job, "usr_cpu") + number_at(job, "sys_cpu")) / 100 * number_at(job, "job_runtime") * 1000;
  f.fio_cpu_us = f.ios > 0 ? cpu_us / static_cast<double>(f.ios) : 0;
  return f;
}

std::string find_program(const std::string& program) {
  const auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.empty()) return {};
  if (program.find('/') != std::string::npos) return executable(program) ? program : std::string();
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir;
    candidate += '/';
    candidate += program;
    if (executable(candidate)) return candidate;
    start = end + 1;
  }
  return {};
}

std::chrono::seconds fio_run_limit(double runtime_s) {
  return std::chrono::seconds(static_cast<long long>(2 * runtime_s) + 120);
}

std::chrono::seconds fio_fill_limit(std::uint64_t size_bytes) {
  return std::chrono::seconds(120 + size_bytes / (std::uint64_t{4} << 20));
}

namespace {

// Kills a program that ran past its limit and reaps it if it can: a
// process blocked in the kernel on a hung device only dies once its I/O
// ends, so the wait is bounded too. True when it was reaped.
bool kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return r == pid;
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Result<std::string> run_capture(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  if (argv.empty()) return Error(EINVAL, "nothing to run");
  const std::string path = find_program(argv[0]);
  if (path.empty()) return Error(ENOENT, argv[0] + " is not installed (not found in PATH)");
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return Error::from_errno(e, "pipe");
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));  // NOLINT(cppcoreguidelines-pro-type-const-cast): execv's signature
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (const int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return Error::from_errno(e, "fork");
  }
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execv(path.c_str(), args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  std::string stdout_text;
  std::string stderr_text;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool timed_out = false;
  while (open_fds > 0) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 60'000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) continue;  // the deadline is checked above
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? stdout_text : stderr_text).append(buf, static_cast<std::size_t>(n));
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  // Closing its output usually means it is exiting; but it may go on (a
  // program that closed its streams), so the wait has the same deadline.
  int status = 0;
  while (!timed_out) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "waitpid " + argv[0]);
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
    } else if (r == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (timed_out) {
    const std::string what = argv[0] + " did not finish within " + std::to_string(limit.count()) + " s";
    if (!kill_and_reap(pid)) {
      return Error(ETIMEDOUT,
                   what + " and could not be killed (pid " + std::to_string(pid) + ", likely stuck on a hung device)");
    }
    return Error(ETIMEDOUT, what + " (killed)");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status));
    const std::string line = last_line(stderr_text.empty() ? stdout_text : stderr_text);
    if (!line.empty()) why += ": " + line;
    return Error(EIO, argv[0] + " failed (" + why + ")");
  }
  return stdout_text;
}

}  // namespace coblk::cmd
