#include "coblk/storage/remote_frees.h"

#include <cstring>

#include "coblk/storage/object_arena.h"

namespace coblk::storage {

RemoteFrees::RemoteFrees(std::span<ObjectArena* const> arenas, std::size_t ring_capacity)
    : cores_(static_cast<unsigned>(arenas.size())), arenas_(arenas.begin(), arenas.end()), senders_(cores_) {
  rings_.resize(std::size_t{cores_} * cores_);
  for (unsigned from = 0; from < cores_; ++from) {
    for (unsigned to = 0; to < cores_; ++to) {
      if (from != to) {
        rings_[std::size_t{from} * cores_ + to] = std::make_unique<runtime::SpscRing<Handle>>(ring_capacity);
      }
    }
    senders_[from].overflow_head.assign(cores_, null_handle);
    senders_[from].overflow_length = std::make_unique<std::atomic<std::uint64_t>[]>(cores_);
  }
}

RemoteFrees::~RemoteFrees() = default;

void RemoteFrees::send(unsigned from, Handle handle) noexcept {
  const unsigned to = handle_core(handle);
  SenderState& s = senders_[from];
  // Keep the overflow list from growing behind a ring that has room again.
  if (s.overflow_head[to] == null_handle || flush_one(from, to)) {
    if (ring(from, to).try_push(Handle{handle})) {
      return;
    }
  }
  std::memcpy(arenas_[to]->address(handle), &s.overflow_head[to], sizeof(Handle));
  s.overflow_head[to] = handle;
  // Single writer (this sender): relaxed load + store; readers only
  // display the number.
  s.overflow_length[to].store(s.overflow_length[to].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s.any_overflow = true;
}

bool RemoteFrees::flush_one(unsigned from, unsigned to) noexcept {
  SenderState& s = senders_[from];
  runtime::SpscRing<Handle>& r = ring(from, to);
  while (s.overflow_head[to] != null_handle) {
    const Handle head = s.overflow_head[to];
    Handle next;
    // Read the link before the push: after the push the owner may reuse
    // the object's memory.
    std::memcpy(&next, arenas_[to]->address(head), sizeof next);
    if (!r.try_push(Handle{head})) {
      return false;
    }
    s.overflow_head[to] = next;
    s.overflow_length[to].store(s.overflow_length[to].load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  return true;
}

void RemoteFrees::flush_overflow(unsigned from) noexcept {
  SenderState& s = senders_[from];
  if (!s.any_overflow) {
    return;
  }
  bool all = true;
  for (unsigned to = 0; to < cores_; ++to) {
    if (to != from) {
      all = flush_one(from, to) && all;
    }
  }
  s.any_overflow = !all;
}

std::size_t RemoteFrees::receive(unsigned owner) noexcept {
  std::size_t total = 0;
  Handle batch[64];
  for (unsigned from = 0; from < cores_; ++from) {
    if (from == owner) {
      continue;
    }
    runtime::SpscRing<Handle>& r = ring(from, owner);
    for (;;) {
      const std::size_t n = r.try_pop_batch(std::span<Handle>(batch));
      for (std::size_t i = 0; i < n; ++i) {
        arenas_[owner]->free(batch[i]);
      }
      total += n;
      if (n < std::size(batch)) {
        break;
      }
    }
  }
  return total;
}

std::uint64_t RemoteFrees::pending_towards(unsigned owner) const noexcept {
  std::uint64_t n = 0;
  for (unsigned from = 0; from < cores_; ++from) {
    if (from != owner) {
      n += ring(from, owner).size_approx();
      n += senders_[from].overflow_length[owner].load(std::memory_order_relaxed);
    }
  }
  return n;
}

}  // namespace coblk::storage
