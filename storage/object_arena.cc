#include "coblk/storage/object_arena.h"

#include "coblk/runtime/fault_injection.h"

#include <sys/mman.h>

#include <cerrno>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace coblk::storage {

namespace {

// Address space for `bytes`, or the Error of the failed mmap.
Result<void*> reserve_range(std::uint64_t bytes, const char* what) {
  // MAP_NORESERVE: the range is address space only; a page costs memory
  // when first touched. Reserving once up front keeps mmap off the I/O path.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error::from_errno(errno, std::string("cannot reserve address space for the ") + what + " (" +
                                        std::to_string(bytes >> 20) + " MiB)");
  }
  return p;
}

// Where a step that starts at `cursor` and may take `count` items ends,
// when there are `limit` items (count may be UINT64_MAX: no bound).
std::uint64_t step_end(std::uint64_t cursor, std::uint64_t count, std::uint64_t limit) noexcept {
  return cursor >= limit ? cursor : count >= limit - cursor ? limit : cursor + count;
}

}  // namespace

std::uint64_t ObjectArena::object_range_bytes(std::uint64_t max_spans) noexcept {
  // +1: slot 0 is the list terminator and never holds a span. Slot
  // indices are 32-bit in the metadata.
  return std::min<std::uint64_t>(max_spans + 1, 0xffffffffu) * max_span_pages * alloc_page_size;
}

Result<std::unique_ptr<ObjectArena>> ObjectArena::create(unsigned core, const SizeClassTable& classes,
                                                         std::uint64_t max_spans, MemoryBudget& budget,
                                                         runtime::MemoryKind kind) {
  return make(core, classes, max_spans, budget,
              runtime::MemoryRegion::create(kind, object_range_bytes(max_spans), "object arena"));
}

Result<std::unique_ptr<ObjectArena>> ObjectArena::attach(unsigned core, const SizeClassTable& classes,
                                                         std::uint64_t max_spans, MemoryBudget& budget, int fd) {
  return make(core, classes, max_spans, budget,
              runtime::MemoryRegion::attach(fd, object_range_bytes(max_spans), "object arena"));
}

Result<std::unique_ptr<ObjectArena>> ObjectArena::make(unsigned core, const SizeClassTable& classes,
                                                       std::uint64_t max_spans, MemoryBudget& budget,
                                                       Result<runtime::MemoryRegion> objects) {
  if (!objects) {
    return std::move(objects).error();
  }
  const std::uint64_t max_slots = std::min<std::uint64_t>(max_spans + 1, 0xffffffffu);
  // The span records are private: recovery rebuilds them from the page
  // entries, the source of truth.
  Result<void*> meta = reserve_range(max_slots * sizeof(SpanMeta), "span metadata");
  if (!meta) {
    return std::move(meta).error();
  }
  try {
    return std::unique_ptr<ObjectArena>(
        new ObjectArena(core, classes, max_slots, budget, std::move(objects).value(), static_cast<SpanMeta*>(*meta)));
  } catch (...) {  // std::bad_alloc: give the range back before it propagates
    ::munmap(*meta, max_slots * sizeof(SpanMeta));
    throw;
  }
}

ObjectArena::ObjectArena(unsigned core, const SizeClassTable& classes, std::uint64_t max_slots, MemoryBudget& budget,
                         runtime::MemoryRegion objects, SpanMeta* meta)
    : core_(core),
      classes_(classes),
      budget_(budget),
      slot_bytes_(std::uint64_t{max_span_pages} * alloc_page_size),
      max_slots_(max_slots),
      objects_(std::move(objects)),
      base_(objects_.data()),
      meta_(meta),
      partial_(classes.count()),
      plan_(classes.count()) {
  // Fresh anonymous memory reads as zeros, which is SpanState::never_used
  // with empty links: no initialisation pass touches the metadata.
  //
  // Compaction's survey: one counter per (class, live count 0..objects
  // per span), a few thousand in all. Made here, not on the first
  // compaction: that runs on a queue's core, where allocating it once
  // measured up to a millisecond in a large process.
  std::uint32_t total = 0;
  survey_start_.reserve(classes.count());
  for (std::uint32_t ci = 0; ci < classes.count(); ++ci) {
    survey_start_.push_back(total);
    total += classes[ci].objects_per_span + 1u;
  }
  survey_.resize(total);
}

