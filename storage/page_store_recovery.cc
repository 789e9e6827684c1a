// PageStore::recover: rebuilding a store from the page table a dead server
// left in shared memory. See docs/storage.md, "Recovery".

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/storage/page_store.h"
#include "coblk/storage/page_store_core.h"
#include "coblk/storage/store_layout.h"

namespace coblk::storage {

namespace {

std::string page_error(std::uint64_t index, const std::string& what) {
  return "page " + std::to_string(index) + " of the saved store " + what;
}

}  // namespace

Result<void> PageStore::recover() {
  auto* journals = static_cast<layout::Journal*>(journals_);
  const unsigned cores = this->cores();
  const std::uint32_t raw_class = classes_.raw_class_index();
  std::vector<std::vector<ObjectArena::LiveObject>> live(cores);
  std::int64_t stored = 0, same = 0, huge = 0, compr = 0, written_back = 0;
  struct Staged {
    std::uint64_t index;
    StagedRef ref;
  };
  std::vector<Staged> staged;
  std::vector<bool> slot_taken(std::size_t{cores} * config_.staging_pages);
  // Known bits of a state word once the lock bits are off; anything else
  // is corrupt.
  constexpr std::uint64_t known = entry_bits::same | entry_bits::object | entry_bits::huge |
                                  entry_bits::algorithm_mask | entry_bits::size_mask | entry_bits::idle |
                                  entry_bits::written_back | entry_bits::writeback_pending | entry_bits::age_mask |
                                  entry_bits::recompressed | entry_bits::staged;
  constexpr std::uint64_t stamps = entry_bits::idle | entry_bits::age_mask | entry_bits::recompressed;
  // Objects are made by the primary codec or, recompressed, the secondary.
  auto known_algorithm = [this](std::uint64_t word) {
    const compress::Algorithm a = entry_bits::algorithm_of(word);
    return a == config_.codec.algorithm || (config_.recompress && a == config_.recompress->algorithm);
  };
  for (std::uint64_t i = 0; i < page_count_; ++i) {
    PageEntry& e = entries_[i];
    const std::uint64_t raw = e.raw_word();
    std::uint64_t value = e.value;
    if (raw & entry_bits::lock) {
      // Locked by a core of the dead server. If that core's journal names
      // this entry, its value may already be the new one beside the old
      // word: put the old one back (layout::Journal).
      const auto holder = static_cast<unsigned>((raw & entry_bits::holder_mask) >> entry_bits::holder_shift);
      if (holder < cores && journals[holder].entry_plus_one.load(std::memory_order_relaxed) == i + 1) {
        value = journals[holder].old_value.load(std::memory_order_relaxed);
      }
    }
    // A writeback in flight died with the server: its copy on the backing
    // tier is unreferenced (its sectors stay free), the page stays in RAM.
    const std::uint64_t word = raw & ~(entry_bits::lock_state | entry_bits::writeback_pending);
    if (word & ~known) {
      return Error(EIO, page_error(i, "has unknown flags"));
    }
    const bool is_same = (word & entry_bits::same) != 0;
    const bool is_object = (word & entry_bits::object) != 0;
    const bool is_written_back = (word & entry_bits::written_back) != 0;
    const bool is_staged = (word & entry_bits::staged) != 0;
    if (int{is_same} + int{is_object} + int{is_written_back} + int{is_staged} > 1) {
      return Error(EIO, page_error(i, "is more than one of same-filled, an object, written back and staged"));
    }
    if (is_staged) {
      // Written and acknowledged, not yet compressed: its bytes are in a
      // staging slot of this memory, installed below once the arenas are
      // rebuilt. Each slot names one entry at a time (page_store_staging.cc).
      const StagedRef ref = StagedRef::decode(value);
      if (ref.core >= cores || ref.slot >= config_.staging_pages) {
        return Error(EIO, page_error(i, "names staging slot " + std::to_string(ref.slot) + " of core " +
                                            std::to_string(ref.core) + ", beyond the staging area"));
      }
      const std::size_t at = std::size_t{ref.core} * config_.staging_pages + ref.slot;
      if (slot_taken[at]) {
        return Error(EIO, page_error(i, "names a staging slot another page names too"));
      }
      slot_taken[at] = true;
      if ((word & ~(entry_bits::staged | stamps)) != 0) {
        return Error(EIO, page_error(i, "is staged but has object fields"));
      }
      staged.push_back({i, ref});
      e.reset(word, value);
      continue;
    }
    if (!is_object && !is_written_back && (word & ~(entry_bits::same | stamps)) != 0) {
      return Error(EIO, page_error(i, "has object fields but no object"));
    }
    if (is_written_back) {
      if (Result<void> marked = recover_written_back(i, word, value); !marked) {
        return marked;
      }
      if (!(word & entry_bits::huge) && !known_algorithm(word)) {
        return Error(EIO, page_error(i, "was compressed by another algorithm"));
      }
    }
    if (is_object) {
      const std::uint32_t size = entry_bits::size_of(word);
      const bool is_huge = (word & entry_bits::huge) != 0;
      if (is_huge ? size != compress::page_size : (size == 0 || size >= config_.huge_threshold)) {
        return Error(EIO, page_error(i, "records an impossible object size " + std::to_string(size)));
      }
      if (!is_huge && !known_algorithm(word)) {
        return Error(EIO, page_error(i, "was compressed by another algorithm"));
      }
      const unsigned owner = handle_core(value);
      if (owner >= cores) {
        return Error(EIO, page_error(i, "refers to core " + std::to_string(owner) + "'s arena, beyond the store's " +
                                            std::to_string(cores)));
      }
      live[owner].push_back({value, is_huge ? raw_class : classes_.index_for(size)});
      compr += size;
      huge += is_huge ? 1 : 0;
    }
    stored += (is_same || is_object || is_written_back) ? 1 : 0;
    same += is_same ? 1 : 0;
    written_back += is_written_back ? 1 : 0;
    // An empty entry's value means nothing: make it 0.
    e.reset(word, is_same || is_object || is_written_back ? value : 0);
  }
  for (unsigned c = 0; c < cores; ++c) {
    journals[c].entry_plus_one.store(0, std::memory_order_relaxed);
    journals[c].old_value.store(0, std::memory_order_relaxed);
    std::sort(live[c].begin(), live[c].end(),
              [](const ObjectArena::LiveObject& a, const ObjectArena::LiveObject& b) { return a.handle < b.handle; });
    if (Result<void> rebuilt = arenas_[c]->rebuild(live[c]); !rebuilt) {
      return rebuilt;
    }
  }
  seed_page_counters(stored, same, huge, compr, written_back);
  // Staged pages: compressed and installed as the dead server's workers
  // would have. Each stays staged (and so recoverable again) until its
  // object is published, so a crash in here loses nothing either. The
  // budget takes the slot's page back first, as stage() had, because
  // install_staged gives it back. A server at its memory limit has pages
  // staged that wait for room (their workers retry); recovery cannot wait,
  // so they are installed past the limit (MemoryBudget::allow_over_limit).
  budget_.allow_over_limit(true);
  int installed = 0;
  std::uint64_t failed_page = 0;
  for (const Staged& s : staged) {
    const std::uint64_t word = entries_[s.index].raw_word();
    account(0, word, +1);
    cores_[s.ref.core]->staged_index[s.ref.slot] = s.index;
    installed = budget_.try_take(1) ? install_staged(0, s.ref) : -ENOSPC;
    if (installed != 0) {
      failed_page = s.index;
      break;
    }
  }
  budget_.allow_over_limit(false);
  if (installed != 0)
    return Error(-installed, page_error(failed_page, std::string("was staged and cannot be installed: ") +
                                                         std::strerror(-installed)));
  return ok();
}

}  // namespace coblk::storage
