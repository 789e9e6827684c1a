// The targets under injected faults (runtime/fault_injection.h): the loop
// target completes short transfers and reports I/O errors to the kernel,
// and a zram write whose allocation fails gives -EIO and keeps the old
// page. Built and run only with -DCOBLK_FAULT_INJECTION=ON.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/runtime.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/zram_target.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_fault_injection)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
namespace fault = runtime::fault;

namespace {

struct ClearRules {
  ClearRules() { fault::clear(); }
  ~ClearRules() { fault::clear(); }
};

ublk::Request make(uint8_t op, uint64_t offset, std::vector<std::byte>& data) {
  ublk::Request r;
  r.op = op;
  r.offset = offset;
  r.length = static_cast<uint32_t>(data.size());
  r.data = data.data();
  return r;
}

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>("coblk fault injection "[(i + seed) % 22]);
  return v;
}

template <typename F>
auto run_on_one_core(F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0}}));
  return rt->run(std::move(body));
}

// A temporary backing file of `bytes` zero bytes.
struct TempFile {
  std::string path;
  explicit TempFile(uint64_t bytes) {
    char tmpl[] = "/tmp/coblk-fault-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(fault_injection, ClearRules)

BOOST_AUTO_TEST_CASE(the_loop_target_completes_reads_and_writes_that_come_back_short) {
  TempFile file(1 << 20);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  auto data = pattern(65536, 1);
  std::vector<std::byte> back(65536);
  // Every read and write transfers at most 1000 bytes at a time.
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_WRITE, .count = 1000, .result = 1000}));
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_READ, .count = 1000, .result = 1000}));
  const auto results = run_on_one_core([&]() -> runtime::Task<std::vector<int>> {
    std::vector<int> r;
    r.push_back(co_await loop->write(make(ublk::abi::IO_OP_WRITE, 4096, data)));
    r.push_back(co_await loop->read(make(ublk::abi::IO_OP_READ, 4096, back)));
    co_return r;
  });
  BOOST_TEST((results == std::vector<int>{65536, 65536}));
  BOOST_TEST(fault::fired(fault::Site::io_result) > 2u);
  BOOST_TEST((back == data));
}

BOOST_AUTO_TEST_CASE(the_loop_target_reports_an_io_error_of_its_file_to_the_kernel) {
  TempFile file(1 << 20);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  auto data = pattern(4096, 2);
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_WRITE, .result = -EIO}));
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_READ, .result = -ENOSPC}));
  const auto results = run_on_one_core([&]() -> runtime::Task<std::vector<int>> {
    std::vector<int> r;
    r.push_back(co_await loop->write(make(ublk::abi::IO_OP_WRITE, 0, data)));
    r.push_back(co_await loop->read(make(ublk::abi::IO_OP_READ, 0, data)));
    co_return r;
  });
  BOOST_TEST(results[0] < 0);
  BOOST_TEST(results[1] < 0);
}

BOOST_AUTO_TEST_CASE(a_zram_write_whose_allocation_fails_gives_eio_and_keeps_the_old_page) {
  const auto zram = test::require_ok(ublk::ZramTarget::create(ublk::ZramTargetConfig{
      .size_bytes = 1 << 20, .codec = compress::CodecSpec{compress::Algorithm::lz4, 1}, .queues = 1}));
  auto old_page = pattern(4096, 3);
  auto new_page = pattern(4096, 9);
  std::vector<std::byte> back(4096);
  const auto results = run_on_one_core([&]() -> runtime::Task<std::vector<int>> {
    std::vector<int> r;
    r.push_back(co_await zram->write(make(ublk::abi::IO_OP_WRITE, 8192, old_page)));
    // Memory has run out: the compressed object's allocation fails, and
    // so does the one page prepare() then tries for the page as it is.
    BOOST_REQUIRE(fault::arm({.site = fault::Site::store_alloc, .count = 2}));
    r.push_back(co_await zram->write(make(ublk::abi::IO_OP_WRITE, 8192, new_page)));
    r.push_back(co_await zram->read(make(ublk::abi::IO_OP_READ, 8192, back)));
    co_return r;
  });
  BOOST_TEST((results == std::vector<int>{4096, -EIO, 4096}));
  BOOST_TEST(fault::fired(fault::Site::store_alloc) == 2u);
  BOOST_TEST((back == old_page));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END()  // ublk_fault_injection
