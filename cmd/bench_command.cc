// coblk bench: fio on a coblk device and on the kernel's matching device,
// alternating, round after round; writes a JSON and an HTML report.
// The devices are cmd/bench_devices.cc, the fio runs cmd/bench_fio.cc, the
// summary and the JSON cmd/bench_report.cc, the page cmd/bench_html.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "coblk/cmd/bench_devices.h"
#include "coblk/cmd/bench_fio.h"
#include "coblk/cmd/bench_html.h"
#include "coblk/cmd/bench_report.h"
#include "coblk/cmd/commands.h"
#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/size_parse.h"

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

constexpr const char* kCommand = "bench";

// Set by SIGINT/SIGTERM; checked between fio runs, so the devices made so
// far are always taken down. sig_atomic_t: the one type a handler may write.
volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int /*signal*/) { g_interrupted = 1; }

struct Settings {
  std::vector<std::string> targets;
  std::vector<BenchWorkload> workloads;
  unsigned rounds = 3;
  unsigned runtime_s = 3;
  unsigned long long size_bytes = 256ULL << 20;
  unsigned queues = 1;
  std::string json;
  std::string html;
  std::string dir;
  std::string fio;
  std::string modprobe;
};

// "a,b c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (const char c : text + ",") {
    if (c == ',' || c == ' ') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

std::array<double, 3> load_average() {
  std::array<double, 3> load{};
  std::ifstream in("/proc/loadavg");
  in >> load[0] >> load[1] >> load[2];
  return load;
}

std::string utc_now() {
  char text[32] = "";
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) != nullptr) std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string host_name() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown host";
  return std::string(u.nodename) + " (Linux " + u.release + ")";
}

// Whether `path` can be written, checked before any device is made. A file
// this check had to create is removed again, so a failed run leaves none.
Result<void> check_writable(const std::string& path) {
  struct stat st {};
  const bool existed = ::stat(path.c_str(), &st) == 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error::from_errno(errno, "cannot write " + path);
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
  return ok();
}

Result<void> write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Error(EIO, "cannot write " + path);
  return ok();
}

// Parses and validates the options; an exit status when done (help, or a
// usage error already reported).
std::optional<int> parse_settings(const std::vector<std::string>& args, Settings& s) {
  std::string targets;
  std::string workloads;
  std::string size;
  std::string all_workloads;
  for (const BenchWorkload& w : bench_workloads())
    all_workloads += std::string(all_workloads.empty() ? "" : ",") + w.name;
  po::options_description desc(
      "Usage: coblk bench [options]\n"
      "Runs fio on a coblk device and on the kernel's matching device (null: null_blk, ram: brd, zram: zram, "
      "loop: loop), alternating which goes first, for --rounds rounds; writes a JSON and a self-contained "
      "HTML report. Needs root, fio and the ublk driver.\nOptions");
  desc.add_options()                                                                                                //
      ("help,h", "show this help")                                                                                  //
      ("targets,t", po::value(&targets)->default_value("null"), "targets, comma-separated: null, ram, zram, loop")  //
      ("workloads,w", po::value(&workloads)->default_value(all_workloads), "fio workloads, comma-separated")        //
      ("rounds,r", po::value(&s.rounds)->default_value(3), "rounds of each workload (1-1000)")                      //
      ("runtime", po::value(&s.runtime_s)->default_value(3), "seconds of each fio run (1-3600)")                    //
      ("size,s", po::value(&size)->default_value("256M"), "size of each device and of fio's range (MiB multiple)")  //
      ("queues,q", po::value(&s.queues)->default_value(1), "queues of the coblk device and fio jobs (1-16)")        //
      ("json", po::value(&s.json)->default_value("coblk-bench.json"), "where the JSON report goes")                 //
      ("html", po::value(&s.html)->default_value("coblk-bench.html"), "where the HTML report goes")                 //
      ("dir", po::value(&s.dir)->default_value("/dev/shm"), "directory of the loop target's backing files")         //
      ("fio", po::value(&s.fio)->default_value("fio"), "the fio program")                                           //
      ("modprobe", po::value(&s.modprobe)->default_value("modprobe"),
       "the program that loads a kernel module (NAME [PARAM=VALUE...])");
  po::variables_map vm;
  if (auto done = parse_command_line(kCommand, args, desc, vm)) return done;
  s.targets = split_list(targets);
  if (s.targets.empty()) return report_error(kCommand, "--targets names no target", kExitUsage);
  for (const std::string& t : s.targets) {
    if (t != "null" && t != "ram" && t != "zram" && t != "loop") {
      return report_error(kCommand, "unknown target " + quote_for_message(t) + " (null, ram, zram or loop)",
                          kExitUsage);
    }
  }
  for (const std::string& name : split_list(workloads)) {
    const BenchWorkload* w = find_bench_workload(name);
    if (w == nullptr) {
      return report_error(kCommand, "unknown workload " + quote_for_message(name) + " (" + all_workloads + ")",
                          kExitUsage);
    }
    s.workloads.push_back(*w);
  }
  if (s.workloads.empty()) return report_error(kCommand, "--workloads names no workload", kExitUsage);
  if (s.rounds < 1 || s.rounds > 1000) return report_error(kCommand, "--rounds must be 1 to 1000", kExitUsage);
  if (s.runtime_s < 1 || s.runtime_s > 3600) {
    return report_error(kCommand, "--runtime must be 1 to 3600 seconds", kExitUsage);
  }
  if (s.queues < 1 || s.queues > 16) return report_error(kCommand, "--queues must be 1 to 16", kExitUsage);
  const ParsedSize parsed = parse_size(size);
  if (!parsed) return report_error(kCommand, "--size: " + parsed.error, kExitUsage);
  s.size_bytes = parsed.bytes;
  if (s.size_bytes < (1ULL << 20) || s.size_bytes % (1ULL << 20) != 0 || s.size_bytes > (1ULL << 40)) {
    return report_error(kCommand, "--size must be a multiple of 1M between 1M and 1T", kExitUsage);
  }
  if (s.json == s.html) return report_error(kCommand, "--json and --html name the same file", kExitUsage);
  return std::nullopt;
}

