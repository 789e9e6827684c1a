// The zram stats file shared between a server (ZramStatsPublisher) and
// `coblk stats` (read_zram_stats): consistent snapshots, and no reader or
// file left behind harmed when a new server takes over the path.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "coblk/ublk/zram_stats.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_zram_stats_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// A path for one test's stats file, removed (with what is beside it) after.
struct StatsPath {
  std::string dir;
  std::string path;
  StatsPath() {
    char tmpl[] = "/tmp/coblk-zram-stats-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/0.zram-stats";
  }
  ~StatsPath() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
};

// Every numeric field k, the algorithm "lz4:k" (k < 10^6).
ublk::ZramStats snapshot(std::uint64_t k) {
  ublk::ZramStats s;
  s.mm = storage::MmStat{k, k, k, k, k, k, k, k, k};
  s.io = storage::IoStat{k, k, k, k};
  s.disksize = k;
  s.updated_ns = k;
  s.algorithm = "lz4:" + std::to_string(k);
  return s;
}

// The k of a snapshot whose fields all agree; -1 if they do not.
long long agreed_value(const ublk::ZramStats& s) {
  const std::uint64_t k = s.mm.orig_data_size;
  const std::uint64_t all[] = {s.mm.compr_data_size, s.mm.mem_used_total,  s.mm.mem_limit,  s.mm.mem_used_max,
                               s.mm.same_pages,      s.mm.pages_compacted, s.mm.huge_pages, s.mm.huge_pages_since,
                               s.io.failed_reads,    s.io.failed_writes,   s.io.invalid_io, s.io.notify_free,
                               s.disksize,           s.updated_ns};
  for (const std::uint64_t v : all) {
    if (v != k) return -1;
  }
  if (s.algorithm != "lz4:" + std::to_string(k)) return -1;
  return static_cast<long long>(k);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_reader_racing_a_publisher_sees_every_field_from_one_snapshot) {
  StatsPath p;
  const auto publisher = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
  publisher->publish(snapshot(0));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t k = 1; !done.load(std::memory_order_relaxed); k = k % 999999 + 1) {
      publisher->publish(snapshot(k));
    }
  });
  int torn = 0;
  int settled = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < until) {
    const auto s = ublk::read_zram_stats(p.path);
    if (!s) {
      // A publisher that never pauses may keep a reader from settling;
      // that is the one acceptable failure.
      BOOST_TEST(s.error().code() == EAGAIN);
      continue;
    }
    ++settled;
    if (agreed_value(*s) < 0) ++torn;
  }
  done = true;
  writer.join();
  BOOST_TEST(torn == 0);
  BOOST_TEST(settled > 0);
}

BOOST_AUTO_TEST_CASE(the_stats_reader_survives_a_file_truncated_and_rewritten_under_it) {
  StatsPath p;
  {
    const auto publisher = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
    publisher->publish(snapshot(7));
    // Keep the file when the publisher goes: it plays a dead server's.
    BOOST_REQUIRE(::link(p.path.c_str(), (p.path + ".keep").c_str()) == 0);
  }
  BOOST_REQUIRE(::rename((p.path + ".keep").c_str(), p.path.c_str()) == 0);
  // Someone (an older coblk server, a person) truncates the file and
  // writes it again, over and over; a publish in progress (odd sequence)
  // keeps a reader retrying, and reading, while that happens.
  const int fd = ::open(p.path.c_str(), O_RDWR | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  std::atomic<bool> done{false};
  std::thread truncator([&] {
    const std::uint64_t header[2] = {0x636f626c6b7a7231ull, 1};  // the magic, an odd sequence
    while (!done.load(std::memory_order_relaxed)) {
      if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, 4096) != 0) break;
      if (::pwrite(fd, header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) break;
    }
  });
  int reads = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < until) {
    const auto s = ublk::read_zram_stats(p.path);  // a SIGBUS here ends the test program
    if (!s) BOOST_TEST((s.error().code() == EINVAL || s.error().code() == EAGAIN));
    ++reads;
  }
  done = true;
  truncator.join();
  ::close(fd);
  BOOST_TEST(reads > 0);
}

BOOST_AUTO_TEST_CASE(a_new_server_replaces_the_stats_file_without_truncating_the_old_one_or_losing_its_own) {
  StatsPath p;
  auto old_server = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
  old_server->publish(snapshot(11));
  // What a `coblk stats` in progress holds: the old server's file.
  const int held = ::open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(held >= 0);

  auto new_server = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
  new_server->publish(snapshot(22));
  struct stat st {};
  BOOST_REQUIRE(::fstat(held, &st) == 0);
  BOOST_TEST(st.st_size == 4096);
  std::uint64_t first_word = 0;  // orig_data_size, after magic and sequence
  BOOST_TEST(::pread(held, &first_word, sizeof(first_word), 16) == static_cast<ssize_t>(sizeof(first_word)));
  BOOST_TEST(first_word == 11U);
  ::close(held);
  BOOST_TEST(agreed_value(test::require_ok(ublk::read_zram_stats(p.path))) == 22);

  // The old server exits after the new one started: the path is the new one's.
  old_server.reset();
  BOOST_TEST(agreed_value(test::require_ok(ublk::read_zram_stats(p.path))) == 22);
  new_server.reset();
  test::require_error(ublk::read_zram_stats(p.path), ENOENT);
}

BOOST_AUTO_TEST_CASE(a_symbolic_link_at_the_stats_path_is_replaced_not_followed) {
  StatsPath p;
  const std::string victim = p.dir + "/victim";
  { std::ofstream(victim) << "precious\n"; }
  BOOST_REQUIRE(::symlink(victim.c_str(), p.path.c_str()) == 0);
  {
    const auto publisher = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
    publisher->publish(snapshot(3));
    struct stat st {};
    BOOST_REQUIRE(::lstat(p.path.c_str(), &st) == 0);
    BOOST_TEST(S_ISREG(st.st_mode));
    BOOST_TEST((st.st_mode & 0777) == 0644U);
    BOOST_TEST(agreed_value(test::require_ok(ublk::read_zram_stats(p.path))) == 3);
  }
  BOOST_TEST(slurp(victim) == "precious\n");
}

BOOST_AUTO_TEST_CASE(a_stats_file_cut_short_is_rejected_not_read_past_its_end) {
  StatsPath p;
  const auto publisher = test::require_ok(ublk::ZramStatsPublisher::create(p.path));
  publisher->publish(snapshot(5));
  BOOST_REQUIRE(::truncate(p.path.c_str(), 100) == 0);
  BOOST_TEST(test::require_error(ublk::read_zram_stats(p.path), EINVAL) == p.path + ": not a coblk zram stats file");
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_zram_stats_test
