// storage/page_entry.h - the per-page metadata entry (16 bytes, as in kernel zram's table) and its lock bit.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "coblk/compress/codec.h"

namespace coblk::storage {

/// Bit layout of PageEntry's state word.
namespace entry_bits {
inline constexpr std::uint64_t lock = 1u << 0;    ///< held while the entry is read or changed
inline constexpr std::uint64_t same = 1u << 1;    ///< same-filled: value is the 8-byte fill word
inline constexpr std::uint64_t object = 1u << 2;  ///< value is an object Handle
inline constexpr std::uint64_t huge = 1u << 3;    ///< the object is the page stored raw (size 4096)
inline constexpr std::uint64_t idle = 1u << 4;    ///< marked idle (PageStore::mark_idle); any access clears it
/// The page lives on the backing tier: value is a BackingLocation (the
/// object bit is clear; size, algorithm and huge describe the object there).
inline constexpr std::uint64_t written_back = 1u << 5;
inline constexpr unsigned algorithm_shift = 6;                          ///< 2 bits: compress::Algorithm of the object
inline constexpr std::uint64_t algorithm_mask = 3u << algorithm_shift;  ///< the algorithm's bits in place
inline constexpr unsigned size_shift = 8;                               ///< 13 bits: stored size in bytes (1..4096)
inline constexpr std::uint64_t size_mask = std::uint64_t{0x1fff} << size_shift;  ///< the size's bits in place
/// 8 bits: while the lock bit is set, the core that holds the lock. Crash
/// recovery uses it to find the holder's journal (PageStore).
inline constexpr unsigned holder_shift = 56;
/// The holder's bits in place.
inline constexpr std::uint64_t holder_mask = std::uint64_t{0xff} << holder_shift;
/// Everything that belongs to the lock rather than to the page's state.
inline constexpr std::uint64_t lock_state = lock | holder_mask;
/// The page's object is being written back (PageStore::writeback_prepare):
/// any change to the entry clears it, so writeback_commit installs the
/// written-back copy only if the page did not change meanwhile.
inline constexpr std::uint64_t writeback_pending = std::uint64_t{1} << 21;
/// The same bit on a written-back entry (which never has a writeback
/// pending): the page was read from the backing tier since it was written
/// back. Re-admission at the second read (PageStoreConfig::readmit_reads
/// 2) looks for it; recovery clears it, as it clears pending marks.
inline constexpr std::uint64_t tier_read = writeback_pending;
/// 32 bits: seconds (PageStore's clock) of the page's last read or write.
inline constexpr unsigned age_shift = 22;
/// The access time's bits in place.
inline constexpr std::uint64_t age_mask = std::uint64_t{0xffffffff} << age_shift;
/// The page was recompressed with the secondary codec, or an attempt did
/// not shrink it: recompression passes it by (PageStore::recompress_step).
inline constexpr std::uint64_t recompressed = std::uint64_t{1} << 54;
/// The page is staged (PageStore::stage): written, not yet compressed. Its
/// 4 KiB sit in a staging slot; value is StagedRef::encode() of the slot.
/// Recovery compresses and installs staged pages (PageStore::attach).
inline constexpr std::uint64_t staged = std::uint64_t{1} << 55;

/// The access time recorded in a word.
constexpr std::uint32_t access_time_of(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>((word & age_mask) >> age_shift);
}
/// `word` accessed at `now`: the time replaced, the idle mark cleared.
constexpr std::uint64_t accessed(std::uint64_t word, std::uint32_t now) noexcept {
  return (word & ~(age_mask | idle)) | (std::uint64_t{now} << age_shift);
}

/// A page holding data: same-filled, an object, written back or staged.
inline constexpr std::uint64_t present = same | object | written_back | staged;

/// The stored size recorded in a word.
constexpr std::uint32_t size_of(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>((word & size_mask) >> size_shift);
}
/// The algorithm recorded in a word.
constexpr compress::Algorithm algorithm_of(std::uint64_t word) noexcept {
  return static_cast<compress::Algorithm>((word & algorithm_mask) >> algorithm_shift);
}
/// The word of an object entry.
constexpr std::uint64_t object_word(std::uint32_t size, compress::Algorithm algorithm, bool is_huge) noexcept {
  return object | (is_huge ? huge : 0) | (std::uint64_t{static_cast<std::uint8_t>(algorithm)} << algorithm_shift) |
         (std::uint64_t{size} << size_shift);
}
}  // namespace entry_bits

/// One page's entry: a state word (flags, size, algorithm, and the lock
/// bit) and a value (an object handle or the fill word).
///
/// Locking: a spin bit in the state word, with the holder's core beside it.
/// lock() sets both with an acquire RMW; unlock() publishes the new state
/// with a release store that also clears them. Everything a holder wrote (the value, the object's bytes
/// copied before install) therefore happens-before whatever the next holder
/// reads. `value` is a plain field because it is only ever touched by the
/// lock holder.
///
/// Why it cannot deadlock: a thread holds at most one entry lock at a time,
/// and while holding it never waits for anything else (no other entry lock,
/// no mutex, no suspension: the store's API is synchronous and the arena
/// and remote-free paths it may run under the lock are non-blocking). So no
/// thread can wait for a lock holder that is itself waiting: there is no
/// cycle. Holders keep the lock for one page's decompress/compress at most.
class PageEntry {
 public:
  /// Takes the lock for core `holder` (0..255), spinning with exponential
  /// backoff (then yielding the CPU, in case the holder's thread was
  /// preempted). Returns the state word without the lock bits.
  std::uint64_t lock(unsigned holder = 0) noexcept {
    const std::uint64_t held = entry_bits::lock | (std::uint64_t{holder} << entry_bits::holder_shift);
    // Relaxed first read: it only decides whether to try; the CAS below
    // carries the acquire.
    std::uint64_t word = word_.load(std::memory_order_relaxed);
    for (unsigned attempt = 0;; ++attempt) {
      if ((word & entry_bits::lock) == 0 &&
          // Acquire: pairs with the release in unlock(), so the previous
          // holder's writes to `value` and the object are visible.
          word_.compare_exchange_weak(word, word | held, std::memory_order_acquire, std::memory_order_relaxed)) {
        return word;
      }
      back_off(attempt);
      word = word_.load(std::memory_order_relaxed);
    }
  }

