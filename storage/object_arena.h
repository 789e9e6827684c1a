// storage/object_arena.h - one core's arena of compressed objects, a zsmalloc-like size-class allocator.
#pragma once

// Every mutation of an arena is made by its owning core alone.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "coblk/runtime/memory_region.h"
#include "coblk/runtime/result.h"
#include "coblk/storage/handle.h"
#include "coblk/storage/memory_budget.h"
#include "coblk/storage/size_classes.h"

namespace coblk::storage {

/// Counters of one arena, for mm_stat and the fragmentation report.
struct ArenaStats {
  std::uint64_t live_objects = 0;  ///< objects allocated and not freed
  std::uint64_t object_bytes = 0;  ///< their class sizes summed (>= bytes requested)
  std::uint64_t spans = 0;         ///< spans holding at least one object slot in use
  std::uint64_t span_pages = 0;    ///< pages held by those spans
  std::uint64_t cached_pages = 0;  ///< pages of empty spans kept for reuse, not yet returned to the system
};

/// The compressed-object allocator of one core.
///
/// Memory: one address range reserved up front (MAP_NORESERVE, so only
/// touched pages cost memory), cut into slots of max_span_pages pages. A
/// span of a class occupies the first pages_per_span pages of a slot, so
/// every span is contiguous and an object that straddles a page boundary is
/// still one contiguous run of bytes: no mapping or copying on access.
/// Every page a span may touch is counted in the store's MemoryBudget from
/// the moment the span is created until the page is returned to the system
/// with madvise(MADV_DONTNEED), so mem_used_total is exact in pages.
///
/// Empty spans are not unmapped on the I/O path (that would be a syscall):
/// their slot goes to a cache, keyed by how many of its pages are still
/// resident, and is reused first by the next span of any class.
/// release_cached_pages returns cached pages to the system; the store calls
/// it from drain_remote_frees and compact, outside the I/O path.
///
/// Threading: only the owning core calls the mutating functions. address()
/// may be called from any core (it reads only immutable fields); the caller
/// must hold the page-entry lock that keeps the object alive. stats() may be
/// called from any thread.
class ObjectArena {
 public:
  /// The arena of core `core`, allocating objects of `classes` and
  /// accounting its pages in `budget` (both must outlive it). `max_spans`
  /// bounds the address range (slots) reserved; the objects live in memory
  /// of `kind`. Returns Error (the errno, usually ENOMEM, and one line
  /// naming the size) when the range cannot be reserved.
  static Result<std::unique_ptr<ObjectArena>> create(unsigned core, const SizeClassTable& classes,
                                                     std::uint64_t max_spans, MemoryBudget& budget,
                                                     runtime::MemoryKind kind = runtime::MemoryKind::anonymous);

  /// An arena over the objects a dead server left in the memfd `fd` (the
  /// arena maps a duplicate), made with the same `classes` and `max_spans`. It holds nothing
  /// until rebuild() says which objects are live.
  static Result<std::unique_ptr<ObjectArena>> attach(unsigned core, const SizeClassTable& classes,
                                                     std::uint64_t max_spans, MemoryBudget& budget, int fd);

  /// Bytes of the object range of an arena of `max_spans` spans: the size
  /// of its memfd.
  static std::uint64_t object_range_bytes(std::uint64_t max_spans) noexcept;

  /// A live object, as recovery finds it in a page entry.
  struct LiveObject {
    Handle handle;              ///< where the object is
    std::uint32_t class_index;  ///< its class, from the size in its entry
  };

  /// Owner only, on a fresh or attached arena that has allocated nothing.
  /// Makes exactly the objects `live` (each with its class index, sorted
  /// by handle) allocated: spans get their class, live counts and free
  /// lists, empty slots become cached, and the pages no live object uses
  /// are returned to the system, so the budget counts exactly the spans in
  /// use. Returns Error EIO (one line naming the handle) if a handle is out
  /// of bounds, misaligned for its class, shares a span with another class
  /// or is listed twice, or ENOSPC if the spans exceed the budget's limit;
  /// the arena is then unusable.
  Result<void> rebuild(std::span<const LiveObject> live);

  /// The memory the objects live in (its fd is what a keeper holds).
  const runtime::MemoryRegion& memory() const noexcept { return objects_; }
  ~ObjectArena();
  ObjectArena(const ObjectArena&) = delete;
  ObjectArena& operator=(const ObjectArena&) = delete;

