#include "coblk/runtime/io.h"

#include <cstdio>
#include <cstdlib>

namespace coblk::runtime::detail {

namespace {

// Runs on the reactor that owns the operation. The user_data travels by
// value inside the message, so a cancel that arrives after the operation has
// completed (and its awaitable is gone) only finds no match: -ENOENT.
void cancel_on_owner(void* user_data) noexcept {
  Reactor::current()->cancel(reinterpret_cast<std::uintptr_t>(user_data));
}

}  // namespace

void CancelOnStop::operator()() const noexcept {
  Reactor* here = Reactor::current();
  if (here == reactor) {
    reactor->cancel(user_data);
    return;
  }
  if (here != nullptr && here->runtime() != nullptr && here->runtime() == reactor->runtime()) {
    static_assert(sizeof(void*) == sizeof(std::uint64_t), "user_data travels in a pointer-sized field");
    here->send(reactor->core(), Message{&cancel_on_owner, reinterpret_cast<void*>(user_data)});
    return;
  }
  // Only a reactor may touch a ring (SINGLE_ISSUER), and only reactors have
  // mailboxes; a foreign thread cannot reach the owner safely.
  std::fputs("coblk: stop requested on an I/O operation from a thread that is not a reactor of its Runtime\n", stderr);
  std::abort();
}

}  // namespace coblk::runtime::detail
