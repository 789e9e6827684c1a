// ZramTarget's backing tier: reading written-back pages and writing
// batches back through its TierBackend (ublk/tier_backend.h: a file, a
// block device or an NBD export), the automatic policy and the commands of
// `coblk writeback` / `coblk idle`. See docs/storage.md, "Backing tier".

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/zram_target.h"

namespace coblk::ublk {

namespace {

constexpr std::uint64_t block_size = 4096;

// Seconds of CLOCK_BOOTTIME: never goes back, also across a restart of
// the server (recovery keeps the pages' stamps meaningful).
std::uint32_t boot_seconds() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint32_t>(ts.tv_sec);
}

// Takes up to `want` pages from `pool`, a count that several queues take
// from (the --writeback-limit budget, a command's --max-pages); null or
// UINT64_MAX means no limit. Returns the pages taken (0: the pool is
// spent). Relaxed: a count that guards no memory; the compare-and-swap
// alone keeps queues taking at once from overspending it.
std::uint32_t take_pages(std::atomic<std::uint64_t>* pool, std::uint32_t want) noexcept {
  if (pool == nullptr) {
    return want;
  }
  std::uint64_t have = pool->load(std::memory_order_relaxed);
  std::uint32_t got = 0;
  do {
    if (have == UINT64_MAX) {
      return want;
    }
    got = static_cast<std::uint32_t>(std::min<std::uint64_t>(have, want));
    if (got == 0) {
      return 0;
    }
  } while (!pool->compare_exchange_weak(have, have - got, std::memory_order_relaxed));
  return got;
}

// Returns to `pool` pages take_pages took but the work did not use.
void give_back_pages(std::atomic<std::uint64_t>* pool, std::uint64_t unused) noexcept {
  if (pool != nullptr && unused != 0 && pool->load(std::memory_order_relaxed) != UINT64_MAX) {
    pool->fetch_add(unused, std::memory_order_relaxed);
  }
}

}  // namespace

bool ZramTarget::tier_usable() const noexcept {
  // Relaxed: flags and a budget that guard no memory.
  return tier_ && !tier_failed_.load(std::memory_order_relaxed) && !tier_->failed() &&
         writeback_budget_.load(std::memory_order_relaxed) != 0;
}

TierState ZramTarget::tier_state() const noexcept {
  if (!tier_) return TierState::none;
  if (tier_failed_.load(std::memory_order_relaxed) || tier_->failed()) return TierState::failed;
  if (writeback_budget_.load(std::memory_order_relaxed) == 0) return TierState::limit_spent;
  return TierState::active;
}

runtime::Task<int> ZramTarget::read_through_tier(const Request& r) {
  // Up to 16 pages at a time, so the misses fit on this frame.
  constexpr std::size_t chunk_pages = 16;
  storage::BackingRead misses[chunk_pages];
  int result = 0;
  std::uint64_t done = 0;
  while (done < r.length) {
    const std::uint64_t pos = r.offset + done;
    const std::uint64_t n = std::min<std::uint64_t>(r.length - done, chunk_pages * block_size - pos % block_size);
    std::size_t missed = 0;
    if (const int rc = store_->read_resident(r.queue, pos, std::span<std::byte>(r.data + done, n), misses, missed);
        rc != 0) {
      co_return rc;
    }
    // Each written-back page is read straight into its place in the
    // request's buffer (page-aligned: the queue's buffers are mmapped),
    // then decoded there. Every miss is finished, failed or not: that
    // unpins its block.
    for (std::size_t k = 0; k < missed; ++k) {
      const storage::BackingRead& m = misses[k];
      const int got = co_await tier_->read(r.queue, m.where.block * block_size, m.out, block_size);
      const bool whole = got == static_cast<int>(block_size);
      // A tier failed for good (an NBD server gone) said so once already.
      if (!whole && result == 0 && !tier_->failed()) {
        std::fprintf(stderr, "coblk: zram: reading backing block %llu failed (%s): the read gets an I/O error\n",
                     static_cast<unsigned long long>(m.where.block), got < 0 ? std::strerror(-got) : "short read");
      }
      const int rc = store_->finish_backing_read(
          r.queue, m, whole ? std::span<const std::byte>(m.out, block_size) : std::span<const std::byte>());
      if (rc == -EBADMSG && result == 0) {
        std::fprintf(stderr,
                     "coblk: zram: backing block %llu does not hold the bytes written to it (checksum mismatch): "
                     "the read gets an I/O error\n",
                     static_cast<unsigned long long>(m.where.block));
      }
      if (rc != 0) {
        result = -EIO;
      }
    }
    done += n;
  }
  co_return result < 0 ? result : static_cast<int>(r.length);
}

