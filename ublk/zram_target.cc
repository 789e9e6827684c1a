#include "coblk/ublk/zram_target.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/submit_to.h"

namespace coblk::ublk {

namespace {

Result<storage::PageStoreConfig> store_config(const ZramTargetConfig& c) {
  if (c.queues == 0) {
    return Error(EINVAL, "zram: at least one queue is needed");
  }
  storage::PageStoreConfig s;
  s.size_bytes = c.size_bytes;
  s.codec = c.codec;
  s.mem_limit_bytes = c.mem_limit_bytes;
  if (c.compress_workers > 256) {
    return Error(EINVAL, "zram: at most 256 compression workers, got " + std::to_string(c.compress_workers));
  }
  if (c.compress_workers != 0) {
    if (c.memory != runtime::MemoryKind::anonymous && c.compress_workers > max_recoverable_compress_workers) {
      return Error(EINVAL, "zram: with --recovery at most " + std::to_string(max_recoverable_compress_workers) +
                               " compression cores, got " + std::to_string(c.compress_workers));
    }
    if (c.staging_per_lane == 0 || c.staging_per_lane > 4096) {
      return Error(EINVAL, "zram: staging slots per lane must be 1..4096, got " + std::to_string(c.staging_per_lane));
    }
    s.staging_pages = c.compress_workers * c.staging_per_lane;
  }
  s.cores = std::max(c.queues, c.compress_workers);
  s.recompress = c.recompress;
  s.entropy_routing = c.entropy_routing;
  if (!c.backing_path.empty()) {
    if (c.writeback_batch == 0 || c.writeback_batch > 256) {
      return Error(EINVAL, "zram: the writeback batch must be 1..256 blocks, got " + std::to_string(c.writeback_batch));
    }
    if (c.writeback_high_percent == 0 || c.writeback_high_percent > 100 ||
        c.writeback_low_percent >= c.writeback_high_percent) {
      return Error(EINVAL, "zram: writeback watermarks must satisfy 0 <= low < high <= 100 (percent), got low " +
                               std::to_string(c.writeback_low_percent) + ", high " +
                               std::to_string(c.writeback_high_percent));
    }
    if (c.readmit_reads > 2) {
      return Error(EINVAL, "zram: readmit reads must be 0 (never), 1 or 2, got " + std::to_string(c.readmit_reads));
    }
    // Re-admission (docs/storage.md, "Re-admission"): a page read twice
    // within the age that counts as cold is not cold; and only below the
    // high watermark, so that it never feeds the next writeback pass.
    s.readmit_reads = c.readmit_reads;
    s.readmit_window_s = c.writeback_age.count() > 0
                             ? static_cast<std::uint32_t>(std::min<std::int64_t>(c.writeback_age.count(), UINT32_MAX))
                             : 64;
    s.readmit_below_bytes = c.mem_limit_bytes / 100 * c.writeback_high_percent;
  }
  s.memory = c.memory;
  return s;
}

std::uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

Result<std::unique_ptr<ZramTarget>> ZramTarget::create(const ZramTargetConfig& config) {
  Result<storage::PageStoreConfig> store_settings = store_config(config);
  if (!store_settings) {
    return std::move(store_settings).error();
  }
  std::unique_ptr<TierBackend> tier;
  if (!config.backing_path.empty()) {
    TierBackendConfig t;
    t.spec = config.backing_path;
    t.export_name = config.backing_export;
    // Compression workers beyond the queues write back their own arenas'
    // objects, on their own cores: they do tier I/O as queues do.
    t.queues = std::max(config.queues, config.compress_workers);
    t.reconnect_timeout = config.backing_reconnect_timeout;
    t.request_timeout = config.backing_request_timeout;
    Result<std::unique_ptr<TierBackend>> opened = open_tier_backend(t);
    if (!opened) {
      return std::move(opened).error();
    }
    tier = std::move(opened).value();
    // A page entry names at most max_backing_blocks (32 TiB): a larger
    // tier is used up to there.
    store_settings->backing_blocks = std::min(tier->blocks(), storage::max_backing_blocks);
    store_settings->backing_fd = tier->fd();
    store_settings->backing_io = tier->block_io();
    store_settings->writeback_batch = config.writeback_batch;
  }
  Result<std::unique_ptr<storage::PageStore>> store =
      config.recover_from.empty() ? storage::PageStore::create(*store_settings)
                                  : storage::PageStore::attach(*store_settings, config.recover_from);
  if (!store) {
    return std::move(store).error();
  }
  if (tier) {
    // The store wrote or checked the tier's header block: the rest of the
    // tier's I/O is asynchronous, on the queues' cores.
    tier->end_setup();
  }
  std::unique_ptr<ZramStatsPublisher> publisher;
  if (!config.stats_path.empty()) {
    Result<std::unique_ptr<ZramStatsPublisher>> created = ZramStatsPublisher::create(config.stats_path);
    if (!created) {
      return std::move(created).error();
    }
    publisher = std::move(created).value();
  }
  std::unique_ptr<CompressionPipeline> pipeline;
  if (config.compress_workers != 0) {
    Result<std::unique_ptr<CompressionPipeline>> made = CompressionPipeline::create(
        **store, CompressionPipelineConfig{config.queues, config.compress_workers, config.staging_per_lane});
    if (!made) {
      return std::move(made).error();
    }
    pipeline = std::move(made).value();
  }
  std::unique_ptr<ZramTarget> target(new ZramTarget(config, std::move(store).value(), std::move(publisher)));
  target->pipeline_ = std::move(pipeline);
  target->tier_ = std::move(tier);
  if (config.writeback_limit_bytes != 0) {
    target->writeback_budget_.store(config.writeback_limit_bytes / 4096, std::memory_order_relaxed);
  }
  if (target->publisher_) {
    target->publisher_->publish(target->snapshot());
  }
  return target;
}

// The store is destroyed before the tier (declared after it): it may use
// the tier's block_io() until then.
ZramTarget::~ZramTarget() { store_.reset(); }

ZramTarget::ZramTarget(const ZramTargetConfig& config, std::unique_ptr<storage::PageStore> store,
                       std::unique_ptr<ZramStatsPublisher> publisher)
    : config_(config), store_(std::move(store)), publisher_(std::move(publisher)) {
  if (publisher_) {
    publisher_->publish(snapshot());
  }
}

TargetGeometry ZramTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = config_.size_bytes;
  g.logical_block_size = 4096;
  g.physical_block_size = 4096;
  g.volatile_cache = false;
  g.rotational = false;
  g.discard = true;
  g.write_zeroes = true;
  g.discard_granularity = 4096;
  return g;
}

runtime::Task<int> ZramTarget::start_queue(std::uint16_t queue) {
  if (queue < config_.queues) {
    // start_queue runs on the queue's core. Relaxed: the number is all a
    // reader needs; submit_to's mailbox orders everything the reclaim on
    // that core then touches.
    queue_cores_[queue].store(runtime::Reactor::current()->core() + 1, std::memory_order_relaxed);
  }
  if (tier_) {
    (void)co_await tier_->start_queue(queue);
  }
  runtime::spawn(maintain(queue), "zram-maintenance", runtime::SchedulingGroup::background());
  if (pipeline_ && queue < pipeline_->workers()) {
    pipeline_->start_worker(queue);
  }
  if (pipeline_ && queue == 0) {
    // Workers beyond the queues run on runtime core w, with store core w's
    // arena, which needs its own maintenance there.
    for (unsigned w = config_.queues; w < pipeline_->workers(); ++w) {
      co_await runtime::submit_to(w, [this, w]() -> runtime::Task<int> {
        queue_cores_[w].store(runtime::Reactor::current()->core() + 1, std::memory_order_relaxed);
        if (tier_) {
          (void)co_await tier_->start_queue(static_cast<std::uint16_t>(w));
        }
        pipeline_->start_worker(w);
        runtime::spawn(maintain(static_cast<std::uint16_t>(w)), "zram-maintenance",
                       runtime::SchedulingGroup::background());
        co_return 0;
      });
    }
  }
  co_return 0;
}

runtime::Task<int> ZramTarget::read(const Request& r) {
  if (r.data == nullptr) {
    co_return -EINVAL;  // zero copy is not offered (supports_zero_copy is false)
  }
  if (tier_) {
    co_return co_await read_through_tier(r);
  }
  const int rc = store_->read(r.queue, r.offset, std::span<std::byte>(r.data, r.length));
  co_return rc < 0 ? rc : static_cast<int>(r.length);
}

runtime::Task<int> ZramTarget::write(const Request& r) {
  if (r.data == nullptr) {
    co_return -EINVAL;
  }
  const std::span<const std::byte> data(r.data, r.length);
  int rc = pipeline_ ? pipeline_->write(r.queue, r.offset, data) : store_->try_write(r.queue, r.offset, data);
  if (rc == -ENOSPC) {
    rc = co_await write_after_reclaim(r.queue, r.offset, data);
  }
  if (rc == -ENOSPC && tier_usable()) {
    // At the limit with a backing tier: delay the write while this core
    // writes its pages back, rather than fail it.
    rc = co_await write_by_writing_back(r.queue, r.offset, data);
  }
  // Past --mem-limit the store says -ENOSPC; like kernel zram, the device
  // reports a plain I/O error (the old data is kept either way).
  co_return rc == -ENOSPC ? -EIO : rc < 0 ? rc : static_cast<int>(r.length);
}

namespace {

// Rounds of asking every other queue's core before a write at the limit
// gives up even though each round gave something back (other writers may
// keep taking it): bounds the write's latency.
constexpr int max_reclaim_rounds = 4;

}  // namespace

runtime::Task<int> ZramTarget::write_after_reclaim(std::uint16_t queue, std::uint64_t offset,
                                                   std::span<const std::byte> data) {
  // The store has already taken back what this queue's core held unused.
  // The rest of the room may be held by other cores: objects of their
  // arenas whose frees (sent by this or any core) they have not drained,
  // and their cached empty spans. Only a core may touch its own arena, so
  // ask each one in turn on its own thread, and try again after every
  // answer that gave something back.
  int rc = -ENOSPC;
  for (int round = 0; round < max_reclaim_rounds && rc == -ENOSPC; ++round) {
    bool gave_back = false;
    for (unsigned k = 1; k < store_cores_ && rc == -ENOSPC; ++k) {
      const unsigned other = (queue + k) % store_cores_;
      const unsigned core_plus_one = queue_cores_[other].load(std::memory_order_relaxed);
      if (core_plus_one == 0) {
        continue;  // not started: it has served no request, so holds nothing
      }
      const std::uint64_t given = co_await runtime::submit_to(
          core_plus_one - 1, [this, other] { return store_->reclaim(other); }, "zram-reclaim");
      if (given != 0) {
        gave_back = true;
        rc = store_->try_write(queue, offset, data);
      }
    }
    if (!gave_back) {
      break;
    }
  }
  if (rc == -ENOSPC && !tier_usable()) {
    store_->count_failed_write(queue);
  }
  co_return rc;
}

runtime::Task<int> ZramTarget::discard(const Request& r) { co_return store_->discard(r.queue, r.offset, r.length); }

runtime::Task<int> ZramTarget::write_zeroes(const Request& r) {
  co_return store_->write_zeroes(r.queue, r.offset, r.length);
}

ZramStats ZramTarget::snapshot() const {
  ZramStats s;
  s.mm = store_->mm_stat();
  s.io = store_->io_stat();
  s.bd = store_->bd_stat();
  s.tier = store_->tier_stat();
  s.tier_state = tier_state();
  s.writeback_budget = writeback_budget_.load(std::memory_order_relaxed);
  s.disksize = config_.size_bytes;
  s.algorithm = config_.codec.name();
  s.updated_ns = realtime_ns();
  return s;
}

runtime::Task<void> ZramTarget::maintain(std::uint16_t queue) {
  // Whether to compact is the store's policy; this task only offers it a
  // quiet moment. (A named policy, not the default argument: with the loop
  // body reduced to drain + maybe_compact(queue) + publish, GCC 12.2 laid
  // out this coroutine's frame 8 bytes apart in its ramp and its body, and
  // the task never ran; published_stats_are_read_back_by_the_stats_reader
  // in test/ublk/zram_target_test.cc catches that.)
  const storage::CompactionPolicy compaction = config_.compaction;
  for (;;) {
    if (co_await runtime::sleep_for(config_.maintenance_interval) < 0) {
      co_return;  // cancelled: the reactor is shutting down
    }
    // Both run in bounded steps (storage::StepLimits) on this queue's
    // core: between steps, once the background group's slice is used up,
    // the reactor goes back to I/O and the queue's requests run.
    while (!store_->drain_remote_frees(queue)) {
      co_await runtime::maybe_yield();
    }
    while (store_->maybe_compact_step(queue, compaction)) {
      co_await runtime::maybe_yield();
    }
    if (config_.entropy_routing && tier_usable()) {
      // High-entropy pages, stored raw by the routing, go straight to the
      // tier: every tick, not only under memory pressure.
      while ((co_await write_back_batch(queue, storage::WritebackKind::huge, 0, config_.writeback_batch)).moved != 0) {
        co_await runtime::maybe_yield();
      }
    }
    if (tier_ || config_.recompress) {
      co_await write_back_by_policy(queue);
    }
    ZramCommand command;
    if (queue == 0 && publisher_ && publisher_->pending_command(command)) {
      co_await run_command(command);
    }
    if (queue == 0 && publisher_) {
      publisher_->publish(snapshot());
    }
  }
}

}  // namespace coblk::ublk
