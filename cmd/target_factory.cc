#include "cmd/target_factory.h"

#include "ublk/loop_target.h"
#include "ublk/null_target.h"
#include "ublk/ram_target.h"

namespace coblk::cli {

std::unique_ptr<ublk::Target> make_target(const AddOptions& o, std::string& error) {
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
    case TargetKind::zram:
      error = "the zram target is not built into this coblk yet";
      return nullptr;
  }
  error = "unknown target";
  return nullptr;
}

}  // namespace coblk::cli
