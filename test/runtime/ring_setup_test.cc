// Ring and Runtime set-up: 128-byte SQE rings for URING_CMD, small rings,
// SQPOLL, and RuntimeConfig validation.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_ring_setup_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

// SOCKET_URING_OP_SIOCINQ from <linux/io_uring.h> (Linux 6.7); Debian
// bookworm's headers predate it. Asks a socket how many bytes are queued
// for reading: a URING_CMD that needs no device.
constexpr std::uint32_t socket_uring_op_siocinq = 0;

/// A UDP socket on 127.0.0.1 holding one queued 5-byte datagram it sent to itself.
struct SocketWithQueuedDatagram {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  SocketWithQueuedDatagram() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::sendto(fd, "hello", 5, 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 5) {
      throw std::runtime_error("cannot set up a UDP socket on 127.0.0.1");
    }
  }
  SocketWithQueuedDatagram(const SocketWithQueuedDatagram&) = delete;
  SocketWithQueuedDatagram& operator=(const SocketWithQueuedDatagram&) = delete;
  ~SocketWithQueuedDatagram() { ::close(fd); }
};

runtime::RuntimeConfig one_core(bool sqe128) {
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.sqe128 = sqe128;
  return config;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_sqe128_ring_runs_uring_cmd) {
  SocketWithQueuedDatagram sock;
  const auto rt = test::require_ok(runtime::Runtime::create(one_core(true)));
  rt->run([&]() -> Task<void> {
    BOOST_TEST((runtime::Reactor::current()->ring_flags() & IORING_SETUP_SQE128) != 0u);
    const int queued = co_await runtime::uring_cmd(sock.fd, socket_uring_op_siocinq, nullptr, 0);
    BOOST_TEST(queued == 5);  // the datagram's size, as ioctl(SIOCINQ) says
    // The 80-byte payload area is usable in full.
    const std::array<std::byte, runtime::uring_cmd_area> payload{};
    BOOST_TEST(co_await runtime::uring_cmd(sock.fd, socket_uring_op_siocinq, payload.data(), payload.size()) == 5);
  });
}

BOOST_AUTO_TEST_CASE(uring_cmd_on_a_64_byte_sqe_ring_returns_einval_without_submitting) {
  SocketWithQueuedDatagram sock;
  const auto rt = test::require_ok(runtime::Runtime::create(one_core(false)));
  rt->run([&]() -> Task<void> {
    BOOST_TEST((runtime::Reactor::current()->ring_flags() & IORING_SETUP_SQE128) == 0u);
    co_await runtime::nop();  // flush the reactor's own start-up SQEs
    const auto& stats = runtime::Reactor::current()->stats();
    const auto submitted = stats.sqes_submitted.get();
    BOOST_TEST(co_await runtime::uring_cmd(sock.fd, socket_uring_op_siocinq, nullptr, 0) == -EINVAL);
    co_await runtime::nop();
    BOOST_TEST(stats.sqes_submitted.get() - submitted == 1u);  // only the nop
  });
}

BOOST_AUTO_TEST_CASE(a_uring_cmd_on_a_registered_buffer_names_the_buffer_in_its_sqe) {
  // What the driver sees (NVMe passthrough in zero-copy mode): the FIXED
  // flag and the buffer's index; without a buffer, neither.
  io_uring_sqe sqe[2]{};  // one 128-byte SQE
  const std::array<std::byte, runtime::uring_cmd_area> payload{std::byte{0x5a}};
  runtime::detail::UringCmdPrep fixed{3, 7, payload, 5};
  fixed(&sqe[0]);
  BOOST_TEST(sqe[0].opcode == IORING_OP_URING_CMD);
  BOOST_TEST(sqe[0].fd == 3);
  BOOST_TEST(sqe[0].cmd_op == 7u);
  BOOST_TEST(sqe[0].uring_cmd_flags == IORING_URING_CMD_FIXED);
  BOOST_TEST(static_cast<unsigned>(sqe[0].buf_index) == 5u);
  // The payload starts at the SQE's command area (cmd[] is a zero-length
  // array, which -Warray-bounds will not let us index).
  BOOST_TEST(static_cast<int>(reinterpret_cast<const unsigned char*>(&sqe[0])[offsetof(io_uring_sqe, cmd)]) == 0x5a);
  runtime::detail::UringCmdPrep plain{3, 7, payload, -1};
  plain(&sqe[0]);
  BOOST_TEST(sqe[0].uring_cmd_flags == 0u);
  BOOST_TEST(static_cast<unsigned>(sqe[0].buf_index) == 0u);
}

BOOST_AUTO_TEST_CASE(a_uring_cmd_payload_longer_than_80_bytes_returns_einval) {
  SocketWithQueuedDatagram sock;
  const auto rt = test::require_ok(runtime::Runtime::create(one_core(true)));
  rt->run([&]() -> Task<void> {
    const std::array<std::byte, runtime::uring_cmd_area + 1> payload{};
    BOOST_TEST(co_await runtime::uring_cmd(sock.fd, socket_uring_op_siocinq, payload.data(), payload.size()) ==
               -EINVAL);
  });
}

