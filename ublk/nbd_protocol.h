// ublk/nbd_protocol.h - the NBD wire protocol as pure functions: request encoding, handshake, reply parsing.
#pragma once

// Nothing here does I/O: the handshake and the reply parser are state
// machines fed with the bytes a socket delivered, in pieces of any size, so
// that the same code runs over blocking sockets (coblk add's probe), over
// the runtime's io_uring sockets (nbd::Connection), in tests with scripted
// bytes, and under libFuzzer. The protocol is NetworkBlockDevice's
// doc/proto.md: fixed-newstyle negotiation with NBD_OPT_GO (or NBD_OPT_INFO)
// and structured replies; no TLS, no extended headers, no block status.
//
// A malicious or broken server cannot make the parser write outside a
// request's buffer: every data chunk is checked against the request it
// names, every length against a bound, and any violation is a protocol
// error after which the connection must be dropped.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::nbd {

/// 'NBDMAGIC', the first 8 bytes a server sends.
inline constexpr uint64_t kInitPasswd = 0x4e42444d41474943ULL;
/// 'IHAVEOPT': the newstyle greeting's second magic, and every option's prefix.
inline constexpr uint64_t kIHaveOpt = 0x49484156454F5054ULL;
/// The oldstyle greeting's second magic (refused: no options, no export names).
inline constexpr uint64_t kOldstyleMagic = 0x00420281861253ULL;
/// Magic of every option reply in fixed-newstyle negotiation.
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9ULL;
/// Magic of a transmission request.
inline constexpr uint32_t kRequestMagic = 0x25609513U;
/// Magic of a simple reply.
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698U;
/// Magic of a structured reply chunk.
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33efU;

/// Handshake flags (server) and client flags.
inline constexpr uint16_t kFlagFixedNewstyle = 1U << 0;    ///< server speaks fixed newstyle
inline constexpr uint16_t kFlagNoZeroes = 1U << 1;         ///< server may skip the 124 zero bytes
inline constexpr uint32_t kClientFixedNewstyle = 1U << 0;  ///< client flag: fixed newstyle
inline constexpr uint32_t kClientNoZeroes = 1U << 1;       ///< client flag: no 124 zero bytes

/// Option codes (client to server during negotiation).
enum Option : uint32_t {
  kOptExportName = 1,      ///< enter transmission (old way, no error replies)
  kOptAbort = 2,           ///< end negotiation
  kOptList = 3,            ///< list exports
  kOptStartTls = 5,        ///< upgrade to TLS (not used: TLS is out of scope)
  kOptInfo = 6,            ///< describe an export, stay in negotiation
  kOptGo = 7,              ///< describe an export and enter transmission
  kOptStructuredReply = 8  ///< use structured replies in transmission
};

/// Option reply types; those with bit 31 set are errors.
enum OptionReply : uint32_t {
  kRepAck = 1,                             ///< the option succeeded
  kRepServer = 2,                          ///< an export of NBD_OPT_LIST
  kRepInfo = 3,                            ///< an NBD_INFO_* item of NBD_OPT_INFO / NBD_OPT_GO
  kRepErrUnsup = (1U << 31) + 1,           ///< option unknown to the server
  kRepErrPolicy = (1U << 31) + 2,          ///< refused by the server's policy
  kRepErrInvalid = (1U << 31) + 3,         ///< malformed option
  kRepErrPlatform = (1U << 31) + 4,        ///< not supported on the server's platform
  kRepErrTlsReqd = (1U << 31) + 5,         ///< the server requires TLS first
  kRepErrUnknown = (1U << 31) + 6,         ///< no such export
  kRepErrShutdown = (1U << 31) + 7,        ///< the server is shutting down
  kRepErrBlockSizeReqd = (1U << 31) + 8,   ///< the client must honour block sizes
  kRepErrTooBig = (1U << 31) + 9,          ///< request too big
  kRepErrExtHeaderReqd = (1U << 31) + 10,  ///< the server requires extended headers
};

/// NBD_INFO_* item types in an NBD_REP_INFO reply.
enum InfoType : uint16_t {
  kInfoExport = 0,       ///< size and transmission flags
  kInfoName = 1,         ///< the export's name
  kInfoDescription = 2,  ///< a description
  kInfoBlockSize = 3,    ///< minimum, preferred and maximum block sizes
};