runtime::Task<ZramTarget::BatchOutcome> ZramTarget::write_back_batch(std::uint16_t queue, storage::WritebackKind kind,
                                                                     std::uint32_t min_age, std::uint32_t max_pages) {
  BatchOutcome outcome;
  if (!tier_usable() || max_pages == 0) {
    outcome.visited = 1;  // nothing to do is not "busy"
    co_return outcome;
  }
  // Take the pages from the budget first (given back below if unused),
  // so that queues writing back at once never overspend it.
  const std::uint32_t reserved = take_pages(&writeback_budget_, max_pages);
  if (reserved == 0) {
    outcome.visited = 1;
    co_return outcome;
  }
  const storage::WritebackBatch batch = store_->writeback_prepare(queue, kind, min_age, reserved);
  outcome.visited = batch.entries_visited;
  bool written = true;
  // Runs of consecutive blocks go out as one write each.
  for (std::uint32_t k = 0; k < batch.block_count && written;) {
    std::uint32_t run = 1;
    while (k + run < batch.block_count && batch.blocks[k + run] == batch.blocks[k] + run) {
      ++run;
    }
    const unsigned bytes = run * static_cast<unsigned>(block_size);
    const int n = co_await tier_->write(queue, batch.blocks[k] * block_size, batch.data + k * block_size, bytes);
    if (n != static_cast<int>(bytes)) {
      written = false;
      std::fprintf(stderr,
                   "coblk: zram: writing back to backing block %llu failed (%s): writeback stopped; "
                   "pages in RAM are intact\n",
                   static_cast<unsigned long long>(batch.blocks[k]), n < 0 ? std::strerror(-n) : "short write");
    }
    k += run;
  }
  outcome.moved = batch.pages == 0 ? 0 : store_->writeback_commit(queue, batch, written);
  if (!written) {
    tier_failed_.store(true, std::memory_order_relaxed);
  }
  give_back_pages(&writeback_budget_, reserved - outcome.moved);
  co_return outcome;
}

