// The zram backing tier on an NBD export: cold pages go to another
// machine's memory or disk. See docs/nbd.md, "A remote tier for zram".
//
// Which core talks to the server. An nbd::Connection belongs to the core
// whose io_uring drives its socket, and every queue's core does tier I/O:
// its requests read written-back pages, its maintenance task writes its
// own arena's pages back. So each queue gets its own nbd::Client, made on
// its core in start_queue, like the nbd target's queues: no cross-core hop
// per page and no single socket for all queues. That is only correct when
// the server promises that what one connection wrote is what another one
// reads (NBD_FLAG_CAN_MULTI_CONN; a page written back by queue 0 may be
// read by a request on queue 1). A server without that flag (qemu-nbd
// with its default --shared=1 also accepts one connection only) gets one
// connection, queue 0's: the other queues send their tier I/O to queue 0's
// core with runtime::submit_to and wait for the answer there.
//
// Failure. nbd::Client re-sends requests on a new connection after a drop,
// with backoff, up to the reconnect timeout. Every connection must read
// back the tier's header block (written at create) at offset 0: a server
// that restarted without its data, or another export, is refused, since
// its blocks would be read as our pages. After the timeout, or such a
// refusal, the tier has failed for good: reads of written-back pages get
// -EIO and writeback stops (the zram target checks failed()).

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/ublk/nbd_blocking.h"
#include "coblk/ublk/nbd_connection.h"
#include "coblk/ublk/tier_backend.h"

namespace coblk::ublk {

namespace {

constexpr std::uint64_t block_size = 4096;
constexpr std::uint64_t min_backing_blocks = 64;

class NbdTier final : public TierBackend, public storage::BackingBlockIo {
 public:
  NbdTier(TierBackendConfig config, nbd::Endpoint endpoint, nbd::BlockingSession session)
      : config_(std::move(config)),
        endpoint_(std::move(endpoint)),
        info_(session.info()),
        session_(std::move(session)),
        per_core_(config_.queues <= 1 || (info_.flags & nbd::kFlagCanMultiConn) != 0),
        clients_(per_core_ ? config_.queues : 1) {
    // The largest write the server takes, in whole blocks (a writeback
    // run is up to 256 blocks).
    max_write_ =
        static_cast<std::uint32_t>(std::max<std::uint64_t>(block_size, info_.max_block / block_size * block_size));
    // read_block/write_block (noexcept) copy the header block here without
    // allocating.
    identity_.reserve(block_size);
  }
  ~NbdTier() override = default;
  NbdTier(const NbdTier&) = delete;
  NbdTier& operator=(const NbdTier&) = delete;

  std::uint64_t blocks() const noexcept override { return info_.size / block_size; }
  storage::BackingBlockIo* block_io() noexcept override { return this; }
  void end_setup() noexcept override { session_.reset(); }

  int read_block(std::uint64_t block, std::byte* out) noexcept override {
    if (!session_) return -EIO;
    const int rc = session_->read(block * block_size, std::span<std::byte>(out, block_size));
    if (rc == 0 && block == 0) identity_.assign(out, out + block_size);
    return rc;
  }
  int write_block(std::uint64_t block, const std::byte* in) noexcept override {
    if (!session_) return -EIO;
    const int rc = session_->write(block * block_size, std::span<const std::byte>(in, block_size));
    if (rc == 0 && block == 0) identity_.assign(in, in + block_size);
    return rc;
  }

  runtime::Task<int> start_queue(std::uint16_t queue) override {
    const std::size_t index = per_core_ ? queue : 0;
    if ((!per_core_ && queue != 0) || index >= clients_.size()) co_return 0;
    const unsigned core = runtime::Reactor::current()->core();
    nbd::ClientConfig c;
    c.endpoint = endpoint_;
    c.export_name = config_.export_name;
    c.reconnect_timeout = config_.reconnect_timeout;
    c.connect_timeout = config_.connect_timeout;
    c.request_timeout = config_.request_timeout;
    c.name = "zram tier, queue " + std::to_string(queue);
    c.identity = identity_;
    clients_[index] = std::make_unique<nbd::Client>(std::move(c), info_);
    if (queue == 0) {
      // Release: the client above is complete before another queue's core
      // that reads the owner (acquire) sends it work.
      owner_core_.store(core + 1, std::memory_order_release);
    }
    (void)co_await clients_[index]->start();
    if (clients_[index]->gone()) failed_.store(true, std::memory_order_relaxed);
    co_return 0;
  }

