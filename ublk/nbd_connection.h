// ublk/nbd_connection.h - an NBD client connection on the runtime's io_uring sockets, and its reconnecting client.
#pragma once

// Three pieces, each usable without the ublk target:
//   - Endpoint and probe_export(): where a server is, and a blocking
//     handshake (NBD_OPT_INFO) that learns an export's facts before
//     anything is created;
//   - Connection: one socket in transmission, on one reactor core, with
//     many requests in flight matched by handle; reads, writes, flushes,
//     trims and write-zeroes by byte offset;
//   - Client: a Connection that is replaced when it drops: requests in
//     flight are re-sent on a new connection after exponential backoff, up
//     to a deadline, and fail with -EIO after it.
// The ublk target (ublk/nbd_target.h) is glue over one Client per queue; a
// storage tier can hold its own Clients the same way.

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"
#include "coblk/ublk/nbd_protocol.h"

namespace coblk::nbd {

/// Where an NBD server listens: `unix:PATH` or `tcp:HOST:PORT` (HOST a
/// name, an IPv4 address, or an IPv6 address in brackets).
struct Endpoint {
  std::string text;              ///< as the user wrote it
  sockaddr_storage address{};    ///< resolved address
  socklen_t address_length = 0;  ///< bytes of `address` in use
};

/// Parses and resolves `text` (getaddrinfo for a TCP host: blocking).
/// Error EINVAL (one line naming the syntax) for a malformed endpoint, or
/// EHOSTUNREACH for a host that does not resolve.
Result<Endpoint> parse_endpoint(const std::string& text);

/// A connected socket to `endpoint`, blocking, with send and receive
/// timeouts of `timeout`. Error: the errno of socket/connect (ECONNREFUSED,
/// ENOENT for a missing unix socket, ETIMEDOUT), one line naming the endpoint.
Result<int> connect_blocking(const Endpoint& endpoint, std::chrono::milliseconds timeout);

/// Connects to `endpoint` and learns the facts of export `export_name`
/// with NBD_OPT_INFO, then disconnects. Blocking: for the command line,
/// before any device or thread exists. Errors as connect_blocking and
/// Handshake::feed (an unknown export, TLS required, not fixed newstyle,
/// a malformed reply), or EPROTO for a server that hangs up mid-handshake.
Result<ExportInfo> probe_export(const Endpoint& endpoint, const std::string& export_name,
                                std::chrono::milliseconds timeout);

/// One request, as a Connection sends it.
struct Op {
  uint16_t type = kCmdRead;               ///< kCmd*
  uint16_t flags = 0;                     ///< kCmdFlag*
  uint64_t offset = 0;                    ///< byte offset on the export
  uint32_t length = 0;                    ///< bytes
  std::byte* read_into = nullptr;         ///< READ: where the `length` bytes go
  const std::byte* write_from = nullptr;  ///< WRITE: the `length` bytes to send
  /// >= 0: READ and WRITE data is in io_uring fixed buffer `fixed_buffer`
  /// of the current core's ring, and read_into / write_from are its
  /// address as io_uring sees it in that buffer, never dereferenced here:
  /// null for a ublk request's pages in zero-copy mode (such a buffer
  /// starts at address 0), the user address for a buffer registered from
  /// this process's memory (Reactor::register_buffers). The reply's
  /// data is then received with IORING_OP_READ_FIXED on the socket and a
  /// write's payload sent with IORING_OP_WRITE_FIXED: no copy through this
  /// process. Only on a connection opened for fixed buffers (see
  /// ClientConfig::fixed_buffers); elsewhere the request fails with -EINVAL.
  int fixed_buffer = -1;
};

/// One NBD connection in the transmission phase, owned by the reactor core
/// that opened it: every member must be called on that core.
///
/// Requests are sent in order through one sender (many headers and write
/// payloads per sendmsg), and replies, in any order, are matched to their
/// requests by handle (slot index and a generation, so a stale handle never
/// matches). A reply is accepted only for a request in flight; anything
/// else (unknown handle, a chunk outside its request, an oversized chunk, a
/// bad magic) is a protocol error that drops the connection.
///
/// When the connection drops (end of stream, an error, a protocol error, a
/// server that replies ESHUTDOWN, or close()), every request in flight
/// completes with -ENOTCONN, and so does every later one: the caller may
/// re-send them elsewhere. A request's buffer is not touched after its
/// completion.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// Connects to `endpoint` and negotiates export `export_name` with
  /// NBD_OPT_GO, within `timeout`. Error as probe_export, or ETIMEDOUT.
  /// With `fixed_buffers`, requests may use Op::fixed_buffer (see
  /// ClientConfig::fixed_buffers); without, such a request fails with
  /// -EINVAL.
  static runtime::Task<Result<std::shared_ptr<Connection>>> open(const Endpoint& endpoint, std::string export_name,
                                                                 std::chrono::milliseconds timeout,
                                                                 bool fixed_buffers = false);
  /// Negotiates on `fd`, a connected stream socket the connection takes
  /// over (closed on failure too). For tests over a socketpair.
  static runtime::Task<Result<std::shared_ptr<Connection>>> handshake(int fd, std::string export_name,
                                                                      std::chrono::milliseconds timeout,
                                                                      bool fixed_buffers = false);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// The export's facts from the handshake.
  const ExportInfo& info() const noexcept { return info_; }
  /// False once the connection dropped.
  bool alive() const noexcept { return alive_; }
  /// Why the connection dropped (empty while alive or after close()).
  const std::string& failure() const noexcept { return failure_; }
  /// Requests sent and not yet completed.
  std::size_t in_flight() const noexcept { return in_flight_; }
  /// How long the oldest request in flight has waited for its reply, or to
  /// be sent whole, at `now` (zero with none in flight). O(requests ever
  /// in flight at once).
  std::chrono::steady_clock::duration oldest_request_age(std::chrono::steady_clock::time_point now) const noexcept;