  /// Owner only. Allocates an object of at least `size` bytes
  /// (1..alloc_page_size). Returns null_handle when the memory limit or the
  /// reserved range is exhausted. Never allocates heap memory, never makes
  /// a syscall.
  Handle allocate(std::uint32_t size) noexcept;

  /// Owner only. Frees an object of this arena.
  void free(Handle handle) noexcept;

  /// Any core. Address of the object's first byte.
  std::byte* address(Handle handle) const noexcept {
    return base_ + handle_slot(handle) * slot_bytes_ + handle_offset(handle);
  }

  /// Owner only. The class size of the object (what it really occupies).
  std::uint32_t object_size(Handle handle) const noexcept;

  /// Owner only. Compaction moves the objects of the sparsest spans of each
  /// class into the free objects of the class's other spans. It runs in
  /// bounded steps, and the arena may be used (allocations, frees) between
  /// them:
  ///
  ///     start_compaction();
  ///     while (!select_step(n, scanned)) {}   // choose and mark the sources
  ///     // the caller relocate()s every object of an evacuating span
  ///     while (!finish_step(n, scanned)) {}   // sources left become ordinary
  ///     pages = take_compaction_freed();
  ///
  /// Selection: in each class, the sparsest spans are taken as sources
  /// while their live objects still fit into the free objects of the spans
  /// that stay, and marked evacuating (nothing new is placed in them).
  /// Both passes of it (a survey that counts the spans of each class by
  /// live objects, then the marking) walk the span records in slot order,
  /// at most `max_spans` per step.
  void start_compaction();

  /// Owner only. One step of the selection (see start_compaction): looks at
  /// most at `max_spans` span records (added to `scanned`). True when the
  /// sources are marked and relocation may begin.
  bool select_step(std::uint64_t max_spans, std::uint64_t& scanned);

  /// Owner only. Spans marked evacuating that still hold live objects
  /// (not counting objects freed meanwhile). When it reaches 0, no entry
  /// can refer to an evacuating span any more: relocation is over.
  std::uint64_t evacuating_spans_holding_objects() const noexcept { return evacuating_holding_; }

  /// Owner only. True when the object lies in a span being evacuated.
  bool is_evacuating(Handle handle) const noexcept;

  /// Owner only. Moves the object to another span of its class and frees
  /// the old copy; returns the new handle, or null_handle if no room could
  /// be found (the object then stays where it is). The caller must hold
  /// the lock of the page entry that refers to `handle` and store the new
  /// handle in it before unlocking.
  Handle relocate(Handle handle) noexcept;

  /// Owner only. The first half of relocate(): copies the object into
  /// another span of its class and returns the copy's handle (null_handle
  /// if no room), leaving the original allocated. The caller publishes the
  /// copy in the page entry and only then free()s the original, so that a
  /// crash in between leaves the entry pointing at intact bytes (free()
  /// writes a free-list link into the object it frees).
  Handle copy_for_move(Handle handle) noexcept;

  /// Owner only. One step of ending compaction: spans still evacuating
  /// (their last objects are dead but their frees are in flight from other
  /// cores, or a move found no room) become ordinary spans again, at most
  /// `max_spans` per step (added to `scanned`). True when compaction is
  /// over.
  bool finish_step(std::uint64_t max_spans, std::uint64_t& scanned);

  /// Owner only. The pages of the spans emptied since start_compaction
  /// (their pages are cached, not yet returned); resets the count.
  std::uint64_t take_compaction_freed() noexcept;

  /// Owner only. start_compaction and select_step to the end, in one go.
  /// Returns how many spans were marked evacuating.
  std::size_t begin_compaction();

  /// Owner only. finish_step to the end, in one go. Returns
  /// take_compaction_freed().
  std::uint64_t end_compaction();

  /// Owner only. Returns cached pages of empty spans to the system until at
  /// most `keep_pages` remain cached, or `max_spans` spans have been
  /// returned (one madvise each); returns how many pages were released.
  /// This makes madvise calls, so the I/O path calls it only at the memory
  /// limit (PageStore::reclaim).
  std::uint64_t release_cached_pages(std::uint64_t keep_pages, std::uint64_t max_spans = UINT64_MAX) noexcept;

  /// Any thread. A snapshot of the counters (each exact, not mutually
  /// consistent while the owner runs).
  ArenaStats stats() const noexcept;

  /// The core this arena belongs to.
  unsigned core() const noexcept { return core_; }

