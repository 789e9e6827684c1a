#include "coblk/cmd/target_factory.h"

#include <cerrno>
#include <utility>

#include "coblk/cmd/device_record.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/nbd_target.h"
#include "coblk/ublk/null_target.h"
#include "coblk/ublk/ram_target.h"
#if COBLK_HAVE_ZRAM
#include "coblk/compress/codec.h"
#include "coblk/ublk/zram_target.h"
#endif

namespace coblk::cmd {

namespace {

// A concrete target's create() result as a Result of the interface.
template <typename T>
Result<std::unique_ptr<ublk::Target>> as_target(Result<std::unique_ptr<T>> made) {
  if (!made) return std::move(made).error();
  return std::unique_ptr<ublk::Target>(std::move(made).value());
}

}  // namespace

bool keeps_memory(const AddOptions& o) {
  return o.recovery && (o.target == TargetKind::ram || o.target == TargetKind::zram);
}

Result<std::unique_ptr<ublk::Target>> make_target(const AddOptions& o, uint32_t dev_id,
                                                  std::span<const int> recover_from) {
  const runtime::MemoryKind memory = keeps_memory(o) ? runtime::MemoryKind::shared : runtime::MemoryKind::anonymous;
  switch (o.target) {
    case TargetKind::null:
      return std::unique_ptr<ublk::Target>(std::make_unique<ublk::NullTarget>(o.size_bytes, o.block_size));
    case TargetKind::ram:
      if (!recover_from.empty())
        return as_target(ublk::RamTarget::recover(o.size_bytes, o.block_size, recover_from[0]));
      return as_target(ublk::RamTarget::create(o.size_bytes, o.block_size, memory));
    case TargetKind::loop:
      return as_target(ublk::LoopTarget::create(o.file, o.size_bytes, o.block_size, o.direct_io, o.group_commit,
                                                o.iopoll, o.passthrough));
    case TargetKind::nbd: {
      Result<nbd::Endpoint> endpoint = nbd::parse_endpoint(o.connect);
      if (!endpoint) return std::move(endpoint).error();
      ublk::NbdTargetConfig config;
      config.endpoint = std::move(endpoint).value();
      config.export_name = o.export_name;
      config.info = o.nbd_info;
      config.block_size = o.block_size;
      config.queues = o.queues;
      config.reconnect_timeout = std::chrono::milliseconds(o.reconnect_timeout_ms);
      config.request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
      config.zero_copy = o.data_path == DataPathKind::zero_copy;
      return as_target(ublk::NbdTarget::create(std::move(config)));
    }
    case TargetKind::zram: {
#if COBLK_HAVE_ZRAM
      const auto spec = compress::parse_codec_spec(o.algorithm);
      if (!spec) return spec.error();
      ublk::ZramTargetConfig config;
      config.size_bytes = o.size_bytes;
      config.codec = *spec;
      config.mem_limit_bytes = o.mem_limit;
      config.backing_path = o.backing;
      config.compress_workers = o.compress_cores;
      if (o.entropy_routing) {
        config.entropy_routing = storage::PageStoreConfig::EntropyRouting{o.entropy_low, o.entropy_high};
      }
      config.backing_export = o.export_name;
      config.backing_reconnect_timeout = std::chrono::milliseconds(o.reconnect_timeout_ms);
      config.backing_request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
      if (!o.recompress.empty()) {
        const auto secondary = compress::parse_codec_spec(o.recompress);
        if (!secondary) return secondary.error();
        config.recompress = *secondary;
      }
      config.writeback_high_percent = o.writeback_high;
      config.writeback_low_percent = o.writeback_low;
      config.writeback_age = std::chrono::seconds(o.writeback_age_s);
      config.writeback_limit_bytes = o.writeback_limit;
      config.readmit_reads = o.readmit_reads;
      config.queues = o.queues;
      if (Result<void> dir = ensure_run_directory(); !dir) return std::move(dir).error();
      config.stats_path = stats_path(dev_id);
      config.memory = memory;
      config.recover_from.assign(recover_from.begin(), recover_from.end());
      return as_target(ublk::ZramTarget::create(config));
#else
      (void)dev_id;
      (void)memory;
      return Error(EOPNOTSUPP, "this coblk was built without the zram target (storage/ and compress/ layers)");
#endif
    }
  }
  return Error(EINVAL, "unknown target");
}

}  // namespace coblk::cmd