  /// Sends `op` and waits for its reply: 0, -errno from the server's error
  /// (EIO for a read reply that did not cover the request), or -ENOTCONN
  /// when the connection dropped first. `op`'s buffer must stay valid
  /// until then.
  runtime::Task<int> submit(Op op);
  /// Reads `buffer.size()` bytes at `offset` (see submit).
  runtime::Task<int> read(uint64_t offset, std::span<std::byte> buffer);
  /// Writes `data` at `offset`, durably first with `fua` (see submit).
  runtime::Task<int> write(uint64_t offset, std::span<const std::byte> data, bool fua);
  /// Makes completed writes durable (see submit).
  runtime::Task<int> flush();
  /// Discards `length` bytes at `offset` (see submit).
  runtime::Task<int> trim(uint64_t offset, uint32_t length);
  /// Makes `length` bytes at `offset` read as zeros; `no_hole` keeps them
  /// allocated (see submit).
  runtime::Task<int> write_zeroes(uint64_t offset, uint32_t length, bool no_hole);

  /// Drops the connection (a hard disconnect): see the class.
  void close() noexcept;

  /// Changes (writes, write-zeroes and trims without FUA) the server has
  /// acknowledged on this connection and no successful flush sent after
  /// their replies covers yet. A server with a write cache
  /// (kFlagSendFlush) may still hold them only there; such a server can
  /// lose them when this connection drops, and a flush on another
  /// connection does not promise to cover them.
  std::uint64_t unflushed_changes() const noexcept { return acked_changes_ - flushed_changes_; }
  /// From now on, when this connection drops with unflushed changes on a
  /// server that has a write cache, sets `lost` (release) and logs one line
  /// naming `name`. A null `lost` stops that (a client shutting down).
  void report_lost_changes_to(std::atomic<bool>* lost, std::string name);

 private:
  struct Slot;
  class Handler;
  struct ReplyAwait;
  Connection(int fd, const ExportInfo& info, bool fixed_buffers);
  runtime::Task<void> run_sender();
  static runtime::Task<void> run_reader(std::shared_ptr<Connection> self);
  void drop(std::string why) noexcept;
  void wake_if_finished(Slot& slot) noexcept;
  PendingRequest* find(uint64_t handle) noexcept;
  void complete(uint64_t handle, int result) noexcept;

  /// The reader's buffer for reply headers and small read data; a read of
  /// at least this much is "large" (see run_reader).
  static constexpr std::size_t kReceiveBuffer = 64 * 1024;

  int fd_;
  ExportInfo info_;
  // Requests may use fixed buffers: the reader then never receives past a
  // reply header into its buffer (a fixed-buffer read's data has no
  // address there), whatever is in flight when it starts a receive.
  bool fixed_buffers_;
  bool alive_ = true;
  bool sending_ = false;
  std::string failure_;
  std::size_t in_flight_ = 0;
  // See unflushed_changes: changes acknowledged, and how many of the first
  // of them a successful flush covers (those acknowledged before it was
  // submitted; the server replied to them before it saw the flush).
  std::uint64_t acked_changes_ = 0;
  std::uint64_t flushed_changes_ = 0;
  std::atomic<bool>* lost_changes_ = nullptr;  // see report_lost_changes_to
  std::string lost_changes_name_;
  // Reads in flight whose data must not pass through the reader's buffer:
  // those of kReceiveBuffer bytes or more, and every fixed-buffer read.
  std::size_t large_reads_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;  // stable addresses: the sender's iovecs point into them
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> send_queue_;     // slots waiting for the sender
  std::vector<uint32_t> sending_batch_;  // slots in the sender's current sendmsg
  std::vector<iovec> sending_iov_;       // their headers and payloads
};