// utime + stime of process `pid` in clock ticks (fields 14 and 15 of
// /proc/PID/stat, counted after the ")" that ends the command name); -1
// when unknown.
long long cpu_ticks(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 1));
  std::string field;
  long long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::strtoll(field.c_str(), nullptr, 10);
  }
  return ticks;
}

// One fio run; the figures, or why not. `server` is the ublk server's pid
// (0 for a kernel device), whose CPU time over the run is divided by the I/Os.
Result<FioFigures> run_one(const Settings& s, const std::string& device, const BenchWorkload& w, pid_t server) {
  FioJob job;
  job.fio = s.fio;
  job.filename = device;
  job.workload = w;
  job.runtime_s = s.runtime_s;
  job.size_bytes = s.size_bytes;
  job.jobs = s.queues;
  const long long t0 = cpu_ticks(server);
  Result<std::string> out = run_capture(fio_arguments(job), fio_run_limit(job.runtime_s));
  const long long t1 = cpu_ticks(server);
  if (!out) return Error(out.error().code(), "fio on " + device + ": " + out.error().message());
  Result<FioFigures> f = parse_fio_json(*out);
  if (!f) return Error(f.error().code(), "fio on " + device + ": " + f.error().message());
  if (t0 >= 0 && t1 >= t0 && f->ios > 0) {
    f->server_cpu_us =
        static_cast<double>(t1 - t0) * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK)) / static_cast<double>(f->ios);
  }
  return f;
}

Result<void> check_interrupted() {
  if (g_interrupted) return Error(EINTR, "interrupted; the devices it made are removed");
  return ok();
}

