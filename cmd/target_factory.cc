#include "coblk/cmd/target_factory.h"

#include <exception>

#include "coblk/ublk/device_record.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/null_target.h"
#include "coblk/ublk/ram_target.h"
#if COBLK_HAVE_ZRAM
#include "coblk/compress/codec.h"
#include "coblk/ublk/zram_target.h"
#endif

namespace coblk::cmd {

std::unique_ptr<ublk::Target> make_target(const AddOptions& o, uint32_t dev_id, std::string& error) {
  switch (o.target) {
    case TargetKind::null:
      return std::make_unique<ublk::NullTarget>(o.size_bytes, o.block_size);
    case TargetKind::ram: {
      auto t = std::make_unique<ublk::RamTarget>(o.size_bytes, o.block_size);
      if (!t->error().empty()) {
        error = t->error();
        return nullptr;
      }
      return t;
    }
    case TargetKind::loop: {
      auto t = std::make_unique<ublk::LoopTarget>(o.file, o.size_bytes, o.block_size, o.direct_io);
      if (!t->error().empty()) {
        error = t->error();
        return nullptr;
      }
      return t;
    }
    case TargetKind::zram: {
#if COBLK_HAVE_ZRAM
      const auto spec = compress::parse_codec_spec(o.algorithm);
      if (!spec) {
        error = spec.error().message();
        return nullptr;
      }
      ublk::ZramTargetConfig config;
      config.size_bytes = o.size_bytes;
      config.codec = *spec;
      config.mem_limit_bytes = o.mem_limit;
      config.queues = o.queues;
      ublk::ensure_run_directory();
      config.stats_path = ublk::stats_path(dev_id);
      try {
        return std::make_unique<ublk::ZramTarget>(config);
      } catch (const std::exception& e) {
        error = e.what();
        return nullptr;
      }
#else
      (void)dev_id;
      error = "this coblk was built without the zram target (storage/ and compress/ layers)";
      return nullptr;
#endif
    }
  }
  error = "unknown target";
  return nullptr;
}

}  // namespace coblk::cmd
