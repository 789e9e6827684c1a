// accept/connect/send/recv over a TCP connection on 127.0.0.1.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_io_socket_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using runtime_test::run_on_one_core;

namespace {

/// A TCP listener on 127.0.0.1 with a kernel-chosen port.
struct Listener {
  int fd = -1;
  sockaddr_in addr{};
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 4) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() { ::close(fd); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_connected_loopback_socket_pair_carries_data_both_ways) {
  Listener listener;
  std::string server_got, client_got;
  int server_eof = -1;
  run_on_one_core([&]() -> Task<void> {
    auto server = [](Listener* l, std::string* got, int* eof) -> Task<void> {
      sockaddr_in peer{};
      socklen_t peer_len = sizeof(peer);
      const int conn = co_await runtime::accept(l->fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
      BOOST_REQUIRE(conn >= 0);
      BOOST_TEST(peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
      char buf[64];
      const int n = co_await runtime::recv(conn, buf, sizeof(buf));
      BOOST_REQUIRE(n > 0);
      got->assign(buf, static_cast<std::size_t>(n));
      BOOST_TEST(co_await runtime::send(conn, "pong", 4) == 4);
      *eof = co_await runtime::recv(conn, buf, sizeof(buf));  // client closes: 0
      BOOST_TEST(co_await runtime::close(conn) == 0);
    };
    auto client = [](Listener* l, std::string* got) -> Task<void> {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      BOOST_REQUIRE(fd >= 0);
      BOOST_TEST(co_await runtime::connect(fd, reinterpret_cast<const sockaddr*>(&l->addr), sizeof(l->addr)) == 0);
      BOOST_TEST(co_await runtime::send(fd, "ping", 4) == 4);
      char buf[64];
      const int n = co_await runtime::recv(fd, buf, sizeof(buf));
      BOOST_REQUIRE(n > 0);
      got->assign(buf, static_cast<std::size_t>(n));
      BOOST_TEST(co_await runtime::close(fd) == 0);
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(server(&listener, &server_got, &server_eof));
    tasks.push_back(client(&listener, &client_got));
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(server_got == "ping");
  BOOST_TEST(client_got == "pong");
  BOOST_TEST(server_eof == 0);
}

BOOST_AUTO_TEST_CASE(connecting_to_a_closed_port_fails_with_econnrefused) {
  sockaddr_in addr{};
  {
    Listener taken;  // reserve a port, then free it so nothing listens there
    addr = taken.addr;
  }
  run_on_one_core([&]() -> Task<void> {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST(co_await runtime::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == -ECONNREFUSED);
    ::close(fd);
  });
}

BOOST_AUTO_TEST_CASE(a_large_send_arrives_whole_through_repeated_recv) {
  Listener listener;
  constexpr std::size_t total = 4 << 20;  // more than the socket buffers hold
  std::vector<char> sent(total);
  for (std::size_t i = 0; i < total; ++i) {
    sent[i] = static_cast<char>(i * 131 + (i >> 11));
  }
  std::vector<char> received;
  run_on_one_core([&]() -> Task<void> {
    auto server = [](int lfd, std::vector<char>* out) -> Task<void> {
      const int conn = co_await runtime::accept(lfd);
      BOOST_REQUIRE(conn >= 0);
      std::vector<char> buf(65536);
      int n;
      while ((n = co_await runtime::recv(conn, buf.data(), buf.size())) > 0) {
        out->insert(out->end(), buf.begin(), buf.begin() + n);
      }
      BOOST_TEST(n == 0);
      ::close(conn);
    };
    auto client = [](Listener* l, const std::vector<char>* data) -> Task<void> {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      BOOST_REQUIRE(co_await runtime::connect(fd, reinterpret_cast<const sockaddr*>(&l->addr), sizeof(l->addr)) == 0);
      std::size_t off = 0;
      while (off < data->size()) {
        const int n = co_await runtime::send(fd, data->data() + off, data->size() - off);
        BOOST_REQUIRE(n > 0);
        off += static_cast<std::size_t>(n);
      }
      ::close(fd);
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(server(listener.fd, &received));
    tasks.push_back(client(&listener, &sent));
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(received.size() == total);
  BOOST_TEST((received == sent));
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_io_socket_test