/// Transmission flags: what the export supports.
inline constexpr uint16_t kFlagHasFlags = 1U << 0;         ///< always set by servers
inline constexpr uint16_t kFlagReadOnly = 1U << 1;         ///< writes are refused
inline constexpr uint16_t kFlagSendFlush = 1U << 2;        ///< NBD_CMD_FLUSH (the server has a write cache)
inline constexpr uint16_t kFlagSendFua = 1U << 3;          ///< NBD_CMD_FLAG_FUA
inline constexpr uint16_t kFlagRotational = 1U << 4;       ///< seeks are costly
inline constexpr uint16_t kFlagSendTrim = 1U << 5;         ///< NBD_CMD_TRIM
inline constexpr uint16_t kFlagSendWriteZeroes = 1U << 6;  ///< NBD_CMD_WRITE_ZEROES
inline constexpr uint16_t kFlagSendDf = 1U << 7;           ///< NBD_CMD_FLAG_DF
inline constexpr uint16_t kFlagCanMultiConn = 1U << 8;     ///< flush and FUA are visible across connections

/// Commands of the transmission phase.
enum Command : uint16_t {
  kCmdRead = 0,         ///< read `length` bytes at `offset`
  kCmdWrite = 1,        ///< write the `length` bytes that follow the header
  kCmdDisc = 2,         ///< disconnect (no reply)
  kCmdFlush = 3,        ///< make completed writes durable
  kCmdTrim = 4,         ///< discard a range
  kCmdWriteZeroes = 6,  ///< make a range read as zeros
};

/// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1U << 0;     ///< reply only once the data is durable
inline constexpr uint16_t kCmdFlagNoHole = 1U << 1;  ///< WRITE_ZEROES: keep the range allocated

/// Structured reply chunk flags and types.
inline constexpr uint16_t kReplyFlagDone = 1U << 0;  ///< the last chunk of its reply
/// Structured reply chunk types; those with bit 15 set are errors.
enum ReplyType : uint16_t {
  kReplyNone = 0,                      ///< no payload (ends a reply)
  kReplyOffsetData = 1,                ///< 64-bit offset, then data
  kReplyOffsetHole = 2,                ///< 64-bit offset, 32-bit length of zeros
  kReplyError = (1U << 15) + 1,        ///< 32-bit error, 16-bit message length, message
  kReplyErrorOffset = (1U << 15) + 2,  ///< as kReplyError, then a 64-bit offset
};

/// Bytes of a request header, of a simple reply, of a structured chunk header.
inline constexpr std::size_t kRequestHeaderSize = 28;
inline constexpr std::size_t kSimpleReplySize = 16;       ///< simple reply header bytes
inline constexpr std::size_t kStructuredHeaderSize = 20;  ///< structured chunk header bytes
/// The longest option reply payload accepted during negotiation; longer is
/// a malformed reply (names and messages are at most 4096 bytes by spec).
inline constexpr uint32_t kMaxOptionReply = 64 * 1024;
/// The longest non-data chunk payload accepted (an error chunk carries at
/// most a 4096-byte message).
inline constexpr uint32_t kMaxControlChunk = 16 * 1024;

/// What the handshake learned about an export.
struct ExportInfo {
  uint64_t size = 0;                ///< bytes
  uint16_t flags = 0;               ///< transmission flags (kFlag*)
  uint32_t min_block = 1;           ///< smallest request unit the server accepts
  uint32_t preferred_block = 4096;  ///< the server's preferred request unit
  uint32_t max_block = 32U << 20;   ///< the largest request payload the server accepts
  bool block_sizes_known = false;   ///< the server sent NBD_INFO_BLOCK_SIZE
  bool structured_replies = false;  ///< NBD_OPT_STRUCTURED_REPLY was acknowledged
};

/// The positive errno for an NBD error value (EPERM, EIO, ENOMEM, EINVAL,
/// ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN as the spec defines them); any
/// other non-zero value is EIO.
int errno_from_nbd(uint32_t error) noexcept;

/// A transmission request header, in network byte order.
std::array<std::byte, kRequestHeaderSize> encode_request(uint16_t type, uint16_t flags, uint64_t handle,
                                                         uint64_t offset, uint32_t length) noexcept;

