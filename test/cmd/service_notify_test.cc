// notify_service_ready: what a server under a Type=notify unit tells systemd.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>

#include "coblk/cmd/server.h"

BOOST_AUTO_TEST_SUITE(cmd_service_notify_test)

namespace {

// A datagram socket standing in for systemd's notification socket, named in
// $NOTIFY_SOCKET while it exists.
struct FakeNotifySocket {
  std::string path = "/tmp/coblk-notify-" + std::to_string(::getpid());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  FakeNotifySocket() {
    BOOST_REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    ::unlink(path.c_str());
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~FakeNotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd);
    ::unlink(path.c_str());
  }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;
  std::string receive() const {
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_live_device_sends_ready_and_its_block_device_to_systemd) {
  const FakeNotifySocket systemd;
  coblk::cmd::notify_service_ready("/dev/ublkb3");
  BOOST_TEST(systemd.receive() == "READY=1\nSTATUS=serving /dev/ublkb3");
  // The variable stays, for a server the keeper restarts later.
  BOOST_TEST(::getenv("NOTIFY_SOCKET") != nullptr);
}

BOOST_AUTO_TEST_CASE(the_terminal_report_notifies_too) {
  const FakeNotifySocket systemd;
  coblk::cmd::ReadinessReport report(-1, "add");
  report.ready("/dev/ublkb7");
  BOOST_TEST(systemd.receive() == "READY=1\nSTATUS=serving /dev/ublkb7");
}

BOOST_AUTO_TEST_CASE(without_notify_socket_nothing_is_sent) {
  ::unsetenv("NOTIFY_SOCKET");
  coblk::cmd::notify_service_ready("/dev/ublkb3");  // must neither fail nor block
  BOOST_TEST(true);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_service_notify_test