/// How a Client reaches its export and how long it tries to get it back.
struct ClientConfig {
  Endpoint endpoint;                                   ///< the server
  std::string export_name;                             ///< the export
  std::chrono::milliseconds reconnect_timeout{30000};  ///< how long requests wait for a new connection
  std::chrono::milliseconds connect_timeout{5000};     ///< one connection attempt's limit
  std::chrono::milliseconds first_backoff{100};        ///< the first pause between attempts (doubled each time)
  std::chrono::milliseconds max_backoff{2000};         ///< the longest pause between attempts
  std::string name = "nbd";                            ///< names the client in its log lines
  /// A request in flight this long without its reply, on a connection
  /// that is still up (a server that stopped answering), drops the
  /// connection: its requests are re-sent on a new one, within
  /// reconnect_timeout as after any drop. Zero: no limit.
  std::chrono::milliseconds request_timeout{30000};
  /// Not empty: the bytes the export must hold at offset 0 on every
  /// connection the client opens (a storage tier puts its header block
  /// there). A connection that reads anything else reached another export,
  /// or a server that lost its data: the client then fails for good (every
  /// waiting and later operation gets -EIO, and it never connects again).
  std::vector<std::byte> identity;
  /// Operations may use Op::fixed_buffer (a ublk target in zero-copy
  /// mode). Its connections then ask for simple replies, which carry all
  /// of a read's data and never a hole to zero, and receive every reply
  /// header on its own, so that read data always goes to its request.
  bool fixed_buffers = false;
  /// Not null: set (release) when a connection of this client drops while
  /// the server, which has a write cache, holds changes it acknowledged and
  /// no flush has covered (Connection::unflushed_changes). A flush on
  /// another connection cannot bring them back: the owner (NbdTarget)
  /// fails every later FLUSH with EIO. Must outlive the client.
  std::atomic<bool>* lost_changes = nullptr;
};

/// A reconnecting NBD client for one reactor core.
///
/// Each operation runs on the current Connection. When that drops, the
/// operation waits while a background task connects again (pauses of
/// first_backoff, doubled up to max_backoff), then re-sends the request on
/// the new connection. Every connection, the first included, must show
/// the export size and the read-only, write-cache (SEND_FLUSH), FUA and
/// multi-conn flags the client was made with. If no connection comes back
/// within reconnect_timeout of the drop (counted from the first drop since
/// the last successful reply), every waiting operation fails with -EIO, and
/// so does every later one, except that a later operation tries one new
/// connection (at most once a second), so the client recovers when the
/// server returns. One operation also fails with -EIO once it has been
/// without a reply for reconnect_timeout since its own first drop, however
/// the server answers others. A write completes only when the server
/// acknowledged it.
///
/// All members must be called on the core that made the Client; it must
/// outlive its operations and the runtime's reactor (its background task
/// refers to it).
class Client {
 public:
  /// A client that will reach `config`'s export, expecting `expected`'s
  /// size and its read-only, write-cache, FUA and multi-conn flags (from
  /// probe_export).
  Client(ClientConfig config, const ExportInfo& expected);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Opens the first connection. 0, or the open's -errno (the client then
  /// keeps trying in the background, as after a drop).
  runtime::Task<int> start();
  /// Runs `op` (see Connection::submit), across reconnections: 0, the
  /// server's -errno, or -EIO when no connection came back in time.
  runtime::Task<int> submit(Op op);
  /// True while a Connection is up.
  bool connected() const noexcept { return conn_ != nullptr && conn_->alive(); }
  /// Connections opened after the first.
  uint64_t reconnects() const noexcept { return reconnects_; }
  /// True while the client has given up: no connection came back within
  /// the reconnect timeout, or gone(). Operations then fail with -EIO.
  bool failed() const noexcept { return failed_; }
  /// True once the client failed for good: an export whose first bytes
  /// were not ClientConfig::identity.
  bool gone() const noexcept { return gone_; }
  /// Drops the current connection (in-flight requests are re-sent on the
  /// next one). For tests and for a server known to be gone.
  void drop_connection() noexcept;
  /// Stops reconnecting and fails every waiting and later operation with
  /// -EIO. Called before the client goes away.
  void shut_down() noexcept;

 private:
  using Clock = std::chrono::steady_clock;
  struct Park;
  runtime::Task<std::shared_ptr<Connection>> connection();
  static runtime::Task<void> reconnect(Client* self, Clock::time_point deadline);
  void lost(const std::shared_ptr<Connection>& c);
  void wake_all() noexcept;
  runtime::Task<std::string> check_identity(Connection& c);
  // Set when the client goes away, so that its watchdog (which may still
  // sleep) never touches it again.
  struct WatchdogState {
    bool client_gone = false;
  };
  static runtime::Task<void> watch_requests(Client* self, std::shared_ptr<WatchdogState> state);

  ClientConfig config_;
  ExportInfo expected_;
  std::shared_ptr<Connection> conn_;
  bool reconnecting_ = false;
  bool failed_ = false;
  bool shut_down_ = false;
  bool gone_ = false;                // failed for good: the export is not the one expected (identity)
  bool reported_swallowed_ = false;  // submit logged a request that timed out on every connection
  bool outage_ = false;
  Clock::time_point outage_since_{};
  Clock::time_point last_try_{};
  uint64_t reconnects_ = 0;
  bool started_ = false;
  std::vector<runtime::Waiter> waiting_;
  std::shared_ptr<WatchdogState> watchdog_;  // null until start() spawned the watchdog
};

}  // namespace coblk::nbd