ObjectArena::~ObjectArena() {
  budget_.give_back(span_pages_.load(std::memory_order_relaxed) + cached_pages_.load(std::memory_order_relaxed));
  ::munmap(meta_, max_slots_ * sizeof(SpanMeta));
}

Handle ObjectArena::allocate(std::uint32_t size) noexcept {
  if (runtime::fault::fail(runtime::fault::Site::store_alloc)) return null_handle;  // tests: as if memory ran out
  return allocate_in_class(classes_.index_for(size));
}

Handle ObjectArena::allocate_in_class(std::uint32_t class_index) noexcept {
  ClassList& list = partial_[class_index];
  std::uint32_t slot = list.head;
  if (slot == 0) {
    slot = new_span(class_index);
    if (slot == 0) {
      return null_handle;
    }
  }
  SpanMeta& m = meta_[slot];
  const SizeClass& cls = classes_[class_index];
  std::uint32_t index;
  if (m.free_head != no_object) {
    index = m.free_head;
    // A freed object holds the index of the next freed one in its first
    // two bytes (written by free()).
    std::uint16_t next;
    std::memcpy(&next, object_at(slot, index * cls.object_size), sizeof next);
    m.free_head = next;
  } else {
    index = m.bump++;
  }
  if (++m.live == cls.objects_per_span) {
    unlink(list, slot);
    m.state = SpanState::full;
  }
  bump_counter(live_objects_, 1);
  bump_counter(object_bytes_, cls.object_size);
  return make_handle(core_, slot, index * cls.object_size);
}

std::uint32_t ObjectArena::new_span(std::uint32_t class_index) noexcept {
  const SizeClass& cls = classes_[class_index];
  const std::uint32_t slot = take_slot(cls.pages_per_span);
  if (slot == 0) {
    return 0;
  }
  SpanMeta& m = meta_[slot];
  m.class_index = static_cast<std::uint16_t>(class_index);
  m.live = 0;
  m.bump = 0;
  m.free_head = no_object;
  m.resident_pages = static_cast<std::uint8_t>(std::max<std::uint32_t>(m.resident_pages, cls.pages_per_span));
  m.state = SpanState::partial;
  // The newest span becomes the allocation target: filling one span at a
  // time keeps the others' free objects available to frees and compaction.
  link_head(partial_[class_index], slot);
  bump_counter(spans_, 1);
  bump_counter(span_pages_, m.resident_pages);
  return slot;
}

std::uint32_t ObjectArena::take_slot(std::uint32_t pages) noexcept {
  // Reuse memory before asking for more: a cached slot with exactly or
  // more resident pages costs nothing new.
  for (std::uint32_t r = pages; r <= max_span_pages; ++r) {
    if (cached_[r] != 0) {
      return pop_cached(r);
    }
  }
  // Then a cached slot with fewer resident pages, topped up.
  for (std::uint32_t r = pages; r-- > 0;) {
    if (cached_[r] != 0) {
      if (!budget_.try_take(pages - r)) {
        return 0;
      }
      return pop_cached(r);
    }
  }
  if (next_unused_slot_ >= max_slots_ || !budget_.try_take(pages)) {
    return 0;
  }
  return static_cast<std::uint32_t>(next_unused_slot_++);
}

