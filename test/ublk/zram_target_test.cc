// The zram target driven through its coroutine API on a real two-core
// Runtime (no kernel: the VM tests cover the device itself).
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/zram_target.h"
#include "test/require_ok.h"
#include "test/ublk/zram_test_pages.h"

BOOST_AUTO_TEST_SUITE(ublk_zram_target_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using ublk::Request;

namespace {

compress::CodecSpec lz4() { return compress::CodecSpec{compress::Algorithm::lz4, 1}; }

Request make_request(std::uint16_t queue, std::uint64_t offset, std::vector<std::byte>& buf) {
  return test::zram_request(queue, offset, buf);
}

std::vector<std::byte> text_page(unsigned seed) {
  std::vector<std::byte> page(4096);
  for (std::size_t i = 0; i < page.size(); ++i) {
    page[i] = static_cast<std::byte>("coblk zram target "[(i + seed) % 18]);
  }
  return page;
}

template <typename F>
auto run_on_two_cores(F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  return rt->run(std::move(body));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_page_written_on_one_queue_reads_back_on_the_other) {
  const auto owned_target = test::require_ok(
      ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 1 << 20, .codec = lz4(), .queues = 2}));
  ublk::ZramTarget& target = *owned_target;
  const bool same = run_on_two_cores([&]() -> Task<bool> {
    auto written = text_page(3);
    // The request must outlive the (lazy) coroutine that reads it, so it
    // lives in the remote coroutine's own frame.
    const int w = co_await runtime::submit_to(1, [&]() -> Task<int> {
      const Request request = make_request(1, 8192, written);
      co_return co_await target.write(request);
    });
    BOOST_TEST(w == 4096);
    std::vector<std::byte> back(4096);
    const int r = co_await target.read(make_request(0, 8192, back));
    BOOST_TEST(r == 4096);
    co_return back == written;
  });
  BOOST_TEST(same);
  BOOST_TEST(target.store().mm_stat().orig_data_size == 4096u);
}

BOOST_AUTO_TEST_CASE(a_write_beyond_the_memory_limit_fails_and_keeps_the_old_data) {
  const auto owned_target = test::require_ok(ublk::ZramTarget::create(
      ublk::ZramTargetConfig{.size_bytes = 64 << 20, .codec = lz4(), .mem_limit_bytes = 1 << 20, .queues = 1}));
  ublk::ZramTarget& target = *owned_target;
  run_on_two_cores([&]() -> Task<void> {
    std::mt19937_64 rng(7);
    std::vector<std::byte> noise(4096);
    int first_failure = 0;
    std::uint64_t page = 0;
    for (; page < 16384 && first_failure == 0; ++page) {
      for (auto& b : noise) {
        b = static_cast<std::byte>(rng());
      }
      const int rc = co_await target.write(make_request(0, page * 4096, noise));
      if (rc < 0) {
        first_failure = rc;
      }
    }
    BOOST_TEST(first_failure == -EIO);
    // Page 0 still holds what was written first.
    std::mt19937_64 replay(7);
    std::vector<std::byte> expected(4096), back(4096);
    for (auto& b : expected) {
      b = static_cast<std::byte>(replay());
    }
    BOOST_TEST(co_await target.read(make_request(0, 0, back)) == 4096);
    BOOST_TEST((back == expected));
    BOOST_TEST(target.store().io_stat().failed_writes >= 1u);
  });
}

