// GroupCommit (FLUSH and FUA requests of a core share one sync) with a fake
// sync that labels each operation, and the loop target's use of it on a
// real file; on a one-core runtime, no kernel ublk needed.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/group_commit.h"
#include "coblk/ublk/loop_target.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_group_commit_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using ublk::GroupCommit;

namespace {

template <class F>
int run_on_runtime(F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{}));
  return rt->run(std::move(body));
}

// A sync that takes a while (so that requests pile up behind it) and
// returns its own number, 1, 2, ...; the number `fail_at` fails with -EIO.
struct FakeSync {
  int started = 0;
  int finished = 0;
  int fail_at = 0;
  static Task<int> run(void* self) {
    auto* f = static_cast<FakeSync*>(self);
    const int n = ++f->started;
    co_await runtime::sleep_for(std::chrono::milliseconds(2));
    f->finished = n;
    co_return n == f->fail_at ? -EIO : n;
  }
};

// One request: waits `delay_yields` scheduler turns, notes which syncs had
// started when it called, and checks that the sync answering it started
// later (its result is that sync's number).
Task<void> request(GroupCommit& gc, FakeSync& fake, int delay_yields, int& result, bool& covered) {
  for (int i = 0; i < delay_yields; ++i) co_await runtime::yield();
  const int started_before = fake.started;
  result = co_await gc.sync();
  covered = result < 0 || result > started_before;
}

// request() with its verdict as a char (a vector<bool> element has no
// reference to bind).
Task<void> counted_request(GroupCommit& gc, FakeSync& fake, int& result, char& covered) {
  bool c = false;
  co_await request(gc, fake, 0, result, c);
  covered = c ? 1 : 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_lone_flush_gets_a_sync_of_its_own) {
  FakeSync fake;
  GroupCommit gc(&FakeSync::run, &fake);
  const int r = run_on_runtime([&]() -> Task<int> { co_return co_await gc.sync(); });
  BOOST_TEST(r == 1);
  BOOST_TEST(gc.syncs() == 1U);
}

BOOST_AUTO_TEST_CASE(a_flush_arriving_while_a_sync_is_in_flight_waits_for_the_next_sync) {
  FakeSync fake;
  GroupCommit gc(&FakeSync::run, &fake);
  int first = 0, second = 0;
  bool first_covered = false, second_covered = false;
  run_on_runtime([&]() -> Task<int> {
    std::vector<Task<void>> tasks;
    tasks.push_back(request(gc, fake, 0, first, first_covered));
    tasks.push_back(request(gc, fake, 3, second, second_covered));  // arrives once sync 1 is in flight
    co_await runtime::when_all(std::move(tasks));
    co_return 0;
  });
  BOOST_TEST(first == 1);
  BOOST_TEST(second == 2);  // sync 1 may not cover its writes
  BOOST_TEST(first_covered);
  BOOST_TEST(second_covered);
}

BOOST_AUTO_TEST_CASE(many_concurrent_flushes_share_two_syncs_and_each_is_covered_by_a_later_one) {
  FakeSync fake;
  GroupCommit gc(&FakeSync::run, &fake);
  constexpr int n = 32;
  std::vector<int> results(n, 0);
  std::vector<char> covered(n, 0);
  run_on_runtime([&]() -> Task<int> {
    std::vector<Task<void>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) tasks.push_back(counted_request(gc, fake, results[i], covered[i]));
    co_await runtime::when_all(std::move(tasks));
    co_return 0;
  });
  // The first leads sync 1; the 31 behind it all wait for, and share, sync 2.
  BOOST_TEST(gc.syncs() == 2U);
  BOOST_TEST(gc.requests() == static_cast<uint64_t>(n));
  BOOST_TEST(results[0] == 1);
  for (int i = 0; i < n; ++i) {
    BOOST_TEST(covered[i] == 1, "request " << i);
    if (i > 0) BOOST_TEST(results[i] == 2, "request " << i);
  }
}

BOOST_AUTO_TEST_CASE(staggered_flushes_are_each_answered_by_a_sync_that_started_after_them) {
  FakeSync fake;
  GroupCommit gc(&FakeSync::run, &fake);
  constexpr int n = 24;
  std::vector<int> results(n, 0);
  std::vector<char> covered(n, 0);
  run_on_runtime([&]() -> Task<int> {
    std::vector<Task<void>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) {
      // Arrivals spread over several syncs: a sleep of i/3 ms first.
      tasks.push_back([](GroupCommit& g, FakeSync& f, int k, int& res, char& ok) -> Task<void> {
        co_await runtime::sleep_for(std::chrono::microseconds(333 * k));
        bool c = false;
        co_await request(g, f, 0, res, c);
        ok = c ? 1 : 0;
      }(gc, fake, i, results[i], covered[i]));
    }
    co_await runtime::when_all(std::move(tasks));
    co_return 0;
  });
  for (int i = 0; i < n; ++i) BOOST_TEST(covered[i] == 1, "request " << i << " got sync " << results[i]);
  BOOST_TEST(gc.syncs() < static_cast<uint64_t>(n));
  BOOST_TEST(gc.syncs() >= 2U);
  BOOST_TEST(fake.finished == fake.started);  // no sync left behind
}

