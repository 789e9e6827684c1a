// The null target reads zeros: a read must never hand out what the tag
// buffer held from an earlier request (issue 12, finding 12).
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <vector>

#include "coblk/runtime/runtime.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/null_target.h"

BOOST_AUTO_TEST_SUITE(ublk_null_target_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

ublk::Request make(uint8_t op, uint32_t length, std::byte* data) {
  ublk::Request r;
  r.op = op;
  r.length = length;
  r.data = data;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_read_after_a_write_in_the_same_tag_buffer_returns_zeros_not_the_written_bytes) {
  ublk::NullTarget null(1ULL << 30, 512);
  auto created = runtime::Runtime::create(runtime::RuntimeConfig{});
  BOOST_REQUIRE(created.ok());
  runtime::Runtime& rt = **created;
  // One buffer, as a tag's copy buffer is reused by consecutive requests.
  std::vector<std::byte> tag_buffer(64 * 1024, std::byte{0xa5});
  const int result = rt.run([&]() -> runtime::Task<int> {
    if (co_await null.write(make(ublk::abi::IO_OP_WRITE, 65536, tag_buffer.data())) != 65536) co_return -1;
    co_return co_await null.read(make(ublk::abi::IO_OP_READ, 65536, tag_buffer.data()));
  });
  BOOST_TEST(result == 65536);
  size_t nonzero = 0;
  for (std::byte b : tag_buffer) nonzero += b != std::byte{0};
  BOOST_TEST(nonzero == 0u);
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_null_target_test
