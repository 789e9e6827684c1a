// nbd::Connection and nbd::Client against a scripted server on a
// socketpair or a unix socket (test/ublk/nbd_fake_server.h): many requests
// in flight, replies out of order and in 1-byte pieces, error replies,
// malformed replies, disconnects, reconnection and its timeout; and the
// blocking probe coblk add uses.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/nbd_connection.h"
#include "coblk/ublk/nbd_target.h"
#include "test/require_ok.h"
#include "test/ublk/nbd_fake_server.h"

BOOST_AUTO_TEST_SUITE(ublk_nbd_connection_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;
using nbd_test::Bytes;
using runtime::Task;

namespace {

template <class F>
auto run_on_runtime(F body) {
  runtime::RuntimeConfig config;
  config.cpus = {0};
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  return rt->run(std::move(body));
}

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 13 + seed) & 0xff);
  return v;
}

// A socketpair: the client's end (handed to Connection::handshake) and the
// scripted server's, run on a thread.
struct ScriptedServer {
  int client_fd = -1;
  int server_fd = -1;
  std::thread thread;
  template <class Script>
  explicit ScriptedServer(Script script) {
    int fds[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    client_fd = fds[0];
    server_fd = fds[1];
    thread = std::thread([this, script]() mutable {
      script(server_fd);
      ::shutdown(server_fd, SHUT_RDWR);
    });
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  ~ScriptedServer() {
    thread.join();
    ::close(server_fd);
  }
};

// A server on a unix socket whose connections each run `serve(n, fd)`
// (n counts from 0), on threads of their own; shut down and joined by the
// destructor.
struct ScriptedListener {
  nbd_test::UnixListener listener;
  std::mutex mutex;
  std::vector<int> fds;
  std::vector<std::thread> workers;
  std::thread acceptor;
  template <class Serve>
  explicit ScriptedListener(Serve serve) {
    BOOST_REQUIRE(listener.fd >= 0);
    acceptor = std::thread([this, serve] {
      for (int n = 0;; ++n) {
        const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        const std::lock_guard lock(mutex);
        fds.push_back(fd);
        workers.emplace_back([serve, n, fd] { serve(n, fd); });
      }
    });
  }
  ScriptedListener(const ScriptedListener&) = delete;
  ScriptedListener& operator=(const ScriptedListener&) = delete;
  ~ScriptedListener() {
    ::shutdown(listener.fd, SHUT_RDWR);
    acceptor.join();
    {
      const std::lock_guard lock(mutex);
      for (const int fd : fds) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : workers) t.join();
    for (const int fd : fds) ::close(fd);
  }
  nbd::ClientConfig config() const {
    nbd::ClientConfig c;
    c.endpoint = test::require_ok(nbd::parse_endpoint("unix:" + listener.path));
    c.reconnect_timeout = 600ms;
    c.request_timeout = 100ms;
    c.first_backoff = 20ms;
    return c;
  }
};

Task<std::shared_ptr<nbd::Connection>> connect(int fd, const char* name = "") {
  Result<std::shared_ptr<nbd::Connection>> c = co_await nbd::Connection::handshake(fd, name, 5s);
  co_return test::require_ok(std::move(c));
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_and_writes_round_trip_with_many_requests_in_flight) {
  for (const bool structured : {true, false}) {
    BOOST_TEST_CONTEXT("structured " << structured) {
      std::vector<std::byte> disk(1 << 20);
      nbd_test::ExportFacts facts;
      facts.structured = structured;
      ScriptedServer server([&](int fd) {
        if (nbd_test::serve_handshake(fd, facts)) nbd_test::serve_disk(fd, disk, structured);
      });
      const int ok = run_on_runtime([&]() -> Task<int> {
        auto c = co_await connect(server.client_fd);
        BOOST_TEST(c->info().structured_replies == structured);
        BOOST_TEST(c->info().size == 1u << 20);
        constexpr int kRequests = 64;
        std::vector<Bytes> written(kRequests);
        std::vector<Task<int>> writes;
        for (int i = 0; i < kRequests; ++i) {
          written[i] = pattern(8192, static_cast<unsigned>(i));
          writes.push_back(c->write(static_cast<uint64_t>(i) * 8192, written[i], i % 2 == 0));
        }
        for (const int r : co_await runtime::when_all(std::move(writes))) BOOST_TEST(r == 0);
        std::vector<Bytes> read(kRequests, Bytes(8192));
        std::vector<Task<int>> reads;
        reads.reserve(kRequests);
        for (int i = 0; i < kRequests; ++i) reads.push_back(c->read(static_cast<uint64_t>(i) * 8192, read[i]));
        for (const int r : co_await runtime::when_all(std::move(reads))) BOOST_TEST(r == 0);
        for (int i = 0; i < kRequests; ++i) BOOST_TEST((read[i] == written[i]));
        BOOST_TEST(co_await c->flush() == 0);
        BOOST_TEST(co_await c->trim(0, 8192) == 0);
        BOOST_TEST(co_await c->write_zeroes(8192, 8192, true) == 0);
        Bytes zeros(16384);
        BOOST_TEST(co_await c->read(0, zeros) == 0);
        BOOST_TEST(std::all_of(zeros.begin(), zeros.end(), [](std::byte b) { return b == std::byte{0}; }));
        BOOST_TEST(c->in_flight() == 0u);
        c->close();
        co_return 1;
      });
      BOOST_TEST(ok == 1);
    }
  }
}

// Reads of 64 KiB and more make the reader receive reply headers alone and
// their data in place; small requests in flight at the same time must still
// get theirs, in both reply forms.
BOOST_AUTO_TEST_CASE(large_and_small_reads_and_writes_in_flight_together_round_trip) {
  for (const bool structured : {true, false}) {
    BOOST_TEST_CONTEXT("structured " << structured) {
      std::vector<std::byte> disk(8 << 20);
      nbd_test::ExportFacts facts;
      facts.size = disk.size();
      facts.structured = structured;
      ScriptedServer server([&](int fd) {
        if (nbd_test::serve_handshake(fd, facts)) nbd_test::serve_disk(fd, disk, structured);
      });
      const int ok = run_on_runtime([&]() -> Task<int> {
        auto c = co_await connect(server.client_fd);
        // Request i at i MiB: 1 MiB, 4 KiB, 64 KiB, 3000 bytes, in turn.
        constexpr int kRequests = 8;
        const uint32_t sizes[] = {1U << 20, 4096, 64U << 10, 3000};
        std::vector<Bytes> written(kRequests);
        std::vector<Task<int>> writes;
        for (int i = 0; i < kRequests; ++i) {
          written[i] = pattern(sizes[i % 4], static_cast<unsigned>(i));
          writes.push_back(c->write(static_cast<uint64_t>(i) << 20, written[i], false));
        }
        for (const int r : co_await runtime::when_all(std::move(writes))) BOOST_TEST(r == 0);
        for (int round = 0; round < 3; ++round) {
          std::vector<Bytes> read(kRequests);
          std::vector<Task<int>> reads;
          for (int i = 0; i < kRequests; ++i) {
            read[i].assign(sizes[i % 4], std::byte{0xee});
            reads.push_back(c->read(static_cast<uint64_t>(i) << 20, read[i]));
          }
          for (const int r : co_await runtime::when_all(std::move(reads))) BOOST_TEST(r == 0);
          for (int i = 0; i < kRequests; ++i) BOOST_TEST((read[i] == written[i]));
        }
        BOOST_TEST(c->in_flight() == 0u);
        c->close();
        co_return 1;
      });
      BOOST_TEST(ok == 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(replies_in_reverse_order_and_in_one_byte_pieces_reach_their_requests) {
  std::vector<std::byte> disk = pattern(1 << 16, 77);
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    // Collect 8 requests, answer them last to first, a byte at a time,
    // each read in two chunks (second half first).
    std::vector<nbd_test::ClientRequest> got(8);
    for (auto& r : got) {
      if (!nbd_test::read_request(fd, r)) return;
    }
    for (auto it = got.rbegin(); it != got.rend(); ++it) {
      const uint32_t half = it->length / 2;
      const Bytes b = [&] {
        Bytes out = nbd_test::data_chunk(it->handle, it->offset + half, disk.data() + it->offset + half,
                                         it->length - half, false);
        const Bytes first = nbd_test::data_chunk(it->handle, it->offset, disk.data() + it->offset, half, true);
        out.insert(out.end(), first.begin(), first.end());
        return out;
      }();
      if (!nbd_test::send_bytes(fd, b, 1)) return;
    }
    nbd_test::ClientRequest disc;
    nbd_test::read_request(fd, disc);
  });
  run_on_runtime([&]() -> Task<void> {
    auto c = co_await connect(server.client_fd);
    std::vector<Bytes> bufs(8, Bytes(2048));
    std::vector<Task<int>> reads;
    reads.reserve(8);
    for (int i = 0; i < 8; ++i) reads.push_back(c->read(static_cast<uint64_t>(i) * 4096 + 512, bufs[i]));
    for (const int r : co_await runtime::when_all(std::move(reads))) BOOST_TEST(r == 0);
    for (int i = 0; i < 8; ++i) {
      const auto* at = disk.data() + i * 4096 + 512;
      BOOST_TEST((bufs[i] == Bytes(at, at + 2048)));
    }
    c->close();
  });
}

BOOST_AUTO_TEST_CASE(server_errors_become_errnos_and_the_connection_stays_up) {
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    if (!nbd_test::read_request(fd, r)) return;
    nbd_test::send_bytes(fd, nbd_test::simple_reply(r.handle, 28));  // ENOSPC
    if (!nbd_test::read_request(fd, r)) return;
    nbd_test::send_bytes(fd, nbd_test::error_chunk(r.handle, 1, "read-only"));  // EPERM
    if (!nbd_test::read_request(fd, r)) return;
    nbd_test::send_bytes(fd, nbd_test::simple_reply(r.handle, 0));
  });
  run_on_runtime([&]() -> Task<void> {
    auto c = co_await connect(server.client_fd);
    Bytes data(4096);
    BOOST_TEST(co_await c->write(0, data, false) == -ENOSPC);
    BOOST_TEST(co_await c->read(0, data) == -EPERM);
    BOOST_TEST(c->alive());
    BOOST_TEST(co_await c->flush() == 0);
    c->close();
  });
}

BOOST_AUTO_TEST_CASE(a_disconnect_fails_every_request_in_flight_with_enotconn) {
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    for (int i = 0; i < 4; ++i) {
      if (!nbd_test::read_request(fd, r)) return;
    }
    // Half a reply, then gone.
    Bytes partial = nbd_test::simple_reply(r.handle, 0);
    partial.resize(9);
    nbd_test::send_bytes(fd, partial);
  });
  run_on_runtime([&]() -> Task<void> {
    auto c = co_await connect(server.client_fd);
    std::vector<Bytes> bufs(4, Bytes(512));
    std::vector<Task<int>> reads;
    reads.reserve(4);
    for (int i = 0; i < 4; ++i) reads.push_back(c->read(0, bufs[i]));
    for (const int r : co_await runtime::when_all(std::move(reads))) BOOST_TEST(r == -ENOTCONN);
    BOOST_TEST(!c->alive());
    BOOST_TEST(!c->failure().empty());
    BOOST_TEST(co_await c->flush() == -ENOTCONN);
  });
}

