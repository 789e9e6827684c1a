// Per-queue I/O metrics (ublk/io_metrics.h) and their shared file
// (ublk/io_metrics_file.h): what a request counts as, published figures read
// back exactly, consistent slots while a core keeps publishing, and files
// of other servers left alone.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/ublk/io_metrics_file.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_io_metrics_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

struct MetricsPath {
  std::string dir;
  std::string path;
  MetricsPath() {
    char tmpl[] = "/tmp/coblk-io-metrics-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/3.metrics";
  }
  ~MetricsPath() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
};

// Ticks for `ns` nanoseconds.
std::uint64_t ticks(std::uint64_t ns) { return runtime::CycleClock::from_ns(ns); }

constexpr unsigned kRead = 0, kWrite = 1, kFlush = 2, kDiscard = 3, kWriteZeroes = 4;

}  // namespace

BOOST_AUTO_TEST_CASE(operation_names_and_codes) {
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_READ) == kRead);
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_WRITE) == kWrite);
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_FLUSH) == kFlush);
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_DISCARD) == kDiscard);
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_WRITE_ZEROES) == kWriteZeroes);
  BOOST_TEST(ublk::metric_op_of(ublk::abi::IO_OP_ZONE_APPEND) == ublk::kMetricOps);
  BOOST_TEST(std::string(ublk::metric_op_name(kWriteZeroes)) == "write_zeroes");
  BOOST_TEST(std::string(ublk::metric_op_name(99)) == "unknown");
}

BOOST_AUTO_TEST_CASE(a_request_counts_its_operation_bytes_error_and_latency) {
  auto m = std::make_unique<ublk::QueueMetrics>();
  m->record(ublk::abi::IO_OP_READ, 8, 4096, ticks(20000));
  m->record(ublk::abi::IO_OP_READ, 8, 4096, ticks(40000));
  m->record(ublk::abi::IO_OP_WRITE, 256, -EIO, ticks(1000));      // failed: no bytes
  m->record(ublk::abi::IO_OP_FLUSH, 0xffffffffU, 0, ticks(500));  // a flush carries no range
  m->record(ublk::abi::IO_OP_DISCARD, 2048, 0, ticks(700));       // a discard counts its range
  m->record(ublk::abi::IO_OP_ZONE_OPEN, 8, 0, ticks(700));        // not counted
  const ublk::OpMetrics& read = m->op(kRead);
  BOOST_TEST(read.requests.get() == 2U);
  BOOST_TEST(read.bytes.get() == 8192U);
  BOOST_TEST(read.errors.get() == 0U);
  const auto lat = read.latency_ns.counts();
  BOOST_TEST(lat.count() == 2U);
  // The ticks came from nanoseconds and go back: within a rounding.
  BOOST_TEST(lat.sum >= 59990U);
  BOOST_TEST(lat.sum <= 60010U);
  BOOST_TEST(lat.percentile(0.5) >= 19990U);
  BOOST_TEST(lat.percentile(0.5) < 21300U);  // one bucket (1/16) above at most
  BOOST_TEST(m->op(kWrite).requests.get() == 1U);
  BOOST_TEST(m->op(kWrite).errors.get() == 1U);
  BOOST_TEST(m->op(kWrite).bytes.get() == 0U);
  BOOST_TEST(m->op(kFlush).requests.get() == 1U);
  BOOST_TEST(m->op(kFlush).bytes.get() == 0U);
  BOOST_TEST(m->op(kDiscard).bytes.get() == 2048U * 512);
  BOOST_TEST(m->op(kWriteZeroes).requests.get() == 0U);
}

BOOST_AUTO_TEST_CASE(published_figures_read_back) {
  MetricsPath p;
  auto created = test::require_ok(ublk::IoMetricsPublisher::create(p.path, 3, 2));
  auto& publisher = *created;
  auto q0 = std::make_unique<ublk::QueueMetrics>();
  auto q1 = std::make_unique<ublk::QueueMetrics>();
  for (int i = 0; i < 100; ++i) q0->record(ublk::abi::IO_OP_READ, 8, 4096, ticks(10000 + i));
  q1->record(ublk::abi::IO_OP_WRITE_ZEROES, 16, 0, ticks(3000));
  runtime::ReactorStats reactor;
  reactor.sqes_submitted.add(11);
  reactor.cqes_reaped.add(12);
  reactor.stalls.add(1);
  reactor.groups[0].runtime_ns.add(1000);
  reactor.groups[1].runtime_ns.add(234);

  // Before any publish the file is whole, and every slot empty.
  const auto empty = test::require_ok(ublk::read_io_metrics(p.path));
  BOOST_TEST(empty.dev_id == 3U);
  BOOST_TEST(empty.queues.size() == 2U);
  BOOST_TEST(empty.queues[0].publishes == 0U);
  BOOST_TEST(empty.pid == static_cast<std::uint64_t>(::getpid()));

  publisher.publish(0, 0, *q0, reactor);
  publisher.publish(1, 1, *q1, reactor);
  publisher.publish(1, 1, *q1, reactor);
  const auto read = test::require_ok(ublk::read_io_metrics(p.path));
  const ublk::QueueSnapshot& s0 = read.queues[0];
  const ublk::QueueSnapshot& s1 = read.queues[1];
  BOOST_TEST(s0.publishes == 1U);
  BOOST_TEST(s1.publishes == 2U);
  BOOST_TEST(s1.core == 1U);
  BOOST_TEST(s0.updated_ns > 0U);
  BOOST_TEST(s0.ops[kRead].requests == 100U);
  BOOST_TEST(s0.ops[kRead].bytes == 100U * 4096);
  BOOST_TEST(s0.ops[kRead].latency_ns.count() == 100U);
  BOOST_TEST(s0.ops[kRead].latency_ns.sum == q0->op(kRead).latency_ns.sum());
  BOOST_TEST((s0.ops[kRead].latency_ns.buckets == q0->op(kRead).latency_ns.counts().buckets));
  BOOST_TEST(s1.ops[kWriteZeroes].bytes == 16U * 512);
  BOOST_TEST(s1.ops[kRead].requests == 0U);
  BOOST_TEST(s0.reactor.sqes_submitted == 11U);
  BOOST_TEST(s0.reactor.cqes_reaped == 12U);
  BOOST_TEST(s0.reactor.stalls == 1U);
  BOOST_TEST(s0.reactor.busy_ns == 1234U);

  // The file goes with its publisher.
  created.reset();
  BOOST_TEST(::access(p.path.c_str(), F_OK) != 0);
}

