// test/fuzz/check.h - a failed property in a fuzz harness.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace coblk::fuzz {

/// Prints `what` (with the harness's file and line) and aborts, which
/// libFuzzer reports as a crash and saves the input of.
[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what.c_str());
  std::abort();
}

}  // namespace coblk::fuzz

/// Checks a property of the code under test; `what` is only built on failure.
#define COBLK_FUZZ_CHECK(cond, what)                              \
  do {                                                            \
    if (!(cond)) ::coblk::fuzz::fail(__FILE__, __LINE__, (what)); \
  } while (0)