// Zero copy's path, with buffers registered from this process's memory in
// place of a ublk request's pages: write payloads go out from fixed
// buffers (IORING_OP_WRITE_FIXED), read data comes into them
// (IORING_OP_READ_FIXED), a piece at a time as the server sends it, mixed
// with ordinary small requests on the same connection; the connection asks
// for simple replies, whatever the server offers.
BOOST_AUTO_TEST_CASE(fixed_buffer_reads_and_writes_round_trip_in_pieces_next_to_ordinary_requests) {
  std::vector<std::byte> disk(8 << 20);
  nbd_test::ExportFacts facts;
  facts.size = disk.size();
  facts.structured = true;  // offered, and not taken
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd, facts)) return;
    nbd_test::ClientRequest r;
    while (nbd_test::read_request(fd, r)) {
      if (r.type == nbd::kCmdDisc) return;
      // Read data in 1000-byte sends: the client's socket reads come back short.
      if (!nbd_test::send_bytes(fd, nbd_test::serve_request(disk, r, false), 1000)) return;
    }
  });
  const int ok = run_on_runtime([&]() -> Task<int> {
    constexpr int kBuffers = 4;
    const uint32_t sizes[kBuffers] = {1U << 20, 4096, 200U << 10, 3000};
    std::vector<Bytes> buffers;
    std::vector<iovec> iov;
    for (int i = 0; i < kBuffers; ++i) {
      buffers.push_back(pattern(sizes[i], static_cast<unsigned>(i)));
      iov.push_back({buffers[i].data(), buffers[i].size()});
    }
    BOOST_TEST_REQUIRE(runtime::Reactor::current()->register_buffers(iov) == 0);
    Result<std::shared_ptr<nbd::Connection>> opened =
        co_await nbd::Connection::handshake(server.client_fd, "", 5s, /*fixed_buffers=*/true);
    auto c = test::require_ok(std::move(opened));
    BOOST_TEST(!c->info().structured_replies);
    std::vector<Task<int>> writes;
    std::vector<Bytes> small(kBuffers);
    for (int i = 0; i < kBuffers; ++i) {
      nbd::Op op{nbd::kCmdWrite, 0, static_cast<uint64_t>(i) << 20, sizes[i], nullptr, buffers[i].data()};
      op.fixed_buffer = i;
      writes.push_back(c->submit(op));
      small[i] = pattern(512, static_cast<unsigned>(100 + i));
      writes.push_back(c->write((4U << 20) + static_cast<uint64_t>(i) * 4096, small[i], false));
    }
    for (const int r : co_await runtime::when_all(std::move(writes))) BOOST_TEST(r == 0);
    for (int i = 0; i < kBuffers; ++i) {
      BOOST_TEST(std::equal(buffers[i].begin(), buffers[i].end(), disk.begin() + (i << 20)));
    }
    const std::vector<Bytes> written = buffers;
    for (Bytes& b : buffers) std::fill(b.begin(), b.end(), std::byte{0xee});
    std::vector<Task<int>> reads;
    std::vector<Bytes> small_back(kBuffers, Bytes(512));
    for (int i = 0; i < kBuffers; ++i) {
      nbd::Op op{nbd::kCmdRead, 0, static_cast<uint64_t>(i) << 20, sizes[i], buffers[i].data(), nullptr};
      op.fixed_buffer = i;
      reads.push_back(c->submit(op));
      reads.push_back(c->read((4U << 20) + static_cast<uint64_t>(i) * 4096, small_back[i]));
    }
    for (const int r : co_await runtime::when_all(std::move(reads))) BOOST_TEST(r == 0);
    for (int i = 0; i < kBuffers; ++i) {
      BOOST_TEST((buffers[i] == written[i]));
      BOOST_TEST((small_back[i] == small[i]));
    }
    BOOST_TEST(c->in_flight() == 0u);
    c->close();
    co_return 1;
  });
  BOOST_TEST(ok == 1);
}

