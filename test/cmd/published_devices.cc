// The exporters' tests' snapshot of published device files (see
// published_devices.h).
#include "test/cmd/published_devices.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/reactor_stats.h"
#include "test/require_ok.h"

namespace coblk::test {

RunDir::RunDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  dir_ = tmpl;
  ::setenv("COBLK_RUN_DIR", dir_.c_str(), 1);
}

RunDir::~RunDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  ::unsetenv("COBLK_RUN_DIR");
}

cmd::DeviceRecord device_record(std::uint32_t id, const char* target, unsigned queues) {
  cmd::DeviceRecord r;
  r.dev_id = id;
  r.target = target;
  r.data_path = "copy";
  r.size_bytes = 1 << 30;
  r.queues = queues;
  r.depth = 128;
  r.pid = ::getpid();
  return r;
}

PublishedDevices::PublishedDevices(const SnapshotShape& shape)
    : q0(std::make_unique<ublk::QueueMetrics>()), q1(std::make_unique<ublk::QueueMetrics>()) {
  BOOST_REQUIRE(cmd::save_record(device_record(0, "null", 2)).ok());
  BOOST_REQUIRE(cmd::save_record(device_record(1, "ram", 1)).ok());
  publisher = require_ok(ublk::IoMetricsPublisher::create(cmd::metrics_path(0), 0, 2));
  const auto ticks = [](std::uint64_t ns) { return runtime::CycleClock::from_ns(ns); };
  for (std::uint64_t i = 0; i < 1000; ++i) {
    q0->record(ublk::abi::IO_OP_READ, 8, 4096, ticks(shape.read_ns_base + shape.read_ns_step * i));
  }
  for (int i = 0; i < 10; ++i) {
    q0->record(ublk::abi::IO_OP_WRITE, 8, i == 0 ? -EIO : 4096, ticks(2000000));
  }
  q1->record(ublk::abi::IO_OP_FLUSH, 0, 0, ticks(100));
  q1->record(ublk::abi::IO_OP_DISCARD, 8, 0, ticks(3000));
  q1->record(ublk::abi::IO_OP_WRITE_ZEROES, 8, 0, ticks(60'000'000'000ULL));  // a minute: past every bound
  runtime::ReactorStats reactor;
  reactor.sqes_submitted.add(5);
  reactor.groups[0].runtime_ns.add(shape.busy_ns);
  publisher->publish(0, 0, *q0, reactor);
  publisher->publish(1, 1, *q1, reactor);
#if COBLK_HAVE_ZRAM
  BOOST_REQUIRE(cmd::save_record(device_record(2, "zram", 1)).ok());
  zram = require_ok(ublk::ZramStatsPublisher::create(cmd::stats_path(2)));
  ublk::ZramStats z;
  z.disksize = 1 << 30;
  z.mm.orig_data_size = 4096 * 10;
  z.io.notify_free = 7;
  z.algorithm = "lz4";
  zram->publish(z);
#endif
}

}  // namespace coblk::test