  /// Releases the lock, storing `word` (whose lock bits are ignored) as the
  /// new state.
  void unlock(std::uint64_t word) noexcept {
    // Release: publishes this holder's writes to the next lock().
    word_.store(word & ~entry_bits::lock_state, std::memory_order_release);
  }

  /// Sets the value (the lock holder only). An atomic 8-byte store, so that
  /// a crash leaves the old or the new value in shared memory, never a mix.
  /// Release, so that a recovering process that sees the new value also
  /// sees the journal written before it (layout::Journal); other cores see
  /// it through the lock's own release.
  void set_value(std::uint64_t v) noexcept {
    std::atomic_ref<std::uint64_t>(value).store(v, std::memory_order_release);
  }

  /// The whole state word, lock bits included. Only for recovery, when no
  /// server runs.
  std::uint64_t raw_word() const noexcept { return word_.load(std::memory_order_relaxed); }

  /// Replaces the whole state word and value. Only for recovery, when no
  /// server runs.
  void reset(std::uint64_t word, std::uint64_t v) noexcept {
    value = v;
    word_.store(word, std::memory_order_relaxed);
  }

  /// The state word without locking: a hint only (it may change at once).
  /// Relaxed because no decision that needs the value's contents is taken
  /// on it; the caller locks and re-reads before acting.
  std::uint64_t peek() const noexcept { return word_.load(std::memory_order_relaxed) & ~entry_bits::lock_state; }

  /// The handle or fill word. Only the lock holder may touch it, and it
  /// changes it with set_value().
  alignas(8) std::uint64_t value = 0;

 private:
  static void back_off(unsigned attempt) noexcept {
    if (attempt < 10) {
      for (unsigned i = 0, n = 1u << attempt; i < n; ++i) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    } else {
      // Contended for ~1000 pauses: the holder may not be running.
      // Only ever reached under contention on one page.
      std::this_thread::yield();
    }
  }

  std::atomic<std::uint64_t> word_{0};
};

static_assert(sizeof(PageEntry) == 16, "a page entry is 16 bytes, as in kernel zram");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

}  // namespace coblk::storage
