#include "coblk/ublk/nbd_target.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <utility>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/ublk/abi.h"

namespace coblk::ublk {

using runtime::Task;

Result<std::unique_ptr<NbdTarget>> NbdTarget::create(NbdTargetConfig config) {
  const nbd::ExportInfo& info = config.info;
  if (config.block_size < info.min_block)
    return Error(EINVAL, "the NBD export's minimum block size is " + std::to_string(info.min_block) +
                             " bytes, more than the device's " + std::to_string(config.block_size) +
                             " (use --block-size " + std::to_string(std::min<uint32_t>(info.min_block, 4096)) + ")");
  if (info.size % config.block_size != 0)
    return Error(EINVAL, "the NBD export's size, " + std::to_string(info.size) + " bytes, is not a multiple of the " +
                             std::to_string(config.block_size) + "-byte block size");
  if (config.queues == 0) config.queues = 1;
  return std::unique_ptr<NbdTarget>(new NbdTarget(std::move(config)));
}

NbdTarget::NbdTarget(NbdTargetConfig config) : config_(std::move(config)) {
  clients_.resize(config_.queues);
  cores_.resize(config_.queues);
}

NbdTarget::~NbdTarget() = default;

TargetGeometry NbdTarget::geometry() const {
  const nbd::ExportInfo& info = config_.info;
  TargetGeometry g;
  g.size_bytes = info.size;
  g.logical_block_size = config_.block_size;
  g.physical_block_size = std::clamp<uint32_t>(info.preferred_block, config_.block_size, 4096);
  g.volatile_cache = (info.flags & nbd::kFlagSendFlush) != 0;
  g.rotational = (info.flags & nbd::kFlagRotational) != 0;
  g.read_only = (info.flags & nbd::kFlagReadOnly) != 0;
  g.discard = (info.flags & nbd::kFlagSendTrim) != 0;
  g.write_zeroes = (info.flags & nbd::kFlagSendWriteZeroes) != 0;
  g.discard_granularity = std::max<uint32_t>(g.physical_block_size, config_.block_size);
  return g;
}

Task<int> NbdTarget::start_queue(uint16_t queue) {
  if (queue >= clients_.size()) co_return -EINVAL;
  nbd::ClientConfig c;
  c.endpoint = config_.endpoint;
  c.export_name = config_.export_name;
  c.reconnect_timeout = config_.reconnect_timeout;
  c.connect_timeout = config_.connect_timeout;
  c.request_timeout = config_.request_timeout;
  c.name = "nbd queue " + std::to_string(queue);
  c.fixed_buffers = config_.zero_copy;
  c.lost_changes = &changes_lost_;
  // A socket write from a fixed buffer (IORING_OP_WRITE_FIXED) cannot say
  // MSG_NOSIGNAL: a server that hung up must cost the connection (EPIPE,
  // then a reconnect), not kill the process with SIGPIPE.
  if (config_.zero_copy) ::signal(SIGPIPE, SIG_IGN);
  cores_[queue] = runtime::Reactor::current()->core();
  clients_[queue] = std::make_unique<nbd::Client>(std::move(c), config_.info);
  // A server that is down now is waited for like one that drops later: the
  // queue starts, and its requests wait up to the reconnect timeout.
  (void)co_await clients_[queue]->start();
  co_return 0;
}

Task<int> NbdTarget::read(const Request& r) {
  if (!in_range(r)) co_return -EIO;
  nbd::Op op{nbd::kCmdRead, 0, r.offset, r.length, r.data, nullptr};
  if (r.fixed_buffer >= 0) {
    op.read_into = nullptr;
    op.fixed_buffer = r.fixed_buffer;
  } else if (r.data == nullptr) {
    co_return -EINVAL;
  }
  const int ret = co_await clients_[r.queue]->submit(op);
  co_return ret < 0 ? ret : static_cast<int>(r.length);
}

Task<int> NbdTarget::write(const Request& r) {
  if (!in_range(r)) co_return -EIO;
  if (r.data == nullptr && r.fixed_buffer < 0) co_return -EINVAL;
  const uint16_t server = config_.info.flags;
  const bool fua = (r.flags & abi::IO_F_FUA) != 0;
  const bool native_fua = fua && (server & nbd::kFlagSendFua) != 0;
  nbd::Client& client = *clients_[r.queue];
  nbd::Op op{nbd::kCmdWrite, native_fua ? nbd::kCmdFlagFua : uint16_t{0}, r.offset, r.length, nullptr, r.data};
  if (r.fixed_buffer >= 0) {
    op.write_from = nullptr;
    op.fixed_buffer = r.fixed_buffer;
  }
  int ret = co_await client.submit(op);
  if (ret == 0 && fua && !native_fua && (server & nbd::kFlagSendFlush) != 0) ret = co_await flush_after(client);
  co_return ret < 0 ? ret : static_cast<int>(r.length);
}

Task<int> NbdTarget::flush_after(nbd::Client& client) {
  const int ret = co_await client.submit(nbd::Op{nbd::kCmdFlush, 0, 0, 0, nullptr, nullptr});
  // A flush re-sent after a drop runs on a new connection, which need not
  // cover the change: once changes were lost it proves nothing.
  co_return ret == 0 && changes_lost_.load(std::memory_order_acquire) ? -EIO : ret;
}

Task<int> NbdTarget::flush_queue(uint16_t queue) {
  co_return co_await clients_[queue]->submit(nbd::Op{nbd::kCmdFlush, 0, 0, 0, nullptr, nullptr});
}

Task<int> NbdTarget::flush(const Request& r) {
  if ((config_.info.flags & nbd::kFlagSendFlush) == 0) co_return 0;  // no write cache: nothing to do
  // Acquire: pairs with the release of the dropping connection. Looked at
  // after the flushes too: a drop they run into sets it before they are
  // re-sent on a new connection and return.
  if (changes_lost_.load(std::memory_order_acquire)) co_return -EIO;
  int ret = co_await flush_queue(r.queue);
  if (ret >= 0 && (config_.info.flags & nbd::kFlagCanMultiConn) == 0) {
    // Without multi-conn the server may cache per connection: flush the
    // others too, each on its own core.
    for (std::size_t i = 0; i < clients_.size() && ret >= 0; ++i) {
      const auto q = static_cast<uint16_t>(i);
      if (q == r.queue) continue;
      ret = co_await runtime::submit_to(
          cores_[q], [this, q] { return flush_queue(q); }, "nbd-flush");
    }
  }
  if (ret < 0) co_return ret;
  co_return changes_lost_.load(std::memory_order_acquire) ? -EIO : 0;
}

Task<int> NbdTarget::discard(const Request& r) {
  if ((config_.info.flags & nbd::kFlagSendTrim) == 0) co_return -EOPNOTSUPP;
  if (!in_range(r)) co_return -EIO;
  co_return co_await clients_[r.queue]->submit(nbd::Op{nbd::kCmdTrim, 0, r.offset, r.length, nullptr, nullptr});
}

Task<int> NbdTarget::write_zeroes(const Request& r) {
  if ((config_.info.flags & nbd::kFlagSendWriteZeroes) == 0) co_return -EOPNOTSUPP;
  if (!in_range(r)) co_return -EIO;
  const uint16_t server = config_.info.flags;
  const bool fua = (r.flags & abi::IO_F_FUA) != 0;
  const bool native_fua = fua && (server & nbd::kFlagSendFua) != 0;
  uint16_t flags = (r.flags & abi::IO_F_NOUNMAP) != 0 ? nbd::kCmdFlagNoHole : uint16_t{0};
  if (native_fua) flags |= nbd::kCmdFlagFua;
  nbd::Client& client = *clients_[r.queue];
  int ret = co_await client.submit(nbd::Op{nbd::kCmdWriteZeroes, flags, r.offset, r.length, nullptr, nullptr});
  if (ret == 0 && fua && !native_fua && (server & nbd::kFlagSendFlush) != 0) ret = co_await flush_after(client);
  co_return ret;
}

}  // namespace coblk::ublk