BOOST_AUTO_TEST_CASE(at_the_memory_limit_a_write_on_one_queue_reclaims_the_room_other_queues_hold) {
  // Issue 12, finding 5. A 256-page limit, two queues on two cores. Core 0
  // fills the limit with incompressible pages (one page each) and discards
  // the last 16, which its arena keeps cached (counted in mem_used_total).
  // Then core 1 overwrites every page core 0 still holds. Each overwrite
  // needs a new page before the old one is freed, and the old one is
  // core 0's: its free travels to core 0, which does no I/O and whose
  // maintenance never runs here. So every overwrite depends on core 0
  // giving back its cached pages and the frees core 1 sent it.
  constexpr std::uint64_t limit_pages = 256;
  const auto owned_target =
      test::require_ok(ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 2 * limit_pages * 4096,
                                                                       .codec = lz4(),
                                                                       .mem_limit_bytes = limit_pages * 4096,
                                                                       .queues = 2,
                                                                       .maintenance_interval = std::chrono::hours(1)}));
  ublk::ZramTarget& target = *owned_target;
  auto noise_page = [](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> page(4096);
    for (auto& b : page) {
      b = static_cast<std::byte>(rng());
    }
    return page;
  };
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
    BOOST_TEST_REQUIRE(co_await runtime::submit_to(
                           1, [&]() -> Task<int> { co_return co_await target.start_queue(1); }, "start queue 1") == 0);
    std::uint64_t filled = 0;
    for (; filled < 2 * limit_pages; ++filled) {
      auto page = noise_page(filled);
      if (co_await target.write(make_request(0, filled * 4096, page)) < 0) {
        break;
      }
    }
    BOOST_TEST_REQUIRE(filled == limit_pages);
    BOOST_TEST_REQUIRE(target.store().mm_stat().mem_used_total == limit_pages * 4096);
    const std::uint64_t kept = filled - 16;
    Request d;
    d.offset = kept * 4096;
    d.length = 16 * 4096;
    BOOST_TEST_REQUIRE(co_await target.discard(d) == 0);
    BOOST_TEST_REQUIRE(target.store().mm_stat().mem_used_total == limit_pages * 4096);  // cached, still held

    const std::uint64_t failures = co_await runtime::submit_to(
        1,
        [&]() -> Task<std::uint64_t> {
          std::uint64_t failed = 0;
          for (std::uint64_t p = 0; p < kept; ++p) {
            auto page = noise_page(1000000 + p);
            const Request request = make_request(1, p * 4096, page);
            failed += co_await target.write(request) != 4096;
          }
          co_return failed;
        },
        "overwrite on core 1");
    BOOST_TEST(failures == 0u);
    BOOST_TEST(target.store().io_stat().failed_writes == 1u);  // core 0's fill, past the limit
    for (std::uint64_t p = 0; p < kept; ++p) {
      std::vector<std::byte> back(4096);
      BOOST_TEST_REQUIRE(co_await target.read(make_request(0, p * 4096, back)) == 4096);
      BOOST_TEST_REQUIRE((back == noise_page(1000000 + p)));
    }
    BOOST_TEST(target.store().mm_stat().mem_used_total <= limit_pages * 4096);
  });
}

BOOST_AUTO_TEST_CASE(discard_frees_the_pages_and_they_read_back_as_zeros) {
  const auto owned_target = test::require_ok(
      ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 1 << 20, .codec = lz4(), .queues = 1}));
  ublk::ZramTarget& target = *owned_target;
  run_on_two_cores([&]() -> Task<void> {
    for (unsigned p = 0; p < 8; ++p) {
      auto page = text_page(p);
      BOOST_TEST(co_await target.write(make_request(0, p * 4096ull, page)) == 4096);
    }
    BOOST_TEST(target.store().mm_stat().orig_data_size == 8 * 4096u);
    Request d;
    d.offset = 0;
    d.length = 8 * 4096;
    BOOST_TEST(co_await target.discard(d) == 0);
    BOOST_TEST(target.store().mm_stat().orig_data_size == 0u);
    std::vector<std::byte> back(4096, std::byte{0xff});
    BOOST_TEST(co_await target.read(make_request(0, 4096, back)) == 4096);
    BOOST_TEST((back == std::vector<std::byte>(4096)));
  });
}

BOOST_AUTO_TEST_CASE(published_stats_are_read_back_by_the_stats_reader) {
  const std::string path = "/tmp/coblk-zram-stats-test." + std::to_string(::getpid());
  {
    const auto owned_target = test::require_ok(
        ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 1 << 20,
                                                        .codec = compress::CodecSpec{compress::Algorithm::zstd, 3},
                                                        .queues = 1,
                                                        .stats_path = path,
                                                        .maintenance_interval = std::chrono::milliseconds(5)}));
    ublk::ZramTarget& target = *owned_target;
    run_on_two_cores([&]() -> Task<void> {
      co_await target.start_queue(0);
      auto page = text_page(1);
      BOOST_TEST(co_await target.write(make_request(0, 0, page)) == 4096);
      std::vector<std::byte> zeros(4096);
      BOOST_TEST(co_await target.write(make_request(0, 4096, zeros)) == 4096);
      co_await runtime::sleep_for(std::chrono::milliseconds(50));  // a few maintenance rounds
    });
    const auto stats = test::require_ok(ublk::read_zram_stats(path));
    BOOST_TEST(stats.disksize == (1u << 20));
    BOOST_TEST(stats.algorithm == "zstd:3");
    BOOST_TEST(stats.mm.orig_data_size == 2 * 4096u);
    BOOST_TEST(stats.mm.same_pages == 1u);
    BOOST_TEST(stats.mm.compr_data_size > 0u);
    BOOST_TEST(stats.mm.compr_data_size < 4096u);
  }
  // Removed with the device.
  BOOST_TEST(test::require_error(ublk::read_zram_stats(path), ENOENT) == path + ": " + std::strerror(ENOENT));
}

