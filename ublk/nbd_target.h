// ublk/nbd_target.h - the nbd target: the device is an export of an NBD server, one connection per queue.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "coblk/ublk/nbd_connection.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// What an NbdTarget serves.
struct NbdTargetConfig {
  nbd::Endpoint endpoint;                              ///< the server
  std::string export_name;                             ///< the export
  nbd::ExportInfo info;                                ///< its facts, from nbd::probe_export
  uint32_t block_size = 512;                           ///< the device's logical block size
  unsigned queues = 1;                                 ///< one nbd::Client (one connection) per queue
  std::chrono::milliseconds reconnect_timeout{30000};  ///< see nbd::ClientConfig
  std::chrono::milliseconds connect_timeout{5000};     ///< see nbd::ClientConfig
  std::chrono::milliseconds request_timeout{30000};    ///< see nbd::ClientConfig (0: none)
  /// Serve the zero-copy data path (DataPath::zero_copy): each request's
  /// pages are a fixed buffer of the queue's ring, read replies are
  /// received into them and write payloads sent from them by the socket
  /// (nbd::ClientConfig::fixed_buffers). Without it, the copy paths.
  bool zero_copy = false;
};

/// Serves the device from an NBD export: each queue opens its own
/// connection on its own core (start_queue) and keeps many requests in
/// flight on it. READ and WRITE map to NBD_CMD_READ and NBD_CMD_WRITE;
/// FUA to NBD_CMD_FLAG_FUA (or the change then a flush, for a server with
/// a write cache but no FUA; for WRITE and WRITE_ZEROES alike); FLUSH to NBD_CMD_FLUSH, announced to the kernel
/// only when the server has a write cache (NBD_FLAG_SEND_FLUSH); DISCARD to
/// NBD_CMD_TRIM and WRITE_ZEROES to NBD_CMD_WRITE_ZEROES (with
/// NBD_CMD_FLAG_NO_HOLE for the kernel's NOUNMAP), each only when the
/// server offers it. A dropped connection is replaced (nbd::Client); a
/// request completes only with the server's reply.
///
/// A server without NBD_FLAG_CAN_MULTI_CONN may keep a write cache per
/// connection: then a FLUSH is sent on every queue's connection, not only
/// the one that received it, so that it covers writes completed on others.
///
/// A connection that drops while such a server holds writes it acknowledged
/// and no flush has covered may have lost them (a server that restarted
/// forgets its cache; a flush on a new connection need not cover an old
/// one's). The kernel already took those writes as done, so the next FLUSH
/// must not report them durable: from then on every FLUSH fails with EIO
/// (a file system learns of the loss; its data may need checking), as a
/// loop device's FLUSH does after a failed fdatasync.
///
/// With NbdTargetConfig::zero_copy, request data never passes through this
/// process: read data goes from the socket into the request's pages
/// (IORING_OP_READ_FIXED), write data from them into the socket
/// (IORING_OP_WRITE_FIXED).
class NbdTarget final : public Target {
 public:
  /// A target for `config`. Error EINVAL (one line) when the export's
  /// size is not a multiple of the block size, or the server's minimum
  /// block size exceeds it.
  static Result<std::unique_ptr<NbdTarget>> create(NbdTargetConfig config);
  ~NbdTarget() override;
  NbdTarget(const NbdTarget&) = delete;
  NbdTarget& operator=(const NbdTarget&) = delete;

  TargetGeometry geometry() const override;
  bool supports_zero_copy() const override { return config_.zero_copy; }
  runtime::Task<int> start_queue(uint16_t queue) override;
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> flush(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

  /// The client of `queue` (null before its start_queue): for tests.
  nbd::Client* client(uint16_t queue) const { return queue < clients_.size() ? clients_[queue].get() : nullptr; }

 private:
  explicit NbdTarget(NbdTargetConfig config);
  bool in_range(const Request& r) const {
    return r.offset <= config_.info.size && r.length <= config_.info.size - r.offset;
  }
  runtime::Task<int> flush_queue(uint16_t queue);
  // FUA for a server without it: a flush on `client`'s connection after
  // the change. EIO once changes were lost (see the class).
  runtime::Task<int> flush_after(nbd::Client& client);

  NbdTargetConfig config_;
  // Set by any queue's client (nbd::ClientConfig::lost_changes), on its
  // core; read by flush on another. Never cleared.
  std::atomic<bool> changes_lost_{false};
  std::vector<std::unique_ptr<nbd::Client>> clients_;  // one per queue, each used only on its queue's core
  std::vector<unsigned> cores_;                        // the core of each started queue
};

}  // namespace coblk::ublk