// A fixed-buffer read whose data stops half way (the server goes away) fails
// with -ENOTCONN, for the client to re-send: never a half-filled success.
// A connection not opened for fixed buffers refuses them.
BOOST_AUTO_TEST_CASE(a_fixed_buffer_read_cut_off_mid_data_fails_and_plain_connections_refuse_fixed_buffers) {
  std::vector<std::byte> disk = pattern(1 << 20, 5);
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    if (!nbd_test::read_request(fd, r)) return;
    Bytes reply = nbd_test::serve_request(disk, r, false);
    reply.resize(reply.size() / 2);
    nbd_test::send_bytes(fd, reply);
  });
  ScriptedServer plain([&](int fd) {
    if (nbd_test::serve_handshake(fd)) nbd_test::serve_disk(fd, disk, true);
  });
  run_on_runtime([&]() -> Task<void> {
    Bytes buffer(256 << 10);
    const iovec iov{buffer.data(), buffer.size()};
    BOOST_TEST_REQUIRE(runtime::Reactor::current()->register_buffers({&iov, 1}) == 0);
    auto c = test::require_ok(co_await nbd::Connection::handshake(server.client_fd, "", 5s, true));
    nbd::Op op{nbd::kCmdRead, 0, 0, static_cast<uint32_t>(buffer.size()), buffer.data(), nullptr};
    op.fixed_buffer = 0;
    BOOST_TEST(co_await c->submit(op) == -ENOTCONN);
    BOOST_TEST(!c->alive());
    auto p = co_await connect(plain.client_fd);
    BOOST_TEST(co_await p->submit(op) == -EINVAL);
    p->close();
  });
}

