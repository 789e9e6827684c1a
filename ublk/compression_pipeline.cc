#include "coblk/ublk/compression_pipeline.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/spawn.h"

namespace coblk::ublk {

namespace {

constexpr std::uint64_t page_size = compress::page_size;

// How long a worker waits before it tries again to install a page the
// memory limit had no room for. The page stays staged and readable
// meanwhile; the room comes back when writeback, compaction or discards
// free some, none of which this worker can hurry.
constexpr std::chrono::milliseconds retry_at_limit{10};

}  // namespace

/// One (queue, worker) lane. Its slots are slots base .. base+count-1 of
/// the queue's staging area. Each slot is in exactly one place: the
/// queue's `free` stack, the to_worker channel, the worker's hands, or the
/// back channel. Each channel has room for twice the lane's slots, so
/// try_send on them never fails: the worker's recv() hands ring slots back
/// to the queue in batches (up to a quarter of the ring late), so a slot
/// the worker already returned may still take room in to_worker while it
/// is sent again; at most a quarter of the ring does, which the second
/// half covers.
struct CompressionPipeline::Lane {
  /// A lane of `count` slots from `base`.
  Lane(std::uint32_t base, std::uint32_t count) : to_worker(2 * count), back(2 * count), free(count) {
    for (std::uint32_t i = 0; i < count; ++i) {
      free[i] = base + i;
    }
    free_count = count;
  }
  runtime::Channel<std::uint32_t> to_worker;  ///< staged slots: queue -> worker
  runtime::Channel<std::uint32_t> back;       ///< compressed (free) slots: worker -> queue
  std::vector<std::uint32_t> free;            ///< the queue's free slots (queue core only)
  std::size_t free_count = 0;                 ///< how many of `free` are valid
};

/// A queue's own state (its core only, except the counter).
struct alignas(runtime::cache_line_size) CompressionPipeline::QueueState {
  unsigned next_lane = 0;                      ///< round-robin cursor over the workers
  std::atomic<std::uint64_t> inline_pages{0};  ///< pages compressed inline (owner writes, relaxed)
};

Result<std::unique_ptr<CompressionPipeline>> CompressionPipeline::create(storage::PageStore& store,
                                                                         const CompressionPipelineConfig& config) {
  if (config.queues == 0 || config.workers == 0 || config.workers > 256) {
    return Error(EINVAL, "compression pipeline: needs 1..256 workers and at least one queue");
  }
  if (config.slots_per_lane == 0 || config.slots_per_lane > 4096) {
    return Error(EINVAL,
                 "compression pipeline: slots per lane must be 1..4096, got " + std::to_string(config.slots_per_lane));
  }
  if (store.staging_pages() != config.workers * config.slots_per_lane ||
      store.cores() < std::max(config.queues, config.workers)) {
    return Error(EINVAL, "compression pipeline: the store needs " +
                             std::to_string(config.workers * config.slots_per_lane) + " staging pages and " +
                             std::to_string(std::max(config.queues, config.workers)) + " cores");
  }
  return std::unique_ptr<CompressionPipeline>(new CompressionPipeline(store, config));
}

CompressionPipeline::CompressionPipeline(storage::PageStore& store, const CompressionPipelineConfig& config)
    : store_(store), config_(config) {
  for (unsigned q = 0; q < config.queues; ++q) {
    queues_.push_back(std::make_unique<QueueState>());
    for (unsigned w = 0; w < config.workers; ++w) {
      lanes_.push_back(std::make_unique<Lane>(w * config.slots_per_lane, config.slots_per_lane));
    }
  }
}

CompressionPipeline::~CompressionPipeline() = default;

CompressionPipeline::Lane& CompressionPipeline::lane(unsigned queue, unsigned worker) noexcept {
  return *lanes_[std::size_t{queue} * config_.workers + worker];
}

std::uint64_t CompressionPipeline::inline_pages() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& q : queues_) {
    sum += q->inline_pages.load(std::memory_order_relaxed);
  }
  return sum;
}

