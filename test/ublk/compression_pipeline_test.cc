// The zram target with asynchronous compression (--compress-cores), driven
// through its coroutine API on a real two-core Runtime: a model test of the
// whole pipeline (staging, compression tasks on both cores, the inline
// fallback when the staging area is full, reads of staged pages,
// overwrites, partial writes and discards) against a reference array; and
// in crash-safe memory, pages left staged are recovered by a new target.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/zram_target.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"
#include "test/ublk/zram_test_pages.h"

BOOST_AUTO_TEST_SUITE(ublk_compression_pipeline_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using ublk::Request;

namespace {

constexpr std::size_t ps = 4096;

compress::CodecSpec lz4() { return compress::CodecSpec{compress::Algorithm::lz4, 1}; }

Request make_request(std::uint16_t queue, std::uint64_t offset, std::vector<std::byte>& buf) {
  return test::zram_request(queue, offset, buf);
}

std::vector<std::byte> page_of(std::uint64_t seed) {
  std::vector<std::byte> p(ps);
  storage_test::make_page(p, seed);
  return p;
}

// One queue's random operations on its own pages [first, first + count),
// checked against `model` (that queue's pages only, so exact). Returns the
// number of mismatches.
Task<int> random_ops(ublk::ZramTarget& target, std::uint16_t queue, std::uint64_t first, std::uint64_t count,
                     std::vector<std::vector<std::byte>>& model, int ops, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  int wrong = 0;
  std::vector<std::byte> buf;
  for (int op = 0; op < ops; ++op) {
    const std::uint64_t index = first + rng() % count;
    const unsigned kind = static_cast<unsigned>(rng() % 10);
    if (kind < 5) {
      // Whole pages, one to four: staged.
      const std::uint64_t n = std::min<std::uint64_t>(1 + rng() % 4, first + count - index);
      buf.resize(n * ps);
      for (std::uint64_t k = 0; k < n; ++k) {
        auto page = page_of(seed * 1000003 + static_cast<std::uint64_t>(op) * 8 + k);
        if (rng() % 8 == 0) std::fill(page.begin(), page.end(), std::byte{0});  // same-filled
        std::memcpy(buf.data() + k * ps, page.data(), ps);
        model[index + k] = page;
      }
      if (co_await target.write(make_request(queue, index * ps, buf)) != static_cast<int>(buf.size())) ++wrong;
    } else if (kind < 6) {
      // A partial write: read-modify-write of a (possibly staged) page.
      const std::uint32_t at = static_cast<std::uint32_t>(rng() % 8) * 512;
      buf.assign(512, static_cast<std::byte>(rng()));
      std::memcpy(model[index].data() + at, buf.data(), buf.size());
      if (co_await target.write(make_request(queue, index * ps + at, buf)) != 512) ++wrong;
    } else if (kind < 7) {
      Request r;
      r.queue = queue;
      r.offset = index * ps;
      r.length = ps;
      if (co_await target.discard(r) != 0) ++wrong;
      model[index].assign(ps, std::byte{0});
    } else {
      buf.assign(ps, std::byte{0xee});
      if (co_await target.read(make_request(queue, index * ps, buf)) != static_cast<int>(ps) || buf != model[index]) {
        ++wrong;
      }
    }
    if (op % 16 == 0) {
      co_await runtime::yield();  // let the compression tasks run (and unwind the stack)
    }
  }
  co_return wrong;
}

// Waits (up to 10 s) until no page is staged.
Task<bool> drained(ublk::ZramTarget& target) {
  for (int i = 0; i < 10000; ++i) {
    if (target.store().mm_stat().staged_pages == 0) co_return true;
    co_await runtime::sleep_for(std::chrono::milliseconds(1));
  }
  co_return false;
}

void run_model(unsigned queues, unsigned workers, std::uint32_t slots_per_lane) {
  constexpr std::uint64_t pages = 512;
  const auto owned = test::require_ok(ublk::ZramTarget::create(ublk::ZramTargetConfig{
      .size_bytes = pages * ps,
      .codec = lz4(),
      .queues = queues,
      .compress_workers = workers,
      .staging_per_lane = slots_per_lane,
  }));
  ublk::ZramTarget& target = *owned;
  std::vector<std::vector<std::byte>> model(pages, std::vector<std::byte>(ps));
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  const int wrong = rt->run([&]() -> Task<int> {
    BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
    if (queues > 1) {
      BOOST_TEST_REQUIRE(
          co_await runtime::submit_to(1, [&]() -> Task<int> { co_return co_await target.start_queue(1); }) == 0);
    }
    int bad = 0;
    if (queues > 1) {
      auto remote = [&]() -> Task<int> {
        co_return co_await runtime::submit_to(
            1, [&]() -> Task<int> { co_return co_await random_ops(target, 1, pages / 2, pages / 2, model, 3000, 2); });
      };
      std::vector<Task<int>> both;
      both.push_back(random_ops(target, 0, 0, pages / 2, model, 3000, 1));
      both.push_back(remote());
      const std::vector<int> counts = co_await runtime::when_all(std::move(both));
      bad = counts[0] + counts[1];
    } else {
      bad = co_await random_ops(target, 0, 0, pages, model, 6000, 3);
    }
    BOOST_TEST(co_await drained(target));
    // Everything again, from the other core, once the pipeline is idle.
    bad += co_await runtime::submit_to(1, [&]() -> Task<int> {
      int mismatches = 0;
      std::vector<std::byte> back(ps);
      for (std::uint64_t p = 0; p < pages; ++p) {
        if (co_await target.read(make_request(queues > 1 ? 1 : 0, p * ps, back)) != static_cast<int>(ps) ||
            back != model[p]) {
          ++mismatches;
        }
        if (p % 16 == 0) co_await runtime::yield();
      }
      co_return mismatches;
    });
    co_return bad;
  });
  BOOST_TEST(wrong == 0);
  BOOST_TEST(target.store().mm_stat().staged_pages == 0u);
  BOOST_TEST_MESSAGE("pages compressed inline (staging full): " << target.pipeline()->inline_pages());
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_queues_with_a_compression_task_on_each_core_serve_exactly_the_written_data) {
  run_model(2, 2, 64);
}

BOOST_AUTO_TEST_CASE(one_queue_with_a_second_core_only_for_compression_serves_exactly_the_written_data) {
  run_model(1, 2, 64);
}

BOOST_AUTO_TEST_CASE(a_staging_area_of_one_slot_falls_back_to_inline_compression_and_loses_nothing) {
  run_model(2, 1, 1);
}

BOOST_AUTO_TEST_CASE(pages_staged_until_they_fill_the_memory_limit_are_installed_and_writes_go_on_after_discards) {
  // Sixteen pages of room, and a lane of sixteen slots: one write stages
  // them all, and no room is left for the span their objects need.
  constexpr std::uint64_t pages = 64;
  const auto owned = test::require_ok(ublk::ZramTarget::create(ublk::ZramTargetConfig{
      .size_bytes = pages * ps,
      .codec = lz4(),
      .mem_limit_bytes = 16 * ps,
      .queues = 1,
      .compress_workers = 1,
      .staging_per_lane = 16,
  }));
  ublk::ZramTarget& target = *owned;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  rt->run([&]() -> Task<void> {
    BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
    std::vector<std::byte> sixteen(16 * ps);
    for (std::uint64_t k = 0; k < 16; ++k) {
      const auto page = page_of(700 + k);
      std::memcpy(sixteen.data() + k * ps, page.data(), ps);
    }
    BOOST_TEST_REQUIRE(co_await target.write(make_request(0, 0, sixteen)) == static_cast<int>(sixteen.size()));
    // Every staged page is installed: none waits for room another holds.
    BOOST_TEST(co_await drained(target));
    Request r;
    r.offset = 15 * ps;
    r.length = ps;
    BOOST_TEST_REQUIRE(co_await target.discard(r) == 0);
    auto more = page_of(800);
    BOOST_TEST(co_await target.write(make_request(0, 20 * ps, more)) == static_cast<int>(ps));
    BOOST_TEST(co_await drained(target));
    std::vector<std::byte> back(ps);
    for (std::uint64_t k = 0; k < 15; ++k) {
      BOOST_TEST(co_await target.read(make_request(0, k * ps, back)) == static_cast<int>(ps));
      BOOST_TEST((back == page_of(700 + k)));
    }
    BOOST_TEST(co_await target.read(make_request(0, 20 * ps, back)) == static_cast<int>(ps));
    BOOST_TEST((back == more));
  });
  BOOST_TEST(target.store().mm_stat().mem_used_total <= 16 * ps);
}

BOOST_AUTO_TEST_CASE(a_target_in_shared_memory_compresses_asynchronously_and_a_new_one_recovers_every_page) {
  constexpr std::uint64_t pages = 256;
  ublk::ZramTargetConfig config{.size_bytes = pages * ps,
                                .codec = lz4(),
                                .queues = 1,
                                .memory = runtime::MemoryKind::shared,
                                .compress_workers = 1};
  std::vector<int> fds;
  std::uint64_t staged_at_stop = 0;
  {
    const auto target = test::require_ok(ublk::ZramTarget::create(config));
    const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0}}));
    rt->run([&]() -> Task<void> {
      BOOST_TEST_REQUIRE(co_await target->start_queue(0) == 0);
      for (std::uint64_t p = 0; p < pages; ++p) {
        auto page = page_of(p + 1);
        BOOST_TEST_REQUIRE(co_await target->write(make_request(0, p * ps, page)) == static_cast<int>(ps));
      }
      // No yield: the runtime stops with pages still staged, as a server
      // killed mid-write leaves them.
    });
    staged_at_stop = target->store().mm_stat().staged_pages;
    for (const int fd : target->memory_fds()) fds.push_back(::dup(fd));
  }
  BOOST_TEST_MESSAGE("pages staged when the first target stopped: " << staged_at_stop);
  BOOST_TEST(staged_at_stop > 0u);
  config.recover_from = fds;
  const auto recovered = test::require_ok(ublk::ZramTarget::create(config));
  BOOST_TEST(recovered->store().mm_stat().staged_pages == 0u);
  BOOST_TEST(recovered->store().mm_stat().orig_data_size == pages * ps);
  std::vector<std::byte> back(ps);
  int wrong = 0;
  for (std::uint64_t p = 0; p < pages; ++p) {
    if (recovered->store().read(0, p * ps, back) != 0 || back != page_of(p + 1)) ++wrong;
  }
  BOOST_TEST(wrong == 0);
  for (const int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(more_compression_cores_than_a_keeper_holds_memory_for_are_refused_with_crash_safe_memory) {
  const auto made = ublk::ZramTarget::create(ublk::ZramTargetConfig{.size_bytes = 1 << 20,
                                                                    .codec = lz4(),
                                                                    .queues = 1,
                                                                    .memory = runtime::MemoryKind::shared,
                                                                    .compress_workers = 65});
  BOOST_TEST(test::require_error(made, EINVAL) == "zram: with --recovery at most 64 compression cores, got 65");
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_compression_pipeline_test