// A fixed-buffer write to a server that hung up fails with -ENOTCONN, to be
// re-sent; its WRITE_FIXED (no MSG_NOSIGNAL) must not end the process.
BOOST_AUTO_TEST_CASE(a_fixed_buffer_write_to_a_server_that_hung_up_fails_with_enotconn) {
  ::signal(SIGPIPE, SIG_IGN);  // as NbdTarget does for zero copy
  ScriptedServer server([&](int fd) { (void)nbd_test::serve_handshake(fd); });
  run_on_runtime([&]() -> Task<void> {
    Bytes buffer = pattern(64 << 10, 9);
    const iovec iov{buffer.data(), buffer.size()};
    BOOST_TEST_REQUIRE(runtime::Reactor::current()->register_buffers({&iov, 1}) == 0);
    auto c = test::require_ok(co_await nbd::Connection::handshake(server.client_fd, "", 5s, true));
    co_await runtime::sleep_for(50ms);
    nbd::Op op{nbd::kCmdWrite, 0, 0, static_cast<uint32_t>(buffer.size()), nullptr, buffer.data()};
    op.fixed_buffer = 0;
    BOOST_TEST(co_await c->submit(op) == -ENOTCONN);
    BOOST_TEST(!c->alive());
  });
}

BOOST_AUTO_TEST_CASE(a_write_acknowledged_before_its_payload_arrived_is_not_taken_for_done) {
  // The server answers the header of an 8 MiB write (far more than the
  // socket buffers hold) with success, then hangs up: the payload never
  // arrived, so the reply proves nothing and the write must fail for a
  // re-send, not succeed.
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    std::byte header[nbd::kRequestHeaderSize];
    if (!nbd_test::recv_bytes(fd, header, sizeof(header))) return;
    nbd_test::send_bytes(fd, nbd_test::simple_reply(nbd_test::get_be(header + 8, 8), 0));
    std::this_thread::sleep_for(100ms);
  });
  run_on_runtime([&]() -> Task<void> {
    auto c = co_await connect(server.client_fd);
    const Bytes data = pattern(8 << 20, 4);
    BOOST_TEST(co_await c->write(0, data, false) == -ENOTCONN);
    BOOST_TEST(!c->alive());
  });
}

