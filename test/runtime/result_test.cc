// Result<T> and Error: the one error idiom of coblk's public API.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <variant>

#include "coblk/runtime/result.h"

BOOST_AUTO_TEST_SUITE(runtime_result_test)

// g++ 12 at -O2 with -fsanitize=thread warns that the Error alternative's
// string "may be used uninitialized" when a Result holding a unique_ptr is
// moved from (the TSan build of test-all, with -Werror). The variant holds
// the value alternative there; the warning is a known false positive of
// GCC's flow analysis through std::variant.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using coblk::Error;
using coblk::Result;

namespace {

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return Error(EINVAL, std::string("not a digit: ") + c);
  return c - '0';
}

Result<void> must_be_even(int n) {
  if (n % 2 != 0) return Error(EDOM, "odd");
  return coblk::ok();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_successful_result_holds_its_value) {
  const Result<int> r = parse_digit('7');
  BOOST_TEST(r.ok());
  BOOST_TEST(static_cast<bool>(r));
  BOOST_TEST(*r == 7);
}

BOOST_AUTO_TEST_CASE(a_failed_result_holds_a_positive_errno_and_one_line) {
  const Result<int> r = parse_digit('x');
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error().code() == EINVAL);
  BOOST_TEST(r.error().negative() == -EINVAL);
  BOOST_TEST(r.error().message() == "not a digit: x");
}

BOOST_AUTO_TEST_CASE(asking_a_failed_result_for_its_value_throws_instead_of_reading_garbage) {
  const Result<int> r = parse_digit('x');
  BOOST_CHECK_THROW((void)r.value(), std::bad_variant_access);
}

BOOST_AUTO_TEST_CASE(a_void_result_is_ok_or_an_error) {
  BOOST_TEST(must_be_even(2).ok());
  const Result<void> r = must_be_even(3);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error().code() == EDOM);
}

BOOST_AUTO_TEST_CASE(a_result_can_own_a_move_only_value) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  BOOST_REQUIRE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  BOOST_TEST(*p == 5);
}

BOOST_AUTO_TEST_CASE(from_errno_names_what_failed_and_why) {
  const Error e = Error::from_errno(ENOENT, "cannot open /x");
  BOOST_TEST(e.code() == ENOENT);
  BOOST_TEST(e.message() == "cannot open /x: No such file or directory");
}

// bool is constructible from a Result (explicit operator bool), so the
// value constructor must not stand in for the copy constructor: a copy of a
// non-const Result<bool> once held ok() as its value and lost its error.
BOOST_AUTO_TEST_CASE(copying_a_result_of_bool_copies_its_value_and_its_error) {
  Result<bool> no = false;
  Result<bool> copy(no);
  BOOST_REQUIRE(copy.ok());
  BOOST_TEST(*copy == false);

  Result<bool> failed = Error(EIO, "lost");
  Result<bool> failed_copy(failed);  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
  BOOST_REQUIRE(!failed_copy.ok());
  BOOST_TEST(failed_copy.error().code() == EIO);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_result_test
