// File I/O through the reactor's io_uring: read/write, vectored and
// registered-buffer forms, fsync/fdatasync, fallocate and openat/close.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_io_file_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using runtime_test::run_on_one_core;
using runtime_test::TempFile;

namespace {

std::vector<char> pattern(std::size_t n, char seed) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<char>(seed + static_cast<char>(i * 7));
  }
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(read_returns_what_write_stored) {
  TempFile file;
  const auto data = pattern(8192, 'a');
  run_on_one_core([&]() -> Task<void> {
    BOOST_TEST(co_await runtime::write(file.fd, data.data(), 8192, 0) == 8192);
    // A second write at an offset extends the file and leaves the first intact.
    BOOST_TEST(co_await runtime::write(file.fd, data.data(), 100, 8192) == 100);
    std::vector<char> back(8192 + 100);
    BOOST_TEST(co_await runtime::read(file.fd, back.data(), 8292, 0) == 8292);
    BOOST_TEST(std::memcmp(back.data(), data.data(), 8192) == 0);
    BOOST_TEST(std::memcmp(back.data() + 8192, data.data(), 100) == 0);
    // Reading past the end returns 0, not an error.
    BOOST_TEST(co_await runtime::read(file.fd, back.data(), 10, 1 << 20) == 0);
  });
}

BOOST_AUTO_TEST_CASE(an_io_error_is_returned_as_a_negative_errno) {
  run_on_one_core([]() -> Task<void> {
    char byte = 0;
    BOOST_TEST(co_await runtime::read(-1, &byte, 1, 0) == -EBADF);
    BOOST_TEST(co_await runtime::write(987654, &byte, 1, 0) == -EBADF);
  });
}

BOOST_AUTO_TEST_CASE(readv_returns_what_writev_stored) {
  TempFile file;
  const auto a = pattern(1000, 'x');
  const auto b = pattern(3000, 'y');
  run_on_one_core([&]() -> Task<void> {
    std::array<iovec, 2> out{iovec{const_cast<char*>(a.data()), a.size()},
                             iovec{const_cast<char*>(b.data()), b.size()}};
    BOOST_TEST(co_await runtime::writev(file.fd, out.data(), 2, 4096) == 4000);
    // Read back with a different split to show the bytes are contiguous.
    std::vector<char> first(2500), second(1500);
    std::array<iovec, 2> in{iovec{first.data(), first.size()}, iovec{second.data(), second.size()}};
    BOOST_TEST(co_await runtime::readv(file.fd, in.data(), 2, 4096) == 4000);
    std::string joined(first.begin(), first.end());
    joined.append(second.begin(), second.end());
    BOOST_TEST(joined == std::string(a.begin(), a.end()) + std::string(b.begin(), b.end()));
  });
}

BOOST_AUTO_TEST_CASE(read_fixed_returns_what_write_fixed_stored_through_registered_buffers) {
  TempFile file;
  run_on_one_core([&]() -> Task<void> {
    alignas(4096) static char out_buf[2 * 4096];
    alignas(4096) static char in_buf[2 * 4096];
    std::memset(in_buf, 0, sizeof(in_buf));
    const auto data = pattern(sizeof(out_buf), 'f');
    std::memcpy(out_buf, data.data(), sizeof(out_buf));
    const std::array<iovec, 2> buffers{iovec{out_buf, sizeof(out_buf)}, iovec{in_buf, sizeof(in_buf)}};
    // Registration must happen on the ring's own thread (SINGLE_ISSUER).
    BOOST_REQUIRE(runtime::Reactor::current()->register_buffers(buffers) == 0);
    BOOST_TEST(co_await runtime::write_fixed(file.fd, out_buf, sizeof(out_buf), 0, 0) == int(sizeof(out_buf)));
    // A sub-range of a registered buffer is allowed.
    BOOST_TEST(co_await runtime::read_fixed(file.fd, in_buf + 4096, 4096, 4096, 1) == 4096);
    BOOST_TEST(co_await runtime::read_fixed(file.fd, in_buf, 4096, 0, 1) == 4096);
    BOOST_TEST(std::memcmp(in_buf, out_buf, sizeof(in_buf)) == 0);
    // A buffer outside its registered range is refused by the kernel.
    BOOST_TEST(co_await runtime::read_fixed(file.fd, out_buf, 4096, 0, 1) == -EFAULT);
  });
}