BOOST_AUTO_TEST_CASE(a_ring_with_four_entries_runs_a_hundred_concurrent_operations) {
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.ring_entries = 4;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  const auto results = rt->run([]() -> Task<std::vector<int>> {
    std::vector<Task<int>> ops;
    ops.reserve(100);
    for (int i = 0; i < 100; ++i) {
      ops.push_back([](int v) -> Task<int> {
        const int r = co_await runtime::nop();
        co_return r == 0 ? v : -1;
      }(i));
    }
    co_return co_await runtime::when_all(std::move(ops));
  });
  BOOST_REQUIRE(results.size() == 100u);
  for (int i = 0; i < 100; ++i) {
    BOOST_TEST_REQUIRE(results[static_cast<std::size_t>(i)] == i);
  }
}

BOOST_AUTO_TEST_CASE(an_sqpoll_ring_runs_operations) {
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.sqpoll = true;
  config.reactor.sqpoll_idle_ms = 1;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  const unsigned flags = rt->run([]() -> Task<unsigned> {
    for (int i = 0; i < 50; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    }
    BOOST_TEST(co_await runtime::sleep_for(std::chrono::milliseconds(5)) == 0);  // idle past sqpoll_idle_ms
    BOOST_TEST(co_await runtime::nop() == 0);
    co_return runtime::Reactor::current()->ring_flags();
  });
  BOOST_TEST((flags & IORING_SETUP_SQPOLL) != 0u);
}

BOOST_AUTO_TEST_CASE(runtime_config_rejects_duplicate_cpus) {
  for (const auto& cpus : {runtime_test::cores({0, 0}), runtime_test::cores({0, 1, 0})}) {
    BOOST_TEST(test::require_error(runtime::Runtime::create(cpus), EINVAL) ==
               "runtime: a CPU appears twice in the CPU list");
  }
}

BOOST_AUTO_TEST_CASE(runtime_config_rejects_cpus_this_process_may_not_use) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  BOOST_REQUIRE(::sched_getaffinity(0, sizeof(allowed), &allowed) == 0);
  unsigned forbidden = 0;
  while (forbidden < CPU_SETSIZE && CPU_ISSET(forbidden, &allowed)) {
    ++forbidden;
  }
  BOOST_REQUIRE(forbidden < CPU_SETSIZE);
  for (const unsigned cpu : {forbidden, unsigned{CPU_SETSIZE}, 100000u}) {
    BOOST_TEST(test::require_error(runtime::Runtime::create(runtime_test::cores({cpu})), EINVAL) ==
               "runtime: CPU " + std::to_string(cpu) + " is not available to this process");
  }
}

BOOST_AUTO_TEST_CASE(runtime_config_rejects_a_ring_size_of_zero_or_above_32768) {
  for (const unsigned entries : {0u, 32769u}) {
    runtime::RuntimeConfig config = runtime_test::cores({0});
    config.reactor.ring_entries = entries;
    BOOST_TEST(test::require_error(runtime::Runtime::create(config), EINVAL) ==
               "runtime: ring_entries must be between 1 and 32768");
  }
}

BOOST_AUTO_TEST_CASE(a_core_that_cannot_create_its_ring_makes_run_throw_a_system_error_naming_it) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  // No descriptor can be opened while the limit is the lowest free one, so
  // io_uring_setup fails with EMFILE on the core's thread.
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const int lowest_free = ::dup(0);
  BOOST_REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  bool main_ran = false;
  int code = 0;
  std::string what;
  try {
    rt->run([&]() -> Task<void> {
      main_ran = true;
      co_return;
    });
  } catch (const std::system_error& e) {
    code = e.code().value();
    what = e.what();
  }
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  BOOST_TEST(!main_ran);
  BOOST_TEST(code == EMFILE);
  BOOST_TEST(what.rfind("runtime: core 0: cannot create an io_uring", 0) == 0, what);
  // The Runtime is still usable once the kernel agrees again.
  BOOST_TEST(rt->run([]() -> Task<int> { co_return 7; }) == 7);
}

BOOST_AUTO_TEST_CASE(an_empty_cpu_list_means_one_core_on_an_allowed_cpu) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{}));
  BOOST_TEST(rt->cores() == 1u);
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  BOOST_REQUIRE(::sched_getaffinity(0, sizeof(allowed), &allowed) == 0);
  BOOST_TEST(CPU_ISSET(rt->cpu_of(0), &allowed));
  const int cpu = rt->run([]() -> Task<int> { co_return ::sched_getcpu(); });
  BOOST_TEST(cpu == static_cast<int>(rt->cpu_of(0)));  // pinned there
}

BOOST_AUTO_TEST_CASE(asking_for_a_core_that_does_not_exist_throws_out_of_range) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  BOOST_CHECK_THROW(rt->stats(0), std::out_of_range);  // no reactor before run()
  rt->run([]() -> Task<void> { co_return; });
  BOOST_CHECK_NO_THROW(rt->stats(0));
  BOOST_CHECK_THROW(rt->stats(1), std::out_of_range);
  BOOST_CHECK_THROW(rt->reactor(7), std::out_of_range);
  BOOST_CHECK_THROW(rt->cpu_of(1), std::out_of_range);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_ring_setup_test
