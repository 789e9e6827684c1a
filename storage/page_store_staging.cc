// PageStore's staging area, for asynchronous compression: stage() puts a
// written page in a 4 KiB slot at memcpy cost and points its entry at the
// slot; install_staged() compresses it later, on any core, and swaps the
// object in if the page was not changed meanwhile. See docs/storage.md,
// "Staging".
//
// Who owns a slot: the caller that stage()d into it, until it hands the
// slot to one install_staged() call; the slot is free again only when that
// call returns 0. An entry may name a slot only while the slot is owned
// that way, so `staged && value == ref` seen under the entry's lock means
// "this very staging", never an older one (no ABA): the slot cannot have
// been reused while its installer had not yet returned.

#include <cerrno>
#include <cstring>

#include "coblk/compress/same_fill.h"
#include "coblk/storage/page_store.h"
#include "coblk/storage/page_store_core.h"
#include "coblk/storage/store_layout.h"

namespace coblk::storage {

namespace {

constexpr std::uint64_t page_size = compress::page_size;
using ConstPageSpan = std::span<const std::byte, compress::page_size>;

}  // namespace

std::byte* PageStore::staging_slot(StagedRef ref) const noexcept {
  // In the table's memory (layout::region_bytes), so that a staged page
  // outlives its server as the entry naming it does.
  return table_.data() + layout::table_bytes(page_count_) +
         (std::size_t{ref.core} * config_.staging_pages + ref.slot) * page_size;
}

int PageStore::stage(unsigned core, std::uint32_t slot, std::uint64_t offset,
                     std::span<const std::byte> page) noexcept {
  if (config_.staging_pages == 0 || slot >= config_.staging_pages || page.size() != page_size ||
      offset % page_size != 0 || !in_range(core, offset, page_size)) {
    return -EIO;
  }
  const std::uint64_t index = offset / page_size;
  const ConstPageSpan whole(page.data(), page_size);
  std::uint64_t fill = 0;
  if (compress::is_same_filled(whole, fill)) {
    // Metadata only, as cheap as staging: store it now.
    const int rc = write_whole_page(core, index, whole);
    return rc == 0 ? 1 : rc;
  }
  // The slot's 4 KiB count against the limit while it holds the page, so
  // a burst of staged writes cannot overshoot --mem-limit. Given back by
  // install_staged.
  if (!budget_.try_take(1)) {
    return -ENOSPC;
  }
  CoreState& cs = *cores_[core];
  std::memcpy(staging_slot(StagedRef{core, slot}), page.data(), page_size);
  cs.staged_index[slot] = index;
  PageEntry& e = entries_[index];
  const std::uint64_t old_word = e.lock(core);
  const std::uint64_t old_value = e.value;
  // The unlock's release (in publish) orders the copy above before any
  // reader that finds the entry staged; the hand-over of the slot to its
  // installer (a runtime::Channel, or the same thread) orders it for the
  // installer.
  publish(core, index, e, old_value, entry_bits::accessed(entry_bits::staged, clock()), StagedRef{core, slot}.encode());
  account(core, old_word, -1);
  account(core, entry_bits::staged, +1);
  release(core, old_word, old_value);
  return 0;
}

int PageStore::install_staged(unsigned core, StagedRef ref) noexcept {
  if (core >= cores_.size() || ref.core >= cores_.size() || ref.slot >= config_.staging_pages) {
    return -EIO;
  }
  const std::uint64_t index = cores_[ref.core]->staged_index[ref.slot];
  PageEntry& e = entries_[index];
  const std::uint64_t mine = ref.encode();
  // A page overwritten or discarded since it was staged needs no
  // compression: look first (under the lock, since the value is only
  // meaningful to its holder).
  std::uint64_t word = e.lock(core);
  bool current = (word & entry_bits::staged) && e.value == mine;
  e.unlock(word);
  bool room_lent = false;
  if (current) {
    Prepared p;
    // The slot is not written while this call owns it, so compressing it
    // outside the lock reads stable bytes.
    const ConstPageSpan page(staging_slot(ref), page_size);
    int rc = prepare(core, page, p);
    if (rc == -ENOSPC) {
      // Staged pages alone may fill the limit, and each gives its room back
      // only once installed: no installer could ever finish, and every
      // later write would fail. So lend the object the slot's own page:
      // compressed if that is room enough for its span, else stored as it
      // is (prepare's fallback: one page, which fits where the slot's page
      // was). The slot's bytes stay valid meanwhile (this call still owns
      // the slot), so readers of the staged page see the same data.
      budget_.give_back(1);
      room_lent = true;
      rc = prepare(core, page, p);
      if (rc != 0) {
        // Another core took the room first: the slot's page holds it again.
        budget_.take_regardless(1);
        return rc;  // -ENOSPC: the page stays staged, readable, slot still owned
      }
    } else if (rc != 0) {
      return rc;
    }
    word = e.lock(core);
    current = (word & entry_bits::staged) && e.value == mine;
    if (current) {
      // Keep the access time and idle mark the page had while staged.
      const std::uint64_t stamps = word & (entry_bits::age_mask | entry_bits::idle);
      publish(core, index, e, mine, p.word | stamps, p.value);
      account(core, word, -1);
      account(core, p.word, +1);
    } else {
      e.unlock(word);
      release(core, p.word, p.value);  // changed meanwhile: drop the new object
    }
  }
  if (!room_lent) budget_.give_back(1);
  return 0;
}

}  // namespace coblk::storage
