// test/require_ok.h - unwraps a Result a test needs to succeed.
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>

#include "coblk/runtime/result.h"

namespace coblk::test {

/// The value of `result`. On an Error the test case stops here (a failed
/// requirement, not an exception), with the Error's errno and message.
template <typename T>
T require_ok(Result<T> result) {
  if (!result.ok()) {
    BOOST_FAIL("expected success, got error " << result.error().code() << ": " << result.error().message());
  }
  return std::move(result).value();
}

/// Checks that `result` failed with errno `code` and a one-line, non-empty
/// message, and returns that message for further checks. A result that
/// succeeded stops the test case.
template <typename T>
std::string require_error(const Result<T>& result, int code) {
  BOOST_TEST_REQUIRE(!result.ok());
  BOOST_TEST(result.error().code() == code);
  BOOST_TEST(!result.error().message().empty());
  BOOST_TEST(result.error().message().find('\n') == std::string::npos);
  return result.error().message();
}

}  // namespace coblk::test
