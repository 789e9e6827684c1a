// The zram target with an NBD export as its backing tier, against an
// in-memory NBD server in this process (test/ublk/nbd_fake_server.h) on a
// real two-core Runtime: pages written back read back exactly, from either
// queue, with one connection per queue (a multi-conn server) or one for
// all (a server without multi-conn); a server gone for good, or back
// without its data, fails the tier with -EIO and never gives wrong data;
// and the setup refusals, one line each.
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/ublk/zram_target.h"
#include "test/require_ok.h"
#include "test/ublk/nbd_fake_server.h"
#include "test/ublk/zram_test_pages.h"

BOOST_AUTO_TEST_SUITE(ublk_zram_nbd_tier_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;
using runtime::Task;
using ublk::Request;

namespace {

constexpr std::uint64_t page = 4096;
constexpr std::uint64_t pages = 1024;  // a 4 MiB device
constexpr std::uint16_t multi_conn = nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagCanMultiConn;

// An NBD server holding its export in memory: one thread per connection,
// the disk behind a mutex. kill() makes it go away for good; lose_data()
// makes it look like a server restarted without its data.
class MemoryServer {
 public:
  MemoryServer(std::uint64_t size, std::uint16_t flags) : disk_(size) {
    facts_.size = size;
    facts_.flags = flags;
    BOOST_REQUIRE(listener_.fd >= 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  MemoryServer(const MemoryServer&) = delete;
  MemoryServer& operator=(const MemoryServer&) = delete;
  ~MemoryServer() {
    kill();
    std::vector<std::thread> workers;
    {
      const std::lock_guard lock(mutex_);
      workers.swap(workers_);
    }
    for (std::thread& t : workers) t.join();
    for (const int fd : connections_) ::close(fd);
  }

  std::string spec() const { return "nbd:unix:" + path_; }
  int accepted() const { return accepted_.load(); }

  // Refuses new connections and drops the open ones.
  void kill() {
    {
      const std::lock_guard lock(mutex_);
      if (killed_) return;
      killed_ = true;
      ::shutdown(listener_.fd, SHUT_RDWR);  // ends the acceptor's accept()
      for (const int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    }
    acceptor_.join();
    listener_.stop();
  }

  // Zeroes the export and drops every connection; new ones are accepted.
  void lose_data() {
    const std::lock_guard lock(mutex_);
    std::fill(disk_.begin(), disk_.end(), std::byte{0});
    for (const int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const std::lock_guard lock(mutex_);
      if (killed_) {
        ::close(fd);
        return;
      }
      ++accepted_;
      connections_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    if (!nbd_test::serve_handshake(fd, facts_)) return;
    for (;;) {
      nbd_test::ClientRequest r;
      if (!nbd_test::read_request(fd, r) || r.type == nbd::kCmdDisc) return;
      nbd_test::Bytes reply;
      {
        const std::lock_guard lock(mutex_);
        reply = nbd_test::serve_request(disk_, r, facts_.structured);
      }
      if (!nbd_test::send_bytes(fd, reply)) return;
    }
  }

  nbd_test::UnixListener listener_;
  const std::string path_ = listener_.path;
  nbd_test::ExportFacts facts_;
  std::mutex mutex_;
  std::vector<std::byte> disk_;
  std::vector<int> connections_;
  std::vector<std::thread> workers_;
  bool killed_ = false;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
};

// Incompressible: stored raw, the first pages writeback takes.
std::vector<std::byte> page_of(std::uint64_t index) { return test::random_page(index); }

ublk::ZramTargetConfig config(const MemoryServer& server, unsigned queues) {
  ublk::ZramTargetConfig c;
  c.size_bytes = pages * page;
  c.codec = compress::CodecSpec{compress::Algorithm::lz4, 1};
  c.mem_limit_bytes = 1 << 20;  // a quarter of what is written
  c.queues = queues;
  c.backing_path = server.spec();
  c.backing_reconnect_timeout = 300ms;
  // The maintenance task writes back too, every 20 ms, while writes at
  // the limit do: both paths at once on each core.
  c.maintenance_interval = 20ms;
  return c;
}

Request request(std::uint16_t queue, std::uint64_t index, std::vector<std::byte>& buf) {
  return test::zram_request(queue, index * page, buf);
}

// Writes every page (page i on queue i % queues, on that queue's core),
// after starting the queues. Returns the writes that failed.
Task<int> start_and_fill(ublk::ZramTarget& target, unsigned queues) {
  BOOST_TEST_REQUIRE(co_await target.start_queue(0) == 0);
  if (queues > 1) {
    BOOST_TEST_REQUIRE(co_await runtime::submit_to(1, [&] { return target.start_queue(1); }) == 0);
  }
  int failed = 0;
  for (unsigned queue = 0; queue < queues; ++queue) {
    const auto q = static_cast<std::uint16_t>(queue);
    auto fill = [&target, q, queues]() -> Task<int> {
      int bad = 0;
      std::vector<std::byte> buf;
      for (std::uint64_t i = q; i < pages; i += queues) {
        buf = page_of(i);
        if (co_await target.write(request(q, i, buf)) != static_cast<int>(page)) ++bad;
      }
      co_return bad;
    };
    // if/else: co_await in both arms of ?: in a compound assignment runs
    // both arms with GCC 12 (docs/contributing.md).
    if (q == 0) {
      failed += co_await fill();
    } else {
      failed += co_await runtime::submit_to(q, fill);
    }
  }
  co_return failed;
}

// Reads every page on `queue` (on its core): counts of exact pages, of
// -EIO, and of anything else (wrong data or another error).
struct ReadBack {
  int exact = 0;
  int eio = 0;
  int wrong = 0;
};
Task<ReadBack> read_all(ublk::ZramTarget& target, std::uint16_t queue) {
  auto body = [&target, queue]() -> Task<ReadBack> {
    ReadBack out;
    std::vector<std::byte> buf(page);
    for (std::uint64_t i = 0; i < pages; ++i) {
      const int rc = co_await target.read(request(queue, i, buf));
      if (rc == static_cast<int>(page) && buf == page_of(i)) {
        ++out.exact;
      } else if (rc == -EIO) {
        ++out.eio;
      } else {
        ++out.wrong;
      }
    }
    co_return out;
  };
  if (queue == 0) {
    co_return co_await body();
  }
  co_return co_await runtime::submit_to(queue, body);
}

template <typename F>
auto run_on_two_cores(F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  return rt->run(std::move(body));
}

}  // namespace

BOOST_AUTO_TEST_CASE(pages_written_back_to_a_multi_conn_export_read_back_exactly_on_either_queue) {
  MemoryServer server(8 << 20, multi_conn);
  const auto target = test::require_ok(ublk::ZramTarget::create(config(server, 2)));
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST(co_await start_and_fill(*target, 2) == 0);
    // Each page read on the queue that did not write it: written back on
    // one connection, read on the other.
    for (std::uint16_t q = 0; q < 2; ++q) {
      const ReadBack back = co_await read_all(*target, q);
      BOOST_TEST(back.exact == static_cast<int>(pages));
    }
  });
  const ublk::ZramStats s = target->snapshot();
  BOOST_TEST(s.tier.written_back_pages > pages / 2);
  BOOST_TEST(s.bd.bd_writes > 0u);
  BOOST_TEST(s.bd.bd_reads > 0u);
  BOOST_TEST((s.tier_state == ublk::TierState::active));
  // The setup session, then one connection per queue.
  BOOST_TEST(server.accepted() == 3);
}

BOOST_AUTO_TEST_CASE(a_server_without_multi_conn_gets_one_connection_that_both_queues_use) {
  MemoryServer server(8 << 20, nbd::kFlagHasFlags | nbd::kFlagSendFlush);
  const auto target = test::require_ok(ublk::ZramTarget::create(config(server, 2)));
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST(co_await start_and_fill(*target, 2) == 0);
    const ReadBack back = co_await read_all(*target, 1);
    BOOST_TEST(back.exact == static_cast<int>(pages));
  });
  BOOST_TEST(target->snapshot().tier.written_back_pages > pages / 2);
  BOOST_TEST(server.accepted() == 2);  // the setup session, then queue 0's
}

BOOST_AUTO_TEST_CASE(a_server_gone_for_good_fails_written_back_reads_with_eio_and_keeps_ram_pages) {
  MemoryServer server(8 << 20, multi_conn);
  const auto target = test::require_ok(ublk::ZramTarget::create(config(server, 2)));
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST(co_await start_and_fill(*target, 2) == 0);
    server.kill();
    const auto begin = std::chrono::steady_clock::now();
    const ReadBack back = co_await read_all(*target, 0);
    // The first read waits out the reconnect timeout; later ones fail at once.
    BOOST_TEST((std::chrono::steady_clock::now() - begin < 10s));
    BOOST_TEST(back.wrong == 0);
    BOOST_TEST(back.eio > 0);
    BOOST_TEST(back.exact > 0);  // pages still in RAM
    BOOST_TEST(back.exact + back.eio == static_cast<int>(pages));
    // A write still succeeds where RAM allows, or fails; it never hangs.
    std::vector<std::byte> buf = page_of(5);
    const int rc = co_await target->write(request(0, 5, buf));
    BOOST_TEST((rc == static_cast<int>(page) || rc == -EIO));
  });
  BOOST_TEST((target->snapshot().tier_state == ublk::TierState::failed));
}