BOOST_AUTO_TEST_CASE(fsync_and_fdatasync_succeed_on_a_written_file) {
  TempFile file;
  run_on_one_core([&]() -> Task<void> {
    const char text[] = "durable";
    BOOST_TEST(co_await runtime::write(file.fd, text, sizeof(text), 0) == int(sizeof(text)));
    BOOST_TEST(co_await runtime::fsync(file.fd) == 0);
    BOOST_TEST(co_await runtime::fdatasync(file.fd) == 0);
    BOOST_TEST(co_await runtime::fsync(-1) == -EBADF);
  });
}

BOOST_AUTO_TEST_CASE(fallocate_extends_a_file_and_a_punched_hole_reads_as_zeros) {
  TempFile file;
  run_on_one_core([&]() -> Task<void> {
    BOOST_REQUIRE(co_await runtime::fallocate(file.fd, 0, 0, 16384) == 0);
    struct stat st {};
    BOOST_REQUIRE(::fstat(file.fd, &st) == 0);
    BOOST_TEST(st.st_size == 16384);

    std::vector<char> ones(16384, '\x01');
    BOOST_REQUIRE(co_await runtime::write(file.fd, ones.data(), 16384, 0) == 16384);
    const int punched = co_await runtime::fallocate(file.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192);
    if (punched == -EOPNOTSUPP) {
      BOOST_TEST_MESSAGE("this file system cannot punch holes; skipping the hole check");
      co_return;
    }
    BOOST_REQUIRE(punched == 0);
    std::vector<char> back(16384, '\x7f');
    BOOST_REQUIRE(co_await runtime::read(file.fd, back.data(), 16384, 0) == 16384);
    BOOST_TEST(std::all_of(back.begin(), back.begin() + 4096, [](char c) { return c == 1; }));
    BOOST_TEST(std::all_of(back.begin() + 4096, back.begin() + 12288, [](char c) { return c == 0; }));
    BOOST_TEST(std::all_of(back.begin() + 12288, back.end(), [](char c) { return c == 1; }));
    BOOST_REQUIRE(::fstat(file.fd, &st) == 0);
    BOOST_TEST(st.st_size == 16384);  // KEEP_SIZE
  });
}

