// Compile-only check that forgetting to co_await is diagnosed: Task and the
// I/O awaitables are [[nodiscard]], so discarding one is a warning (an error
// under -Werror=unused-result). CMake compiles this file twice: once as is,
// expecting the diagnostics, and once with COBLK_KEEP_RESULTS, which must
// compile cleanly (so the only diagnostics are the discarded results).
#include "coblk/runtime/io.h"
#include "coblk/runtime/task.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

runtime::Task<int> make_task() { co_return 1; }

runtime::Task<void> discards() {
#ifdef COBLK_KEEP_RESULTS
  co_await make_task();
  (void)co_await runtime::nop();
  (void)co_await runtime::sleep_for(std::chrono::milliseconds(1));
#else
  make_task();
  runtime::nop();
  runtime::sleep_for(std::chrono::milliseconds(1));
#endif
  co_return;
}

}  // namespace

int main() {
  runtime::Task<void> t = discards();
  return 0;
}