void ObjectArena::free(Handle handle) noexcept {
  const auto slot = static_cast<std::uint32_t>(handle_slot(handle));
  SpanMeta& m = meta_[slot];
  const SizeClass& cls = classes_[m.class_index];
  const std::uint32_t offset = handle_offset(handle);
  std::memcpy(object_at(slot, offset), &m.free_head, sizeof m.free_head);
  m.free_head = static_cast<std::uint16_t>(offset / cls.object_size);
  --m.live;
  bump_counter(live_objects_, -1);
  bump_counter(object_bytes_, -static_cast<std::int64_t>(cls.object_size));
  switch (m.state) {
    case SpanState::full:
      if (m.live == 0) {
        release_span(slot);
      } else {
        // Behind the current allocation target: it is refilled only
        // once the spans ahead are full.
        m.state = SpanState::partial;
        link_tail(partial_[m.class_index], slot);
      }
      break;
    case SpanState::partial:
      if (m.live == 0) {
        unlink(partial_[m.class_index], slot);
        release_span(slot);
      }
      break;
    case SpanState::evacuating:
      if (m.live == 0) {
        compaction_freed_pages_ += m.resident_pages;
        --evacuating_holding_;
        release_span(slot);
      }
      break;
    default:
      break;
  }
}

std::uint32_t ObjectArena::object_size(Handle handle) const noexcept {
  return classes_[meta_[handle_slot(handle)].class_index].object_size;
}

void ObjectArena::release_span(std::uint32_t slot) noexcept {
  SpanMeta& m = meta_[slot];
  bump_counter(spans_, -1);
  bump_counter(span_pages_, -static_cast<std::int64_t>(m.resident_pages));
  push_cached(slot);
}

void ObjectArena::push_cached(std::uint32_t slot) noexcept {
  SpanMeta& m = meta_[slot];
  m.state = SpanState::cached;
  m.next = cached_[m.resident_pages];
  cached_[m.resident_pages] = slot;
  bump_counter(cached_pages_, m.resident_pages);
}

std::uint32_t ObjectArena::pop_cached(std::uint32_t resident) noexcept {
  const std::uint32_t slot = cached_[resident];
  cached_[resident] = meta_[slot].next;
  bump_counter(cached_pages_, -static_cast<std::int64_t>(resident));
  return slot;
}

void ObjectArena::link_head(ClassList& list, std::uint32_t slot) noexcept {
  SpanMeta& m = meta_[slot];
  m.prev = 0;
  m.next = list.head;
  if (list.head != 0) {
    meta_[list.head].prev = slot;
  } else {
    list.tail = slot;
  }
  list.head = slot;
}

void ObjectArena::link_tail(ClassList& list, std::uint32_t slot) noexcept {
  SpanMeta& m = meta_[slot];
  m.next = 0;
  m.prev = list.tail;
  if (list.tail != 0) {
    meta_[list.tail].next = slot;
  } else {
    list.head = slot;
  }
  list.tail = slot;
}

void ObjectArena::unlink(ClassList& list, std::uint32_t slot) noexcept {
  SpanMeta& m = meta_[slot];
  if (m.prev != 0) {
    meta_[m.prev].next = m.next;
  } else {
    list.head = m.next;
  }
  if (m.next != 0) {
    meta_[m.next].prev = m.prev;
  } else {
    list.tail = m.prev;
  }
  m.prev = m.next = 0;
}

void ObjectArena::start_compaction() {
  // A compaction still under way is abandoned: its sources become
  // ordinary spans again before the new survey.
  std::uint64_t ignored = 0;
  if (compaction_phase_ != CompactionPhase::idle) {
    compaction_phase_ = CompactionPhase::relocating;
    while (!finish_step(UINT64_MAX, ignored)) {}
  }
  std::fill(survey_.begin(), survey_.end(), 0u);
  std::fill(plan_.begin(), plan_.end(), ClassPlan{});
  marked_ = 0;
  evacuating_holding_ = 0;
  compaction_freed_pages_ = 0;
  compaction_cursor_ = 1;  // slot 0 is never a span
  compaction_phase_ = CompactionPhase::surveying;
}