BOOST_AUTO_TEST_CASE(malformed_replies_drop_the_connection) {
  struct Case {
    const char* what;
    std::function<Bytes(const nbd_test::ClientRequest&)> reply;
    const char* reason;
  };
  const Bytes data = pattern(1 << 16, 1);
  const std::vector<Case> cases = {
      {"unknown handle", [](const auto& r) { return nbd_test::simple_reply(r.handle ^ 0x10000, 0); }, "unknown handle"},
      {"chunk past the request",
       [&](const auto& r) { return nbd_test::data_chunk(r.handle, r.offset + 1, data.data(), r.length, true); },
       "outside"},
      {"oversized reply",
       [&](const auto& r) {
         Bytes p(nbd::kMaxControlChunk * 4);
         return nbd_test::chunk(r.handle, nbd::kReplyError, nbd::kReplyFlagDone, p);
       },
       "bytes"},
      {"bad magic", [](const auto&) { return Bytes(20, std::byte{0x42}); }, "magic"},
  };
  for (const Case& k : cases) {
    BOOST_TEST_CONTEXT(k.what) {
      ScriptedServer server([&](int fd) {
        if (!nbd_test::serve_handshake(fd)) return;
        nbd_test::ClientRequest r;
        if (!nbd_test::read_request(fd, r)) return;
        nbd_test::send_bytes(fd, k.reply(r));
        Bytes sink(4096);
        while (::recv(fd, sink.data(), sink.size(), 0) > 0) {}
      });
      run_on_runtime([&]() -> Task<void> {
        auto c = co_await connect(server.client_fd);
        Bytes buf(4096, std::byte{0x5a});
        BOOST_TEST(co_await c->read(4096, buf) == -ENOTCONN);
        BOOST_TEST(!c->alive());
        BOOST_TEST(c->failure().find(k.reason) != std::string::npos, c->failure());
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(eshutdown_from_the_server_drops_the_connection_for_a_retry) {
  ScriptedServer server([&](int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    if (!nbd_test::read_request(fd, r)) return;
    nbd_test::send_bytes(fd, nbd_test::simple_reply(r.handle, 108));
  });
  run_on_runtime([&]() -> Task<void> {
    auto c = co_await connect(server.client_fd);
    Bytes buf(512);
    BOOST_TEST(co_await c->write(0, buf, false) == -ENOTCONN);
    BOOST_TEST(!c->alive());
  });
}

BOOST_AUTO_TEST_CASE(handshake_failures_are_one_line_errors) {
  ScriptedServer server([&](int fd) {
    nbd_test::ExportFacts facts;
    facts.name = "right";
    nbd_test::serve_handshake(fd, facts);
  });
  run_on_runtime([&]() -> Task<void> {
    Result<std::shared_ptr<nbd::Connection>> c = co_await nbd::Connection::handshake(server.client_fd, "wrong", 5s);
    const std::string message = test::require_error(c, ENOENT);
    BOOST_TEST(message.find("'wrong'") != std::string::npos);
  });
}

BOOST_AUTO_TEST_CASE(probe_reports_refused_missing_and_good_servers) {
  nbd_test::UnixListener listener;
  BOOST_REQUIRE(listener.fd >= 0);
  std::thread server([&] {
    for (int i = 0; i < 2; ++i) {
      const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      nbd_test::ExportFacts facts;
      facts.name = "disk";
      facts.size = 3 << 20;
      nbd_test::serve_handshake(fd, facts);
      ::close(fd);
    }
  });
  const nbd::Endpoint ep = test::require_ok(nbd::parse_endpoint("unix:" + listener.path));
  const nbd::ExportInfo info = test::require_ok(nbd::probe_export(ep, "disk", 5s));
  BOOST_TEST(info.size == 3u << 20);
  test::require_error(nbd::probe_export(ep, "nope", 5s), ENOENT);
  server.join();
  listener.stop();
  test::require_error(nbd::probe_export(ep, "disk", 5s), ENOENT);  // the socket file is gone
  test::require_error(nbd::parse_endpoint("udp:1.2.3.4:5"), EINVAL);
  test::require_error(nbd::parse_endpoint("tcp:localhost"), EINVAL);
  test::require_error(nbd::parse_endpoint("tcp:localhost:99999"), EINVAL);
  test::require_error(nbd::parse_endpoint("unix:"), EINVAL);
  // Nobody listens on this TCP port (bound, never listening).
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  BOOST_REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  BOOST_REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const nbd::Endpoint tcp =
      test::require_ok(nbd::parse_endpoint("tcp:127.0.0.1:" + std::to_string(ntohs(addr.sin_port))));
  const std::string refused = test::require_error(nbd::probe_export(tcp, "", 5s), ECONNREFUSED);
  BOOST_TEST(refused.find("cannot connect") != std::string::npos);
  ::close(holder);
}

BOOST_AUTO_TEST_CASE(client_resends_in_flight_requests_on_a_new_connection) {
  nbd_test::UnixListener listener;
  BOOST_REQUIRE(listener.fd >= 0);
  std::vector<std::byte> disk(1 << 20);
  std::atomic<int> connections{0};
  std::thread server([&] {
    // First connection: takes 3 writes, acknowledges one, then dies.
    // Second connection: serves everything.
    for (int i = 0; i < 2; ++i) {
      const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      ++connections;
      if (nbd_test::serve_handshake(fd)) {
        if (i == 0) {
          nbd_test::serve_disk(fd, disk, true, 1);
          nbd_test::ClientRequest r;
          nbd_test::read_request(fd, r);  // swallowed: never acknowledged
        } else {
          nbd_test::serve_disk(fd, disk, true);
        }
      }
      ::close(fd);
    }
  });
  nbd::ClientConfig config;
  config.endpoint = test::require_ok(nbd::parse_endpoint("unix:" + listener.path));
  config.reconnect_timeout = 5s;
  config.first_backoff = 10ms;
  nbd::ExportInfo expected;
  expected.size = 1 << 20;
  expected.flags = nbd_test::ExportFacts{}.flags;
  nbd::Client client(config, expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    std::vector<Bytes> data;
    for (unsigned i = 0; i < 3; ++i) data.push_back(pattern(4096, i));
    std::vector<Task<int>> writes;
    for (unsigned i = 0; i < 3; ++i) {
      writes.push_back(client.submit(nbd::Op{nbd::kCmdWrite, 0, i * 4096ULL, 4096, nullptr, data[i].data()}));
    }
    for (const int r : co_await runtime::when_all(std::move(writes))) BOOST_TEST(r == 0);
    BOOST_TEST(client.reconnects() == 1u);
    Bytes back(3 * 4096);
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 0, 3 * 4096, back.data(), nullptr}) == 0);
    for (unsigned i = 0; i < 3; ++i) {
      BOOST_TEST((Bytes(back.begin() + i * 4096, back.begin() + (i + 1) * 4096) == data[i]));
    }
    client.shut_down();
  });
  ::shutdown(listener.fd, SHUT_RDWR);
  server.join();
  BOOST_TEST(connections.load() == 2);
}

BOOST_AUTO_TEST_CASE(client_fails_with_eio_after_the_reconnect_timeout_and_recovers_later) {
  auto listener = std::make_unique<nbd_test::UnixListener>();
  BOOST_REQUIRE(listener->fd >= 0);
  const std::string path = listener->path;
  std::vector<std::byte> disk(1 << 20);
  std::thread server([&, fd0 = listener->fd] {
    const int fd = ::accept4(fd0, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    nbd_test::serve_handshake(fd);  // then dies
    ::close(fd);
  });
  nbd::ClientConfig config;
  config.endpoint = test::require_ok(nbd::parse_endpoint("unix:" + path));
  config.reconnect_timeout = 300ms;
  config.first_backoff = 20ms;
  nbd::ExportInfo expected;
  expected.size = 1 << 20;
  expected.flags = nbd_test::ExportFacts{}.flags;
  nbd::Client client(config, expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    server.join();
    listener.reset();  // the server is gone for good: connections are refused
    Bytes buf(4096);
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 0, 4096, buf.data(), nullptr}) == -EIO);
    const auto waited = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(waited >= 250ms);
    BOOST_TEST(waited < 3s);
    // Failed: later requests fail at once.
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdFlush, 0, 0, 0, nullptr, nullptr}) == -EIO);
    BOOST_TEST(!client.connected());
    client.shut_down();
  });
}

