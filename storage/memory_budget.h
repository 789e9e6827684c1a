// storage/memory_budget.h - the one store-wide memory counter: pages held by all arenas, against the limit.
#pragma once

#include <atomic>
#include <cstdint>

#include "coblk/runtime/spsc_ring.h"

namespace coblk::storage {

/// Counts the pages all arenas hold (mem_used_total) and enforces the
/// limit. It is the only counter shared by all cores. Arenas touch it only
/// when a span is created from new memory or memory is returned to the
/// system, not per stored page: a span holds many objects (or is one raw
/// page, when the page is stored raw anyway at memcpy cost). The one
/// per-page user is asynchronous compression: each staged page takes a page
/// here and its installer gives it back (PageStore::stage), one relaxed
/// read-modify-write each, the price of never staging past the limit.
class MemoryBudget {
 public:
  /// `limit_pages` == 0 means no limit.
  explicit MemoryBudget(std::uint64_t limit_pages) noexcept : limit_pages_(limit_pages) {}

  /// Takes `pages` more pages if that stays within the limit. Returns false
  /// (and takes nothing) otherwise. Two cores racing at the limit may both
  /// fail where one would have fit; that errs on the side of the limit.
  bool try_take(std::uint64_t pages) noexcept {
    // Relaxed: the counter guards no other memory; it is a number whose
    // atomic read-modify-write keeps it exact.
    const std::uint64_t now = used_.fetch_add(pages, std::memory_order_relaxed) + pages;
    if (limit_pages_ != 0 && now > limit_pages_ && !over_limit_.load(std::memory_order_relaxed)) {
      used_.fetch_sub(pages, std::memory_order_relaxed);
      return false;
    }
    std::uint64_t max = max_.load(std::memory_order_relaxed);
    while (now > max && !max_.compare_exchange_weak(max, now, std::memory_order_relaxed)) {}
    return true;
  }

  /// Takes `pages` whatever the limit: for memory that is in use all along
  /// but was given back for a moment (PageStore::install_staged lends a
  /// staged page's room to its own object and takes it back if that did
  /// not help), so that the count stays true even past the limit.
  void take_regardless(std::uint64_t pages) noexcept {
    // Relaxed, as in try_take.
    const std::uint64_t now = used_.fetch_add(pages, std::memory_order_relaxed) + pages;
    std::uint64_t max = max_.load(std::memory_order_relaxed);
    while (now > max && !max_.compare_exchange_weak(max, now, std::memory_order_relaxed)) {}
  }

  /// Gives back `pages` pages taken by try_take.
  void give_back(std::uint64_t pages) noexcept { used_.fetch_sub(pages, std::memory_order_relaxed); }

  /// Pages held now.
  std::uint64_t used_pages() const noexcept { return used_.load(std::memory_order_relaxed); }

  /// Most pages ever held at once.
  std::uint64_t max_used_pages() const noexcept { return max_.load(std::memory_order_relaxed); }

  /// The limit in pages (0 = none).
  std::uint64_t limit_pages() const noexcept { return limit_pages_; }

  /// While `allow` is true, try_take takes past the limit too. Recovery
  /// only (PageStore::attach, before any core serves): the pages the dead
  /// server had staged were acknowledged to the kernel, and their objects
  /// may need a span the limit has no room for; refusing them would make
  /// the store unrecoverable, not smaller. Over the limit afterwards, the
  /// store takes nothing new until frees bring it back under.
  void allow_over_limit(bool allow) noexcept { over_limit_.store(allow, std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_pages_;
  std::atomic<bool> over_limit_{false};  // see allow_over_limit; relaxed: set before the cores start
  alignas(runtime::cache_line_size) std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace coblk::storage