bool ObjectArena::select_step(std::uint64_t max_spans, std::uint64_t& scanned) {
  if (compaction_phase_ != CompactionPhase::surveying && compaction_phase_ != CompactionPhase::marking) {
    return true;
  }
  // Slots at or beyond next_unused_slot_ never held a span. The arena
  // changes between steps, so the survey counts each span as it was when
  // visited: an estimate. Marking re-checks every span it takes, and takes
  // no more than the plan says.
  const std::uint64_t end = step_end(compaction_cursor_, max_spans, next_unused_slot_);
  scanned += end - compaction_cursor_;
  if (compaction_phase_ == CompactionPhase::surveying) {
    for (std::uint64_t s = compaction_cursor_; s < end; ++s) {
      const SpanMeta& m = meta_[s];
      const std::uint32_t per_span = classes_[m.class_index].objects_per_span;
      // One-object spans are always full or empty.
      if (m.state == SpanState::partial && per_span >= 2) {
        ++survey_[survey_start_[m.class_index] + m.live];
        plan_[m.class_index].free_objects += per_span - m.live;
      }
    }
    compaction_cursor_ = end;
    if (compaction_cursor_ < next_unused_slot_) {
      return false;
    }
    compaction_cursor_ = 1;
    if (plan_compaction() == 0) {
      compaction_phase_ = CompactionPhase::relocating;  // nothing to mark: skip that pass
      return true;
    }
    compaction_phase_ = CompactionPhase::marking;
    return false;
  }
  for (std::uint64_t s = compaction_cursor_; s < end; ++s) {
    SpanMeta& m = meta_[s];
    if (m.state != SpanState::partial) {
      continue;
    }
    ClassPlan& p = plan_[m.class_index];
    if (p.to_mark == 0 || m.live > p.cutoff || (m.live == p.cutoff && p.at_cutoff == 0)) {
      continue;
    }
    if (m.live == p.cutoff) {
      --p.at_cutoff;
    }
    --p.to_mark;
    unlink(partial_[m.class_index], static_cast<std::uint32_t>(s));
    m.state = SpanState::evacuating;
    ++marked_;
    ++evacuating_holding_;
  }
  compaction_cursor_ = end;
  if (compaction_cursor_ < next_unused_slot_) {
    return false;
  }
  compaction_phase_ = CompactionPhase::relocating;
  return true;
}

std::uint64_t ObjectArena::plan_compaction() {
  std::uint64_t sources = 0;
  for (std::uint32_t ci = 0; ci < classes_.count(); ++ci) {
    const std::uint32_t per_span = classes_[ci].objects_per_span;
    ClassPlan& p = plan_[ci];
    if (per_span < 2) {
      continue;
    }
    const std::uint32_t* counts = survey_.data() + survey_start_[ci];
    std::uint64_t spans = 0;
    for (std::uint32_t live = 0; live <= per_span; ++live) {
      spans += counts[live];
    }
    // Taking the sparsest spans one by one, a source fits while the live
    // objects of all sources fit in the free objects of the spans that
    // stay: with T sources holding L objects, L <= F - (T * per_span - L),
    // that is T * per_span <= F, whatever their live counts.
    const std::uint64_t take = spans < 2 ? 0 : std::min(spans, p.free_objects / per_span);
    if (take == 0) {
      continue;
    }
    std::uint64_t below = 0;
    std::uint32_t cutoff = 0;
    while (below + counts[cutoff] < take) {
      below += counts[cutoff++];
    }
    p.to_mark = take;
    p.cutoff = cutoff;
    p.at_cutoff = take - below;
    sources += take;
  }
  return sources;
}

bool ObjectArena::is_evacuating(Handle handle) const noexcept {
  return meta_[handle_slot(handle)].state == SpanState::evacuating;
}

Handle ObjectArena::relocate(Handle handle) noexcept {
  const Handle moved = copy_for_move(handle);
  if (moved != null_handle) {
    free(handle);
  }
  return moved;
}

Handle ObjectArena::copy_for_move(Handle handle) noexcept {
  const std::uint32_t class_index = meta_[handle_slot(handle)].class_index;
  const Handle moved = allocate_in_class(class_index);
  if (moved == null_handle) {
    return null_handle;
  }
  std::memcpy(address(moved), address(handle), classes_[class_index].object_size);
  return moved;
}

