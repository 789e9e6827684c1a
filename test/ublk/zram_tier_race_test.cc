// The zram target's backing tier under concurrent writeback: two queues
// at a small memory limit, with the maintenance task writing back every
// few milliseconds while writes at the limit write back too, on the same
// cores. Every page must read back exactly, never with other data.
//
// History: the NBD tier's test once chose between an inline co_await and a
// submit_to with ?: in a compound assignment, which GCC 12 compiles into
// running both arms: two threads then used one store core, and pages came
// back wrong. The second case is that pattern written correctly;
// scripts/check-style now refuses co_await inside ?:.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/zram_target.h"
#include "test/require_ok.h"
#include "test/ublk/zram_test_pages.h"

BOOST_AUTO_TEST_SUITE(ublk_zram_tier_race_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;
using runtime::Task;

namespace {

constexpr std::uint64_t page = 4096;
constexpr std::uint64_t pages = 1024;  // a 4 MiB device

// A backing file in /tmp, removed at the end.
struct TierFile {
  std::string path;
  TierFile() {
    char name[] = "/tmp/coblk-tier-race-XXXXXX";
    const int fd = ::mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    path = name;
    BOOST_REQUIRE_EQUAL(::ftruncate(fd, 8 << 20), 0);
    ::close(fd);
  }
  ~TierFile() { ::unlink(path.c_str()); }
  TierFile(const TierFile&) = delete;
  TierFile& operator=(const TierFile&) = delete;
};

// Two queues at a quarter of what is written, with the tier in `file`.
std::unique_ptr<ublk::ZramTarget> make_target(const TierFile& file, std::chrono::milliseconds maintenance) {
  ublk::ZramTargetConfig c;
  c.size_bytes = pages * page;
  c.codec = compress::CodecSpec{compress::Algorithm::lz4, 1};
  c.mem_limit_bytes = 1 << 20;
  c.queues = 2;
  c.backing_path = file.path;
  c.maintenance_interval = maintenance;
  return test::require_ok(ublk::ZramTarget::create(c));
}

struct Counts {
  int exact = 0;
  int eio = 0;
  int wrong = 0;
};

// Writes queue q's pages (q, q+2, ...) of `round` on the calling core,
// going back to the reactor now and then when `yield_often`. Returns the
// writes that failed.
Task<int> fill(ublk::ZramTarget& target, std::uint16_t q, std::uint64_t round, bool yield_often) {
  int bad = 0;
  std::vector<std::byte> buf;
  for (std::uint64_t i = q; i < pages; i += 2) {
    buf = test::random_page(i, round);
    if (co_await target.write(test::zram_request(q, i * page, buf)) != static_cast<int>(page)) ++bad;
    if (yield_often && i % 64 < 2) co_await runtime::yield();
  }
  co_return bad;
}

// fill() on core 1, as a task of its own.
Task<int> fill_on_core_1(ublk::ZramTarget& target, std::uint16_t q, std::uint64_t round) {
  co_return co_await runtime::submit_to(1, [&target, q, round] { return fill(target, q, round, true); });
}

// Reads pages first, first+step, ... of `round` on queue q (calling core).
Task<Counts> check(ublk::ZramTarget& target, std::uint16_t q, std::uint64_t first, std::uint64_t step,
                   std::uint64_t round) {
  Counts out;
  test::AlignedPage buf;
  for (std::uint64_t i = first; i < pages; i += step) {
    const int rc = co_await target.read(test::zram_request(q, i * page, buf.span()));
    if (rc == static_cast<int>(page) && buf.holds(test::random_page(i, round))) {
      ++out.exact;
    } else if (rc == -EIO) {
      ++out.eio;
    } else {
      ++out.wrong;
    }
  }
  co_return out;
}

void add(Counts& total, const Counts& c) {
  total.exact += c.exact;
  total.eio += c.eio;
  total.wrong += c.wrong;
}

// Starts both queues of `target` on a two-core Runtime and runs `body`.
template <typename Body>
void run_started(ublk::ZramTarget& target, Body body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  rt->run([&]() -> Task<void> {
    BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
    BOOST_TEST_REQUIRE(co_await runtime::submit_to(1, [&] { return target.start_queue(1); }) == 0);
    co_await body();
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(pages_written_back_by_maintenance_and_by_writes_at_the_limit_at_once_read_back_exactly) {
  constexpr std::uint64_t rounds = 4;
  TierFile file;
  const auto target = make_target(file, 5ms);
  Counts total;
  int failed_writes = 0;
  run_started(*target, [&]() -> Task<void> {
    for (std::uint64_t round = 0; round < rounds; ++round) {
      // Both queues fill at once; then each page is read on the queue
      // that did not write it.
      std::vector<Task<int>> both;
      both.push_back(fill(*target, 0, round, true));
      both.push_back(fill_on_core_1(*target, 1, round));
      for (int bad : co_await runtime::when_all(std::move(both))) failed_writes += bad;
      add(total, co_await check(*target, 0, 1, 2, round));
      add(total, co_await runtime::submit_to(1, [&] { return check(*target, 1, 0, 2, round); }));
    }
  });
  BOOST_TEST_MESSAGE("exact " << total.exact << ", eio " << total.eio << ", wrong " << total.wrong << ", written back "
                              << target->snapshot().tier.written_back_pages);
  BOOST_TEST(failed_writes == 0);
  BOOST_TEST(total.wrong == 0);
  BOOST_TEST(total.eio == 0);
  BOOST_TEST(total.exact == static_cast<int>(pages * rounds));
}

BOOST_AUTO_TEST_CASE(pages_filled_queue_by_queue_then_read_on_both_queues_read_back_exactly) {
  // The NBD tier test's pattern, with a file tier: queue 0 fills its
  // pages, then queue 1, then every page is read on each queue.
  TierFile file;
  const auto target = make_target(file, 20ms);
  Counts total;
  int failed_writes = 0;
  run_started(*target, [&]() -> Task<void> {
    failed_writes += co_await fill(*target, 0, 0, false);
    failed_writes += co_await runtime::submit_to(1, [&] { return fill(*target, 1, 0, false); });
    add(total, co_await check(*target, 0, 0, 1, 0));
    add(total, co_await runtime::submit_to(1, [&] { return check(*target, 1, 0, 1, 0); }));
  });
  BOOST_TEST_MESSAGE("exact " << total.exact << ", eio " << total.eio << ", wrong " << total.wrong << ", written back "
                              << target->snapshot().tier.written_back_pages);
  BOOST_TEST(failed_writes == 0);
  BOOST_TEST(total.wrong == 0);
  BOOST_TEST(total.eio == 0);
  BOOST_TEST(total.exact == static_cast<int>(2 * pages));
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_zram_tier_race_test