BOOST_AUTO_TEST_CASE(a_server_back_without_its_data_is_refused_and_reads_fail_with_eio_not_zeros) {
  MemoryServer server(8 << 20, multi_conn);
  const auto target = test::require_ok(ublk::ZramTarget::create(config(server, 1)));
  run_on_two_cores([&]() -> Task<void> {
    BOOST_TEST(co_await start_and_fill(*target, 1) == 0);
    server.lose_data();  // connections drop; the new one finds zeros
    const ReadBack back = co_await read_all(*target, 0);
    BOOST_TEST(back.wrong == 0);
    BOOST_TEST(back.eio > 0);
    BOOST_TEST(back.exact + back.eio == static_cast<int>(pages));
  });
  BOOST_TEST((target->snapshot().tier_state == ublk::TierState::failed));
}

BOOST_AUTO_TEST_CASE(bad_nbd_tiers_are_refused_with_one_line) {
  {
    MemoryServer small(63 * page, multi_conn);
    const std::string e = test::require_error(ublk::ZramTarget::create(config(small, 1)), EINVAL);
    BOOST_TEST(e.find("at least 256 KiB") != std::string::npos, e);
  }
  {
    MemoryServer read_only(8 << 20, multi_conn | nbd::kFlagReadOnly);
    const std::string e = test::require_error(ublk::ZramTarget::create(config(read_only, 1)), EROFS);
    BOOST_TEST(e.find("read-only") != std::string::npos, e);
  }
  {
    MemoryServer server(8 << 20, multi_conn);
    ublk::ZramTargetConfig c = config(server, 1);
    c.backing_export = "nope";
    test::require_error(ublk::ZramTarget::create(c), ENOENT);
    server.kill();
    c.backing_export = "";
    const std::string e = test::require_error(ublk::ZramTarget::create(c), ENOENT);  // the socket is gone
    BOOST_TEST(e.find("backing nbd:unix:") != std::string::npos, e);
    c.backing_path = "nbd:udp:1.2.3.4:5";
    test::require_error(ublk::ZramTarget::create(c), EINVAL);
  }
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_zram_nbd_tier_test