template <typename KeepGoing>
runtime::Task<void> ZramTarget::sweep_lane(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                           std::atomic<std::uint64_t>* left, const KeepGoing& keep_going,
                                           SweepShared& shared) {
  // The lanes run on this queue's reactor only: `shared` needs no atomics.
  int busy = 0;
  while (!shared.spent && shared.visited < shared.pages && tier_usable() && keep_going()) {
    // Up to a batch of the pages the command allows. A batch of compressed
    // objects holds more pages than it fills blocks, so without a
    // --writeback-limit a lane asks for as many as a batch can hold. Under
    // a limit it takes writeback_batch pages at a time, as before: what a
    // batch holds taken from the budget is out of it until the batch ends,
    // and a budget reading 0 meanwhile makes a delayed write fail.
    // Relaxed: a count that guards no memory.
    const std::uint32_t ask = writeback_budget_.load(std::memory_order_relaxed) == UINT64_MAX
                                  ? storage::writeback_max_pages
                                  : config_.writeback_batch;
    const std::uint32_t want = take_pages(left, ask);
    if (want == 0) {
      if (shared.holding == 0) {
        shared.spent = true;
        break;
      }
      // The other lane holds the rest of `*left`; what its batch does not
      // use comes back when it ends.
      co_await runtime::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    ++shared.holding;
    const BatchOutcome out = co_await write_back_batch(queue, kind, min_age, want);
    --shared.holding;
    give_back_pages(left, want - out.moved);
    shared.moved += out.moved;
    shared.visited += out.visited;
    if (out.visited == 0) {
      // Every batch slot of this core is out (the other lane's and a
      // delayed write's): let one finish.
      if (++busy > 1000) break;
      co_await runtime::sleep_for(std::chrono::milliseconds(1));
    } else {
      co_await runtime::maybe_yield();
    }
  }
}

template <typename KeepGoing>
runtime::Task<std::uint64_t> ZramTarget::sweep(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                               std::atomic<std::uint64_t>* left, KeepGoing keep_going) {
  // Two lanes, each with at most one batch out: while one lane's write is
  // in flight, the other walks the table and copies its next batch, so the
  // CPU work overlaps the I/O (docs/storage.md, "Backing tier"). They
  // share the core's cursor, so together they still make one sweep.
  SweepShared shared;
  shared.pages = config_.size_bytes / block_size;
  std::vector<runtime::Task<void>> lanes;
  lanes.reserve(storage::writeback_slots);
  for (unsigned k = 0; k < storage::writeback_slots; ++k) {
    lanes.push_back(sweep_lane(queue, kind, min_age, left, keep_going, shared));
  }
  co_await runtime::when_all(std::move(lanes));
  co_return shared.moved;
}

runtime::Task<int> ZramTarget::write_by_writing_back(std::uint16_t queue, std::uint64_t offset,
                                                     std::span<const std::byte> data) {
  // Raw pages first, then any page from the writeback cursor on; after a
  // few batches that did not make room (objects freed here and there
  // leave their spans in use), compact this core's arena.
  //
  // Bounded in time, not in rounds: the room this write needs may be held
  // by another queue's pages, which only that core's maintenance writes
  // back, or by a batch of this core still in flight; on a loaded machine
  // either can take longer than any fixed number of 1 ms naps (64 of them
  // failed a few writes in 20 runs of zram_tier_race_test at load 10).
  // While the tier is usable, room can still be made, so the write waits;
  // only after max_write_delay_s does it fail as at the limit without a
  // tier (the kernel's hung-task report comes at 120 s).
  constexpr std::uint32_t max_write_delay_s = 20;
  const std::uint32_t give_up_at = boot_seconds() + max_write_delay_s;
  int rc = -ENOSPC;
  for (int round = 0; rc == -ENOSPC && tier_usable() && (round < 64 || boot_seconds() < give_up_at); ++round) {
    BatchOutcome out = co_await write_back_batch(queue, storage::WritebackKind::huge, 0, config_.writeback_batch);
    if (out.moved == 0) {
      out = co_await write_back_batch(queue, storage::WritebackKind::aged, 0, config_.writeback_batch);
    }
    if (out.moved == 0 || round % 4 == 3) {
      while (!store_->compact_step(queue).done) {
        co_await runtime::maybe_yield();
      }
      store_->reclaim(queue);
      if (out.moved == 0) {
        // A batch of this core in flight, or nothing left here to write.
        co_await runtime::sleep_for(std::chrono::milliseconds(1));
      }
    }
    rc = store_->try_write(queue, offset, data);
  }
  if (rc == -ENOSPC) {
    store_->count_failed_write(queue);
  }
  co_return rc;
}

runtime::Task<std::uint64_t> ZramTarget::recompress_sweep(std::uint16_t queue, storage::WritebackKind kind,
                                                          std::uint32_t min_age, std::atomic<std::uint64_t>* left) {
  // A few pages per step (each is a decompress and a strong compress
  // under its entry's lock), yielding between steps.
  constexpr std::uint32_t pages_per_step = 4;
  const std::uint64_t pages = config_.size_bytes / block_size;
  std::uint64_t recompressed = 0;
  // One walk over the table at most.
  for (std::uint64_t visited = 0; visited < pages;) {
    const std::uint32_t want = take_pages(left, pages_per_step);
    if (want == 0) break;
    const storage::RecompressStep step = store_->recompress_step(queue, kind, min_age, want);
    give_back_pages(left, want - step.tried);
    recompressed += step.recompressed;
    visited += step.entries_visited;
    if (step.no_memory) break;
    co_await runtime::maybe_yield();
  }
  co_return recompressed;
}

runtime::Task<void> ZramTarget::write_back_by_policy(std::uint16_t queue) {
  store_->set_clock(boot_seconds());
  if (manual_generation_.load(std::memory_order_acquire) != manual_seen_[queue]) {
    co_await run_manual(queue);
  }
  const std::uint64_t limit = store_->mm_stat().mem_limit;
  const bool pressure = limit != 0 && store_->mm_stat().mem_used_total >= limit / 100 * config_.writeback_high_percent;
  if (config_.recompress) {
    // Raw pages and pages marked idle, every tick (pages tried once are
    // passed by); under pressure, any page, before writing pages back.
    std::uint64_t recompressed = co_await recompress_sweep(queue, storage::WritebackKind::huge, 0, nullptr);
    recompressed += co_await recompress_sweep(queue, storage::WritebackKind::idle, 0, nullptr);
    if (pressure) {
      recompressed += co_await recompress_sweep(queue, storage::WritebackKind::aged, 0, nullptr);
    }
    if (recompressed != 0) {
      while (!store_->compact_step(queue).done) {
        co_await runtime::maybe_yield();
      }
    }
  }
  if (!tier_usable()) {
    co_return;
  }
  std::uint64_t moved = 0;
  if (pressure) {
    const std::uint64_t low = limit / 100 * config_.writeback_low_percent;
    auto above_low = [this, low] { return store_->mm_stat().compr_data_size > low; };
    // Raw pages first, then the least recently used: one sweep at each age
    // threshold, halving from --writeback-age (or 64 s) down to 0.
    moved += co_await sweep(queue, storage::WritebackKind::huge, 0, nullptr, above_low);
    std::uint32_t age =
        config_.writeback_age.count() > 0 ? static_cast<std::uint32_t>(config_.writeback_age.count()) : 64;
    for (;;) {
      if (!above_low()) break;
      moved += co_await sweep(queue, storage::WritebackKind::aged, age, nullptr, above_low);
      if (age == 0) break;
      age /= 2;
    }
  }
  if (config_.writeback_age.count() > 0) {
    moved += co_await sweep(queue, storage::WritebackKind::aged,
                            static_cast<std::uint32_t>(config_.writeback_age.count()), nullptr, [] { return true; });
  }
  if (moved != 0) {
    // Written-back objects leave holes in their spans: compact them away
    // so that mem_used_total falls too.
    while (!store_->compact_step(queue).done) {
      co_await runtime::maybe_yield();
    }
  }
}

runtime::Task<void> ZramTarget::run_manual(std::uint16_t queue) {
  manual_seen_[queue] = manual_generation_.load(std::memory_order_acquire);
  const auto kind = static_cast<storage::WritebackKind>(manual_kind_.load(std::memory_order_relaxed));
  std::uint64_t moved = 0;
  if (manual_recompress_.load(std::memory_order_relaxed) != 0) {
    moved = co_await recompress_sweep(queue, kind, 0, &manual_left_);
  } else {
    moved = co_await sweep(queue, kind, 0, &manual_left_, [] { return true; });
  }
  manual_moved_.fetch_add(moved, std::memory_order_relaxed);
  // Release: this queue's count is in before queue 0 sees it finished.
  manual_pending_.fetch_sub(1, std::memory_order_release);
}

runtime::Task<void> ZramTarget::run_command(const ZramCommand& command) {
  ZramCommandResult result;
  store_->set_clock(boot_seconds());
  if (command.kind == ZramCommand::Kind::mark_idle) {
    std::uint64_t next = 0;
    const std::uint64_t pages = config_.size_bytes / block_size;
    while (next < pages) {
      result.count += store_->mark_idle_step(0, static_cast<std::uint32_t>(command.arg), next);
      co_await runtime::maybe_yield();
    }
  } else if ((command.kind != ZramCommand::Kind::writeback && command.kind != ZramCommand::Kind::recompress) ||
             command.arg > 2) {
    result.error = EINVAL;
  } else if (command.kind == ZramCommand::Kind::recompress && !config_.recompress) {
    result.error = ENOPROTOOPT;
  } else if (command.kind == ZramCommand::Kind::writeback && !tier_) {
    result.error = ENODEV;
  } else if (command.kind == ZramCommand::Kind::writeback &&
             (tier_failed_.load(std::memory_order_relaxed) || tier_->failed())) {
    result.error = EIO;
  } else if (command.kind == ZramCommand::Kind::writeback && writeback_budget_.load(std::memory_order_relaxed) == 0) {
    result.error = ENOSPC;
  } else {
    // Every queue writes back the objects of its own arena, on its own
    // core, at its next maintenance tick; this one (queue 0) at once.
    manual_kind_.store(command.arg, std::memory_order_relaxed);
    manual_recompress_.store(command.kind == ZramCommand::Kind::recompress ? 1 : 0, std::memory_order_relaxed);
    manual_left_.store(command.max_pages == 0 ? UINT64_MAX : command.max_pages, std::memory_order_relaxed);
    manual_moved_.store(0, std::memory_order_relaxed);
    manual_pending_.store(store_cores_, std::memory_order_relaxed);
    // Release: the fields above are visible to a queue that sees the new
    // generation.
    manual_generation_.fetch_add(1, std::memory_order_release);
    co_await run_manual(0);
    // Acquire: pairs with each queue's release count-down. The other
    // queues' maintenance tasks run every maintenance_interval.
    for (int waited = 0; manual_pending_.load(std::memory_order_acquire) != 0 && waited < 60000; waited += 5) {
      co_await runtime::sleep_for(std::chrono::milliseconds(5));
    }
    result.count = manual_moved_.load(std::memory_order_relaxed);
    if (manual_pending_.load(std::memory_order_acquire) != 0) {
      result.error = ETIMEDOUT;
    } else if (command.kind == ZramCommand::Kind::writeback && tier_state() == TierState::failed) {
      result.error = EIO;
    }
  }
  publisher_->answer_command(result);
  publisher_->publish(snapshot());
}

}  // namespace coblk::ublk