BOOST_AUTO_TEST_CASE(openat_opens_a_file_that_close_then_closes) {
  TempFile file;
  const char text[] = "opened through io_uring";
  BOOST_REQUIRE(::pwrite(file.fd, text, sizeof(text), 0) == ssize_t(sizeof(text)));
  run_on_one_core([&]() -> Task<void> {
    const int fd = co_await runtime::openat(AT_FDCWD, file.path.c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    char back[sizeof(text)] = {};
    BOOST_TEST(co_await runtime::read(fd, back, sizeof(back), 0) == int(sizeof(text)));
    BOOST_TEST(std::string(back) == text);
    BOOST_TEST(co_await runtime::close(fd) == 0);
    BOOST_TEST(::fcntl(fd, F_GETFD) == -1);  // really closed
    BOOST_TEST(co_await runtime::openat(AT_FDCWD, "/nonexistent/coblk", O_RDONLY) == -ENOENT);
  });
}

BOOST_AUTO_TEST_CASE(a_registered_file_is_used_by_index) {
  TempFile file;
  run_on_one_core([&]() -> Task<void> {
    const int fds[] = {file.fd};
    BOOST_REQUIRE(runtime::Reactor::current()->register_files(fds) == 0);
    const char text[] = "fixed";
    BOOST_TEST(co_await runtime::write(0, text, sizeof(text), 0).fixed_file() == int(sizeof(text)));
    char back[sizeof(text)] = {};
    BOOST_TEST(co_await runtime::read(0, back, sizeof(back), 0).fixed_file() == int(sizeof(text)));
    BOOST_TEST(std::string(back) == text);
  });
}

BOOST_AUTO_TEST_CASE(an_installed_file_is_used_by_index_and_its_slot_is_reused_after_removal) {
  TempFile file;
  run_on_one_core([&]() -> Task<void> {
    runtime::Reactor* reactor = runtime::Reactor::current();
    const int index = reactor->install_file(file.fd);
    if (index == -EINVAL) {
      BOOST_TEST_MESSAGE("this kernel has no sparse fixed-file tables; install_file refused cleanly");
      co_return;
    }
    BOOST_REQUIRE(index >= 0);
    const char text[] = "installed";
    BOOST_TEST(co_await runtime::write(index, text, sizeof(text), 0).fixed_file(true) == int(sizeof(text)));
    BOOST_TEST(co_await runtime::fdatasync(index).fixed_file(true) == 0);
    char back[sizeof(text)] = {};
    BOOST_TEST(co_await runtime::read(index, back, sizeof(back), 0).fixed_file(true) == int(sizeof(text)));
    BOOST_TEST(std::string(back) == text);
    // The plain fd still works beside it; fixed_file(false) changes nothing.
    BOOST_TEST(co_await runtime::read(file.fd, back, sizeof(back), 0).fixed_file(false) == int(sizeof(text)));
    const int second = reactor->install_file(file.fd);
    BOOST_TEST(second >= 0);
    BOOST_TEST(second != index);
    reactor->remove_file(index);
    // An emptied slot names no file any more, and is handed out again.
    BOOST_TEST(co_await runtime::read(index, back, sizeof(back), 0).fixed_file(true) == -EBADF);
    BOOST_TEST(reactor->install_file(file.fd) == index);
  });
}

BOOST_AUTO_TEST_CASE(without_fixed_file_slots_install_file_fails_and_the_plain_fd_serves) {
  TempFile file;
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.fixed_file_slots = 0;
  config.reactor.register_ring_fd = false;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  rt->run([&]() -> Task<void> {
    runtime::Reactor* reactor = runtime::Reactor::current();
    BOOST_TEST(!reactor->ring_fd_registered());
    BOOST_TEST(reactor->install_file(file.fd) == -ENFILE);
    const char text[] = "plain";
    BOOST_TEST(co_await runtime::write(file.fd, text, sizeof(text), 0) == int(sizeof(text)));
    co_await runtime::nop();  // a ring without a registered fd still enters the kernel fine
  });
}

BOOST_AUTO_TEST_CASE(the_ring_fd_is_registered_where_the_kernel_allows_and_io_works_either_way) {
  run_on_one_core([&]() -> Task<void> {
    runtime::Reactor* reactor = runtime::Reactor::current();
    BOOST_TEST_MESSAGE("ring fd registered: " << reactor->ring_fd_registered());
    for (int i = 0; i < 100; ++i) BOOST_TEST(co_await runtime::nop() == 0);
    co_await runtime::sleep_for(std::chrono::milliseconds(1));  // a real sleep in io_uring_enter
  });
}

BOOST_AUTO_TEST_CASE(many_operations_in_flight_at_once_all_complete) {
  // More concurrent operations than the ring has SQEs (256) or initial
  // slots (512): get_sqe must flush and the slot table must grow.
  TempFile file;
  constexpr int n = 1500;
  std::vector<int> results(n, -1);
  run_on_one_core([&]() -> Task<void> {
    std::vector<Task<void>> ops;
    ops.reserve(n);
    for (int i = 0; i < n; ++i) {
      ops.push_back([](int fd, int index, int* out) -> Task<void> {
        const std::uint32_t v = static_cast<std::uint32_t>(index);
        *out = co_await runtime::write(fd, &v, sizeof(v), static_cast<std::uint64_t>(index) * 4);
      }(file.fd, i, &results[static_cast<std::size_t>(i)]));
    }
    co_await runtime::when_all(std::move(ops));
  });
  BOOST_TEST(std::count(results.begin(), results.end(), 4) == n);
  std::vector<std::uint32_t> back(n);
  BOOST_REQUIRE(::pread(file.fd, back.data(), n * 4, 0) == n * 4);
  for (int i = 0; i < n; ++i) {
    BOOST_TEST_REQUIRE(back[static_cast<std::size_t>(i)] == static_cast<std::uint32_t>(i));
  }
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_io_file_test