// Every workload of one target, both devices made and removed here.
Result<void> bench_target(const Settings& s, const std::string& target, const std::string& coblk, BenchReport& report) {
  BenchDeviceOptions o;
  o.target = target;
  o.size_bytes = s.size_bytes;
  o.queues = s.queues;
  o.dir = s.dir;
  o.modprobe = s.modprobe;
  o.coblk = coblk;
  Result<std::unique_ptr<BenchDevices>> made = BenchDevices::create(o);
  if (!made) return Error(made.error().code(), target + ": " + made.error().message());
  const BenchDevices& d = **made;
  std::cout << target << ": coblk " << d.ours() << " against " << d.baseline_kind() << ' ' << d.baseline() << '\n'
            << std::flush;
  if (d.needs_fill()) {
    for (const std::string& dev : {d.ours(), d.baseline()}) {
      if (Result<std::string> r =
              run_capture(fio_fill_arguments(s.fio, dev, s.size_bytes), fio_fill_limit(s.size_bytes));
          !r) {
        return Error(r.error().code(), "filling " + dev + ": " + r.error().message());
      }
      if (Result<void> r = check_interrupted(); !r) return r;
    }
  }
  for (const BenchWorkload& w : s.workloads) {
    BenchSeries series;
    series.target = target;
    series.workload = w.name;
    series.ours_device = d.ours();
    series.baseline_device = d.baseline();
    series.baseline_kind = d.baseline_kind();
    series.headline = w.headline;
    for (unsigned r = 0; r < s.rounds; ++r) {
      BenchRound round;
      // Odd rounds (1, 3, ...) run coblk first, even ones the kernel.
      round.ours_first = r % 2 == 0;
      round.load_1m = load_average()[0];
      for (int side = 0; side < 2; ++side) {
        const bool ours = (side == 0) == round.ours_first;
        Result<FioFigures> f = run_one(s, ours ? d.ours() : d.baseline(), w, ours ? d.server_pid() : 0);
        if (!f) {
          // A SIGINT from the terminal reaches fio too: say why it ended.
          if (Result<void> c = check_interrupted(); !c) return c;
          return std::move(f).error();
        }
        (ours ? round.ours : round.baseline) = *f;
        if (Result<void> c = check_interrupted(); !c) return c;
      }
      const bool iops = w.headline == Headline::iops;
      std::cout << target << ' ' << w.name << " round " << r + 1 << '/' << s.rounds << ": coblk "
                << format_report_number(report_round(iops ? round.ours.iops : round.ours.bw_mib)) << ", kernel "
                << format_report_number(report_round(iops ? round.baseline.iops : round.baseline.bw_mib))
                << (iops ? " IOPS" : " MiB/s") << '\n'
                << std::flush;
      series.rounds.push_back(round);
    }
    report.series.push_back(std::move(series));
  }
  return ok();
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  Settings s;
  if (auto done = parse_settings(args, s)) return *done;
  for (const std::string& path : {s.json, s.html}) {
    if (Result<void> r = check_writable(path); !r) return report_error(kCommand, r.error().message());
  }
  if (find_program(s.fio).empty()) {
    return report_error(kCommand, s.fio + " is not installed (coblk bench runs fio; install the fio package)");
  }
  {
    ublk::ControlDevice control;
    std::string error;
    if (!open_control(control, error)) return report_error(kCommand, error);
  }
  if (::geteuid() != 0) return report_error(kCommand, "must run as root: it creates and removes block devices");
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return report_error(kCommand, "cannot find this coblk executable (/proc/self/exe)");
  const std::string coblk(self, static_cast<std::size_t>(n));

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  BenchReport report;
  report.started_at = utc_now();
  report.host = host_name();
  report.coblk_version = COBLK_BENCH_VERSION;
  report.rounds = s.rounds;
  report.runtime_s = s.runtime_s;
  report.size_bytes = s.size_bytes;
  report.queues = s.queues;
  report.load_start = load_average();
  for (const std::string& target : s.targets) {
    if (Result<void> r = bench_target(s, target, coblk, report); !r) return report_error(kCommand, r.error().message());
  }
  report.load_end = load_average();
  if (Result<void> r = write_file(s.json, report_json_text(report)); !r)
    return report_error(kCommand, r.error().message());
  if (Result<void> r = write_file(s.html, render_bench_html(report)); !r)
    return report_error(kCommand, r.error().message());
  // The summary lines, as every coblk benchmark prints them.
  for (const BenchSeries& series : report.series) std::cout << series_result_line(series, report) << '\n';
  std::cout << "wrote " << s.json << " and " << s.html << '\n';
  return kExitOk;
}

}  // namespace coblk::cmd