BOOST_AUTO_TEST_CASE(bad_files_and_queue_counts_are_refused) {
  MetricsPath p;
  BOOST_TEST(ublk::read_io_metrics(p.path).error().code() == ENOENT);
  std::ofstream(p.path) << "not metrics at all, and far too short\n";
  BOOST_TEST(ublk::read_io_metrics(p.path).error().code() == EINVAL);
  BOOST_TEST(ublk::IoMetricsPublisher::create(p.path, 0, 0).error().code() == EINVAL);
  BOOST_TEST(ublk::IoMetricsPublisher::create(p.path, 0, ublk::kMaxMetricsQueues + 1).error().code() == EINVAL);
  // A truncated file (someone cut it) is not read past its end.
  {
    const auto created = test::require_ok(ublk::IoMetricsPublisher::create(p.path, 0, 4));
    BOOST_TEST(::truncate(p.path.c_str(), 8192) == 0);
    BOOST_TEST(ublk::read_io_metrics(p.path).error().code() == EINVAL);
  }
  // A symbolic link is neither followed by the reader nor by a publisher.
  const std::string target = p.dir + "/target";
  std::ofstream(target) << "precious";
  const std::string link = p.dir + "/5.metrics";
  BOOST_TEST(::symlink(target.c_str(), link.c_str()) == 0);
  BOOST_TEST(!ublk::read_io_metrics(link).ok());
  { const auto created = test::require_ok(ublk::IoMetricsPublisher::create(link, 5, 1)); }
  std::ifstream in(target);
  std::string text;
  in >> text;
  BOOST_TEST(text == "precious");
}

BOOST_AUTO_TEST_CASE(a_newer_servers_file_is_not_removed_by_an_older_one) {
  MetricsPath p;
  auto old_one = test::require_ok(ublk::IoMetricsPublisher::create(p.path, 3, 1));
  const auto new_one = test::require_ok(ublk::IoMetricsPublisher::create(p.path, 3, 2));
  old_one.reset();
  const auto read = test::require_ok(ublk::read_io_metrics(p.path));
  BOOST_TEST(read.queues.size() == 2U);
}

BOOST_AUTO_TEST_CASE(slots_are_consistent_while_a_core_keeps_publishing) {
  // One thread records and publishes as a queue's core does; the reader must
  // never see a slot whose request count and histogram disagree.
  MetricsPath p;
  const auto created = test::require_ok(ublk::IoMetricsPublisher::create(p.path, 1, 1));
  auto& publisher = *created;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto m = std::make_unique<ublk::QueueMetrics>();
    runtime::ReactorStats reactor;
    std::uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 50; ++k, ++i) {
        m->record(static_cast<std::uint8_t>(i % 2), 8, 0, i * 37 % 100000);
        reactor.cqes_reaped.add();
      }
      publisher.publish(0, 0, *m, reactor);
    }
  });
  unsigned reads = 0;
  std::uint64_t last = 0;
  bool consistent = true;
  bool monotonic = true;
  for (; reads < 2000; ++reads) {
    auto r = ublk::read_io_metrics(p.path);
    if (!r) {
      BOOST_TEST(r.error().code() == EAGAIN);  // a busy writer, never a torn file
      continue;
    }
    const ublk::QueueSnapshot& s = r->queues[0];
    const std::uint64_t total = s.ops[0].requests + s.ops[1].requests;
    consistent = consistent && s.ops[0].latency_ns.count() == s.ops[0].requests &&
                 s.ops[1].latency_ns.count() == s.ops[1].requests && s.reactor.cqes_reaped == total &&
                 s.ops[0].bytes == s.ops[0].requests * 4096;
    monotonic = monotonic && total >= last;
    last = total;
  }
  stop = true;
  writer.join();
  BOOST_TEST(consistent);
  BOOST_TEST(monotonic);
  BOOST_TEST(last > 0U);
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_io_metrics_test
