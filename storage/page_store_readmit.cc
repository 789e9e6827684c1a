// PageStore's re-admission of written-back pages: a page read from the
// backing tier often enough is installed in RAM again, from the object the
// read brought back (no recompression), and its sectors on the tier are
// freed. See docs/storage.md, "Re-admission". The reads themselves are in
// page_store_tier.cc (read_resident / finish_backing_read) and
// page_store.cc (read_page, the synchronous path).

#include <cstring>

#include "coblk/storage/page_store.h"
#include "coblk/storage/page_store_core.h"

namespace coblk::storage {

namespace {

constexpr std::uint64_t page_size = compress::page_size;

// Seconds since `word`'s last access; 0 if the stamp is in the future (a
// clock of another origin after recovery).
std::uint32_t age_of(std::uint64_t word, std::uint32_t now) noexcept {
  const std::uint32_t at = entry_bits::access_time_of(word);
  return at > now ? 0 : now - at;
}

}  // namespace

bool PageStore::readmit_due(std::uint64_t word) const noexcept {
  if (config_.entropy_routing && (word & entry_bits::huge)) {
    // A high-entropy page: routed to the tier on purpose, and written
    // back again at the zram target's next tick (docs/storage.md).
    return false;
  }
  switch (config_.readmit_reads) {
    case 1:
      return true;
    case 2:
      // Read from the tier before, and that read was recent: the page is
      // hot again, by the same clock that made it cold.
      return (word & entry_bits::tier_read) != 0 && age_of(word, clock()) < config_.readmit_window_s;
    default:
      return false;
  }
}

void PageStore::readmit_locked(unsigned core, std::uint64_t index, PageEntry& e, std::uint64_t word,
                               std::uint64_t value, const std::byte* object) noexcept {
  // If the page stays on the tier: read now, and read from the tier.
  const std::uint64_t stays = entry_bits::accessed(word, clock()) | entry_bits::tier_read;
  // Above the mark, re-admitting would only feed the next writeback pass
  // (which would write the page back again): the page stays on the tier.
  if (config_.readmit_below_bytes != 0 && budget_.used_pages() * page_size >= config_.readmit_below_bytes) {
    e.unlock(stays);
    return;
  }
  const std::uint32_t size = entry_bits::size_of(word);
  // As a write allocates (prepare): take back this core's released
  // objects first; at the memory limit, give up (no reclaim: a read must
  // not pay for it).
  remote_frees_->receive(core);
  const Handle handle = arenas_[core]->allocate(size);
  if (handle == null_handle) {
    e.unlock(stays);
    return;
  }
  // The object is complete before the entry names it (crash consistency,
  // point 1): a crash before the publication leaves an unreferenced
  // object, which recovery does not count.
  std::memcpy(arenas_[core]->address(handle), object, size);
  // The same object (size, algorithm, huge, recompressed stay), in RAM.
  const std::uint64_t next =
      entry_bits::accessed((word & ~(entry_bits::written_back | entry_bits::tier_read)) | entry_bits::object, clock());
  // The mirror image of writeback_commit: one journaled publication
  // switches the entry from the tier location to the handle; the sectors
  // on the tier are freed only after it (release), so a crash leaves the
  // entry naming either its sectors (still marked at recovery) or its
  // object (complete), never freed space.
  publish(core, index, e, value, next, handle);
  account(core, word, -1);
  account(core, next, +1);
  release(core, word, value);
  CoreCounters::add(cores_[core]->counters.readmitted, 1);
}

}  // namespace coblk::storage