 private:
  enum class SpanState : std::uint8_t { never_used = 0, cached, partial, full, evacuating };
  enum class CompactionPhase : std::uint8_t { idle, surveying, marking, relocating, finishing };
  // Per class, what the selection found and decided.
  struct ClassPlan {
    std::uint64_t free_objects = 0;  // survey: free objects in the class's partial spans
    std::uint64_t to_mark = 0;       // sources still to mark
    std::uint64_t at_cutoff = 0;     // of them, spans with exactly `cutoff` live objects
    std::uint32_t cutoff = 0;        // sources have fewer live objects than this, or exactly this many
  };

  // Per-slot metadata, in its own NORESERVE range so untouched slots cost
  // nothing. Lists are threaded through prev/next by slot index; slot 0 is
  // never used and terminates every list.
  struct SpanMeta {
    std::uint32_t prev;
    std::uint32_t next;
    std::uint16_t class_index;
    std::uint16_t live;       // object slots in use (allocated, not freed)
    std::uint16_t bump;       // objects [bump, objects_per_span) were never handed out
    std::uint16_t free_head;  // first freed object, or no_object; links live in the objects
    std::uint8_t resident_pages;
    SpanState state;
  };
  struct ClassList {
    std::uint32_t head = 0;
    std::uint32_t tail = 0;
  };
  static constexpr std::uint16_t no_object = 0xffff;

  // Takes over the reserved ranges: `objects` of max_slots slots and
  // `meta` of max_slots SpanMeta.
  ObjectArena(unsigned core, const SizeClassTable& classes, std::uint64_t max_slots, MemoryBudget& budget,
              runtime::MemoryRegion objects, SpanMeta* meta);
  static Result<std::unique_ptr<ObjectArena>> make(unsigned core, const SizeClassTable& classes,
                                                   std::uint64_t max_spans, MemoryBudget& budget,
                                                   Result<runtime::MemoryRegion> objects);

  std::byte* object_at(std::uint32_t slot, std::uint32_t offset) const noexcept {
    return base_ + std::uint64_t{slot} * slot_bytes_ + offset;
  }
  Handle allocate_in_class(std::uint32_t class_index) noexcept;
  std::uint32_t new_span(std::uint32_t class_index) noexcept;
  std::uint32_t take_slot(std::uint32_t pages) noexcept;
  void release_span(std::uint32_t slot) noexcept;
  void link_head(ClassList& list, std::uint32_t slot) noexcept;
  void link_tail(ClassList& list, std::uint32_t slot) noexcept;
  void unlink(ClassList& list, std::uint32_t slot) noexcept;
  std::uint32_t pop_cached(std::uint32_t resident) noexcept;
  void push_cached(std::uint32_t slot) noexcept;
  std::uint64_t plan_compaction();  // returns the sources to mark

  // Single-writer counters: the owner updates them with a relaxed load and
  // store (no read-modify-write needed, it is the only writer); other
  // threads read them relaxed, as numbers that guard nothing.
  static void bump_counter(std::atomic<std::uint64_t>& counter, std::int64_t delta) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(delta),
                  std::memory_order_relaxed);
  }

  const unsigned core_;
  const SizeClassTable& classes_;
  MemoryBudget& budget_;
  const std::uint64_t slot_bytes_;
  const std::uint64_t max_slots_;
  runtime::MemoryRegion objects_;
  std::byte* base_ = nullptr;  // objects_.data()
  SpanMeta* meta_ = nullptr;
  std::uint64_t next_unused_slot_ = 1;
  std::vector<ClassList> partial_;                 // per class: spans with a free object
  std::uint32_t cached_[max_span_pages + 1] = {};  // stacks of empty slots by resident pages
  CompactionPhase compaction_phase_ = CompactionPhase::idle;
  std::uint64_t compaction_cursor_ = 0;      // the next slot to look at (survey, marking, finishing)
  std::vector<std::uint32_t> survey_;        // partial spans by class and live count
  std::vector<std::uint32_t> survey_start_;  // class c's counts are survey_[survey_start_[c] + live]
  std::vector<ClassPlan> plan_;              // per class
  std::uint64_t marked_ = 0;                 // spans marked evacuating
  std::uint64_t evacuating_holding_ = 0;     // of them, those still evacuating (not emptied, not put back)
  std::uint64_t compaction_freed_pages_ = 0;

  std::atomic<std::uint64_t> live_objects_{0};
  std::atomic<std::uint64_t> object_bytes_{0};
  std::atomic<std::uint64_t> spans_{0};
  std::atomic<std::uint64_t> span_pages_{0};
  std::atomic<std::uint64_t> cached_pages_{0};
};

}  // namespace coblk::storage