BOOST_AUTO_TEST_CASE(nbd_target_maps_block_requests_to_nbd_commands) {
  nbd_test::UnixListener listener;
  BOOST_REQUIRE(listener.fd >= 0);
  std::vector<std::byte> disk(1 << 20);
  std::vector<nbd_test::ClientRequest> seen;
  std::thread server([&] {
    const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    nbd_test::ExportFacts facts;
    facts.flags = nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim | nbd::kFlagSendWriteZeroes;  // no FUA
    if (nbd_test::serve_handshake(fd, facts)) {
      nbd_test::ClientRequest r;
      while (nbd_test::read_request(fd, r) && r.type != nbd::kCmdDisc) {
        seen.push_back(r);
        nbd_test::send_bytes(fd, nbd_test::serve_request(disk, r, true));
      }
    }
    ::close(fd);
  });
  ublk::NbdTargetConfig config;
  config.endpoint = test::require_ok(nbd::parse_endpoint("unix:" + listener.path));
  config.info.size = 1 << 20;
  config.info.flags = nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim | nbd::kFlagSendWriteZeroes;
  config.info.structured_replies = true;
  auto target = test::require_ok(ublk::NbdTarget::create(config));
  const ublk::TargetGeometry g = target->geometry();
  BOOST_TEST(g.volatile_cache);
  BOOST_TEST(g.discard);
  BOOST_TEST(g.write_zeroes);
  BOOST_TEST(!g.read_only);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await target->start_queue(0) == 0);
    Bytes data = pattern(8192, 3);
    ublk::Request w;
    w.op = ublk::abi::IO_OP_WRITE;
    w.flags = ublk::abi::IO_F_FUA;
    w.offset = 4096;
    w.length = 8192;
    w.data = data.data();
    BOOST_TEST(co_await target->write(w) == 8192);
    Bytes back(8192);
    ublk::Request rd = w;
    rd.op = ublk::abi::IO_OP_READ;
    rd.flags = 0;
    rd.data = back.data();
    BOOST_TEST(co_await target->read(rd) == 8192);
    BOOST_TEST((back == data));
    ublk::Request z = rd;
    z.op = ublk::abi::IO_OP_WRITE_ZEROES;
    z.flags = ublk::abi::IO_F_NOUNMAP;
    z.data = nullptr;
    BOOST_TEST(co_await target->write_zeroes(z) == 0);
    ublk::Request d = z;
    d.op = ublk::abi::IO_OP_DISCARD;
    d.flags = 0;
    BOOST_TEST(co_await target->discard(d) == 0);
    ublk::Request f;
    f.op = ublk::abi::IO_OP_FLUSH;
    BOOST_TEST(co_await target->flush(f) == 0);
    ublk::Request past = rd;
    past.offset = (1 << 20) - 4096;
    BOOST_TEST(co_await target->read(past) == -EIO);  // never sent
    target->client(0)->shut_down();
  });
  ::shutdown(listener.fd, SHUT_RDWR);
  server.join();
  // The FUA write became a write and a flush (the server has no FUA).
  BOOST_REQUIRE(seen.size() == 6u);
  BOOST_TEST(seen[0].type == nbd::kCmdWrite);
  BOOST_TEST(seen[0].flags == 0);
  BOOST_TEST(seen[1].type == nbd::kCmdFlush);
  BOOST_TEST(seen[2].type == nbd::kCmdRead);
  BOOST_TEST(seen[3].type == nbd::kCmdWriteZeroes);
  BOOST_TEST(seen[3].flags == nbd::kCmdFlagNoHole);
  BOOST_TEST(seen[4].type == nbd::kCmdTrim);
  BOOST_TEST(seen[5].type == nbd::kCmdFlush);
}