BOOST_AUTO_TEST_CASE(a_failed_sync_gives_its_error_to_every_request_of_its_group) {
  FakeSync fake;
  fake.fail_at = 2;
  GroupCommit gc(&FakeSync::run, &fake);
  constexpr int n = 16;
  std::vector<int> results(n, 0);
  std::vector<char> covered(n, 0);
  int late = 0;
  run_on_runtime([&]() -> Task<int> {
    std::vector<Task<void>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) tasks.push_back(counted_request(gc, fake, results[i], covered[i]));
    co_await runtime::when_all(std::move(tasks));
    late = co_await gc.sync();  // the group after the failure gets a sync of its own
    co_return 0;
  });
  BOOST_TEST(results[0] == 1);
  for (int i = 1; i < n; ++i) BOOST_TEST(results[i] == -EIO, "request " << i);
  BOOST_TEST(late == 3);
}

namespace {

struct TempFile {
  std::string path;
  explicit TempFile(uint64_t bytes) {
    std::string tmpl = "/tmp/coblk-gc-XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    path = tmpl;
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

// 16 FUA writes and 16 flushes at once on a loop device; 0 when every one
// succeeded and every written block reads back. `syncs` gets the core's
// fdatasync count.
int durable_burst(ublk::LoopTarget& loop, uint64_t& syncs) {
  return run_on_runtime([&]() -> Task<int> {
    constexpr int n = 16;
    std::vector<std::vector<std::byte>> blocks(n, std::vector<std::byte>(4096));
    for (int i = 0; i < n; ++i) std::memset(blocks[i].data(), i + 1, 4096);
    std::vector<int> results(2 * n, -1);
    std::vector<Task<void>> tasks;
    tasks.reserve(2 * n);
    for (int i = 0; i < n; ++i) {
      tasks.push_back([](ublk::LoopTarget& l, std::byte* data, int k, int& res) -> Task<void> {
        ublk::Request w;
        w.op = ublk::abi::IO_OP_WRITE;
        w.flags = ublk::abi::IO_F_FUA;
        w.offset = static_cast<uint64_t>(k) * 4096;
        w.length = 4096;
        w.data = data;
        res = co_await l.write(w);
      }(loop, blocks[i].data(), i, results[i]));
      tasks.push_back([](ublk::LoopTarget& l, int& res) -> Task<void> {
        ublk::Request f;
        f.op = ublk::abi::IO_OP_FLUSH;
        res = co_await l.flush(f);
      }(loop, results[n + i]));
    }
    co_await runtime::when_all(std::move(tasks));
    syncs = loop.syncs_on_this_core();
    for (int i = 0; i < n; ++i) {
      if (results[i] != 4096 || results[n + i] != 0) co_return 1;
      std::vector<std::byte> back(4096);
      ublk::Request r;
      r.op = ublk::abi::IO_OP_READ;
      r.offset = static_cast<uint64_t>(i) * 4096;
      r.length = 4096;
      r.data = back.data();
      if (co_await loop.read(r) != 4096 || back != blocks[i]) co_return 2;
    }
    co_return 0;
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(fua_writes_and_flushes_on_a_loop_device_share_fdatasyncs) {
  TempFile file(1 << 20);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  uint64_t syncs = 0;
  BOOST_TEST(durable_burst(*loop, syncs) == 0);
  BOOST_TEST(syncs >= 1U);
  BOOST_TEST(syncs < 32U);  // 32 requests wanted one each
}

BOOST_AUTO_TEST_CASE(a_loop_device_without_group_commit_still_makes_fua_writes_and_flushes_durable) {
  TempFile file(1 << 20);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false, false));
  uint64_t syncs = 99;
  BOOST_TEST(durable_burst(*loop, syncs) == 0);
  BOOST_TEST(syncs == 0U);  // no group commit to count them
}

BOOST_AUTO_TEST_CASE(write_zeroes_with_fua_on_a_loop_device_is_followed_by_a_sync_and_without_fua_is_not) {
  TempFile file(1 << 20);
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  BOOST_TEST(run_on_runtime([&]() -> Task<int> {
               ublk::Request z;
               z.op = ublk::abi::IO_OP_WRITE_ZEROES;
               z.offset = 4096;
               z.length = 8192;
               z.flags = ublk::abi::IO_F_NOUNMAP;
               if (co_await loop.write_zeroes(z) != 0) co_return 1;
               if (loop.syncs_on_this_core() != 0) co_return 2;
               z.flags |= ublk::abi::IO_F_FUA;
               if (co_await loop.write_zeroes(z) != 0) co_return 3;
               co_return loop.syncs_on_this_core() == 1 ? 0 : 4;
             }) == 0);
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_group_commit_test
