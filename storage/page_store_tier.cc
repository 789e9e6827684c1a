// PageStore's backing tier: writeback of objects to 4 KiB blocks of a file
// or device, reads of written-back pages, idle marks. See docs/storage.md,
// "Backing tier". The store does no I/O of its own here except blocking
// reads and writes of the header block and one read for a partial write to
// a written-back page (storage/backing_io.h): the caller (the zram target)
// writes the batches and reads the misses asynchronously.

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "coblk/storage/page_store.h"
#include "coblk/storage/page_store_core.h"
#include "coblk/storage/store_layout.h"

namespace coblk::storage {

namespace {

constexpr std::uint64_t page_size = compress::page_size;
constexpr unsigned sectors_per_block = 8;
using PageSpan = std::span<std::byte, compress::page_size>;
using ConstPageSpan = std::span<const std::byte, compress::page_size>;

// Blocking I/O of one whole block of the tier, through
// config.backing_io or else pread/pwrite on config.backing_fd. Returns 0
// or a negative errno (-EIO for a short transfer or no tier).
int read_backing_block(const PageStoreConfig& config, std::uint64_t block, std::byte* out) noexcept {
  if (config.backing_io != nullptr) {
    return config.backing_io->read_block(block, out);
  }
  if (config.backing_fd < 0) {
    return -EIO;
  }
  std::size_t got = 0;
  while (got < page_size) {
    const ssize_t n =
        ::pread(config.backing_fd, out + got, page_size - got, static_cast<off_t>(block * page_size + got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 ? -errno : -EIO;
    }
    got += static_cast<std::size_t>(n);
  }
  return 0;
}

int write_backing_block(const PageStoreConfig& config, std::uint64_t block, const std::byte* in) noexcept {
  if (config.backing_io != nullptr) {
    return config.backing_io->write_block(block, in);
  }
  if (config.backing_fd < 0) {
    return -EIO;
  }
  const ssize_t n = ::pwrite(config.backing_fd, in, page_size, static_cast<off_t>(block * page_size));
  if (n < 0) {
    return -errno;
  }
  return n == static_cast<ssize_t>(page_size) ? 0 : -EIO;
}

// Seconds since `word`'s last access; 0 if the stamp is in the future (a
// clock of another origin after recovery).
std::uint32_t age_of(std::uint64_t word, std::uint32_t now) noexcept {
  const std::uint32_t at = entry_bits::access_time_of(word);
  return at > now ? 0 : now - at;
}

bool wanted(WritebackKind kind, std::uint64_t word, std::uint32_t now, std::uint32_t min_age_s) noexcept {
  switch (kind) {
    case WritebackKind::huge:
      return (word & entry_bits::huge) != 0;
    case WritebackKind::idle:
      return (word & entry_bits::idle) != 0;
    case WritebackKind::aged:
      return (word & entry_bits::idle) != 0 || age_of(word, now) >= min_age_s;
  }
  return false;
}

}  // namespace

std::uint64_t PageStore::mark_idle_step(unsigned core, std::uint32_t min_age_s, std::uint64_t& next) noexcept {
  if (core >= cores_.size()) {
    next = page_count_;
    return 0;
  }
  const std::uint32_t now = clock();
  std::uint64_t marked = 0;
  const std::uint64_t end =
      page_count_ - std::min(next, page_count_) > config_.steps.entries ? next + config_.steps.entries : page_count_;
  for (; next < end; ++next) {
    PageEntry& e = entries_[next];
    // A hint: the locked re-check decides.
    const std::uint64_t hint = e.peek();
    if (!(hint & entry_bits::present) || (hint & entry_bits::idle) || age_of(hint, now) < min_age_s) {
      continue;
    }
    const std::uint64_t word = e.lock(core);
    if ((word & entry_bits::present) && !(word & entry_bits::idle) && age_of(word, now) >= min_age_s) {
      e.unlock(word | entry_bits::idle);
      ++marked;
    } else {
      e.unlock(word);
    }
  }
  return marked;
}

WritebackBatch PageStore::writeback_prepare(unsigned core, WritebackKind kind, std::uint32_t min_age_s,
                                            std::uint32_t max_pages) noexcept {
  WritebackBatch batch;
  if (!slots_ || core >= cores_.size()) {
    return batch;
  }
  CoreState& cs = *cores_[core];
  // A free slot: the other may be out, its write in flight, while this
  // one is walked and copied (docs/storage.md, "Backing tier"). Two
  // batches never share a block (claim hands out wholly free blocks only)
  // nor a page: an unchanged page of the other batch has the pending mark,
  // and a changed one is looked up in it (see `other` below).
  std::uint32_t slot = 0;
  while (slot < writeback_slots && cs.batches[slot].pages != 0) {
    ++slot;
  }
  if (slot == writeback_slots) {
    return batch;
  }
  CoreState::WritebackSlot& b = cs.batches[slot];
  static_assert(writeback_slots == 2, "one other batch to look in");
  // A page the other batch holds but that was written since lost its
  // pending mark, and its new object may be the very one that batch copied
  // (the arena hands back the object freed last). Were it taken here, it
  // would carry the mark, set again, and the same handle when that batch
  // commits, which would then install the old copy over the new contents.
  // It waits until that batch is in. The look is linear over at most
  // writeback_max_pages items, and only for a page between the other
  // batch's lowest and highest index: the walk goes on from where the
  // other one ended, so that is rare (a table small enough to be walked
  // round in one prepare).
  const CoreState::WritebackSlot& other = cs.batches[1 - slot];
  std::byte* const data = cs.batch_data.get() + std::size_t{slot} * config_.writeback_batch * page_size;
  // Pages up to max_pages, blocks up to writeback_batch (the claim below):
  // a batch of compressed objects fills as many blocks as raw pages would.
  const std::uint32_t limit = std::min(max_pages, writeback_max_pages);
  const std::uint32_t now = clock();
  std::uint64_t i = cs.writeback_cursor;
  bool full = false;
  for (std::uint64_t visited = 0; visited < config_.steps.entries && b.pages < limit && !full; ++visited, ++i) {
    if (i >= page_count_) {
      i = 0;
      batch.wrapped = true;
    }
    ++batch.entries_visited;
    PageEntry& e = entries_[i];
    const std::uint64_t hint = e.peek();
    if (!(hint & entry_bits::object) || (hint & entry_bits::writeback_pending) || !wanted(kind, hint, now, min_age_s)) {
      continue;
    }
    const std::uint64_t word = e.lock(core);
    const Handle handle = e.value;
    // Only objects of this core's arena: commit frees them here, and no
    // other core's compaction moves them while the batch is out.
    if (!(word & entry_bits::object) || (word & entry_bits::writeback_pending) || !wanted(kind, word, now, min_age_s) ||
        handle_core(handle) != core || other.holds(i)) {
      e.unlock(word);
      continue;
    }
    const std::uint32_t size = entry_bits::size_of(word);
    const unsigned sectors = backing_sectors(size);
    // First fit among the batch's blocks, so that small objects fill the
    // ends that larger ones left; else a new block.
    std::uint32_t k = 0;
    while (k < b.block_count && b.sectors_used[k] + sectors > sectors_per_block) {
      ++k;
    }
    if (k == b.block_count) {
      const std::uint64_t block =
          b.block_count < config_.writeback_batch ? slots_->claim(core) : BackingSlots::no_block;
      if (block == BackingSlots::no_block) {
        e.unlock(word);
        full = true;  // the batch or the backing tier is full: write what we have
        break;
      }
      b.blocks[k] = block;
      b.sectors_used[k] = 0;
      ++b.block_count;
    }
    const unsigned sector = b.sectors_used[k];
    // Copied under the lock: once unlocked, the object may be freed (the
    // page overwritten) and its memory reused; the copy stays ours.
    std::byte* dst = data + k * page_size + sector * 512;
    std::memcpy(dst, arenas_[core]->address(handle), size);
    std::memset(dst + size, 0, sectors * 512 - size);
    b.sectors_used[k] = static_cast<std::uint8_t>(sector + sectors);
    e.unlock(word | entry_bits::writeback_pending);
    // The checksum of exactly the bytes that go out, from the copy (after
    // the unlock: the lock is not held for the hash): a read must give
    // them back, or it fails (finish_backing_read, load_written_back).
    const BackingLocation at{b.blocks[k], sector, backing_checksum(dst, size)};
    b.items[b.pages++] = {i, handle, at.encode(), size};
  }
  if (i >= page_count_) {
    i = 0;
    batch.wrapped = true;  // the walk ended at the end of the table
  }
  cs.writeback_cursor = i;
  b.lowest = UINT64_MAX;
  b.highest = 0;
  for (std::uint32_t k = 0; k < b.pages; ++k) {
    b.lowest = std::min(b.lowest, b.items[k].index);
    b.highest = std::max(b.highest, b.items[k].index);
  }
  // The unused end of each block: zeroed on the device (no stale bytes of
  // this process reach it), free for other objects here.
  for (std::uint32_t k = 0; k < b.block_count; ++k) {
    const unsigned used = b.sectors_used[k];
    if (used < sectors_per_block) {
      std::memset(data + k * page_size + used * 512, 0, (sectors_per_block - used) * 512);
      slots_->release(b.blocks[k], static_cast<std::uint8_t>((0xffu << used) & 0xffu));
    }
  }
  batch.pages = b.pages;
  batch.block_count = b.block_count;
  batch.blocks = b.blocks;
  batch.data = data;
  batch.slot = slot;
  return batch;
}

std::uint32_t PageStore::writeback_commit(unsigned core, const WritebackBatch& batch, bool written) noexcept {
  if (!slots_ || core >= cores_.size() || batch.slot >= writeback_slots ||
      cores_[core]->batches[batch.slot].pages == 0) {
    return 0;
  }
  CoreState& cs = *cores_[core];
  CoreState::WritebackSlot& b = cs.batches[batch.slot];
  std::uint32_t done = 0;
  for (std::uint32_t k = 0; k < b.pages; ++k) {
    const CoreState::WritebackItem& item = b.items[k];
    PageEntry& e = entries_[item.index];
    const std::uint64_t word = e.lock(core);
    const std::uint64_t value = e.value;
    // Any write, discard or recovery since prepare replaced the word
    // without the pending mark; compaction keeps the mark but moves the
    // object (another handle). Only an untouched page is switched, so the
    // copy on the device is exactly the page's contents.
    if (written && (word & entry_bits::writeback_pending) && (word & entry_bits::object) && value == item.handle) {
      const std::uint64_t moved =
          (word & ~(entry_bits::object | entry_bits::writeback_pending)) | entry_bits::written_back;
      publish(core, item.index, e, value, moved, item.location);
      account(core, word, -1);
      account(core, moved, +1);
      release(core, word, value);
      ++done;
      continue;
    }
    e.unlock(word & ~entry_bits::writeback_pending);
    const BackingLocation at = BackingLocation::decode(item.location);
    slots_->release(at.block, backing_sector_mask(at.sector, item.size));
  }
  CoreCounters::add(cs.counters.bd_writes, done);
  if (!written) {
    CoreCounters::add(cs.counters.bd_write_errors, 1);
  }
  b.pages = 0;
  b.block_count = 0;
  return done;
}

int PageStore::read_resident(unsigned core, std::uint64_t offset, std::span<std::byte> out,
                             std::span<BackingRead> misses, std::size_t& missed) noexcept {
  missed = 0;
  if (!in_range(core, offset, out.size())) {
    return -EIO;
  }
  CoreState& cs = *cores_[core];
  auto fail = [&](int rc) {
    for (std::size_t k = 0; k < missed; ++k) {
      slots_->unpin(misses[k].where.block);
    }
    missed = 0;
    CoreCounters::add(cs.counters.failed_reads, 1);
    return rc;
  };
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / page_size;
    const auto in_page = static_cast<std::size_t>(pos % page_size);
    const std::size_t n = std::min<std::size_t>(page_size - in_page, out.size() - done);
    if (n != page_size) {
      // A partial page: read whole (a written-back one synchronously).
      if (const int rc = read_page(core, index, PageSpan(cs.page, page_size)); rc != 0) {
        return fail(rc);
      }
      std::memcpy(out.data() + done, cs.page + in_page, n);
      done += n;
      continue;
    }
    const PageSpan page(out.data() + done, page_size);
    PageEntry& e = entries_[index];
    const std::uint64_t word = e.lock(core);
    if ((word & entry_bits::written_back) && slots_) {
      if (missed == misses.size()) {
        e.unlock(word);
        return fail(-EIO);
      }
      const BackingLocation at = BackingLocation::decode(e.value);
      // Pinned under the lock: see BackingSlots.
      slots_->pin(at.block);
      // The policy looks at the word as it was before this read (its
      // previous access, its tier_read mark).
      misses[missed++] = BackingRead{word, at, page.data(), index, readmit_due(word)};
      e.unlock(entry_bits::accessed(word, clock()) | entry_bits::tier_read);
      done += n;
      continue;
    }
    // Not written back: read it under the lock already held, as
    // read_page does.
    const std::uint64_t value = e.value;
    if (!(word & (entry_bits::object | entry_bits::staged))) {
      e.unlock(word);  // nothing to keep alive: fill outside the lock
      load_locked(core, word, value, page);
    } else {
      const int rc = load_locked(core, word, value, page);
      e.unlock(entry_bits::accessed(word, clock()));
      if (rc != 0) {
        return fail(rc);
      }
    }
    done += n;
  }
  return 0;
}

int PageStore::finish_backing_read(unsigned core, const BackingRead& miss, std::span<const std::byte> block) noexcept {
  if (core >= cores_.size() || !slots_) {
    return -EIO;
  }
  CoreState& cs = *cores_[core];
  int rc = -EIO;
  const std::uint32_t size = entry_bits::size_of(miss.word);
  const bool whole = block.size() == page_size && miss.where.sector * 512 + size <= page_size;
  const std::byte* src = whole ? block.data() + miss.where.sector * 512 : nullptr;
  if (whole && !miss.where.holds(src, size)) {
    // Not the bytes written there: never decoded, never served.
    rc = -EBADMSG;
    CoreCounters::add(cs.counters.bd_checksum_errors, 1);
  } else if (whole) {
    if (src == miss.out && (miss.word & entry_bits::huge)) {
      rc = 0;  // a raw page read into its place: nothing to decode
    } else {
      // The block may have been read into the caller's page itself: copy
      // the object out before decoding into that page.
      std::memcpy(cs.compressed, src, size);
      rc = decode_object(core, miss.word, cs.compressed, PageSpan(miss.out, page_size));
    }
    CoreCounters::add(cs.counters.bd_reads, 1);
    if (rc == 0 && miss.readmit && miss.index < page_count_) {
      // The object's bytes: the raw page now in miss.out, or the
      // compressed object copied out above.
      const std::byte* object = (miss.word & entry_bits::huge) ? miss.out : cs.compressed;
      PageEntry& e = entries_[miss.index];
      const std::uint64_t word = e.lock(core);
      const std::uint64_t value = e.value;
      // Still the copy that was read? A write, discard or another
      // reader's re-admission since read_resident replaced the word
      // without written_back. No ABA: the page cannot have been written
      // back again to the same place meanwhile, because this read's pin
      // keeps its block from being claimed (BackingSlots::claim), so an
      // equal location means the same object.
      if ((word & entry_bits::written_back) && value == miss.where.encode()) {
        readmit_locked(core, miss.index, e, word, value, object);
      } else {
        e.unlock(word);
      }
    }
  }
  // Unpinned after the bytes are used: the block may be reused at once.
  slots_->unpin(miss.where.block);
  if (rc != 0) {
    CoreCounters::add(cs.counters.bd_read_errors, 1);
    CoreCounters::add(cs.counters.failed_reads, 1);
  }
  return rc;
}

int PageStore::load_written_back(unsigned core, std::uint64_t word, std::uint64_t value, PageSpan out) noexcept {
  CoreState& cs = *cores_[core];
  const BackingLocation at = BackingLocation::decode(value);
  if (!cs.block) {
    CoreCounters::add(cs.counters.bd_read_errors, 1);
    return -EIO;
  }
  // Under the entry's lock, so the block cannot be reused meanwhile.
  if (read_backing_block(config_, at.block, cs.block.get()) != 0) {
    CoreCounters::add(cs.counters.bd_read_errors, 1);
    return -EIO;
  }
  const std::byte* object = cs.block.get() + at.sector * 512;
  const std::uint32_t size = entry_bits::size_of(word);
  if (at.sector * 512 + size > page_size) {
    // An entry no writer makes (and recover_written_back refuses): not a
    // checksum error, but nothing to serve either.
    CoreCounters::add(cs.counters.bd_read_errors, 1);
    return -EIO;
  }
  if (!at.holds(object, size)) {
    // Not the bytes written there: never decoded, never served.
    CoreCounters::add(cs.counters.bd_read_errors, 1);
    CoreCounters::add(cs.counters.bd_checksum_errors, 1);
    return -EIO;
  }
  CoreCounters::add(cs.counters.bd_reads, 1);
  return decode_object(core, word, object, out);
}

Result<void> PageStore::recover_written_back(std::uint64_t index, std::uint64_t word, std::uint64_t value) noexcept {
  const std::uint32_t size = entry_bits::size_of(word);
  const bool is_huge = (word & entry_bits::huge) != 0;
  const BackingLocation at = BackingLocation::decode(value);
  if (!slots_) {
    return Error(EIO,
                 "page " + std::to_string(index) + " of the saved store is written back, but there is no backing tier");
  }
  if ((is_huge ? size != page_size : (size == 0 || size >= config_.huge_threshold)) ||
      at.sector + backing_sectors(size) > sectors_per_block) {
    return Error(EIO,
                 "page " + std::to_string(index) + " of the saved store records an impossible written-back object");
  }
  if (!slots_->mark(at.block, backing_sector_mask(at.sector, size))) {
    return Error(EIO, "page " + std::to_string(index) + " of the saved store refers to backing block " +
                          std::to_string(at.block) + ", beyond the tier or claimed twice");
  }
  return ok();
}

RecompressStep PageStore::recompress_step(unsigned core, WritebackKind kind, std::uint32_t min_age_s,
                                          std::uint32_t max_pages) noexcept {
  RecompressStep step;
  if (core >= cores_.size() || !cores_[core]->secondary) {
    step.wrapped = true;
    return step;
  }
  CoreState& cs = *cores_[core];
  compress::Codec& secondary = *cs.secondary;
  const std::uint32_t now = clock();
  std::uint64_t i = cs.recompress_cursor;
  for (std::uint64_t visited = 0; visited < config_.steps.entries && step.tried < max_pages; ++visited, ++i) {
    if (i >= page_count_) {
      i = 0;
      step.wrapped = true;
    }
    ++step.entries_visited;
    PageEntry& e = entries_[i];
    const std::uint64_t hint = e.peek();
    if (!(hint & entry_bits::object) || (hint & (entry_bits::recompressed | entry_bits::writeback_pending)) ||
        !wanted(kind, hint, now, min_age_s)) {
      continue;
    }
    const std::uint64_t word = e.lock(core);
    const Handle old = e.value;
    if (!(word & entry_bits::object) || (word & (entry_bits::recompressed | entry_bits::writeback_pending)) ||
        !wanted(kind, word, now, min_age_s) || handle_core(old) != core) {
      e.unlock(word);
      continue;
    }
    ++step.tried;
    // Under the lock: the page cannot change while it is recompressed
    // (one page's decompress and compress; the step bounds how many).
    const std::uint32_t old_size = entry_bits::size_of(word);
    const std::uint32_t old_class =
        (word & entry_bits::huge) ? classes_.raw_class_index() : classes_.index_for(old_size);
    std::size_t length = 0;
    if (decode_object(core, word, arenas_[core]->address(old), PageSpan(cs.page, page_size)) == 0) {
      length = secondary.compress(ConstPageSpan(cs.page, page_size),
                                  std::span<std::byte>(cs.compressed, config_.huge_threshold - 1));
    }
    const auto size = static_cast<std::uint32_t>(length);
    if (length == 0 || classes_.index_for(size) >= old_class) {
      e.unlock(word | entry_bits::recompressed);  // tried: not smaller
      continue;
    }
    Handle handle = arenas_[core]->allocate(size);
    if (handle == null_handle) {
      e.unlock(word);
      step.no_memory = true;
      break;
    }
    std::memcpy(arenas_[core]->address(handle), cs.compressed, size);
    // The page's stamps (access time, idle mark) stay: recompression is
    // not an access.
    const std::uint64_t stamps = word & (entry_bits::age_mask | entry_bits::idle);
    const std::uint64_t next =
        entry_bits::object_word(size, secondary.spec().algorithm, false) | stamps | entry_bits::recompressed;
    publish(core, i, e, old, next, handle);
    account(core, word, -1);
    account(core, next, +1);
    release(core, word, old);
    ++step.recompressed;
  }
  if (i >= page_count_) {
    i = 0;
    step.wrapped = true;  // the walk ended at the end of the table
  }
  cs.recompress_cursor = i;
  CoreCounters::add(cs.counters.recompressed, step.recompressed);
  return step;
}

Result<void> PageStore::init_backing(bool attaching) {
  if (config_.backing_fd < 0 && config_.backing_io == nullptr) {
    return Error(EINVAL, "a backing tier of " + std::to_string(config_.backing_blocks) + " blocks needs its file");
  }
  auto* header = reinterpret_cast<layout::Header*>(table_.data());
  // One aligned block (the tier may be opened with O_DIRECT).
  std::byte* block = cores_[0]->block.get();
  std::memset(block, 0, page_size);
  layout::BackingHeader tier{};
  if (!attaching) {
    std::uint64_t id = 0;
    if (::getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
      return Error::from_errno(errno, "cannot draw the backing tier's id");
    }
    header->backing_id = id;
    std::memcpy(tier.magic, layout::backing_magic, sizeof tier.magic);
    tier.backing_id = id;
    tier.backing_blocks = config_.backing_blocks;
    std::memcpy(block, &tier, sizeof tier);
    if (const int rc = write_backing_block(config_, 0, block); rc != 0) {
      return Error::from_errno(-rc, "cannot write the backing tier's header block");
    }
    return ok();
  }
  if (const int rc = read_backing_block(config_, 0, block); rc != 0) {
    return Error::from_errno(-rc, "cannot read the backing tier's header block");
  }
  std::memcpy(&tier, block, sizeof tier);
  if (std::memcmp(tier.magic, layout::backing_magic, sizeof tier.magic) != 0 || tier.backing_id != header->backing_id ||
      tier.backing_blocks != config_.backing_blocks) {
    return Error(EINVAL,
                 "the backing tier given is not the one this store wrote its pages to (its header block "
                 "does not match)");
  }
  return ok();
}

BdStat PageStore::bd_stat() const noexcept {
  BdStat s;
  for (const auto& cs : cores_) {
    s.bd_reads += static_cast<std::uint64_t>(cs->counters.bd_reads.load(std::memory_order_relaxed));
    s.bd_writes += static_cast<std::uint64_t>(cs->counters.bd_writes.load(std::memory_order_relaxed));
  }
  s.bd_count = slots_ ? slots_->used_blocks() : 0;
  return s;
}

TierStat PageStore::tier_stat() const noexcept {
  TierStat s;
  std::int64_t written_back = 0;
  for (const auto& cs : cores_) {
    written_back += cs->counters.written_back.load(std::memory_order_relaxed);
    s.read_errors += static_cast<std::uint64_t>(cs->counters.bd_read_errors.load(std::memory_order_relaxed));
    s.checksum_errors += static_cast<std::uint64_t>(cs->counters.bd_checksum_errors.load(std::memory_order_relaxed));
    s.write_errors += static_cast<std::uint64_t>(cs->counters.bd_write_errors.load(std::memory_order_relaxed));
    s.recompressed_pages += static_cast<std::uint64_t>(cs->counters.recompressed.load(std::memory_order_relaxed));
    s.readmitted_pages += static_cast<std::uint64_t>(cs->counters.readmitted.load(std::memory_order_relaxed));
  }
  s.written_back_pages = written_back < 0 ? 0 : static_cast<std::uint64_t>(written_back);
  s.backing_blocks = config_.backing_blocks;
  return s;
}

}  // namespace coblk::storage
