// ublk/group_commit.h - GroupCommit: the FLUSH and FUA requests of one core share one fdatasync.
#pragma once

// The invariant every caller relies on: sync() completes only after a sync
// operation that *started after sync() was called* has completed, and
// returns that operation's result. A caller's writes completed before it
// called sync(), so that operation covers them.
//
// A request that arrives while a sync is in flight therefore cannot join
// it: the sync in flight may have started (and read the dirty page list)
// before the request's writes completed. It waits in the list for the next
// sync, which starts when the one in flight ends and takes the whole list
// (everyone who arrived meanwhile) with it. So at QD32 a burst of flushes
// costs about two syncs, not thirty-two, and no request waits for more than
// the end of the sync in flight plus one whole sync.

#include <coroutine>
#include <cstdint>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/task.h"

namespace coblk::ublk {

/// Groups the durability requests (FLUSH, and the sync after an FUA write)
/// of one core into as few sync operations as the invariant above allows.
/// Used only on the core it belongs to: no locks, no atomics. Each waiter
/// is a node in its own coroutine frame, so waiting allocates nothing.
class GroupCommit {
 public:
  /// The operation that makes the writes durable (fdatasync on the loop
  /// target): 0 or a negative errno. Tests pass a fake that labels each
  /// operation with a positive number.
  using SyncFn = runtime::Task<int> (*)(void* context);

  /// Groups requests for the sync `operation` (called with `context`).
  GroupCommit(SyncFn operation, void* context) noexcept : sync_(operation), context_(context) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  /// Completes after a sync operation that started after this call has
  /// completed, with that operation's result: every request of a group
  /// gets the same result, so a failed sync fails all of them.
  runtime::Task<int> sync();

  /// Sync operations started so far.
  std::uint64_t syncs() const noexcept { return syncs_; }
  /// Calls of sync() so far.
  std::uint64_t requests() const noexcept { return requests_; }

 private:
  // One request waiting for the next sync.
  struct Node {
    runtime::Waiter waiter;
    int result = 0;
    bool lead = false;  // woken to start the next sync, not with a result
    Node* next = nullptr;
  };
  // Suspends the calling request on its node until lead() wakes it.
  struct Park {
    Node* node;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept {
      node->waiter = runtime::Reactor::current()->waiter_for(h);
    }
    void await_resume() const noexcept {}
  };

  // Runs one sync for itself and everyone waiting now, hands the result
  // to them and wakes the first later arrival to lead the next one.
  runtime::Task<int> lead();

  SyncFn sync_;
  void* context_;
  // True from the moment a leader is chosen until a sync ends with nobody
  // waiting: while true, arrivals queue instead of starting a sync.
  bool busy_ = false;
  Node* head_ = nullptr;  // waiting for the next sync, in arrival order
  Node* tail_ = nullptr;
  std::uint64_t syncs_ = 0;
  std::uint64_t requests_ = 0;
};

}  // namespace coblk::ublk
