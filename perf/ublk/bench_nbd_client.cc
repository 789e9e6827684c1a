// bench_nbd_client: coblk's NBD client data path (nbd::Connection on the
// runtime's io_uring sockets) against libnbd's asynchronous API driven from
// the same reactor (IORING_OP_POLL_ADD on libnbd's socket, then
// nbd_aio_notify_*), on the same nbdkit memory server over a unix socket,
// in one process, alternating rounds.
//
//   bench_nbd_client [--quick] [--rounds N] [--seconds S] [--budget S]
//   (COBLK_BENCH_ONLY=WORKLOAD runs one workload; COBLK_BENCH_NBD_SIDE=ours
//   or libnbd runs only that side, reporting it as both: for a profiler, as
//   in `perf record -g bench_nbd_client`, never for a ratio)
//
// Workloads: 4 KiB random reads at queue depth 1 and 32, 4 KiB random
// writes at 32, 1 MiB sequential reads and writes at 4. One JSON line per workload
// (perf/ab_report.h): ours and baseline in operations per second, ratio =
// ours / libnbd. This is the measurement behind docs/nbd.md's choice of an
// own client over libnbd. Without nbdkit on the PATH it prints a note and
// exits 0; built without libnbd (no libnbd-dev), it measures ours alone.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#if COBLK_HAVE_LIBNBD
#include <libnbd.h>
#endif

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/nbd_connection.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using runtime::Task;