BOOST_AUTO_TEST_CASE(maintenance_compacts_in_steps_and_the_queue_serves_requests_between_them) {
  // Issue 12, finding 13. A sparse store, an eager compaction policy, and
  // a request every 100 us on the queue's core while maintenance runs.
  constexpr std::uint64_t pages = 16384;
  const auto owned_target = test::require_ok(
      ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = pages * 4096,
                                                      .codec = lz4(),
                                                      .queues = 1,
                                                      .maintenance_interval = std::chrono::milliseconds(1),
                                                      .compaction = storage::CompactionPolicy{.min_span_bytes = 0}}));
  ublk::ZramTarget& target = *owned_target;
  // Pages of varied compressibility: objects in many size classes.
  auto varied_page = [](std::uint64_t seed) {
    std::vector<std::byte> page = text_page(static_cast<unsigned>(seed));
    std::mt19937_64 rng(seed);
    const std::size_t random_bytes = 64 + seed * 37 % 2000;
    for (std::size_t i = 0; i < random_bytes; ++i) {
      page[i] = static_cast<std::byte>(rng());
    }
    return page;
  };
  // Filled and checked through the store directly, as core 0, outside the
  // runtime: thousands of requests awaited in one loop that all complete
  // at once nest their frames on the stack where symmetric transfer is not
  // a tail call (the TSan build), and overflow it.
  storage::PageStore& store = target.store();
  for (std::uint64_t p = 0; p < pages; ++p) {
    BOOST_TEST_REQUIRE(store.write(0, p * 4096, varied_page(p)) == 0);
  }
  for (std::uint64_t p = 0; p < pages; ++p) {
    if (p % 4 != 0) {
      BOOST_TEST_REQUIRE(store.discard(0, p * 4096, 4096) == 0);
    }
  }
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
    int seen_compacting = 0;
    std::vector<std::byte> back(4096);
    for (std::uint64_t i = 0; i < 100000 && (store.mm_stat().pages_compacted == 0 || store.compacting(0)); ++i) {
      co_await runtime::sleep_for(std::chrono::microseconds(100));
      if (store.compacting(0)) {
        ++seen_compacting;
        // A request in the middle of a compaction.
        const std::uint64_t p = (i * 4) % pages;
        BOOST_TEST_REQUIRE(co_await target.read(make_request(0, p * 4096, back)) == 4096);
        BOOST_TEST_REQUIRE((back == varied_page(p)));
      }
    }
    BOOST_TEST(store.mm_stat().pages_compacted > 0u);
    BOOST_TEST_MESSAGE("requests served while compacting: " << seen_compacting);
    BOOST_TEST(seen_compacting > 0);
  });
  std::vector<std::byte> back(4096);
  for (std::uint64_t p = 0; p < pages; p += 4) {
    BOOST_TEST_REQUIRE(store.read(0, p * 4096, back) == 0);
    BOOST_TEST_REQUIRE((back == varied_page(p)));
  }
}

BOOST_AUTO_TEST_CASE(a_size_that_is_not_a_whole_number_of_pages_is_rejected) {
  BOOST_TEST(test::require_error(
                 ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 4097, .codec = lz4(), .queues = 1}),
                 EINVAL) == "device size must be a non-zero multiple of 4096 bytes, got 4097");
  BOOST_TEST(test::require_error(
                 ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 4096, .codec = lz4(), .queues = 0}),
                 EINVAL) == "zram: at least one queue is needed");
}

BOOST_AUTO_TEST_CASE(a_stats_path_that_cannot_be_created_is_reported) {
  const auto target = ublk::ZramTarget::create(ublk::ZramTargetConfig{
      .size_bytes = 4096, .codec = lz4(), .queues = 1, .stats_path = "/nonexistent/coblk-zram-stats"});
  BOOST_TEST(test::require_error(target, ENOENT) ==
             std::string("cannot create /nonexistent/coblk-zram-stats: ") + std::strerror(ENOENT));
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_stats_file_is_rejected) {
  BOOST_TEST(test::require_error(ublk::read_zram_stats("/proc/self/status"), EINVAL) ==
             "/proc/self/status: not a coblk zram stats file");
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_zram_target_test
