// ublk/target.cc - the default operations of Target.
//
// Out of line, so that the vtable and these coroutines are compiled once:
// a coroutine defined in a header is compiled anew in every file that
// includes it.
#include "coblk/ublk/target.h"

#include <cerrno>

namespace coblk::ublk {

Target::~Target() = default;

runtime::Task<int> Target::start_queue(uint16_t queue) {
  (void)queue;
  co_return 0;
}

runtime::Task<int> Target::flush(const Request& r) {
  (void)r;
  co_return 0;
}

runtime::Task<int> Target::discard(const Request& r) {
  (void)r;
  co_return -EOPNOTSUPP;
}

runtime::Task<int> Target::write_zeroes(const Request& r) {
  (void)r;
  co_return -EOPNOTSUPP;
}

}  // namespace coblk::ublk
