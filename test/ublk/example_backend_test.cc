// The mirror target of docs/writing-a-backend.md, driven through its
// coroutine API on a runtime as a ublk queue would drive it (no kernel ublk
// needed; test/vm/guest/example-backend.sh covers the real device).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/examples/mirror_target.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_example_backend_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using ublk::Request;
using ublk::examples::MirrorTarget;

namespace {

// A temporary file of `bytes` bytes, removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(uint64_t bytes) {
    char name[] = "/tmp/coblk-mirror-XXXXXX";
    const int fd = ::mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    path = name;
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }

  std::vector<std::byte> read_back(uint64_t offset, size_t length) const {
    std::vector<std::byte> out(length);
    const int fd = ::open(path.c_str(), O_RDONLY);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::pread(fd, out.data(), length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length));
    ::close(fd);
    return out;
  }
  void write_at(uint64_t offset, const std::vector<std::byte>& bytes) const {
    const int fd = ::open(path.c_str(), O_WRONLY);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
                  static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
};

Request make(uint8_t op, uint64_t offset, uint32_t length, std::byte* data, uint16_t queue = 0) {
  Request r;
  r.op = op;
  r.offset = offset;
  r.length = length;
  r.data = data;
  r.queue = queue;
  return r;
}

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7 + 1) & 0xff);
  return v;
}

bool all_zero(const std::vector<std::byte>& v) {
  for (std::byte b : v) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

// Runs `body` on a one-core runtime, after starting queue 0 on that core as
// ublk::Queue::serve does before the first request.
template <class F>
int run_on_queue_0(MirrorTarget& target, F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{}));
  return rt->run([&]() -> Task<int> {
    if (const int ret = co_await target.start_queue(0); ret < 0) co_return ret;
    co_return co_await body();
  });
}

constexpr uint64_t kMiB = 1 << 20;

}  // namespace

BOOST_AUTO_TEST_CASE(a_write_lands_in_both_files_and_reads_back) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  auto data = pattern(12288, 1);
  const int ok = run_on_queue_0(mirror, [&]() -> Task<int> {
    if (co_await mirror.write(make(ublk::abi::IO_OP_WRITE, 4096, 12288, data.data())) != 12288) co_return 1;
    std::vector<std::byte> back(12288);
    if (co_await mirror.read(make(ublk::abi::IO_OP_READ, 4096, 12288, back.data())) != 12288) co_return 2;
    co_return back == data ? 0 : 3;
  });
  BOOST_TEST(ok == 0);
  BOOST_TEST((a.read_back(4096, 12288) == data));
  BOOST_TEST((b.read_back(4096, 12288) == data));
  BOOST_TEST(mirror.counters(0).writes == 1U);
  BOOST_TEST(mirror.counters(0).reads == 1U);
  BOOST_TEST(mirror.counters(0).errors == 0U);
}

BOOST_AUTO_TEST_CASE(a_fua_write_completes_only_after_both_files_are_synced) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  auto data = pattern(4096, 2);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    Request r = make(ublk::abi::IO_OP_WRITE, 0, 4096, data.data());
    r.flags = ublk::abi::IO_F_FUA;
    co_return co_await mirror.write(r);
  });
  BOOST_TEST(result == 4096);
  BOOST_TEST((b.read_back(0, 4096) == data));
}

BOOST_AUTO_TEST_CASE(reads_are_served_from_the_primary_file) {
  TempFile a(kMiB), b(kMiB);
  const auto in_primary = pattern(4096, 3);
  const auto in_secondary = pattern(4096, 4);
  a.write_at(8192, in_primary);
  b.write_at(8192, in_secondary);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  std::vector<std::byte> back(4096);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_return co_await mirror.read(make(ublk::abi::IO_OP_READ, 8192, 4096, back.data()));
  });
  BOOST_TEST(result == 4096);
  BOOST_TEST((back == in_primary));
  BOOST_TEST(mirror.counters(0).reads_from_secondary == 0U);
}

BOOST_AUTO_TEST_CASE(a_read_the_primary_cannot_serve_is_answered_by_the_secondary) {
  TempFile a(kMiB), b(kMiB);
  const auto data = pattern(4096, 5);
  b.write_at(65536, data);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  // The primary shrinks under the device: reading there finds its end (-EIO).
  BOOST_REQUIRE(::truncate(a.path.c_str(), 0) == 0);
  std::vector<std::byte> back(4096);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_return co_await mirror.read(make(ublk::abi::IO_OP_READ, 65536, 4096, back.data()));
  });
  BOOST_TEST(result == 4096);
  BOOST_TEST((back == data));
  BOOST_TEST(mirror.counters(0).reads_from_secondary == 1U);
  BOOST_TEST(mirror.counters(0).errors == 0U);
}

BOOST_AUTO_TEST_CASE(a_read_both_files_fail_reports_the_error_to_the_kernel) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  BOOST_REQUIRE(::truncate(a.path.c_str(), 0) == 0);
  BOOST_REQUIRE(::truncate(b.path.c_str(), 0) == 0);
  std::vector<std::byte> back(4096);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_return co_await mirror.read(make(ublk::abi::IO_OP_READ, 0, 4096, back.data()));
  });
  BOOST_TEST(result == -EIO);
  BOOST_TEST(mirror.counters(0).errors == 1U);
}