/// Printable text of at most 200 characters from bytes a server sent (an
/// error message, an export name): control and non-ASCII bytes become '?'.
std::string printable(std::span<const std::byte> bytes);

/// What the handshake ends with.
enum class HandshakeGoal : uint8_t {
  go,    ///< NBD_OPT_GO: the connection enters transmission
  info,  ///< NBD_OPT_INFO then NBD_OPT_ABORT: only learn the export's facts
};

/// The client side of fixed-newstyle negotiation, as a state machine.
///
/// Use: while !done(): send take_output() if non-empty, read exactly
/// wanted() bytes, feed() them. feed() returns an Error (one line, for the
/// user) when the server is not a fixed-newstyle NBD server, refuses the
/// export (unknown, TLS required, policy), or sends a malformed reply; the
/// connection is then unusable. After done(), take_output() may still hold
/// bytes to send (the NBD_OPT_ABORT of the info goal).
///
/// Steps: greeting; NBD_OPT_STRUCTURED_REPLY (an error reply only means
/// simple replies); NBD_OPT_GO or NBD_OPT_INFO asking for the block sizes;
/// a server that does not know NBD_OPT_GO gets NBD_OPT_EXPORT_NAME.
class Handshake {
 public:
  /// A handshake for export `export_name` (empty: the server's default),
  /// asking for structured replies unless `structured_replies` is false
  /// (then every read reply is one header and all of the read's data).
  Handshake(std::string export_name, HandshakeGoal goal, bool structured_replies = true);

  /// Bytes to read before the next feed(); 0 once done() or failed.
  std::size_t wanted() const noexcept { return want_; }
  /// Bytes the client must send now (cleared by the call).
  std::vector<std::byte> take_output();
  /// Feeds exactly wanted() bytes. Error EPROTO (not NBD, oldstyle, not
  /// fixed newstyle, malformed), ENOENT (no such export), EACCES (TLS
  /// required, policy), ESHUTDOWN, EINVAL (bad export facts), or another
  /// refusal as EIO; the message is one line naming the reason.
  Result<void> feed(std::span<const std::byte> bytes);
  /// True when negotiation ended successfully.
  bool done() const noexcept { return state_ == State::done; }
  /// The export's facts; complete once done().
  const ExportInfo& info() const noexcept { return info_; }

 private:
  enum class State : uint8_t { greeting, reply_header, reply_payload, export_name_reply, done, failed };
  void send_option(uint32_t option, std::span<const std::byte> data);
  void send_go_or_info();
  Result<void> on_reply(std::span<const std::byte> payload);
  Result<void> finish();
  Result<void> fail(int code, std::string message);

  std::string export_name_;
  HandshakeGoal goal_;
  bool ask_structured_;
  State state_ = State::greeting;
  std::size_t want_;
  std::vector<std::byte> out_;
  ExportInfo info_;
  bool no_zeroes_ = false;
  bool export_info_seen_ = false;
  uint32_t option_ = 0;      // the option awaiting its reply
  uint32_t reply_type_ = 0;  // of the reply whose payload comes next
};

/// What the reply parser needs of a request in flight. The parser never
/// keeps a pointer to one past the call that received it.
struct PendingRequest {
  uint16_t type = 0;    ///< kCmd*
  uint64_t offset = 0;  ///< the request's offset
  uint32_t length = 0;  ///< the request's length
  /// READ: `length` bytes the reply fills. Null for a read whose buffer
  /// is not addressable here (an io_uring fixed buffer): its data must be
  /// received through ReplyParser::direct_range(), never fed.
  std::byte* data = nullptr;
  uint32_t received = 0;  ///< READ, structured: bytes covered by data and hole chunks so far
  int error = 0;          ///< structured: the first error chunk's errno (positive), 0 if none
  /// Most separate covered pieces tracked per read; a reply in more pieces
  /// than this (never seen from nbdkit or qemu-nbd) fails with EIO.
  static constexpr unsigned max_pieces = 16;
  /// A covered piece of a structured read, [begin, end) from its offset.
  struct Piece {
    uint32_t begin = 0;  ///< first byte covered
    uint32_t end = 0;    ///< one past the last
  };
  /// READ, structured: the bytes covered so far, sorted, disjoint, adjacent
  /// ones merged, so that chunks that overlap (and could leave other bytes
  /// of the buffer stale while adding up to the length) are refused.
  Piece pieces[max_pieces];
  uint8_t piece_count = 0;  ///< pieces in use
};

