// top_fixture: publishes what device servers publish, for `coblk top`'s
// terminal test on a host without ublk. In the run directory $COBLK_RUN_DIR
// it records device 0 (null, two queues) and, with the zram target built,
// device 1 (zram, one queue), and publishes their files with the servers'
// own writers (ublk::IoMetricsPublisher, ublk::ZramStatsPublisher) every
// 100 ms, with reads and writes growing as under load, until SIGTERM or
// SIGINT (or 120 s), when the publishers remove their files.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "coblk/cmd/device_record.h"
#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/reactor_stats.h"
#include "coblk/ublk/io_metrics_file.h"
#if COBLK_HAVE_ZRAM
#include "coblk/ublk/zram_stats.h"
#endif

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int /*signal*/) { g_stop = 1; }

cmd::DeviceRecord record(std::uint32_t id, const char* target, unsigned queues) {
  cmd::DeviceRecord r;
  r.dev_id = id;
  r.target = target;
  r.data_path = "copy";
  r.size_bytes = 64 << 20;
  r.queues = queues;
  r.depth = 64;
  r.pid = ::getpid();
  if (std::string(target) == "zram") r.compression = "lz4";
  return r;
}

template <typename T>
T or_exit(Result<T> r) {
  if (!r) {
    std::fprintf(stderr, "top_fixture: %s\n", r.error().message().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

}  // namespace

int main() {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  for (const cmd::DeviceRecord& r : {
         record(0, "null", 2)
#if COBLK_HAVE_ZRAM
             ,
             record(1, "zram", 1)
#endif
       }) {
    if (Result<void> saved = cmd::save_record(r); !saved) {
      std::fprintf(stderr, "top_fixture: %s\n", saved.error().message().c_str());
      return 1;
    }
  }
  auto null_metrics = or_exit(ublk::IoMetricsPublisher::create(cmd::metrics_path(0), 0, 2));
  auto q0 = std::make_unique<ublk::QueueMetrics>();
  auto q1 = std::make_unique<ublk::QueueMetrics>();
  runtime::ReactorStats core0;
  runtime::ReactorStats core1;
#if COBLK_HAVE_ZRAM
  auto zram_metrics = or_exit(ublk::IoMetricsPublisher::create(cmd::metrics_path(1), 1, 1));
  auto zq = std::make_unique<ublk::QueueMetrics>();
  runtime::ReactorStats zcore;
  auto zram_stats = or_exit(ublk::ZramStatsPublisher::create(cmd::stats_path(1)));
  ublk::ZramStats z;
  z.algorithm = "lz4";
  z.disksize = 64 << 20;
  z.mm.mem_limit = 32 << 20;
  z.tier_state = ublk::TierState::active;
  z.tier.backing_blocks = 4096;
#endif
  const auto ticks = [](std::uint64_t ns) { return runtime::CycleClock::from_ns(ns); };
  for (int round = 0; round < 1200 && g_stop == 0; ++round) {
    // Per 100 ms: queue 0 reads 400 x 4 KiB, queue 1 writes 100 x 64 KiB.
    for (int i = 0; i < 400; ++i) q0->record(ublk::abi::IO_OP_READ, 8, 4096, ticks(20'000 + 10 * i));
    for (int i = 0; i < 100; ++i) q1->record(ublk::abi::IO_OP_WRITE, 128, 65536, ticks(150'000));
    core0.groups[0].runtime_ns.add(30'000'000);
    core1.groups[0].runtime_ns.add(60'000'000);
    null_metrics->publish(0, 0, *q0, core0);
    null_metrics->publish(1, 1, *q1, core1);
#if COBLK_HAVE_ZRAM
    for (int i = 0; i < 50; ++i) zq->record(ublk::abi::IO_OP_WRITE, 8, 4096, ticks(8'000));
    zcore.groups[0].runtime_ns.add(10'000'000);
    zram_metrics->publish(0, 0, *zq, zcore);
    z.mm.orig_data_size += 50 * 4096;
    z.mm.compr_data_size += 50 * 1024;
    z.mm.mem_used_total = z.mm.compr_data_size + (z.mm.compr_data_size / 8);
    z.tier.written_back_pages = static_cast<std::uint64_t>(round) * 3;
    z.bd.bd_count = z.tier.written_back_pages;
    zram_stats->publish(z);
#endif
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const std::uint32_t id : {0U, 1U}) ::unlink(cmd::record_path(id).c_str());
  return 0;
}