BOOST_AUTO_TEST_CASE(a_discard_punches_the_range_out_of_both_files) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  auto data = pattern(16384, 6);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_await mirror.write(make(ublk::abi::IO_OP_WRITE, 0, 16384, data.data()));
    co_return co_await mirror.discard(make(ublk::abi::IO_OP_DISCARD, 4096, 8192, nullptr));
  });
  if (result == -EOPNOTSUPP) return;  // a file system without hole punching
  BOOST_TEST(result == 0);
  for (const TempFile* f : {&a, &b}) {
    BOOST_TEST(all_zero(f->read_back(4096, 8192)));
    const auto edge = f->read_back(12288, 4096);
    BOOST_TEST(std::memcmp(edge.data(), data.data() + 12288, 4096) == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_flush_succeeds_when_both_files_sync) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  const int result = run_on_queue_0(
      mirror, [&]() -> Task<int> { co_return co_await mirror.flush(make(ublk::abi::IO_OP_FLUSH, 0, 0, nullptr)); });
  BOOST_TEST(result == 0);
  BOOST_TEST(mirror.counters(0).flushes == 1U);
}

BOOST_AUTO_TEST_CASE(a_request_beyond_the_device_fails_with_eio_and_touches_no_file) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  auto data = pattern(8192, 7);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_return co_await mirror.write(make(ublk::abi::IO_OP_WRITE, kMiB - 4096, 8192, data.data()));
  });
  BOOST_TEST(result == -EIO);
  BOOST_TEST(all_zero(a.read_back(kMiB - 4096, 4096)));
}

BOOST_AUTO_TEST_CASE(a_request_on_a_queue_that_was_never_started_fails_with_eio) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 2));
  MirrorTarget& mirror = *made;
  std::vector<std::byte> buf(4096);
  const int result = run_on_queue_0(mirror, [&]() -> Task<int> {
    co_return co_await mirror.read(make(ublk::abi::IO_OP_READ, 0, 4096, buf.data(), 1));
  });
  BOOST_TEST(result == -EIO);
}

BOOST_AUTO_TEST_CASE(the_device_is_the_smaller_file_rounded_down_to_a_page_and_asks_for_flushes) {
  TempFile a(kMiB + 1000), b(2 * kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 1));
  MirrorTarget& mirror = *made;
  const auto g = mirror.geometry();
  BOOST_TEST(g.size_bytes == kMiB);
  BOOST_TEST(g.volatile_cache);
  BOOST_TEST(g.discard);
  BOOST_TEST(!g.write_zeroes);
}

BOOST_AUTO_TEST_CASE(a_missing_or_too_small_file_is_reported_in_one_line_not_thrown) {
  TempFile a(kMiB), tiny(100);
  BOOST_TEST(test::require_error(MirrorTarget::create(a.path, "/nonexistent/mirror.img", 1), ENOENT) ==
             "cannot open '/nonexistent/mirror.img': No such file or directory");
  BOOST_TEST(test::require_error(MirrorTarget::create(a.path, tiny.path, 1), EINVAL) ==
             "the mirror files must be at least 4096 bytes long");
  BOOST_TEST(test::require_error(MirrorTarget::create(a.path, "/dev/null", 1), EINVAL) ==
             "'/dev/null' is not a regular file");
}

BOOST_AUTO_TEST_CASE(two_queues_on_two_cores_serve_their_own_requests_with_their_own_counters) {
  TempFile a(kMiB), b(kMiB);
  const auto made = test::require_ok(MirrorTarget::create(a.path, b.path, 2));
  MirrorTarget& mirror = *made;
  auto first = pattern(4096, 8);
  auto second = pattern(4096, 9);
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}}));
  const int ok = rt->run([&]() -> Task<int> {
    // Queue q is started, and its requests run, on core q (as ublk::Device
    // arranges): each core registers the files in its own ring.
    if (co_await mirror.start_queue(0) < 0) co_return 1;
    const int w0 = co_await mirror.write(make(ublk::abi::IO_OP_WRITE, 0, 4096, first.data(), 0));
    const int w1 = co_await runtime::submit_to(1, [&]() -> Task<int> {
      if (const int ret = co_await mirror.start_queue(1); ret < 0) co_return ret;
      co_return co_await mirror.write(make(ublk::abi::IO_OP_WRITE, 4096, 4096, second.data(), 1));
    });
    co_return w0 == 4096 && w1 == 4096 ? 0 : 2;
  });
  BOOST_TEST(ok == 0);
  BOOST_TEST(mirror.counters(0).writes == 1U);
  BOOST_TEST(mirror.counters(1).writes == 1U);
  BOOST_TEST((b.read_back(0, 4096) == first));
  BOOST_TEST((b.read_back(4096, 4096) == second));
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_example_backend_test