bool ObjectArena::finish_step(std::uint64_t max_spans, std::uint64_t& scanned) {
  if (compaction_phase_ == CompactionPhase::idle) {
    return true;
  }
  if (compaction_phase_ != CompactionPhase::finishing) {
    compaction_phase_ = CompactionPhase::finishing;
    compaction_cursor_ = 1;
  }
  // The spans still evacuating (a last object's free is in flight from
  // another core, or a move found no room) are found by walking the span
  // records again rather than kept in a list: nothing to allocate on the
  // core, and usually nothing to walk, as every source is empty.
  if (evacuating_holding_ != 0) {
    const std::uint64_t end = step_end(compaction_cursor_, max_spans, next_unused_slot_);
    for (std::uint64_t s = compaction_cursor_; s < end && evacuating_holding_ != 0; ++s) {
      SpanMeta& m = meta_[s];
      if (m.state == SpanState::evacuating) {
        m.state = SpanState::partial;
        link_tail(partial_[m.class_index], static_cast<std::uint32_t>(s));
        --evacuating_holding_;
      }
    }
    scanned += end - compaction_cursor_;
    compaction_cursor_ = end;
    if (evacuating_holding_ != 0 && compaction_cursor_ < next_unused_slot_) {
      return false;
    }
  }
  compaction_phase_ = CompactionPhase::idle;
  return true;
}

std::uint64_t ObjectArena::take_compaction_freed() noexcept {
  const std::uint64_t freed = compaction_freed_pages_;
  compaction_freed_pages_ = 0;
  return freed;
}

std::size_t ObjectArena::begin_compaction() {
  start_compaction();
  std::uint64_t ignored = 0;
  while (!select_step(UINT64_MAX, ignored)) {}
  return marked_;
}

std::uint64_t ObjectArena::end_compaction() {
  std::uint64_t ignored = 0;
  while (!finish_step(UINT64_MAX, ignored)) {}
  return take_compaction_freed();
}

std::uint64_t ObjectArena::release_cached_pages(std::uint64_t keep_pages, std::uint64_t max_spans) noexcept {
  std::uint64_t released = 0;
  for (std::uint32_t r = max_span_pages; r >= 1; --r) {
    while (cached_[r] != 0 && cached_pages_.load(std::memory_order_relaxed) > keep_pages && max_spans != 0) {
      --max_spans;
      const std::uint32_t slot = cached_[r];
      if (!objects_.release(std::uint64_t{slot} * slot_bytes_, std::uint64_t{r} * alloc_page_size)) {
        return released;  // the pages stay cached and counted
      }
      pop_cached(r);
      meta_[slot].resident_pages = 0;
      push_cached(slot);
      budget_.give_back(r);
      released += r;
    }
  }
  return released;
}