  runtime::Task<int> read(std::uint16_t queue, std::uint64_t offset, std::byte* out, std::uint32_t bytes) override {
    const int rc = co_await submit(queue, nbd::Op{nbd::kCmdRead, 0, offset, bytes, out, nullptr});
    co_return rc < 0 ? rc : static_cast<int>(bytes);
  }

  runtime::Task<int> write(std::uint16_t queue, std::uint64_t offset, const std::byte* data,
                           std::uint32_t bytes) override {
    for (std::uint32_t done = 0; done < bytes;) {
      const std::uint32_t n = std::min(bytes - done, max_write_);
      const int rc = co_await submit(queue, nbd::Op{nbd::kCmdWrite, 0, offset + done, n, nullptr, data + done});
      if (rc < 0) co_return rc;
      done += n;
    }
    co_return static_cast<int>(bytes);
  }

  bool failed() const noexcept override { return failed_.load(std::memory_order_relaxed); }

 private:
  // Runs `op` on the client of `index`, on the calling core (its owner).
  runtime::Task<int> run(std::size_t index, nbd::Op op) {
    nbd::Client* client = clients_[index].get();
    if (client == nullptr) co_return -EIO;
    const int rc = co_await client->submit(op);
    if (rc == -EIO && client->failed()) {
      // Given up (timeout, or the export lost its data): for good, on
      // every queue, even if the server answers again later.
      failed_.store(true, std::memory_order_relaxed);
    }
    co_return rc;
  }

  runtime::Task<int> submit(std::uint16_t queue, nbd::Op op) {
    if (failed()) co_return -EIO;
    if (per_core_) co_return co_await run(queue, op);
    if (queue == 0) co_return co_await run(0, op);
    // Acquire: pairs with queue 0's release in start_queue.
    const unsigned owner = owner_core_.load(std::memory_order_acquire);
    if (owner == 0) co_return -EIO;  // queue 0 not started: no tier I/O can be in flight yet
    co_return co_await runtime::submit_to(
        owner - 1, [this, op] { return run(0, op); }, "zram-nbd-tier");
  }

  TierBackendConfig config_;
  nbd::Endpoint endpoint_;
  nbd::ExportInfo info_;
  std::optional<nbd::BlockingSession> session_;  // setup only (end_setup closes it)
  std::vector<std::byte> identity_;              // the header block, as written or read at setup
  bool per_core_;
  std::uint32_t max_write_ = 0;
  // One client per queue (per_core_), or queue 0's only; each used only on
  // its queue's core.
  std::vector<std::unique_ptr<nbd::Client>> clients_;
  std::atomic<unsigned> owner_core_{0};  // 1 + queue 0's core, 0 before its start_queue
  std::atomic<bool> failed_{false};
};

}  // namespace

Result<std::unique_ptr<TierBackend>> open_nbd_tier(const TierBackendConfig& config) {
  const std::string where = config.spec.substr(4);
  Result<nbd::Endpoint> endpoint = nbd::parse_endpoint(where);
  if (!endpoint) {
    return Error(endpoint.error().code(), "--backing " + quote_for_message(config.spec) +
                                              ": expected nbd:unix:PATH or nbd:tcp:HOST:PORT (" +
                                              endpoint.error().message() + ")");
  }
  Result<nbd::BlockingSession> session =
      nbd::BlockingSession::open(*endpoint, config.export_name, config.connect_timeout, nbd::HandshakeGoal::go);
  if (!session) {
    return Error(session.error().code(), "backing " + config.spec + ": " + session.error().message());
  }
  const nbd::ExportInfo& info = session->info();
  if ((info.flags & nbd::kFlagReadOnly) != 0) {
    return Error(EROFS, "backing " + config.spec + ": the NBD export is read-only");
  }
  if (info.min_block > block_size) {
    return Error(EINVAL, "backing " + config.spec + ": the NBD export's minimum block size is " +
                             std::to_string(info.min_block) + " bytes, more than the tier's 4096");
  }
  if (info.size / block_size < min_backing_blocks) {
    return Error(EINVAL, "backing " + config.spec + " holds " + std::to_string(info.size) +
                             " bytes; at least 256 KiB (64 blocks of 4 KiB) are needed");
  }
  return std::unique_ptr<TierBackend>(new NbdTier(config, std::move(endpoint).value(), std::move(session).value()));
}

}  // namespace coblk::ublk