BOOST_AUTO_TEST_CASE(nbd_target_refuses_a_size_that_is_not_a_block_multiple) {
  ublk::NbdTargetConfig config;
  config.info.size = (1 << 20) + 512;
  config.block_size = 4096;
  const std::string m = test::require_error(ublk::NbdTarget::create(config), EINVAL);
  BOOST_TEST(m.find("not a multiple") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_server_that_stops_answering_is_dropped_by_the_request_timeout_and_requests_fail_with_eio) {
  // Every connection completes the handshake and takes requests, but no
  // reply ever comes: the request timeout drops each connection, the
  // request is re-sent on a new one, and after the reconnect timeout it
  // fails with EIO instead of waiting for ever.
  std::atomic<int> connections{0};
  std::atomic<int> requests{0};
  std::optional<ScriptedListener> server;
  server.emplace([&](int, int fd) {
    ++connections;
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    while (nbd_test::read_request(fd, r)) ++requests;  // and never a reply
  });
  nbd::ExportInfo expected;
  expected.size = 1 << 20;
  expected.flags = nbd_test::ExportFacts{}.flags;
  nbd::Client client(server->config(), expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    Bytes buf(4096);
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 0, 4096, buf.data(), nullptr}) == -EIO);
    const auto waited = std::chrono::steady_clock::now() - t0;
    BOOST_TEST((waited >= 500ms));
    BOOST_TEST((waited < 5s));
    BOOST_TEST(client.failed());
    client.shut_down();
  });
  server.reset();
  BOOST_TEST(connections.load() >= 2);  // re-sent on a new connection
  BOOST_TEST(requests.load() >= 2);
}

