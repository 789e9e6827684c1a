#include "coblk/storage/page_store.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "coblk/compress/entropy.h"
#include "coblk/compress/same_fill.h"
#include "coblk/runtime/fault_injection.h"
#include "coblk/storage/page_store_core.h"
#include "coblk/storage/store_layout.h"

namespace coblk::storage {

namespace {

constexpr std::uint64_t page_size = compress::page_size;

Result<void> validate(const PageStoreConfig& c) {
  if (c.size_bytes == 0 || c.size_bytes % page_size != 0) {
    return Error(EINVAL, "device size must be a non-zero multiple of 4096 bytes, got " + std::to_string(c.size_bytes));
  }
  if (c.cores == 0 || c.cores > max_store_cores) {
    return Error(EINVAL, "core count must be 1..256, got " + std::to_string(c.cores));
  }
  if (c.huge_threshold < 64 || c.huge_threshold > page_size) {
    return Error(EINVAL, "huge threshold must be 64..4096 bytes, got " + std::to_string(c.huge_threshold));
  }
  if (c.mem_limit_bytes != 0 && c.mem_limit_bytes < page_size) {
    return Error(EINVAL,
                 "memory limit must be 0 (none) or at least 4096 bytes, got " + std::to_string(c.mem_limit_bytes));
  }
  if (c.steps.entries == 0 || c.steps.moves == 0 || c.steps.spans == 0 || c.steps.releases == 0) {
    return Error(EINVAL, "every step limit must be at least 1");
  }
  if (c.writeback_batch == 0 || c.writeback_batch > 256) {
    return Error(EINVAL, "writeback batch must be 1..256 blocks, got " + std::to_string(c.writeback_batch));
  }
  if (c.backing_blocks > max_backing_blocks) {
    return Error(EINVAL, "a backing tier of " + std::to_string(c.backing_blocks) +
                             " blocks is too large: a page entry names at most 2^33 blocks (32 TiB)");
  }
  if (c.entropy_routing) {
    const auto& r = *c.entropy_routing;
    if (!(r.low >= 0 && r.low < r.high && r.high <= 8)) {
      return Error(EINVAL, "entropy routing thresholds must satisfy 0 <= low < high <= 8 bits per byte, got " +
                               std::to_string(r.low) + " and " + std::to_string(r.high));
    }
    if (!c.recompress) {
      return Error(EINVAL, "entropy routing needs a strong codec for mid-entropy pages (the recompression codec)");
    }
  }
  if (c.readmit_reads > 2) {
    return Error(EINVAL, "readmit reads must be 0 (never), 1 or 2, got " + std::to_string(c.readmit_reads));
  }
  if (c.readmit_reads == 2 && c.readmit_window_s == 0) {
    return Error(EINVAL, "the readmit window must be at least 1 second");
  }
  if (c.staging_pages > 65536) {
    return Error(EINVAL, "staging area must be 0..65536 pages per core, got " + std::to_string(c.staging_pages));
  }
  if (c.remote_free_ring_capacity < 2) {
    return Error(EINVAL, "remote free ring capacity must be at least 2");
  }
  return ok();
}

}  // namespace

Result<std::unique_ptr<PageStore>> PageStore::create(const PageStoreConfig& config) { return build(config, {}); }

Result<std::unique_ptr<PageStore>> PageStore::attach(const PageStoreConfig& config, std::span<const int> fds) {
  if (fds.size() != std::size_t{config.cores} + 1) {
    return Error(EINVAL, "a store of " + std::to_string(config.cores) + " cores needs " +
                             std::to_string(config.cores + 1) + " memory fds, got " + std::to_string(fds.size()));
  }
  PageStoreConfig shared = config;
  shared.memory = runtime::MemoryKind::shared;
  Result<std::unique_ptr<PageStore>> store = build(shared, fds);
  if (!store) {
    return store;
  }
  if (Result<void> recovered = (*store)->recover(); !recovered) {
    return std::move(recovered).error();
  }
  return store;
}

Result<std::unique_ptr<PageStore>> PageStore::build(const PageStoreConfig& config, std::span<const int> fds) {
  if (Result<void> valid = validate(config); !valid) {
    return std::move(valid).error();
  }
  Result<SizeClassTable> classes = SizeClassTable::create(config.huge_threshold - 1);
  if (!classes) {
    return std::move(classes).error();
  }
  // The page table's size comes from the user: not having it is an error to
  // report, not a bug. MAP_NORESERVE: a page of entries costs memory once
  // written.
  const std::uint64_t page_count = config.size_bytes / page_size;
  const bool attaching = !fds.empty();
  Result<runtime::MemoryRegion> table = Error(EINVAL, "");
  if (attaching) {
    table = runtime::MemoryRegion::attach(fds[0], layout::region_bytes(page_count, config.cores, config.staging_pages),
                                          "page table");
  } else {
    // The staging area shares the table's memory (layout::region_bytes).
    table = runtime::MemoryRegion::create(
        config.memory, layout::region_bytes(page_count, config.cores, config.staging_pages), "page table");
  }
  if (!table) {
    return std::move(table).error();
  }
  std::unique_ptr<PageStore> store(new PageStore(config, std::move(classes).value(), std::move(table).value()));
  // Worst case for one arena: an object per page in a span of its own,
  // plus as many dead objects whose frees are still in flight; plus one
  // partly used span per class. Address space only (MAP_NORESERVE).
  const std::uint64_t max_spans = 2 * page_count + store->classes_.count();
  auto* header = reinterpret_cast<layout::Header*>(store->table_.data());
  if (attaching) {
    if (std::memcmp(header->magic, layout::magic, sizeof layout::magic) != 0) {
      return Error(EINVAL, "the saved memory does not hold a page table of this coblk's format (version " +
                               std::to_string(layout::version) + ")");
    }
    if (header->version != layout::version) {
      // An upgrade with devices kept alive: the memory is whole, but its
      // entries mean other things here (layout::version).
      return Error(EINVAL, "the saved page table is of format version " + std::to_string(header->version) +
                               ", and this coblk reads version " + std::to_string(layout::version) +
                               ": recover the device with the coblk that made it");
    }
    if (header->page_count != page_count || header->cores != config.cores ||
        header->huge_threshold != config.huge_threshold ||
        header->algorithm != static_cast<std::uint32_t>(config.codec.algorithm) || header->max_spans != max_spans ||
        header->backing_blocks != config.backing_blocks || header->staging_pages != config.staging_pages) {
      return Error(EINVAL, "the saved store was made for another geometry (" + std::to_string(header->page_count) +
                               " pages, " + std::to_string(header->cores) + " cores, algorithm " +
                               std::to_string(header->algorithm) + ", " + std::to_string(header->backing_blocks) +
                               " backing blocks, " + std::to_string(header->staging_pages) +
                               " staging pages per core)");
    }
  } else {
    header->version = layout::version;
    header->cores = config.cores;
    header->page_count = page_count;
    header->huge_threshold = config.huge_threshold;
    header->algorithm = static_cast<std::uint32_t>(config.codec.algorithm);
    header->max_spans = max_spans;
    header->backing_blocks = config.backing_blocks;
    header->staging_pages = config.staging_pages;
    // The magic last: a table whose creation was cut short is never taken
    // for a valid one. Release orders the fields before it for a reader in
    // another process.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(header->magic, layout::magic, sizeof layout::magic);
  }
  std::vector<ObjectArena*> arena_ptrs;
  for (unsigned c = 0; c < config.cores; ++c) {
    Result<std::unique_ptr<ObjectArena>> arena = Error(EINVAL, "");
    if (attaching) {
      arena = ObjectArena::attach(c, store->classes_, max_spans, store->budget_, fds[1 + c]);
    } else {
      arena = ObjectArena::create(c, store->classes_, max_spans, store->budget_, config.memory);
    }
    if (!arena) {
      return std::move(arena).error();
    }
    store->arenas_.push_back(std::move(arena).value());
    arena_ptrs.push_back(store->arenas_.back().get());
    Result<std::unique_ptr<compress::Codec>> codec = compress::make_codec(config.codec);
    if (!codec) {
      return std::move(codec).error();
    }
    auto state = std::make_unique<CoreState>();
    state->codec = std::move(codec).value();
    if (config.recompress) {
      Result<std::unique_ptr<compress::Codec>> secondary = compress::make_codec(*config.recompress);
      if (!secondary) {
        return std::move(secondary).error();
      }
      state->secondary = std::move(secondary).value();
    }
    if (config.backing_blocks != 0) {
      state->batch_data.reset(
          static_cast<std::byte*>(std::aligned_alloc(page_size, writeback_slots * config.writeback_batch * page_size)));
      state->block.reset(static_cast<std::byte*>(std::aligned_alloc(page_size, page_size)));
      if (!state->batch_data || !state->block) {
        throw std::bad_alloc();
      }
    }
    if (config.staging_pages != 0) {
      state->staged_index = std::make_unique<std::uint64_t[]>(config.staging_pages);
    }
    store->cores_.push_back(std::move(state));
  }
  store->remote_frees_ = std::make_unique<RemoteFrees>(arena_ptrs, config.remote_free_ring_capacity);
  if (config.backing_blocks != 0) {
    store->slots_ = std::make_unique<BackingSlots>(config.backing_blocks, config.cores);
    if (Result<void> tier = store->init_backing(attaching); !tier) {
      return std::move(tier).error();
    }
  }
  return store;
}

PageStore::PageStore(const PageStoreConfig& config, SizeClassTable classes, runtime::MemoryRegion table)
    : config_(config),
      page_count_(config.size_bytes / page_size),
      skip_incompressible_(config.skip_incompressible.value_or(config.codec.algorithm == compress::Algorithm::zstd)),
      classes_(std::move(classes)),
      budget_(config.mem_limit_bytes / page_size),
      table_(std::move(table)),
      entries_(reinterpret_cast<PageEntry*>(table_.data() + layout::entries_offset)),
      journals_(table_.data() + layout::journals_offset) {}

std::vector<int> PageStore::memory_fds() const {
  std::vector<int> fds;
  if (table_.kind() != runtime::MemoryKind::shared) {
    return fds;
  }
  fds.push_back(table_.fd());
  for (const auto& arena : arenas_) {
    fds.push_back(arena->memory().fd());
  }
  return fds;
}

void PageStore::seed_page_counters(std::int64_t stored, std::int64_t same, std::int64_t huge, std::int64_t compr,
                                   std::int64_t written_back) noexcept {
  // Page statistics are a function of the entries; all of them go to core
  // 0's counters (only sums are ever read).
  CoreCounters& counters = cores_[0]->counters;
  CoreCounters::add(counters.pages_stored, stored);
  CoreCounters::add(counters.same_pages, same);
  CoreCounters::add(counters.huge_pages, huge);
  CoreCounters::add(counters.compr_bytes, compr);
  CoreCounters::add(counters.written_back, written_back);
}

namespace {

// Tests: dies here when a store_publish fault is armed.
inline void crash_point() noexcept {
  if (runtime::fault::fail(runtime::fault::Site::store_publish)) {
    ::raise(SIGKILL);
  }
}

}  // namespace

void PageStore::publish(unsigned core, std::uint64_t index, PageEntry& e, std::uint64_t old_value, std::uint64_t word,
                        std::uint64_t value) noexcept {
  // See layout::Journal for the protocol and why each order is needed. On
  // x86 every release store here is a plain mov.
  layout::Journal& j = static_cast<layout::Journal*>(journals_)[core];
  j.old_value.store(old_value, std::memory_order_relaxed);
  // Release: the old value is in memory before the journal names the entry.
  j.entry_plus_one.store(index + 1, std::memory_order_release);
  e.set_value(value);
  crash_point();
  e.unlock(word);
  crash_point();
  // Release: the unlock is in memory before the journal stops naming the
  // entry (otherwise a crash could leave the entry locked with the new
  // value and no journal to undo it).
  j.entry_plus_one.store(0, std::memory_order_release);
}

// Members are destroyed in reverse order: cores, rings, then arenas (which
// unmap all object memory at once, so nothing needs freeing one by one).
PageStore::~PageStore() = default;

bool PageStore::in_range(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept {
  if (core >= cores_.size()) {
    // Relaxed: a diagnostic count, guarding nothing.
    bad_core_calls_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (offset > size_bytes() || length > size_bytes() - offset) {
    CoreCounters::add(cores_[core]->counters.invalid_io, 1);
    return false;
  }
  return true;
}

int PageStore::write(unsigned core, std::uint64_t offset, std::span<const std::byte> data) noexcept {
  const int rc = try_write(core, offset, data);
  if (rc == -ENOSPC) {
    count_failed_write(core);
  }
  return rc;
}

void PageStore::count_failed_write(unsigned core) noexcept {
  if (core < cores_.size()) {
    CoreCounters::add(cores_[core]->counters.failed_writes, 1);
  }
}

int PageStore::try_write(unsigned core, std::uint64_t offset, std::span<const std::byte> data) noexcept {
  if (!in_range(core, offset, data.size())) {
    return -EIO;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / page_size;
    const auto in_page = static_cast<std::uint32_t>(pos % page_size);
    const std::size_t n = std::min<std::size_t>(page_size - in_page, data.size() - done);
    const int rc = n == page_size ? write_whole_page(core, index, ConstPageSpan(data.data() + done, page_size))
                                  : write_part(core, index, in_page, data.subspan(done, n));
    if (rc != 0) {
      if (rc != -ENOSPC) {
        CoreCounters::add(cores_[core]->counters.failed_writes, 1);
      }
      return rc;
    }
    done += n;
  }
  return 0;
}

int PageStore::prepare(unsigned core, ConstPageSpan page, Prepared& out) noexcept {
  CoreState& cs = *cores_[core];
  std::uint64_t fill;
  if (compress::is_same_filled(page, fill)) {
    out = Prepared{entry_bits::same, fill};
    return 0;
  }
  // A destination one byte short of the threshold: the codec gives up (0)
  // as soon as the result could not be stored compressed.
  std::size_t length = 0;
  compress::Codec* codec = cs.codec.get();
  bool strong = false;
  if (config_.entropy_routing) {
    // One estimate (~0.5 us) picks the codec, or none for pages that
    // would not compress (docs/storage.md, "Entropy routing").
    const double entropy = compress::estimate_entropy(page);
    if (entropy < config_.entropy_routing->high) {
      if (entropy >= config_.entropy_routing->low) {
        codec = cs.secondary.get();
        strong = true;
      }
      length = codec->compress(page, std::span<std::byte>(cs.compressed, config_.huge_threshold - 1));
    }
  } else if (!skip_incompressible_ || compress::estimate_entropy(page) <= compress::incompressible_entropy) {
    length = cs.codec->compress(page, std::span<std::byte>(cs.compressed, config_.huge_threshold - 1));
  }
  bool is_huge = length == 0;
  auto size = static_cast<std::uint32_t>(is_huge ? page_size : length);
  // Objects other cores released go back into this arena before it grows.
  remote_frees_->receive(core);
  Handle handle = arenas_[core]->allocate(size);
  // At the limit: first take back what this core holds without using it,
  // for as long as that gives anything back. Off the common path (it may
  // call madvise); the room other cores hold is their callers' to reclaim.
  while (handle == null_handle && reclaim(core) != 0) {
    handle = arenas_[core]->allocate(size);
  }
  if (handle == null_handle && !is_huge) {
    // The object's class needed a new span, which may be several pages: a
    // page stored as it is needs one. Without this, the last pages below
    // the limit could never be used by compressible data, and staged pages
    // that fill the limit could never be installed (install_staged).
    handle = arenas_[core]->allocate(page_size);
    if (handle != null_handle) {
      is_huge = true;
      size = page_size;
      strong = false;
    }
  }
  if (handle == null_handle) {
    return -ENOSPC;
  }
  std::memcpy(arenas_[core]->address(handle), is_huge ? page.data() : cs.compressed, size);
  // A page the strong codec had its go at is marked as recompressed, so
  // that recompression passes it by.
  out = Prepared{
      entry_bits::object_word(size, codec->spec().algorithm, is_huge) | (strong ? entry_bits::recompressed : 0),
      handle};
  return 0;
}

int PageStore::write_whole_page(unsigned core, std::uint64_t index, ConstPageSpan page) noexcept {
  // Compress and copy outside the lock; only the swap is under it.
  Prepared p;
  if (const int rc = prepare(core, page, p); rc != 0) {
    return rc;
  }
  PageEntry& e = entries_[index];
  const std::uint64_t old_word = e.lock(core);
  const std::uint64_t old_value = e.value;
  publish(core, index, e, old_value, entry_bits::accessed(p.word, clock()), p.value);
  account(core, old_word, -1);
  account(core, p.word, +1);
  release(core, old_word, old_value);
  return 0;
}

int PageStore::write_part(unsigned core, std::uint64_t index, std::uint32_t in_page, std::span<const std::byte> data,
                          bool zeroing) noexcept {
  CoreState& cs = *cores_[core];
  PageEntry& e = entries_[index];
  // The whole read-modify-write holds the lock, so concurrent partial
  // writes to different parts of one page both land.
  const std::uint64_t old_word = e.lock(core);
  if (zeroing && !(old_word & entry_bits::present)) {
    // Zeroing part of an empty page: it already reads as zeros; storing
    // a zero page would only count a page that holds nothing.
    e.unlock(old_word);
    return 0;
  }
  const std::uint64_t old_value = e.value;
  if (const int rc = load_locked(core, old_word, old_value, PageSpan(cs.page, page_size)); rc != 0) {
    e.unlock(old_word);
    return rc;
  }
  std::memcpy(cs.page + in_page, data.data(), data.size());
  Prepared p;
  if (const int rc = prepare(core, ConstPageSpan(cs.page, page_size), p); rc != 0) {
    e.unlock(old_word);
    return rc;
  }
  publish(core, index, e, old_value, entry_bits::accessed(p.word, clock()), p.value);
  account(core, old_word, -1);
  account(core, p.word, +1);
  release(core, old_word, old_value);
  return 0;
}

int PageStore::decode_object(unsigned core, std::uint64_t word, const std::byte* src, PageSpan out) noexcept {
  if (word & entry_bits::huge) {
    std::memcpy(out.data(), src, page_size);
    return 0;
  }
  // The primary codec made it, or the secondary (recompression); an
  // algorithm this store has no codec for is corrupt, never guessed at.
  CoreState& cs = *cores_[core];
  compress::Codec* codec = cs.codec.get();
  if (entry_bits::algorithm_of(word) != codec->spec().algorithm) {
    codec =
        cs.secondary && entry_bits::algorithm_of(word) == cs.secondary->spec().algorithm ? cs.secondary.get() : nullptr;
  }
  if (codec == nullptr || !codec->decompress(std::span<const std::byte>(src, entry_bits::size_of(word)), out)) {
    return -EIO;
  }
  return 0;
}

int PageStore::load_locked(unsigned core, std::uint64_t word, std::uint64_t value, PageSpan out) noexcept {
  if (word & entry_bits::object) {
    return decode_object(core, word, arenas_[handle_core(value)]->address(value), out);
  }
  if (word & entry_bits::written_back) {
    return load_written_back(core, word, value, out);
  }
  if (word & entry_bits::same) {
    compress::fill_page(out, value);
    return 0;
  }
  if (word & entry_bits::staged) {
    // Under the entry's lock, which keeps the slot: its installer must
    // take the lock to let go of it.
    std::memcpy(out.data(), staging_slot(StagedRef::decode(value)), page_size);
    return 0;
  }
  std::memset(out.data(), 0, page_size);
  return 0;
}

int PageStore::read(unsigned core, std::uint64_t offset, std::span<std::byte> out) noexcept {
  if (!in_range(core, offset, out.size())) {
    return -EIO;
  }
  CoreState& cs = *cores_[core];
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / page_size;
    const auto in_page = static_cast<std::size_t>(pos % page_size);
    const std::size_t n = std::min<std::size_t>(page_size - in_page, out.size() - done);
    int rc;
    if (n == page_size) {
      rc = read_page(core, index, PageSpan(out.data() + done, page_size));
    } else {
      rc = read_page(core, index, PageSpan(cs.page, page_size));
      std::memcpy(out.data() + done, cs.page + in_page, n);
    }
    if (rc != 0) {
      CoreCounters::add(cs.counters.failed_reads, 1);
      return rc;
    }
    done += n;
  }
  return 0;
}

int PageStore::read_page(unsigned core, std::uint64_t index, PageSpan out) noexcept {
  PageEntry& e = entries_[index];
  const std::uint64_t word = e.lock(core);
  const std::uint64_t value = e.value;
  if (!(word & (entry_bits::object | entry_bits::written_back | entry_bits::staged))) {
    // Nothing to keep alive: fill outside the lock.
    e.unlock(word);
    return load_locked(core, word, value, out);
  }
  const int rc = load_locked(core, word, value, out);
  if (rc == 0 && (word & entry_bits::written_back) && slots_ && readmit_due(word)) {
    // The object read back is still in this core's block buffer
    // (load_written_back), and the lock is still held.
    readmit_locked(core, index, e, word, value,
                   cores_[core]->block.get() + BackingLocation::decode(value).sector * std::uint64_t{512});
    return 0;
  }
  // The access stamps the entry (for idle and aged writeback); the pending
  // mark of a writeback stays: the page did not change. A written-back
  // page is marked read from the tier (for re-admission at its next read).
  e.unlock(entry_bits::accessed(word, clock()) | ((word & entry_bits::written_back) ? entry_bits::tier_read : 0));
  return rc;
}

void PageStore::free_page(unsigned core, std::uint64_t index) noexcept {
  PageEntry& e = entries_[index];
  const std::uint64_t old_word = e.lock(core);
  const std::uint64_t old_value = e.value;
  publish(core, index, e, old_value, 0, 0);
  account(core, old_word, -1);
  release(core, old_word, old_value);
  CoreCounters::add(cores_[core]->counters.notify_free, 1);
}

int PageStore::zero_range(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept {
  if (!in_range(core, offset, length)) {
    return -EIO;
  }
  static constexpr std::byte zeros[page_size] = {};
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / page_size;
    const auto in_page = static_cast<std::uint32_t>(pos % page_size);
    const std::uint64_t n = std::min<std::uint64_t>(page_size - in_page, length - done);
    if (n == page_size) {
      free_page(core, index);
    } else if (const int rc = write_part(core, index, in_page, std::span<const std::byte>(zeros, n), true); rc != 0) {
      CoreCounters::add(cores_[core]->counters.failed_writes, 1);
      return rc;
    }
    done += n;
  }
  return 0;
}

int PageStore::discard(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept {
  return zero_range(core, offset, length);
}

int PageStore::write_zeroes(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept {
  return zero_range(core, offset, length);
}

void PageStore::account(unsigned core, std::uint64_t word, std::int64_t sign) noexcept {
  if (!(word & entry_bits::present)) {
    return;
  }
  CoreCounters& c = cores_[core]->counters;
  CoreCounters::add(c.pages_stored, sign);
  if (word & entry_bits::written_back) {
    // As in kernel zram, a written-back page still counts in
    // orig_data_size, but not in compr_data_size or huge_pages.
    CoreCounters::add(c.written_back, sign);
    return;
  }
  if (word & entry_bits::same) {
    CoreCounters::add(c.same_pages, sign);
    return;
  }
  if (word & entry_bits::staged) {
    // No object yet: its 4 KiB are counted by the budget, not compr_bytes.
    CoreCounters::add(c.staged_pages, sign);
    return;
  }
  CoreCounters::add(c.compr_bytes, sign * entry_bits::size_of(word));
  if (word & entry_bits::huge) {
    CoreCounters::add(c.huge_pages, sign);
    if (sign > 0) {
      CoreCounters::add(c.huge_pages_since, 1);
    }
  }
}

void PageStore::release(unsigned core, std::uint64_t word, std::uint64_t value) noexcept {
  if ((word & entry_bits::written_back) && slots_) {
    const BackingLocation at = BackingLocation::decode(value);
    slots_->release(at.block, backing_sector_mask(at.sector, entry_bits::size_of(word)));
    return;
  }
  if (!(word & entry_bits::object)) {
    return;
  }
  if (handle_core(value) == core) {
    arenas_[core]->free(value);
  } else {
    remote_frees_->send(core, value);
  }
}

bool PageStore::drain_remote_frees(unsigned core) noexcept {
  if (core >= cores_.size()) {
    return true;
  }
  remote_frees_->flush_overflow(core);
  remote_frees_->receive(core);
  ObjectArena& arena = *arenas_[core];
  const std::uint64_t released = arena.release_cached_pages(config_.cached_pages_kept, config_.steps.releases);
  // Done when nothing beyond the kept pages is cached, or when nothing
  // could be returned (madvise failed): no point in calling again.
  return released == 0 || arena.stats().cached_pages <= config_.cached_pages_kept;
}

std::uint64_t PageStore::reclaim(unsigned core) noexcept {
  if (core >= cores_.size()) {
    return 0;
  }
  remote_frees_->flush_overflow(core);
  const std::uint64_t freed = remote_frees_->receive(core);
  return freed + arenas_[core]->release_cached_pages(0, config_.steps.releases);
}

bool PageStore::compacting(unsigned core) const noexcept {
  return core < cores_.size() && cores_[core]->compaction != CoreState::Compaction::idle;
}

CompactionStep PageStore::compact_step(unsigned core) {
  CompactionStep step;
  if (core >= cores_.size()) {
    step.done = true;
    return step;
  }
  using Phase = CoreState::Compaction;
  CoreState& cs = *cores_[core];
  ObjectArena& arena = *arenas_[core];
  const StepLimits& limits = config_.steps;
  switch (cs.compaction) {
    case Phase::idle:
      // Objects freed elsewhere go back first, so that they are not moved.
      remote_frees_->flush_overflow(core);
      remote_frees_->receive(core);
      arena.start_compaction();  // clears its tables: a step of its own
      cs.compaction = Phase::selecting;
      break;
    case Phase::selecting:
      if (arena.select_step(limits.spans, step.spans_scanned)) {
        cs.next_entry = 0;
        cs.compaction = Phase::moving;
      }
      break;
    case Phase::moving: {
      // Only this core creates handles into this arena, never into an
      // evacuating span, and it installed each one itself, so a relaxed
      // peek (coherence with our own earlier stores) never misses one of
      // ours; others' changes only kill our objects, which the locked
      // re-check sees. Handles stay in their entries, so once every
      // selected span is empty no entry can still refer to one.
      std::uint64_t i = cs.next_entry;
      const std::uint64_t end = page_count_ - i > limits.entries ? i + limits.entries : page_count_;
      for (; i < end && step.objects_moved < limits.moves && arena.evacuating_spans_holding_objects() != 0; ++i) {
        PageEntry& e = entries_[i];
        if (!(e.peek() & entry_bits::object)) {
          continue;
        }
        const std::uint64_t word = e.lock(core);
        const Handle h = e.value;
        Handle moved = null_handle;
        if ((word & entry_bits::object) && handle_core(h) == core && arena.is_evacuating(h)) {
          moved = arena.copy_for_move(h);
        }
        if (moved == null_handle) {
          e.unlock(word);
          continue;
        }
        // The copy is published before the original is freed: free()
        // writes a list link into the object, which a crash must never
        // leave an entry pointing at.
        publish(core, i, e, h, word, moved);
        arena.free(h);
        ++step.objects_moved;
      }
      step.entries_visited = i - cs.next_entry;
      cs.next_entry = i;
      if (i == page_count_ || arena.evacuating_spans_holding_objects() == 0) {
        cs.compaction = Phase::finishing;
      }
      break;
    }
    case Phase::finishing:
      if (arena.finish_step(limits.spans, step.spans_scanned)) {
        cs.freed_pages = arena.take_compaction_freed();
        // Return every page cached now, not only those of the emptied
        // spans: compaction is the caller's request to give memory back.
        cs.pages_to_release = arena.stats().cached_pages;
        cs.compaction = Phase::releasing;
      }
      break;
    case Phase::releasing: {
      const std::uint64_t released = cs.pages_to_release == 0 ? 0 : arena.release_cached_pages(0, limits.releases);
      step.pages_released = released;
      cs.pages_to_release -= std::min(released, cs.pages_to_release);
      // Over when the pages cached at the end are returned, or when none
      // could be (nothing cached any more, or madvise failed).
      if (cs.pages_to_release == 0 || released == 0) {
        CoreCounters::add(cs.counters.pages_compacted, static_cast<std::int64_t>(cs.freed_pages));
        step.done = true;
        step.pages_freed = cs.freed_pages;
        cs.freed_pages = 0;
        cs.compaction = Phase::idle;
      }
      break;
    }
  }
  return step;
}

std::uint64_t PageStore::compact(unsigned core) {
  for (;;) {
    if (const CompactionStep step = compact_step(core); step.done) {
      // The steps return the pages cached when the compaction ended; a
      // compaction that was under way may have ended long before this
      // call. Done in one go, it returns every cached page, as asked.
      if (core < arenas_.size()) {
        arenas_[core]->release_cached_pages(0);
      }
      return step.pages_freed;
    }
  }
}

std::uint64_t PageStore::maybe_compact(unsigned core, const CompactionPolicy& policy) {
  if (!compacting(core) && !policy.should_compact(allocator_stats())) {
    return 0;
  }
  return compact(core);
}

bool PageStore::maybe_compact_step(unsigned core, const CompactionPolicy& policy) {
  if (core >= cores_.size() || (!compacting(core) && !policy.should_compact(allocator_stats()))) {
    return false;
  }
  return !compact_step(core).done;
}

MmStat PageStore::mm_stat() const noexcept {
  MmStat s;
  std::int64_t stored = 0, compr = 0, same = 0, huge = 0, since = 0, compacted = 0, staged = 0;
  for (const auto& cs : cores_) {
    const CoreCounters& c = cs->counters;
    stored += c.pages_stored.load(std::memory_order_relaxed);
    compr += c.compr_bytes.load(std::memory_order_relaxed);
    same += c.same_pages.load(std::memory_order_relaxed);
    huge += c.huge_pages.load(std::memory_order_relaxed);
    since += c.huge_pages_since.load(std::memory_order_relaxed);
    compacted += c.pages_compacted.load(std::memory_order_relaxed);
    staged += c.staged_pages.load(std::memory_order_relaxed);
  }
  // A sum read while cores run may be transiently negative; clamp.
  auto u = [](std::int64_t v) { return v < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(v); };
  s.orig_data_size = u(stored) * page_size;
  s.compr_data_size = u(compr);
  s.mem_used_total = budget_.used_pages() * page_size;
  s.mem_limit = budget_.limit_pages() * page_size;
  s.mem_used_max = budget_.max_used_pages() * page_size;
  s.same_pages = u(same);
  s.pages_compacted = u(compacted);
  s.huge_pages = u(huge);
  s.huge_pages_since = u(since);
  s.staged_pages = u(staged);
  return s;
}

IoStat PageStore::io_stat() const noexcept {
  IoStat s;
  for (const auto& cs : cores_) {
    const CoreCounters& c = cs->counters;
    s.failed_reads += static_cast<std::uint64_t>(c.failed_reads.load(std::memory_order_relaxed));
    s.failed_writes += static_cast<std::uint64_t>(c.failed_writes.load(std::memory_order_relaxed));
    s.invalid_io += static_cast<std::uint64_t>(c.invalid_io.load(std::memory_order_relaxed));
    s.notify_free += static_cast<std::uint64_t>(c.notify_free.load(std::memory_order_relaxed));
  }
  s.invalid_io += bad_core_calls_.load(std::memory_order_relaxed);
  return s;
}

AllocatorStats PageStore::allocator_stats() const noexcept {
  AllocatorStats s;
  for (unsigned c = 0; c < arenas_.size(); ++c) {
    const ArenaStats a = arenas_[c]->stats();
    s.live_objects += a.live_objects;
    s.object_bytes += a.object_bytes;
    s.spans += a.spans;
    s.span_pages += a.span_pages;
    s.cached_pages += a.cached_pages;
    s.pending_remote_frees += remote_frees_->pending_towards(c);
  }
  return s;
}

}  // namespace coblk::storage