namespace {

constexpr uint64_t kRegion = 64ULL << 20;  // the part of the export the workloads touch

struct Workload {
  const char* name;
  bool write;
  bool sequential;
  uint32_t block;
  unsigned depth;
};

const Workload kWorkloads[] = {
    {"randread_4k_qd1", false, false, 4096, 1},   {"randread_4k_qd32", false, false, 4096, 32},
    {"randwrite_4k_qd32", true, false, 4096, 32}, {"seqread_1m_qd4", false, true, 1 << 20, 4},
    {"seqwrite_1m_qd4", true, true, 1 << 20, 4},
};

// Offsets: xorshift over the region's blocks, or sequential with wrap.
struct Offsets {
  uint64_t state;
  uint64_t next_seq = 0;
  uint64_t next(const Workload& w) {
    const uint64_t blocks = kRegion / w.block;
    if (w.sequential) {
      const uint64_t o = (next_seq++ % blocks) * w.block;
      return o;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (state % blocks) * w.block;
  }
};

// nbdkit's memory plugin on a unix socket in a fresh directory.
struct Server {
  pid_t pid = -1;
  std::string dir;
  std::string socket;
  bool start() {
    char tmpl[] = "/tmp/coblk-bench-nbd-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return false;
    dir = tmpl;
    socket = dir + "/sock";
    pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      const int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
      ::execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-U", socket.c_str(), "--threads", "16", "memory",
               "256M", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      struct stat st {};
      if (::stat(socket.c_str(), &st) == 0) return true;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return false;
      }
      ::usleep(10000);
    }
    return false;
  }
  ~Server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!socket.empty()) ::unlink(socket.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

// One worker of ours: requests back to back until the deadline.
Task<void> our_worker(nbd::Connection* c, const Workload* w, double deadline, uint64_t seed, uint64_t* done) {
  std::vector<std::byte> buffer(w->block, std::byte{0x5a});
  Offsets offsets{seed * 0x9E3779B97F4A7C15ULL + 1};
  if (w->sequential) offsets.next_seq = seed * 16;
  while (perf::now_seconds() < deadline) {
    const uint64_t at = offsets.next(*w);
    int r = 0;
    if (w->write) {
      r = co_await c->write(at, buffer, false);
    } else {
      r = co_await c->read(at, buffer);
    }
    if (r < 0) throw std::runtime_error(std::string("request failed: ") + std::strerror(-r));
    ++*done;
  }
}

// Operations per second of ours for `seconds`.
Task<double> run_ours(nbd::Connection* c, const Workload& w, double seconds) {
  std::vector<uint64_t> done(w.depth, 0);
  const double t0 = perf::now_seconds();
  std::vector<Task<void>> workers;
  for (unsigned i = 0; i < w.depth; ++i) workers.push_back(our_worker(c, &w, t0 + seconds, i + 1, &done[i]));
  co_await runtime::when_all(std::move(workers));
  const double elapsed = perf::now_seconds() - t0;
  uint64_t total = 0;
  for (const uint64_t d : done) total += d;
  co_return static_cast<double>(total) / elapsed;
}

#if COBLK_HAVE_LIBNBD
// libnbd's aio API, driven by the reactor: poll the socket in the direction
// libnbd asks for, notify it, and keep `depth` commands in flight.
struct LibnbdSlot {
  std::vector<std::byte> buffer;
  std::vector<unsigned>* free = nullptr;
  uint64_t* done = nullptr;
  unsigned index = 0;
};

int on_complete(void* user_data, int* error) {
  auto* slot = static_cast<LibnbdSlot*>(user_data);
  if (*error != 0) std::fprintf(stderr, "bench_nbd_client: libnbd command failed: %s\n", std::strerror(*error));
  ++*slot->done;
  slot->free->push_back(slot->index);
  return 1;  // retire the command
}

Task<double> run_libnbd(nbd_handle* h, const Workload& w, double seconds) {
  uint64_t done = 0;
  std::vector<unsigned> free_slots;
  std::vector<LibnbdSlot> slots(w.depth);
  for (unsigned i = 0; i < w.depth; ++i) {
    slots[i].buffer.assign(w.block, std::byte{0x5a});
    slots[i].free = &free_slots;
    slots[i].done = &done;
    slots[i].index = i;
    free_slots.push_back(i);
  }
  Offsets offsets{0x1234567ULL};
  const int fd = nbd_aio_get_fd(h);
  const double t0 = perf::now_seconds();
  const double deadline = t0 + seconds;
  for (;;) {
    const bool open = perf::now_seconds() < deadline;
    while (open && !free_slots.empty()) {
      LibnbdSlot& s = slots[free_slots.back()];
      free_slots.pop_back();
      const nbd_completion_callback cb{on_complete, &s, nullptr};
      const uint64_t at = offsets.next(w);
      const int64_t cookie = w.write ? nbd_aio_pwrite(h, s.buffer.data(), w.block, at, cb, 0)
                                     : nbd_aio_pread(h, s.buffer.data(), w.block, at, cb, 0);
      if (cookie < 0) throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
    }
    if (!open && free_slots.size() == w.depth) break;
    const unsigned dir = nbd_aio_get_direction(h);
    unsigned events = 0;
    if ((dir & LIBNBD_AIO_DIRECTION_READ) != 0) events |= POLLIN;
    if ((dir & LIBNBD_AIO_DIRECTION_WRITE) != 0) events |= POLLOUT;
    const int ready = co_await runtime::poll(fd, events);
    if (ready < 0) throw std::runtime_error(std::string("poll: ") + std::strerror(-ready));
    if ((ready & POLLIN) != 0 && nbd_aio_notify_read(h) < 0) throw std::runtime_error(nbd_get_error());
    if ((ready & POLLOUT) != 0 && nbd_aio_notify_write(h) < 0) throw std::runtime_error(nbd_get_error());
  }
  co_return static_cast<double>(done) / (perf::now_seconds() - t0);
}
#endif

Task<void> bench(const perf::BenchOptions& options, const std::string& socket, const std::string& side) {
  const nbd::Endpoint endpoint = [&] {
    auto e = nbd::parse_endpoint("unix:" + socket);
    if (!e) throw std::runtime_error(e.error().message());
    return std::move(e).value();
  }();
  auto opened = co_await nbd::Connection::open(endpoint, "", std::chrono::seconds(5));
  if (!opened) throw std::runtime_error(opened.error().message());
  std::shared_ptr<nbd::Connection> c = std::move(opened).value();
  // Fill the region so that reads return stored data, not holes.
  const Workload fill{"fill", true, true, 1 << 20, 8};
  (void)co_await run_ours(c.get(), fill, options.quick ? 0.05 : 0.5);
#if COBLK_HAVE_LIBNBD
  nbd_handle* h = nbd_create();
  if (h == nullptr || nbd_connect_unix(h, socket.c_str()) < 0)
    throw std::runtime_error(std::string("libnbd: ") + nbd_get_error());
#endif
  const double share = 1.0 / static_cast<double>(std::size(kWorkloads));
  const char* only = std::getenv("COBLK_BENCH_ONLY");  // a workload name, to run just that one
  for (const Workload& w : kWorkloads) {
    if (only != nullptr && std::string(only) != w.name) continue;
    perf::AbSeries series(std::string("nbd_client_") + w.name, "ops/s", perf::Better::higher);
    perf::RoundBudget budget(options, share);
    for (int round = 0; budget.next(round); ++round) {
      double ours = 0;
      double base = 0;
#if COBLK_HAVE_LIBNBD
      if (side == "ours") {
        ours = base = co_await run_ours(c.get(), w, options.seconds);
      } else if (side == "libnbd") {
        ours = base = co_await run_libnbd(h, w, options.seconds);
      } else if (round % 2 == 0) {
        ours = co_await run_ours(c.get(), w, options.seconds);
        base = co_await run_libnbd(h, w, options.seconds);
      } else {
        base = co_await run_libnbd(h, w, options.seconds);
        ours = co_await run_ours(c.get(), w, options.seconds);
      }
#else
      ours = co_await run_ours(c.get(), w, options.seconds);
      base = ours;
#endif
      series.add(ours, base);
    }
    double load[1] = {0};
    ::getloadavg(load, 1);
#if COBLK_HAVE_LIBNBD
    const std::string baseline_is =
        side.empty() ? "libnbd aio on the same reactor" : "none: COBLK_BENCH_NBD_SIDE=" + side + " ran one side";
    series.print(perf::json_text("baseline_is", baseline_is) + perf::json_number("loadavg_1m", load[0]));
#else
    series.print(perf::json_text("baseline_is", "none: built without libnbd-dev") +
                 perf::json_number("loadavg_1m", load[0]));
#endif
  }
#if COBLK_HAVE_LIBNBD
  nbd_close(h);
#endif
  c->close();
}

}  // namespace

int main(int argc, char** argv) {
  perf::BenchOptions options =
      perf::BenchOptions::parse(argc, argv, "[--quick] [--rounds N] [--seconds S] [--budget S]");
  if (!options.quick && options.seconds < 0.5) options.seconds = 1;  // network requests: longer rounds than a nop
  // Checked before anything starts: a throw once the connection is open
  // would leave its reader task running.
  const char* side_env = std::getenv("COBLK_BENCH_NBD_SIDE");
  const std::string side = side_env != nullptr ? side_env : "";
  if (!side.empty() && side != "ours" && side != "libnbd") {
    std::fprintf(stderr, "bench_nbd_client: COBLK_BENCH_NBD_SIDE must be ours or libnbd, not '%s'\n", side.c_str());
    return 2;
  }
  Server server;
  if (!server.start()) {
    std::fprintf(stderr, "bench_nbd_client: cannot start nbdkit (is it installed? setup.sh installs it); skipped\n");
    return 0;
  }
  try {
    const auto rt = perf::bench_runtime(perf::bench_runtime_config());
    rt->run([&] { return bench(options, server.socket, side); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_nbd_client: %s\n", e.what());
    return 1;
  }
  return 0;
}