BOOST_AUTO_TEST_CASE(a_write_the_server_swallows_while_it_answers_reads_fails_with_eio_after_the_reconnect_timeout) {
  // Each reply restarts the client's outage clock, so the write, dropped
  // by the request timeout and re-sent again and again, needs its own limit.
  nbd_test::ExportFacts facts;
  facts.structured = false;
  ScriptedListener server([facts](int, int fd) {
    if (!nbd_test::serve_handshake(fd, facts)) return;
    nbd_test::ClientRequest r;
    while (nbd_test::read_request(fd, r)) {
      if (r.type == nbd::kCmdRead && !nbd_test::send_bytes(fd, nbd_test::simple_reply(r.handle, 0, Bytes(r.length))))
        return;
    }
  });
  nbd::ExportInfo expected;
  expected.size = facts.size;
  expected.flags = facts.flags;
  nbd::Client client(server.config(), expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    int written = 1;
    bool done = false;
    runtime::spawn(
        [](nbd::Client& cl, int& out, bool& finished) -> Task<void> {
          Bytes data(4096, std::byte{1});
          out = co_await cl.submit(nbd::Op{nbd::kCmdWrite, 0, 0, 4096, nullptr, data.data()});
          finished = true;
        }(client, written, done),
        "swallowed write");
    const auto t0 = std::chrono::steady_clock::now();
    int reads_ok = 0;
    Bytes buf(4096);
    while (!done && std::chrono::steady_clock::now() - t0 < 10s) {
      if (co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 4096, 4096, buf.data(), nullptr}) == 0) ++reads_ok;
      co_await runtime::sleep_for(10ms);
    }
    BOOST_TEST(done);
    BOOST_TEST(written == -EIO);
    BOOST_TEST(reads_ok > 0);
    client.shut_down();
  });
}

BOOST_AUTO_TEST_CASE(a_reconnect_to_an_export_whose_write_cache_flag_changed_is_refused_and_requests_fail_with_eio) {
  // The first connection shows a write cache and drops; every later one
  // shows none. The client's owner sends FLUSH only where there is a cache,
  // so a new connection without one would have flushes succeed unsent.
  nbd_test::ExportFacts first;
  nbd_test::ExportFacts later;
  later.flags = static_cast<uint16_t>(later.flags & ~(nbd::kFlagSendFlush | nbd::kFlagSendFua));
  ScriptedListener server([first, later](int n, int fd) {
    if (!nbd_test::serve_handshake(fd, n == 0 ? first : later) || n == 0) return;
    Bytes disk(later.size);
    nbd_test::ClientRequest r;
    while (nbd_test::read_request(fd, r)) {
      if (!nbd_test::send_bytes(fd, nbd_test::serve_request(disk, r, later.structured))) return;
    }
  });
  nbd::ExportInfo expected;
  expected.size = first.size;
  expected.flags = first.flags;
  nbd::Client client(server.config(), expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    co_await runtime::sleep_for(50ms);  // the first connection has dropped
    Bytes buf(4096);
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 0, 4096, buf.data(), nullptr}) == -EIO);
    client.shut_down();
  });
}

BOOST_AUTO_TEST_CASE(a_new_connection_whose_server_never_answers_the_identity_read_does_not_hold_requests_for_ever) {
  // A tier's client checks the bytes at offset 0 on every new connection,
  // before the request timeout's watchdog watches that connection. The
  // first connection answers and drops; later ones never answer.
  const Bytes identity = pattern(4096, 3);
  ScriptedListener server([identity](int n, int fd) {
    if (!nbd_test::serve_handshake(fd)) return;
    nbd_test::ClientRequest r;
    if (n > 0) {
      while (nbd_test::read_request(fd, r)) {}
      return;
    }
    if (nbd_test::read_request(fd, r)) {
      (void)nbd_test::send_bytes(fd, nbd_test::data_chunk(r.handle, 0, identity.data(), 4096, true));
    }
  });
  nbd::ClientConfig config = server.config();
  config.identity = identity;
  nbd::ExportInfo expected;
  expected.size = nbd_test::ExportFacts{}.size;
  expected.flags = nbd_test::ExportFacts{}.flags;
  nbd::Client client(config, expected);
  run_on_runtime([&]() -> Task<void> {
    BOOST_TEST(co_await client.start() == 0);
    co_await runtime::sleep_for(50ms);  // the first connection has dropped
    Bytes buf(4096);
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(co_await client.submit(nbd::Op{nbd::kCmdRead, 0, 0, 4096, buf.data(), nullptr}) == -EIO);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
    client.shut_down();
  });
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_nbd_connection_test
