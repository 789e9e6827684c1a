// ublk/nbd_blocking.h - a blocking NBD session for setup paths, before any reactor runs.
#pragma once

// The data path is nbd::Connection on io_uring sockets. Before a device
// and its runtime exist, `coblk add` needs a few blocking exchanges: the
// probe of an export's facts (probe_export) and, for the zram target's NBD
// tier, the tier's header block (storage::BackingBlockIo). Both use this
// one session: a blocking socket with send and receive timeouts, the
// handshake state machine, and one request at a time parsed by the same
// ReplyParser as the data path.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "coblk/runtime/result.h"
#include "coblk/ublk/nbd_connection.h"
#include "coblk/ublk/nbd_protocol.h"

namespace coblk::nbd {

/// One blocking connection to an NBD export (see the file comment). Each
/// call blocks for at most the timeout given to open() per send or receive.
class BlockingSession {
 public:
  /// Connects to `endpoint` and negotiates export `export_name`: with
  /// HandshakeGoal::go the session can then carry requests; with
  /// HandshakeGoal::info it only learns the export's facts (info()) and
  /// has ended the negotiation. Errors as probe_export.
  static Result<BlockingSession> open(const Endpoint& endpoint, const std::string& export_name,
                                      std::chrono::milliseconds timeout, HandshakeGoal goal);
  /// Closes the socket.
  ~BlockingSession();
  /// Takes over `other`'s socket.
  BlockingSession(BlockingSession&& other) noexcept;
  /// Closes this socket and takes over `other`'s.
  BlockingSession& operator=(BlockingSession&& other) noexcept;
  BlockingSession(const BlockingSession&) = delete;
  BlockingSession& operator=(const BlockingSession&) = delete;

  /// The export's facts from the handshake.
  const ExportInfo& info() const noexcept { return info_; }
  /// Reads `out.size()` bytes at `offset`: 0, the server's -errno, -EIO for
  /// a malformed reply, or the socket's -errno (-EAGAIN on a timeout). The
  /// session is closed after any failure but a server error.
  int read(std::uint64_t offset, std::span<std::byte> out) noexcept;
  /// Writes `data` at `offset` and waits for the server's reply (see read).
  int write(std::uint64_t offset, std::span<const std::byte> data) noexcept;
  /// Closes the socket; later requests fail with -ENOTCONN.
  void close() noexcept;

 private:
  BlockingSession(int fd, const ExportInfo& info) noexcept : fd_(fd), info_(info) {}
  int request(std::uint16_t type, std::uint64_t offset, std::byte* read_into, const std::byte* write_from,
              std::uint32_t length) noexcept;

  int fd_ = -1;
  ExportInfo info_;
  std::uint64_t next_handle_ = 1;
};

}  // namespace coblk::nbd
