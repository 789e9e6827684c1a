// `coblk top`'s frame: rates from two snapshots, the formats of its narrow
// columns, and how a frame is fitted to the terminal.
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "coblk/cmd/size_parse.h"
#include "coblk/cmd/top_frame.h"

BOOST_AUTO_TEST_SUITE(cmd_top_frame_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr unsigned kRead = static_cast<unsigned>(ublk::MetricOp::read);
constexpr unsigned kWrite = static_cast<unsigned>(ublk::MetricOp::write);

// Adds `n` samples of `ns` nanoseconds to an operation.
void add_samples(ublk::OpSnapshot& op, std::uint64_t n, std::uint64_t ns, std::uint64_t bytes_each) {
  op.requests += n;
  op.bytes += n * bytes_each;
  op.latency_ns.buckets[runtime::LatencyBuckets::bucket_of(ns)] += n;
  op.latency_ns.sum += n * ns;
}

ublk::QueueSnapshot published(unsigned core, std::uint64_t publishes, std::uint64_t busy_ns) {
  ublk::QueueSnapshot q;
  q.core = core;
  q.publishes = publishes;
  q.updated_ns = publishes;
  q.reactor.busy_ns = busy_ns;
  return q;
}

cmd::DeviceMetrics device(std::uint32_t id, const char* target, std::vector<ublk::QueueSnapshot> queues) {
  cmd::DeviceMetrics d;
  d.record.dev_id = id;
  d.record.target = target;
  d.record.queues = static_cast<unsigned>(queues.size());
  ublk::IoMetricsSnapshot io;
  io.dev_id = id;
  io.pid = 42;
  io.queues = std::move(queues);
  d.io = io;
  return d;
}

bool contains(const std::vector<std::string>& lines, const std::string& text) {
  for (const std::string& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rates_are_the_counters_differences_over_the_interval) {
  ublk::QueueSnapshot before = published(0, 5, 1'000'000'000);
  add_samples(before.ops[kRead], 100, 10'000, 4096);
  ublk::QueueSnapshot now = before;
  now.publishes = 7;
  now.reactor.busy_ns += 500'000'000;                     // half of two seconds: 25%
  add_samples(now.ops[kRead], 2000, 20'000, 4096);        // 1000 reads/s, 4.096 MB/s
  add_samples(now.ops[kWrite], 400, 1'000'000, 1 << 20);  // 200 writes/s, 209.7 MB/s
  const auto r = cmd::rates_between(before, now, 2.0);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->read_iops == 1000.0);
  BOOST_TEST(r->write_iops == 200.0);
  BOOST_TEST(r->read_mbps == 4.096, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(r->write_mbps == 209.7152, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(r->requests == 2400U);
  BOOST_REQUIRE(r->busy_pct.has_value());
  BOOST_TEST(*r->busy_pct == 25.0, boost::test_tools::tolerance(1e-9));
  // 2400 samples in the interval, 400 of them (16.7%) at 1 ms: the p99 is
  // in the 1 ms bucket, not the 10 us of the samples before the interval.
  BOOST_REQUIRE(r->p99_ns.has_value());
  BOOST_TEST(*r->p99_ns >= 1'000'000U);
  BOOST_TEST(*r->p99_ns < 1'070'000U);
}

BOOST_AUTO_TEST_CASE(the_p99_covers_only_the_interval_s_samples) {
  ublk::QueueSnapshot before = published(0, 1, 0);
  add_samples(before.ops[kRead], 1000, 5'000'000, 4096);  // slow, but before the interval
  ublk::QueueSnapshot now = before;
  now.publishes = 2;
  add_samples(now.ops[kRead], 1000, 2'000, 4096);
  const auto r = cmd::rates_between(before, now, 1.0);
  BOOST_REQUIRE(r.has_value());
  BOOST_REQUIRE(r->p99_ns.has_value());
  BOOST_TEST(*r->p99_ns < 2'200U);
}

BOOST_AUTO_TEST_CASE(an_idle_interval_has_rates_of_zero_and_no_p99) {
  ublk::QueueSnapshot before = published(1, 3, 10);
  add_samples(before.ops[kRead], 10, 1000, 512);
  ublk::QueueSnapshot now = before;
  now.publishes = 4;
  const auto r = cmd::rates_between(before, now, 1.0);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->read_iops == 0.0);
  BOOST_TEST(!r->p99_ns.has_value());
  BOOST_TEST(*r->busy_pct == 0.0);
}

BOOST_AUTO_TEST_CASE(counters_that_went_back_or_no_time_give_no_rates) {
  ublk::QueueSnapshot before = published(0, 10, 100);
  add_samples(before.ops[kWrite], 50, 1000, 4096);
  ublk::QueueSnapshot restarted = published(0, 2, 5);  // a new server: counters from zero
  add_samples(restarted.ops[kWrite], 5, 1000, 4096);
  BOOST_TEST(!cmd::rates_between(before, restarted, 1.0).has_value());
  BOOST_TEST(!cmd::rates_between(before, before, 0.0).has_value());
  BOOST_TEST(!cmd::rates_between(before, published(0, 0, 0), 1.0).has_value());  // never published
}

BOOST_AUTO_TEST_CASE(narrow_columns_format_rates_latencies_and_sizes_with_their_units) {
  BOOST_TEST(cmd::format_rate(0.2) == "0");
  BOOST_TEST(cmd::format_rate(950) == "950");
  BOOST_TEST(cmd::format_rate(12345) == "12.3k");
  BOOST_TEST(cmd::format_rate(1'250'000) == "1.25M");
  BOOST_TEST(cmd::format_latency(850) == "850ns");
  BOOST_TEST(cmd::format_latency(12'500) == "12.5us");
  BOOST_TEST(cmd::format_latency(1'200'000) == "1.20ms");
  BOOST_TEST(cmd::format_latency(3'400'000'000ULL) == "3.40s");
  BOOST_TEST(cmd::format_bytes(0) == "0B");
  BOOST_TEST(cmd::format_bytes(4096) == "4K");
  BOOST_TEST(cmd::format_bytes(1536 * 1024) == "1.5M");
}

BOOST_AUTO_TEST_CASE(a_frame_has_a_row_per_device_and_per_queue) {
  cmd::TopSnapshot before{1'000'000'000, {device(3, "null", {published(0, 1, 0), published(1, 1, 0)})}};
  cmd::TopSnapshot now = before;
  now.taken_ns += 1'000'000'000;
  for (auto& q : now.devices[0].io->queues) {
    q.publishes = 2;
    q.reactor.busy_ns = 500'000'000;
    add_samples(q.ops[kRead], 5000, 30'000, 4096);
  }
  const auto lines = cmd::render_top_frame(&before, now, {}, "title");
  BOOST_REQUIRE_EQUAL(lines.size(), 5U);  // title, header, device, two queues
  BOOST_TEST(lines[0] == "title");
  BOOST_TEST(lines[1].find("DEVICE") == 0U);
  BOOST_TEST(lines[1].find("R_IOPS") != std::string::npos);
  BOOST_TEST(lines[2].find("ublkb3") == 0U);
  BOOST_TEST(lines[2].find("10.0k") != std::string::npos);  // both queues' reads
  BOOST_TEST(lines[2].find("null") != std::string::npos);
  BOOST_TEST(lines[3].find("  q0") == 0U);
  BOOST_TEST(lines[3].find("5000") != std::string::npos);
  BOOST_TEST(lines[3].find(" 50") != std::string::npos);  // busy %
}

BOOST_AUTO_TEST_CASE(the_first_frame_shows_no_rates_yet) {
  const cmd::TopSnapshot now{5, {device(0, "ram", {published(0, 3, 0)})}};
  const auto lines = cmd::render_top_frame(nullptr, now, {}, "t");
  BOOST_REQUIRE_GE(lines.size(), 3U);
  BOOST_TEST(lines[2].find("ublkb0") == 0U);
  BOOST_TEST(lines[2].find(" -") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_devices_say_so) {
  const auto lines = cmd::render_top_frame(nullptr, cmd::TopSnapshot{}, {}, "t");
  BOOST_REQUIRE_EQUAL(lines.size(), 2U);
  BOOST_TEST(lines[1] == "no coblk devices");
}

BOOST_AUTO_TEST_CASE(a_device_without_metrics_says_why) {
  cmd::DeviceMetrics d;
  d.record.dev_id = 7;
  d.record.target = "loop";
  const auto lines = cmd::render_top_frame(nullptr, cmd::TopSnapshot{0, {d}}, {}, "t");
  BOOST_TEST(contains(lines, "ublkb7"));
  BOOST_TEST(contains(lines, "no metrics published"));
}

BOOST_AUTO_TEST_CASE(a_narrow_terminal_drops_the_least_useful_columns_then_cuts_lines) {
  const cmd::TopSnapshot now{0, {device(12, "zram", {published(0, 1, 0)})}};
  const auto wide = cmd::render_top_frame(nullptr, now, {200, 0}, "t");
  BOOST_TEST(wide[1].find("CORE") != std::string::npos);
  BOOST_TEST(wide[1].find("TARGET") != std::string::npos);
  const auto narrow = cmd::render_top_frame(nullptr, now, {40, 0}, "t");
  for (const std::string& line : narrow) BOOST_TEST(line.size() <= 40U);
  BOOST_TEST(narrow[1].find("DEVICE") == 0U);
  BOOST_TEST(narrow[1].find("R_IOPS") != std::string::npos);  // the essentials stay
  BOOST_TEST(narrow[1].find("W_IOPS") != std::string::npos);
  BOOST_TEST(narrow[1].find("CORE") == std::string::npos);  // the rest went first
  BOOST_TEST(narrow[1].find("TARGET") == std::string::npos);
  const auto tiny = cmd::render_top_frame(nullptr, now, {10, 0}, "a long title line");
  for (const std::string& line : tiny) BOOST_TEST(line.size() <= 10U);
}

BOOST_AUTO_TEST_CASE(a_short_terminal_cuts_rows_and_says_how_many) {
  std::vector<ublk::QueueSnapshot> queues;
  for (unsigned q = 0; q < 8; ++q) queues.push_back(published(q, 1, 0));
  const cmd::TopSnapshot now{0, {device(1, "null", queues)}};
  const auto all = cmd::render_top_frame(nullptr, now, {}, "t");
  BOOST_REQUIRE_EQUAL(all.size(), 11U);
  const auto cut = cmd::render_top_frame(nullptr, now, {80, 6}, "t");
  BOOST_REQUIRE_EQUAL(cut.size(), 6U);
  BOOST_TEST(cut[4] == all[4]);
  BOOST_TEST(cut[5].find("6 more lines") != std::string::npos);
}

#if COBLK_HAVE_ZRAM
BOOST_AUTO_TEST_CASE(a_zram_device_shows_its_ratio_memory_and_tier) {
  cmd::DeviceMetrics d = device(4, "zram", {published(0, 1, 0)});
  ublk::ZramStats z;
  z.algorithm = "lz4";
  z.mm.orig_data_size = 40 << 20;
  z.mm.mem_used_total = 10 << 20;
  z.mm.mem_limit = 64 << 20;
  z.tier_state = ublk::TierState::active;
  z.tier.written_back_pages = 300;
  z.bd.bd_count = 300;
  z.tier.backing_blocks = 4096;
  d.zram = z;
  const auto lines = cmd::render_top_frame(nullptr, cmd::TopSnapshot{0, {d}}, {}, "t");
  BOOST_TEST(contains(lines, "zram lz4: ratio 4.00"));
  BOOST_TEST(contains(lines, "mem 10M / 64M"));
  BOOST_TEST(contains(lines, "300 pages written back (1.2M of 16M)"));
  d.zram->mm = {};
  const auto empty = cmd::render_top_frame(nullptr, cmd::TopSnapshot{0, {d}}, {}, "t");
  BOOST_TEST(contains(empty, "ratio -"));
  BOOST_TEST(contains(empty, "no limit"));
  // Everything discarded while the allocator still holds a page: no data,
  // so no ratio either (not 0.00).
  d.zram->mm.mem_used_total = 4096;
  const auto freed = cmd::render_top_frame(nullptr, cmd::TopSnapshot{0, {d}}, {}, "t");
  BOOST_TEST(contains(freed, "ratio -"));
}
#endif

BOOST_AUTO_TEST_SUITE_END()  // cmd_top_frame_test