int CompressionPipeline::stage_in(unsigned queue, unsigned worker, std::uint64_t offset,
                                  std::span<const std::byte> page) noexcept {
  Lane& l = lane(queue, worker);
  if (l.free_count == 0) {
    // Take back the slots the worker has finished with.
    l.free_count = l.back.try_recv_batch(std::span<std::uint32_t>(l.free.data(), l.free.size()));
    if (l.free_count == 0) {
      return 0;  // this worker is behind
    }
  }
  const std::uint32_t slot = l.free[--l.free_count];
  const int rc = store_.stage(queue, slot, offset, page);
  if (rc != 0) {
    l.free[l.free_count++] = slot;
    return rc;  // 1: same-filled, stored as metadata, no slot used; or an error
  }
  if (!l.to_worker.try_send(std::uint32_t{slot})) {
    // Cannot happen (see Lane). If it did, install here (this core is
    // store core `queue`, so it may compress as it) rather than leave the
    // page waiting for ever; a slot that still holds a staged page is
    // never reused.
    if (store_.install_staged(queue, storage::StagedRef{queue, slot}) == 0) {
      l.free[l.free_count++] = slot;
    }
  }
  return 1;
}

bool CompressionPipeline::own_lane_idle(unsigned queue) noexcept {
  Lane& l = lane(queue, queue);
  if (l.free_count < config_.slots_per_lane) {
    // The worker is on this core: this channel never crosses cores.
    l.free_count += l.back.try_recv_batch(
        std::span<std::uint32_t>(l.free.data() + l.free_count, config_.slots_per_lane - l.free_count));
  }
  return l.free_count == config_.slots_per_lane;
}

int CompressionPipeline::write(unsigned queue, std::uint64_t offset, std::span<const std::byte> data) noexcept {
  if (queue >= config_.queues || offset % page_size != 0 || data.size() % page_size != 0) {
    return store_.try_write(queue, offset, data);  // partial pages: read-modify-write inline
  }
  QueueState& qs = *queues_[queue];
  // Lane order (see the class comment): the own core's lane only while
  // its worker has nothing in hand, then the other cores' lanes round
  // robin, then inline.
  const bool others = config_.workers > 1;
  const bool has_own = queue < config_.workers;
  for (std::size_t done = 0; done < data.size(); done += page_size) {
    const std::uint64_t at = offset + done;
    const std::span<const std::byte> page = data.subspan(done, page_size);
    int rc = 0;
    if (has_own && (!others || own_lane_idle(queue))) {
      rc = stage_in(queue, queue, at, page);
    }
    for (unsigned k = 0; k < config_.workers && rc == 0 && others; ++k) {
      const unsigned w = (qs.next_lane + k) % config_.workers;
      if (w != queue) {
        rc = stage_in(queue, w, at, page);
        qs.next_lane = w + 1;
      }
    }
    if (rc == 1) {
      continue;  // staged, or stored same-filled
    }
    if (rc != 0 && rc != -ENOSPC) {
      return rc;
    }
    // Every lane full, or no room to stage under the memory limit (the
    // inline path has the reclaim logic): do the worker's job here. The
    // request waits for it instead of failing.
    qs.inline_pages.store(qs.inline_pages.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (const int failed = store_.try_write(queue, at, page); failed != 0) {
      return failed;
    }
  }
  return 0;
}

void CompressionPipeline::start_worker(unsigned worker) {
  const bool on_a_queue_core = worker < config_.queues;
  for (unsigned q = 0; q < config_.queues; ++q) {
    if (on_a_queue_core) {
      runtime::spawn(compress_lane(q, worker), "zram-compress", runtime::SchedulingGroup::background());
    } else {
      runtime::spawn(compress_lane(q, worker), "zram-compress");
    }
  }
}

runtime::Task<void> CompressionPipeline::compress_lane(unsigned queue, unsigned worker) {
  Lane& l = lane(queue, worker);
  for (;;) {
    std::optional<std::uint32_t> slot = co_await l.to_worker.recv();
    if (!slot) {
      co_return;
    }
    const storage::StagedRef ref{queue, *slot};
    while (store_.install_staged(worker, ref) == -ENOSPC) {
      if (co_await runtime::sleep_for(retry_at_limit) < 0) {
        co_return;  // cancelled: the runtime is stopping
      }
    }
    // The channel's release (push) and acquire (pop) order this worker's
    // last reads of the slot before the queue's next stage() into it.
    l.back.try_send(std::uint32_t{*slot});
    co_await runtime::maybe_yield();
  }
}

}  // namespace coblk::ublk