/// Where the reply parser finds requests and reports their completion.
class ReplyHandler {
 public:
  virtual ~ReplyHandler() = default;
  /// The request in flight with `handle`, or nullptr (an unknown handle is
  /// a protocol error). Valid until complete() for that handle.
  virtual PendingRequest* find(uint64_t handle) = 0;
  /// The request with `handle` has its reply: `result` is 0 or a negative
  /// errno (from the server's error, or -EIO for a read the server claimed
  /// without covering it). Called once per request; the request is no
  /// longer in flight afterwards.
  virtual void complete(uint64_t handle, int result) = 0;
};

/// The transmission phase's reply stream, parsed incrementally.
///
/// feed() takes whatever bytes the socket delivered (any split), copies read
/// data straight into the requests' buffers, and completes requests through
/// the handler. An Error (EPROTO, one line) means the server broke the
/// protocol (bad magic, unknown handle, a chunk outside its request, an
/// oversized chunk, a structured chunk without negotiation); the stream
/// cannot be resynchronised and the connection must be dropped. After an
/// error every further feed() fails the same way.
class ReplyParser {
 public:
  /// A parser for a connection that did (`structured`) or did not
  /// negotiate structured replies.
  explicit ReplyParser(bool structured) noexcept : structured_(structured) {}

  /// Consumes all of `bytes`, or fails (see the class).
  Result<void> feed(std::span<const std::byte> bytes, ReplyHandler& handler);

  /// Where the read data being received goes, as a position in a request.
  struct DirectRange {
    PendingRequest* request = nullptr;  ///< null: no read data is being received
    uint64_t handle = 0;                ///< the request's handle
    uint32_t position = 0;              ///< byte of the request's data the next byte goes to
    uint32_t length = 0;                ///< bytes of this chunk's data still to come
  };
  /// While a reply's read data is being received: the request and the part
  /// of its data still to come, so that the caller can receive straight
  /// into it (then call direct_filled); request null otherwise. The way
  /// for a request whose `data` is null. Valid until the next call.
  DirectRange direct_range(ReplyHandler& handler) noexcept;
  /// direct_range() as a span of the request's `data`; empty when no read
  /// data is being received, or its request has no `data`.
  std::span<std::byte> direct_span(ReplyHandler& handler) noexcept;
  /// Tells the parser that `n` bytes (at most direct_span().size()) were
  /// received into direct_span(); completes the request if that ended it.
  void direct_filled(std::size_t n, ReplyHandler& handler);

  /// How many bytes feed() can take now with none of them read data: the
  /// rest of the reply header (and of a data chunk's offset) before the
  /// next possible read data, or of a control chunk; at least 1, except 0
  /// while read data is being received (then use direct_span()). A caller
  /// that receives at most this much into its own buffer leaves every
  /// read's data in the socket, to be received straight into the request's
  /// buffer with no copy (nbd::Connection does so while large reads are in
  /// flight).
  std::size_t bytes_before_data() const noexcept;

  /// True between replies (no partial header or payload buffered): a
  /// connection that ends here lost no half-received reply.
  bool idle() const noexcept { return state_ == State::header && have_ == 0; }

 private:
  enum class State : uint8_t { header, simple_data, chunk_offset, chunk_data, chunk_control, failed };
  Result<void> on_header(ReplyHandler& handler);
  Result<void> on_chunk_offset(ReplyHandler& handler);
  Result<void> on_control_chunk(ReplyHandler& handler);
  void end_chunk(ReplyHandler& handler);
  Result<void> fail(std::string message);

  bool structured_;
  State state_ = State::header;
  std::array<std::byte, kStructuredHeaderSize> header_{};
  std::size_t have_ = 0;  // bytes of header_ (or control_) filled
  // The reply being received.
  uint64_t handle_ = 0;
  uint16_t chunk_flags_ = 0;
  uint16_t chunk_type_ = 0;
  uint32_t chunk_length_ = 0;
  uint32_t data_pos_ = 0;   // where in the request's buffer the next data byte goes
  uint32_t remaining_ = 0;  // bytes of data still to come
  std::vector<std::byte> control_;
};

}  // namespace coblk::nbd
