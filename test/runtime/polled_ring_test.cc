// The polled ring (runtime/polled_ring.h) on a host without poll queues:
// setup, the refusal paths, and that a core with polled I/O in flight keeps
// polling until every operation is back. Reads and writes that really poll
// need a device with poll queues: test/vm/guest/nvme.sh runs them on the
// VM's emulated NVMe disk.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/polled_ring.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_polled_ring_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using runtime_test::run_on_one_core;

namespace {

// A 64 KiB file in /tmp opened with O_DIRECT, or fd -1 where the file
// system has no direct I/O (then the test says so and checks nothing).
struct DirectFile {
  std::string path = "/tmp/coblk-polled-test-XXXXXX";
  int fd = -1;
  DirectFile() {
    const int plain = ::mkstemp(path.data());
    BOOST_REQUIRE(plain >= 0);
    std::vector<char> data(64 * 1024, 'p');
    BOOST_REQUIRE(::pwrite(plain, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
    ::close(plain);
    fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  }
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;
  ~DirectFile() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
};

// A page-aligned buffer for O_DIRECT.
struct Aligned {
  void* p = nullptr;
  explicit Aligned(std::size_t n) { BOOST_REQUIRE(::posix_memalign(&p, 4096, n) == 0); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  ~Aligned() { ::free(p); }
};

// The host's disk has no poll queues (io_poll 0): the kernel takes the
// polled read and fails it with EOPNOTSUPP. A host whose disk polls reads.
bool polled_outcome(int result, int bytes) { return result == -EOPNOTSUPP || result == bytes; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_polled_operation_on_a_core_without_a_polled_ring_fails_with_enxio) {
  DirectFile file;
  Aligned buffer(4096);
  run_on_one_core([&]() -> Task<void> {
    BOOST_TEST(runtime::Reactor::current()->polled_ring() == nullptr);
    BOOST_TEST(co_await runtime::polled_read(file.fd, buffer.p, 4096, 0) == -ENXIO);
    BOOST_TEST(co_await runtime::polled_write(file.fd, buffer.p, 4096, 0) == -ENXIO);
  });
}

BOOST_AUTO_TEST_CASE(enable_polled_ring_makes_one_ring_per_core_and_keeps_it) {
  run_on_one_core([]() -> Task<void> {
    runtime::Reactor* r = runtime::Reactor::current();
    BOOST_TEST(r->enable_polled_ring(64) == 0);
    runtime::PolledRing* ring = r->polled_ring();
    BOOST_TEST(ring != nullptr);
    BOOST_TEST(r->enable_polled_ring(256) == 0);
    BOOST_TEST(r->polled_ring() == ring);
    BOOST_TEST(!ring->busy());
    co_return;
  });
}

BOOST_AUTO_TEST_CASE(a_polled_read_completes_through_the_reactors_polling_and_the_core_goes_on) {
  DirectFile file;
  if (file.fd < 0) {
    BOOST_TEST_MESSAGE("/tmp has no O_DIRECT here; nothing to check");
    return;
  }
  Aligned buffer(4096);
  run_on_one_core([&]() -> Task<void> {
    runtime::Reactor* r = runtime::Reactor::current();
    BOOST_REQUIRE(r->enable_polled_ring(64) == 0);
    const int n = co_await runtime::polled_read(file.fd, buffer.p, 4096, 0);
    BOOST_TEST(polled_outcome(n, 4096), "polled read returned " << n);
    if (n == 4096) BOOST_TEST(static_cast<const char*>(buffer.p)[100] == 'p');
    BOOST_TEST(!r->polled_ring()->busy());
    // The core sleeps and wakes as before once nothing polled is in flight.
    BOOST_TEST(co_await runtime::sleep_for(std::chrono::milliseconds(5)) == 0);
    BOOST_TEST(co_await runtime::nop() == 0);
  });
}

BOOST_AUTO_TEST_CASE(more_polled_operations_than_the_ring_has_entries_all_complete) {
  DirectFile file;
  if (file.fd < 0) {
    BOOST_TEST_MESSAGE("/tmp has no O_DIRECT here; nothing to check");
    return;
  }
  // 8 SQEs and 16 slots: 100 concurrent reads fill the submission queue
  // (early submits) and grow the slot table.
  constexpr int count = 100;
  Aligned buffer(4096 * 16);
  std::vector<int> results(count, 1);
  run_on_one_core([&]() -> Task<void> {
    BOOST_REQUIRE(runtime::Reactor::current()->enable_polled_ring(8) == 0);
    std::vector<Task<void>> reads;
    reads.reserve(count);
    for (int i = 0; i < count; ++i) {
      reads.push_back([](int fd, void* buf, std::uint64_t off, int& out) -> Task<void> {
        out = co_await runtime::polled_read(fd, buf, 4096, off);
      }(file.fd, static_cast<char*>(buffer.p) + 4096 * (i % 16), 4096ull * (i % 16), results[i]));
    }
    co_await runtime::when_all(std::move(reads));
    BOOST_TEST(runtime::Reactor::current()->polled_ring()->in_flight() == 0u);
  });
  for (int i = 0; i < count; ++i) BOOST_TEST(polled_outcome(results[i], 4096), "read " << i << ": " << results[i]);
}

BOOST_AUTO_TEST_CASE(the_probe_refuses_a_file_without_polled_io_and_a_bad_size) {
  BOOST_TEST(runtime::PolledRing::probe(0, 0) == -EINVAL);
  BOOST_TEST(runtime::PolledRing::probe(0, 128 * 1024) == -EINVAL);
  // A pipe is no O_DIRECT file of a polling driver.
  runtime_test::Pipe pipe;
  BOOST_TEST(runtime::PolledRing::probe(pipe.read_end, 4096) < 0);
  DirectFile file;
  if (file.fd >= 0) {
    const int ret = runtime::PolledRing::probe(file.fd, 4096);
    BOOST_TEST((ret == -EOPNOTSUPP || ret == 0), "probe returned " << ret);
  }
}

BOOST_AUTO_TEST_CASE(a_narrow_polled_ring_refuses_driver_commands_and_stays_narrow) {
  DirectFile file;
  run_on_one_core([&]() -> Task<void> {
    runtime::Reactor* r = runtime::Reactor::current();
    BOOST_REQUIRE(r->enable_polled_ring(64) == 0);
    BOOST_TEST(!r->polled_ring()->wide());
    // 64-byte SQEs have no room for a command: refused without submitting.
    BOOST_TEST(co_await runtime::polled_uring_cmd(file.fd, 0, nullptr, 0) == -EINVAL);
    BOOST_TEST(!r->polled_ring()->busy());
    // The ring may have operations in flight, so it is never replaced.
    BOOST_TEST(r->enable_polled_ring(64, true) == -EINVAL);
    BOOST_TEST(!r->polled_ring()->wide());
  });
}

BOOST_AUTO_TEST_CASE(a_wide_polled_ring_reaps_its_32_byte_completions_and_refuses_a_long_payload) {
  DirectFile file;
  if (file.fd < 0) {
    BOOST_TEST_MESSAGE("/tmp has no O_DIRECT here; nothing to check");
    return;
  }
  Aligned buffer(4096 * 4);
  run_on_one_core([&]() -> Task<void> {
    runtime::Reactor* r = runtime::Reactor::current();
    const int made = r->enable_polled_ring(64, true);
    if (made == -EINVAL) {
      BOOST_TEST_MESSAGE("this kernel has no 128-byte SQEs; nothing to check");
      co_return;
    }
    BOOST_REQUIRE(made == 0);
    BOOST_TEST(r->polled_ring()->wide());
    BOOST_TEST(r->enable_polled_ring(64, true) == 0);
    // Four reads at once: their CQEs sit in consecutive 32-byte entries,
    // which reap must step over two slots at a time.
    std::vector<int> results(4, 1);
    std::vector<Task<void>> reads;
    reads.reserve(4);
    for (int i = 0; i < 4; ++i) {
      reads.push_back([](int fd, void* buf, std::uint64_t off, int& out) -> Task<void> {
        out = co_await runtime::polled_read(fd, buf, 4096, off);
      }(file.fd, static_cast<char*>(buffer.p) + 4096 * i, 4096ull * i, results[i]));
    }
    co_await runtime::when_all(std::move(reads));
    for (int i = 0; i < 4; ++i) BOOST_TEST(polled_outcome(results[i], 4096), "read " << i << ": " << results[i]);
    // A regular file takes no driver commands; the kernel says so.
    const int cmd = co_await runtime::polled_uring_cmd(file.fd, 0, nullptr, 0);
    BOOST_TEST((cmd == -EOPNOTSUPP || cmd == -EINVAL), "command returned " << cmd);
    const std::vector<std::byte> long_payload(runtime::uring_cmd_area + 1);
    BOOST_TEST(co_await runtime::polled_uring_cmd(file.fd, 0, long_payload.data(), long_payload.size()) == -EINVAL);
    BOOST_TEST(!r->polled_ring()->busy());
  });
}

BOOST_AUTO_TEST_CASE(the_command_probe_refuses_a_file_whose_driver_takes_no_commands) {
  DirectFile file;
  const int ret = runtime::PolledRing::probe_command(file.fd >= 0 ? file.fd : 0, 0, nullptr, 0);
  BOOST_TEST((ret == -EOPNOTSUPP || ret == -EINVAL), "probe returned " << ret);
  const std::vector<std::byte> long_payload(runtime::uring_cmd_area + 1);
  BOOST_TEST(runtime::PolledRing::probe_command(0, 0, long_payload.data(), long_payload.size()) == -EINVAL);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_polled_ring_test
