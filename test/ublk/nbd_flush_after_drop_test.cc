// NbdTarget's FLUSH after a connection dropped: a server with a write cache
// that acknowledged writes and lost the connection before any flush
// covered them may have lost them, so that FLUSH, and every later one, fails
// with EIO; with the writes flushed before the drop, or without a write
// cache, FLUSH succeeds after the reconnection. Against a scripted server
// on a unix socket (test/ublk/nbd_fake_server.h).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "coblk/runtime/runtime.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/nbd_target.h"
#include "test/require_ok.h"
#include "test/ublk/nbd_fake_server.h"

BOOST_AUTO_TEST_SUITE(ublk_nbd_flush_after_drop_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;
using nbd_test::Bytes;
using runtime::Task;

namespace {

// What the first connection does before the server drops it.
enum class BeforeTheDrop {
  write,            // a write, acknowledged, and nothing more
  write_and_flush,  // a write and a flush, both acknowledged
};

// A server whose first connection serves `first_requests` requests and is
// then closed, and whose second serves everything: the cache "survives"
// here, but the client cannot know that, which is the point.
struct DroppingServer {
  nbd_test::UnixListener listener;
  std::vector<std::byte> disk = std::vector<std::byte>(1 << 20);
  std::thread thread;
  std::atomic<int> connections{0};

  DroppingServer(std::size_t first_requests, const nbd_test::ExportFacts& facts) {
    BOOST_REQUIRE(listener.fd >= 0);
    thread = std::thread([this, first_requests, facts] {
      for (int i = 0; i < 2; ++i) {
        const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        ++connections;
        if (nbd_test::serve_handshake(fd, facts)) {
          nbd_test::serve_disk(fd, disk, facts.structured, i == 0 ? first_requests : SIZE_MAX);
        }
        ::close(fd);
      }
    });
  }
  DroppingServer(const DroppingServer&) = delete;
  DroppingServer& operator=(const DroppingServer&) = delete;
  ~DroppingServer() {
    ::shutdown(listener.fd, SHUT_RDWR);
    thread.join();
  }
};

// Runs `body` on a one-core runtime.
template <class F>
void run_on_runtime(F body) {
  runtime::RuntimeConfig config;
  config.cpus = {0};
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  rt->run(std::move(body));
}

ublk::NbdTargetConfig target_config(const DroppingServer& server, const nbd_test::ExportFacts& facts) {
  ublk::NbdTargetConfig config;
  config.endpoint = test::require_ok(nbd::parse_endpoint("unix:" + server.listener.path));
  config.info.size = facts.size;
  config.info.flags = facts.flags;
  config.info.structured_replies = facts.structured;
  config.reconnect_timeout = 5s;
  return config;
}

ublk::Request request(uint8_t op, uint32_t flags, std::byte* data) {
  ublk::Request r;
  r.op = op;
  r.flags = flags;
  r.offset = 0;
  r.length = data != nullptr ? 4096 : 0;
  r.data = data;
  return r;
}

// The results of: a write, optionally a flush, then (the server has dropped
// the first connection) a FLUSH, another FLUSH, and a FUA write.
struct Results {
  int first_flush = 0;
  int second_flush = 0;
  int fua_write = 0;
};

Results run_sequence(BeforeTheDrop before, const nbd_test::ExportFacts& facts) {
  const std::size_t first_requests = before == BeforeTheDrop::write ? 1 : 2;
  DroppingServer server(first_requests, facts);
  auto target = test::require_ok(ublk::NbdTarget::create(target_config(server, facts)));
  Results results;
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await target->start_queue(0) == 0);
    Bytes data(4096, std::byte{0x5a});
    BOOST_TEST(co_await target->write(request(ublk::abi::IO_OP_WRITE, 0, data.data())) == 4096);
    if (before == BeforeTheDrop::write_and_flush) {
      BOOST_TEST(co_await target->flush(request(ublk::abi::IO_OP_FLUSH, 0, nullptr)) == 0);
    }
    // The server closes the first connection now; the next request finds
    // it gone, reconnects and is served on the second.
    results.first_flush = co_await target->flush(request(ublk::abi::IO_OP_FLUSH, 0, nullptr));
    results.second_flush = co_await target->flush(request(ublk::abi::IO_OP_FLUSH, 0, nullptr));
    const int fua = co_await target->write(request(ublk::abi::IO_OP_WRITE, ublk::abi::IO_F_FUA, data.data()));
    results.fua_write = fua;
    target->client(0)->shut_down();
  });
  BOOST_TEST(server.connections.load() == 2);
  return results;
}

// A server with a write cache but no FUA of its own, so a FUA write
// becomes a write and a flush.
nbd_test::ExportFacts cache_without_fua() {
  nbd_test::ExportFacts facts;
  facts.flags = nbd::kFlagHasFlags | nbd::kFlagSendFlush;
  return facts;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_flush_after_a_drop_that_lost_unflushed_writes_fails_with_eio_and_so_does_every_later_one) {
  const Results r = run_sequence(BeforeTheDrop::write, cache_without_fua());
  BOOST_TEST(r.first_flush == -EIO);
  BOOST_TEST(r.second_flush == -EIO);
  // Its flush runs on the new connection, which says nothing of the lost
  // writes' fate.
  BOOST_TEST(r.fua_write == -EIO);
}

BOOST_AUTO_TEST_CASE(a_flush_after_a_drop_succeeds_when_a_flush_covered_every_acknowledged_write_first) {
  const Results r = run_sequence(BeforeTheDrop::write_and_flush, cache_without_fua());
  BOOST_TEST(r.first_flush == 0);
  BOOST_TEST(r.second_flush == 0);
  BOOST_TEST(r.fua_write == 4096);
}

BOOST_AUTO_TEST_CASE(a_drop_loses_nothing_on_a_server_without_a_write_cache) {
  nbd_test::ExportFacts facts;
  facts.flags = nbd::kFlagHasFlags;  // no SEND_FLUSH: every acknowledged write is stable
  const Results r = run_sequence(BeforeTheDrop::write, facts);
  BOOST_TEST(r.first_flush == 0);
  BOOST_TEST(r.second_flush == 0);
  BOOST_TEST(r.fua_write == 4096);
}

BOOST_AUTO_TEST_CASE(acknowledged_fua_writes_are_not_unflushed_changes) {
  // Only FUA writes before the drop: each was durable when acknowledged.
  nbd_test::ExportFacts facts;  // SEND_FLUSH and SEND_FUA
  DroppingServer server(1, facts);
  auto target = test::require_ok(ublk::NbdTarget::create(target_config(server, facts)));
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await target->start_queue(0) == 0);
    Bytes data(4096, std::byte{0x33});
    BOOST_TEST(co_await target->write(request(ublk::abi::IO_OP_WRITE, ublk::abi::IO_F_FUA, data.data())) == 4096);
    BOOST_TEST(co_await target->flush(request(ublk::abi::IO_OP_FLUSH, 0, nullptr)) == 0);
    target->client(0)->shut_down();
  });
  BOOST_TEST(server.connections.load() == 2);
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_nbd_flush_after_drop_test
