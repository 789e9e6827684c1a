#include "coblk/ublk/group_commit.h"

#include <cerrno>

namespace coblk::ublk {

runtime::Task<int> GroupCommit::sync() {
  ++requests_;
  if (!busy_) {
    busy_ = true;
    co_return co_await lead();
  }
  // A sync is in flight (or its leader is about to start it): wait for the
  // next one (see the header for why joining the one in flight is wrong).
  Node node;
  if (tail_ == nullptr) {
    head_ = &node;
  } else {
    tail_->next = &node;
  }
  tail_ = &node;
  co_await Park{&node};
  if (!node.lead) co_return node.result;
  co_return co_await lead();
}

runtime::Task<int> GroupCommit::lead() {
  // Everyone in the list arrived, and so had their writes completed,
  // before this sync starts: it covers them all.
  Node* group = head_;
  head_ = tail_ = nullptr;
  ++syncs_;
  int result = -EIO;
  try {
    result = co_await sync_(context_);
  } catch (...) {
    // No frame for the sync (std::bad_alloc): the group must still be
    // answered, or it and every later arrival would wait for ever.
  }
  runtime::Reactor* reactor = runtime::Reactor::current();
  // schedule() only queues the waiter; its frame (and node) stays alive
  // until this task yields, so reading `next` after it is safe. It is read
  // first all the same.
  for (Node* n = group; n != nullptr;) {
    Node* next = n->next;
    n->result = result;
    reactor->schedule(n->waiter);
    n = next;
  }
  if (head_ != nullptr) {
    // Arrivals during the sync: the first leads the next sync and takes the
    // rest (and whoever comes before it runs) along. busy_ stays true, so
    // nobody starts a second sync in the meantime.
    Node* leader = head_;
    head_ = leader->next;
    if (head_ == nullptr) tail_ = nullptr;
    leader->next = nullptr;
    leader->lead = true;
    reactor->schedule(leader->waiter);
  } else {
    busy_ = false;
  }
  co_return result;
}

}  // namespace coblk::ublk