namespace {

std::string hex(std::uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Result<void> ObjectArena::rebuild(std::span<const LiveObject> live) {
  // Pass 1, over the objects sorted by handle (so by slot, then offset):
  // check each against the geometry, give each slot its class and live
  // count, and thread the free list through the gaps below the last live
  // object. Nothing here trusts the entries: a bad handle is an error.
  std::uint64_t used_pages = 0;
  std::uint32_t last_slot = 0;
  std::size_t group_start = 0;
  for (std::size_t i = 0; i <= live.size(); ++i) {
    const bool group_ends =
        i == live.size() || (i > group_start && handle_slot(live[i].handle) != handle_slot(live[group_start].handle));
    if (group_ends && i > group_start) {
      // Objects [group_start, i) are one span's, in increasing offset.
      const auto slot = static_cast<std::uint32_t>(handle_slot(live[group_start].handle));
      SpanMeta& m = meta_[slot];
      const SizeClass& cls = classes_[m.class_index];
      std::uint16_t free_head = no_object;
      std::uint32_t next_live = static_cast<std::uint32_t>(i);
      // Walk the indices below bump downwards so the list comes out in
      // increasing order (lowest first, as a fresh span hands them out).
      for (std::uint32_t index = m.bump; index-- > 0;) {
        if (next_live > group_start && handle_offset(live[next_live - 1].handle) == index * cls.object_size) {
          --next_live;
          continue;
        }
        std::memcpy(object_at(slot, index * cls.object_size), &free_head, sizeof free_head);
        free_head = static_cast<std::uint16_t>(index);
      }
      m.free_head = free_head;
      m.resident_pages = static_cast<std::uint8_t>(cls.pages_per_span);
      used_pages += cls.pages_per_span;
      last_slot = slot;
      if (m.live == cls.objects_per_span) {
        m.state = SpanState::full;
      } else {
        m.state = SpanState::partial;
        link_tail(partial_[m.class_index], slot);
      }
      bump_counter(spans_, 1);
      bump_counter(span_pages_, cls.pages_per_span);
      bump_counter(live_objects_, m.live);
      bump_counter(object_bytes_, static_cast<std::int64_t>(std::uint64_t{m.live} * cls.object_size));
      group_start = i;
    }
    if (i == live.size()) {
      break;
    }
    const LiveObject& o = live[i];
    const std::uint64_t slot = handle_slot(o.handle);
    const std::uint32_t offset = handle_offset(o.handle);
    if (handle_core(o.handle) != core_ || slot == 0 || slot >= max_slots_ || o.class_index >= classes_.count()) {
      return Error(EIO, "object handle " + hex(o.handle) + " of core " + std::to_string(core_) + " is out of bounds");
    }
    const SizeClass& cls = classes_[o.class_index];
    if (offset % cls.object_size != 0 || offset / cls.object_size >= cls.objects_per_span) {
      return Error(EIO, "object handle " + hex(o.handle) + " is not an object of its " +
                            std::to_string(cls.object_size) + "-byte class");
    }
    if (i > 0 && live[i - 1].handle >= o.handle) {
      return Error(EIO, live[i - 1].handle == o.handle ? "object " + hex(o.handle) + " belongs to two pages"
                                                       : std::string("live objects were not given in handle order"));
    }
    SpanMeta& m = meta_[slot];
    if (i == group_start) {
      m.class_index = static_cast<std::uint16_t>(o.class_index);
      m.live = 0;
      m.bump = 0;
    } else if (m.class_index != o.class_index) {
      return Error(EIO, "span " + std::to_string(slot) + " of core " + std::to_string(core_) +
                            " holds objects of two size classes");
    }
    ++m.live;
    m.bump = static_cast<std::uint16_t>(offset / cls.object_size + 1);
  }
  if (!budget_.try_take(used_pages)) {
    return Error(ENOSPC, "the saved objects of core " + std::to_string(core_) + " take " +
                             std::to_string(used_pages * alloc_page_size >> 20) +
                             " MiB, more than the memory limit allows");
  }
  // Slots below the last span that hold nothing become empty cached slots;
  // every page no span uses (what a dead server had cached, or left beyond
  // a smaller class's span) goes back to the system, so the budget now
  // counts exactly the resident pages.
  next_unused_slot_ = std::uint64_t{last_slot} + 1;
  std::uint64_t hole_start = 0;
  for (std::uint32_t slot = 1; slot <= last_slot; ++slot) {
    SpanMeta& m = meta_[slot];
    if (m.state == SpanState::never_used) {
      m.resident_pages = 0;
      push_cached(slot);
      continue;
    }
    const std::uint64_t start = std::uint64_t{slot} * slot_bytes_;
    if (!objects_.release(hole_start, start - hole_start)) {
      return Error::from_errno(errno, "cannot return the unused pages of core " + std::to_string(core_) + "'s arena");
    }
    hole_start = start + std::uint64_t{m.resident_pages} * alloc_page_size;
  }
  if (!objects_.release(hole_start, objects_.size() - hole_start)) {
    return Error::from_errno(errno, "cannot return the unused pages of core " + std::to_string(core_) + "'s arena");
  }
  return ok();
}

ArenaStats ObjectArena::stats() const noexcept {
  ArenaStats s;
  s.live_objects = live_objects_.load(std::memory_order_relaxed);
  s.object_bytes = object_bytes_.load(std::memory_order_relaxed);
  s.spans = spans_.load(std::memory_order_relaxed);
  s.span_pages = span_pages_.load(std::memory_order_relaxed);
  s.cached_pages = cached_pages_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace coblk::storage
