// storage/remote_frees.h - frees of objects that belong to another core's arena, handed back to their owner.
#pragma once

// One SPSC ring per (freeing core, owning core) pair.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "coblk/runtime/spsc_ring.h"
#include "coblk/storage/handle.h"

namespace coblk::storage {

class ObjectArena;

/// Routes frees of foreign objects to their owners without locks.
///
/// A core that drops the last reference to an object of core O's arena
/// (by overwriting or discarding a page that O wrote) cannot free it itself:
/// only O mutates O's arena. It pushes the handle onto ring (self -> O),
/// which O drains before allocating and in drain_remote_frees.
///
/// Ring full: the handle goes onto the sender's private overflow list for
/// O, threaded through the dead objects themselves (the first 8 bytes of a
/// dead object hold the next handle; every object is at least 16 bytes).
/// Nobody else reads a dead object: no entry refers to it, and its span
/// cannot be freed or reused while the object is still counted live, which
/// it is until O processes the free. The list is flushed into the ring at
/// the sender's next send to O and at its drain_remote_frees. So a free is
/// never lost and a send never blocks.
///
/// Memory order: the ring's release (push) / acquire (pop) pair orders the
/// sender's last use of the object, including writing an overflow link into
/// it, before the owner reuses its memory.
class RemoteFrees {
 public:
  /// `arenas[c]` is core c's arena (used to find a dead object's memory for
  /// the overflow links). `ring_capacity` is per ring.
  RemoteFrees(std::span<ObjectArena* const> arenas, std::size_t ring_capacity);
  ~RemoteFrees();
  RemoteFrees(const RemoteFrees&) = delete;
  RemoteFrees& operator=(const RemoteFrees&) = delete;

  /// Called by core `from` only. Hands `handle` (of another core's arena)
  /// to its owner. Never blocks, never allocates.
  void send(unsigned from, Handle handle) noexcept;

  /// Called by core `from` only. Moves as much of from's overflow as fits
  /// into the rings.
  void flush_overflow(unsigned from) noexcept;

  /// Called by core `owner` only. Frees into owner's arena every handle
  /// waiting in the rings towards it. Returns how many were freed.
  std::size_t receive(unsigned owner) noexcept;

  /// Any thread, approximate: handles waiting in rings or overflow lists
  /// towards `owner` (for tests and diagnostics).
  std::uint64_t pending_towards(unsigned owner) const noexcept;

 private:
  struct alignas(runtime::cache_line_size) SenderState {
    // Per owner: head of the overflow list and its length. Owned by the
    // sender; the length is atomic only so pending_towards may read it.
    std::vector<Handle> overflow_head;
    std::unique_ptr<std::atomic<std::uint64_t>[]> overflow_length;
    bool any_overflow = false;
  };

  runtime::SpscRing<Handle>& ring(unsigned from, unsigned to) const noexcept {
    return *rings_[std::size_t{from} * cores_ + to];
  }
  bool flush_one(unsigned from, unsigned to) noexcept;

  const unsigned cores_;
  std::vector<ObjectArena*> arenas_;
  std::vector<std::unique_ptr<runtime::SpscRing<Handle>>> rings_;  // [from * cores + to], null on the diagonal
  std::vector<SenderState> senders_;
};

}  // namespace coblk::storage
