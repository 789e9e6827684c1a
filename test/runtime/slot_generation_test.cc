// Operation slots are matched by (generation, index); a generation that
// wraps past 2^32 must never produce the "never submitted" user_data 0
// (issue 12, finding 3).
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"

BOOST_AUTO_TEST_SUITE(runtime_slot_generation_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(operations_across_the_generation_wrap_of_a_slot_return_their_real_results) {
  runtime::RuntimeConfig config;
  config.cpus = {0};
  // Three operations before the wrap: slot 0 (used by every sequential
  // operation below) reaches generation 0xffffffff, then wraps.
  config.reactor.first_slot_generation = UINT32_MAX - 2;
  auto created = runtime::Runtime::create(config);
  BOOST_REQUIRE(created.ok());
  runtime::Runtime& rt = **created;
  const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  const char bytes[7] = {};
  const int failures = rt.run([&]() -> runtime::Task<int> {
    int wrong = 0;
    // A write of 7 bytes returns 7; a wrongly matched "never submitted"
    // operation would read back 0.
    for (int i = 0; i < 8; ++i) wrong += co_await runtime::write(fd, bytes, sizeof(bytes), 0) != 7;
    co_return wrong;
  });
  ::close(fd);
  BOOST_TEST(failures == 0);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_slot_generation_test
