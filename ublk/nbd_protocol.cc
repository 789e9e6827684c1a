#include "coblk/ublk/nbd_protocol.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace coblk::nbd {
namespace {

uint16_t be16(const std::byte* p) noexcept {
  return static_cast<uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
uint32_t be32(const std::byte* p) noexcept { return (uint32_t{be16(p)} << 16) | be16(p + 2); }
uint64_t be64(const std::byte* p) noexcept { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

void put16(std::byte* p, uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
void put32(std::byte* p, uint32_t v) noexcept {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
void put64(std::byte* p, uint64_t v) noexcept {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

void append16(std::vector<std::byte>& out, uint16_t v) {
  std::byte b[2];
  put16(b, v);
  out.insert(out.end(), b, b + 2);
}
void append32(std::vector<std::byte>& out, uint32_t v) {
  std::byte b[4];
  put32(b, v);
  out.insert(out.end(), b, b + 4);
}
void append64(std::vector<std::byte>& out, uint64_t v) {
  std::byte b[8];
  put64(b, v);
  out.insert(out.end(), b, b + 8);
}

bool power_of_two(uint32_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

// The server's message, if any, as ": message".
std::string with_message(std::span<const std::byte> payload) {
  const std::string text = printable(payload);
  return text.empty() ? std::string() : ": " + text;
}

}  // namespace

int errno_from_nbd(uint32_t error) noexcept {
  switch (error) {
    case 1:
      return EPERM;
    case 5:
      return EIO;
    case 12:
      return ENOMEM;
    case 22:
      return EINVAL;
    case 28:
      return ENOSPC;
    case 75:
      return EOVERFLOW;
    case 95:
      return ENOTSUP;
    case 108:
      return ESHUTDOWN;
    default:
      return EIO;
  }
}

std::array<std::byte, kRequestHeaderSize> encode_request(uint16_t type, uint16_t flags, uint64_t handle,
                                                         uint64_t offset, uint32_t length) noexcept {
  std::array<std::byte, kRequestHeaderSize> out{};
  put32(out.data(), kRequestMagic);
  put16(out.data() + 4, flags);
  put16(out.data() + 6, type);
  put64(out.data() + 8, handle);
  put64(out.data() + 16, offset);
  put32(out.data() + 24, length);
  return out;
}

std::string printable(std::span<const std::byte> bytes) {
  std::string out;
  const std::size_t n = std::min<std::size_t>(bytes.size(), 200);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = std::to_integer<unsigned char>(bytes[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return out;
}

// ---- Handshake ----

Handshake::Handshake(std::string export_name, HandshakeGoal goal, bool structured_replies)
    : export_name_(std::move(export_name)), goal_(goal), ask_structured_(structured_replies), want_(18) {}

std::vector<std::byte> Handshake::take_output() { return std::exchange(out_, {}); }

void Handshake::send_option(uint32_t option, std::span<const std::byte> data) {
  append64(out_, kIHaveOpt);
  append32(out_, option);
  append32(out_, static_cast<uint32_t>(data.size()));
  out_.insert(out_.end(), data.begin(), data.end());
  option_ = option;
}

void Handshake::send_go_or_info() {
  std::vector<std::byte> data;
  append32(data, static_cast<uint32_t>(export_name_.size()));
  const auto* name = reinterpret_cast<const std::byte*>(export_name_.data());
  data.insert(data.end(), name, name + export_name_.size());
  append16(data, 1);  // one information request: the block sizes
  append16(data, kInfoBlockSize);
  send_option(goal_ == HandshakeGoal::go ? kOptGo : kOptInfo, data);
  state_ = State::reply_header;
  want_ = 20;
}

Result<void> Handshake::fail(int code, std::string message) {
  state_ = State::failed;
  want_ = 0;
  return Error(code, std::move(message));
}

Result<void> Handshake::finish() {
  if (info_.size == 0) return fail(EINVAL, "export " + quote_for_message(export_name_) + " is empty (0 bytes)");
  if (goal_ == HandshakeGoal::info && option_ == kOptInfo) {
    std::vector<std::byte> none;
    send_option(kOptAbort, none);  // a soft disconnect; its reply is not awaited
  }
  state_ = State::done;
  want_ = 0;
  return {};
}

Result<void> Handshake::feed(std::span<const std::byte> bytes) {
  if (bytes.size() != want_ || want_ == 0) return fail(EINVAL, "NBD handshake fed the wrong number of bytes");
  const std::byte* p = bytes.data();
  switch (state_) {
    case State::greeting: {
      if (be64(p) != kInitPasswd) return fail(EPROTO, "not an NBD server: its greeting lacks NBDMAGIC");
      const uint64_t magic = be64(p + 8);
      if (magic == kOldstyleMagic)
        return fail(EPROTO,
                    "the NBD server speaks the oldstyle handshake; coblk needs fixed newstyle (named exports, "
                    "NBD_OPT_GO)");
      if (magic != kIHaveOpt) return fail(EPROTO, "not an NBD server: its greeting has an unknown magic");
      const uint16_t flags = be16(p + 16);
      if ((flags & kFlagFixedNewstyle) == 0)
        return fail(EPROTO, "the NBD server does not offer the fixed-newstyle handshake, which coblk needs");
      no_zeroes_ = (flags & kFlagNoZeroes) != 0;
      append32(out_, kClientFixedNewstyle | (no_zeroes_ ? kClientNoZeroes : 0));
      if (!ask_structured_) {
        send_go_or_info();  // simple replies: every read reply carries all its data
        return {};
      }
      send_option(kOptStructuredReply, {});
      state_ = State::reply_header;
      want_ = 20;
      return {};
    }
    case State::reply_header: {
      if (be64(p) != kOptionReplyMagic) return fail(EPROTO, "malformed NBD option reply: bad magic");
      if (be32(p + 8) != option_)
        return fail(EPROTO, "malformed NBD option reply: it answers option " + std::to_string(be32(p + 8)) +
                                " while option " + std::to_string(option_) + " was asked");
      reply_type_ = be32(p + 12);
      const uint32_t length = be32(p + 16);
      if (length > kMaxOptionReply)
        return fail(EPROTO, "malformed NBD option reply: " + std::to_string(length) + " bytes of payload");
      if (length != 0) {
        state_ = State::reply_payload;
        want_ = length;
        return {};
      }
      return on_reply({});
    }
    case State::reply_payload:
      return on_reply(bytes);
    case State::export_name_reply:
      info_.size = be64(p);
      info_.flags = be16(p + 8);
      export_info_seen_ = true;
      return finish();
    case State::done:
    case State::failed:
      break;
  }
  return fail(EINVAL, "NBD handshake fed after its end");
}

Result<void> Handshake::on_reply(std::span<const std::byte> payload) {
  const std::string name = quote_for_message(export_name_);
  if ((reply_type_ & (1U << 31)) != 0) {
    if (reply_type_ == kRepErrTlsReqd)
      return fail(EACCES, "the NBD server requires TLS, which coblk does not support (see docs/nbd.md)" +
                              with_message(payload));
    if (option_ == kOptStructuredReply) {
      info_.structured_replies = false;  // simple replies, then
      send_go_or_info();
      return {};
    }
    if ((option_ == kOptGo || option_ == kOptInfo) && reply_type_ == kRepErrUnsup) {
      // A server from before NBD_OPT_GO: the old way in, which has no error
      // replies (an unknown export just closes the connection).
      std::vector<std::byte> data(reinterpret_cast<const std::byte*>(export_name_.data()),
                                  reinterpret_cast<const std::byte*>(export_name_.data()) + export_name_.size());
      send_option(kOptExportName, data);
      state_ = State::export_name_reply;
      want_ = 10 + (no_zeroes_ ? 0 : 124);
      return {};
    }
    switch (reply_type_) {
      case kRepErrUnknown:
        return fail(ENOENT, "the NBD server has no export " + name + with_message(payload));
      case kRepErrPolicy:
        return fail(EACCES, "the NBD server refuses export " + name + " (policy)" + with_message(payload));
      case kRepErrShutdown:
        return fail(ESHUTDOWN, "the NBD server is shutting down" + with_message(payload));
      case kRepErrExtHeaderReqd:
        return fail(EPROTO,
                    "the NBD server requires extended headers, which coblk does not speak" + with_message(payload));
      default:
        return fail(EIO, "the NBD server refused export " + name + " (error reply " +
                             std::to_string(reply_type_ & ~(1U << 31)) + ")" + with_message(payload));
    }
  }
  if (option_ == kOptStructuredReply) {
    if (reply_type_ != kRepAck) return fail(EPROTO, "malformed NBD option reply to NBD_OPT_STRUCTURED_REPLY");
    info_.structured_replies = true;
    send_go_or_info();
    return {};
  }
  // NBD_OPT_GO or NBD_OPT_INFO.
  state_ = State::reply_header;
  want_ = 20;
  if (reply_type_ == kRepAck) {
    if (!export_info_seen_) return fail(EPROTO, "the NBD server accepted the export without telling its size");
    return finish();
  }
  if (reply_type_ != kRepInfo) return {};  // not for us; the spec says ignore
  if (payload.size() < 2) return fail(EPROTO, "malformed NBD_REP_INFO reply: no information type");
  const std::byte* p = payload.data();
  switch (be16(p)) {
    case kInfoExport:
      if (payload.size() != 12) return fail(EPROTO, "malformed NBD_INFO_EXPORT reply: wrong length");
      info_.size = be64(p + 2);
      info_.flags = be16(p + 10);
      export_info_seen_ = true;
      return {};
    case kInfoBlockSize: {
      if (payload.size() != 14) return fail(EPROTO, "malformed NBD_INFO_BLOCK_SIZE reply: wrong length");
      const uint32_t min = be32(p + 2);
      const uint32_t preferred = be32(p + 6);
      const uint32_t max = be32(p + 10);
      if (!power_of_two(min) || min > 65536 || !power_of_two(preferred) || preferred < min || max < preferred)
        return fail(EPROTO, "malformed NBD_INFO_BLOCK_SIZE reply: minimum " + std::to_string(min) + ", preferred " +
                                std::to_string(preferred) + ", maximum " + std::to_string(max));
      info_.min_block = min;
      info_.preferred_block = preferred;
      info_.max_block = max;
      info_.block_sizes_known = true;
      return {};
    }
    default:
      return {};  // a name or description: not needed
  }
}

// ---- ReplyParser ----

Result<void> ReplyParser::fail(std::string message) {
  state_ = State::failed;
  control_.assign(message.size(), std::byte{0});
  std::memcpy(control_.data(), message.data(), message.size());
  return Error(EPROTO, std::move(message));
}

Result<void> ReplyParser::feed(std::span<const std::byte> bytes, ReplyHandler& handler) {
  while (!bytes.empty()) {
    switch (state_) {
      case State::header: {
        std::size_t need = 4;
        if (have_ >= 4) {
          need = be32(header_.data()) == kSimpleReplyMagic ? kSimpleReplySize : kStructuredHeaderSize;
        }
        const std::size_t n = std::min(need - have_, bytes.size());
        std::memcpy(header_.data() + have_, bytes.data(), n);
        have_ += n;
        bytes = bytes.subspan(n);
        if (have_ == 4) {
          const uint32_t magic = be32(header_.data());
          if (magic == kStructuredReplyMagic && !structured_)
            return fail("malformed NBD reply: a structured reply chunk, but structured replies were not negotiated");
          if (magic != kSimpleReplyMagic && magic != kStructuredReplyMagic)
            return fail("malformed NBD reply: bad magic");
          continue;
        }
        if (have_ == need) {
          have_ = 0;
          if (Result<void> r = on_header(handler); !r) return r;
        }
        break;
      }
      case State::simple_data:
      case State::chunk_data: {
        PendingRequest* p = handler.find(handle_);
        if (p == nullptr) return fail("NBD reply data for a request no longer in flight");
        // A read without an address here (its buffer is an io_uring fixed
        // buffer) must be received through direct_range(); bytes of it in a
        // feed mean the caller broke that rule, and the stream is dropped.
        if (p->data == nullptr) return fail("NBD read data reached the reply buffer of a fixed-buffer read");
        const std::size_t n = std::min<std::size_t>(remaining_, bytes.size());
        std::memcpy(p->data + data_pos_, bytes.data(), n);
        bytes = bytes.subspan(n);
        direct_filled(n, handler);
        break;
      }
      case State::chunk_offset:
      case State::chunk_control: {
        const std::size_t need = state_ == State::chunk_offset ? 8 : chunk_length_;
        const std::size_t n = std::min(need - have_, bytes.size());
        if (state_ == State::chunk_offset) {
          std::memcpy(header_.data() + have_, bytes.data(), n);
        } else {
          std::memcpy(control_.data() + have_, bytes.data(), n);
        }
        have_ += n;
        bytes = bytes.subspan(n);
        if (have_ == need) {
          have_ = 0;
          Result<void> r = state_ == State::chunk_offset ? on_chunk_offset(handler) : on_control_chunk(handler);
          if (!r) return r;
        }
        break;
      }
      case State::failed:
        return Error(EPROTO, std::string(reinterpret_cast<const char*>(control_.data()), control_.size()));
    }
  }
  if (state_ == State::failed)
    return Error(EPROTO, std::string(reinterpret_cast<const char*>(control_.data()), control_.size()));
  return {};
}

Result<void> ReplyParser::on_header(ReplyHandler& handler) {
  const std::byte* h = header_.data();
  if (be32(h) == kSimpleReplyMagic) {
    const uint32_t error = be32(h + 4);
    handle_ = be64(h + 8);
    PendingRequest* p = handler.find(handle_);
    if (p == nullptr) return fail("NBD reply for an unknown handle");
    // A request the server began answering in chunks must end with a chunk
    // flagged DONE; a simple reply then would drop the error a chunk
    // already reported (a failed write or flush taken for done).
    if (p->error != 0 || p->received != 0)
      return fail("malformed NBD reply: a simple reply to a request already answered in structured chunks");
    if (error != 0) {
      handler.complete(handle_, -errno_from_nbd(error));
      return {};
    }
    if (p->type != kCmdRead || p->length == 0) {
      handler.complete(handle_, 0);
      return {};
    }
    if (structured_)
      return fail(
          "malformed NBD reply: a simple reply with data to a read, although structured replies were negotiated");
    data_pos_ = 0;
    remaining_ = p->length;
    state_ = State::simple_data;
    return {};
  }
  chunk_flags_ = be16(h + 4);
  chunk_type_ = be16(h + 6);
  handle_ = be64(h + 8);
  chunk_length_ = be32(h + 16);
  PendingRequest* p = handler.find(handle_);
  if (p == nullptr) return fail("NBD reply chunk for an unknown handle");
  switch (chunk_type_) {
    case kReplyNone:
      if (chunk_length_ != 0) return fail("malformed NBD reply: a NONE chunk with a payload");
      if ((chunk_flags_ & kReplyFlagDone) == 0) return fail("malformed NBD reply: a NONE chunk that is not the last");
      end_chunk(handler);
      return {};
    case kReplyOffsetData:
      if (p->type != kCmdRead) return fail("malformed NBD reply: a data chunk answering a request that is no read");
      if (chunk_length_ <= 8) return fail("malformed NBD reply: a data chunk without data");
      state_ = State::chunk_offset;
      return {};
    case kReplyOffsetHole:
      if (p->type != kCmdRead) return fail("malformed NBD reply: a hole chunk answering a request that is no read");
      if (chunk_length_ != 12) return fail("malformed NBD reply: a hole chunk of the wrong length");
      break;
    default:
      if ((chunk_type_ & (1U << 15)) == 0)
        return fail("malformed NBD reply: unknown chunk type " + std::to_string(chunk_type_));
      // An error chunk, known or not: 32-bit error, 16-bit message length.
      if (chunk_length_ < (chunk_type_ == kReplyErrorOffset ? 14U : 6U))
        return fail("malformed NBD reply: an error chunk too short for its fields");
      if (chunk_length_ > kMaxControlChunk)
        return fail("malformed NBD reply: an error chunk of " + std::to_string(chunk_length_) + " bytes");
      break;
  }
  control_.resize(chunk_length_);
  state_ = State::chunk_control;
  return {};
}

namespace {

// Records [begin, begin + length) of `p` as covered by a chunk. Returns
// false if it overlaps bytes already covered: a server that sends the same
// bytes twice could otherwise add up to the request's length while other
// bytes of the buffer were never written. A reply in more separate pieces
// than PendingRequest::max_pieces stops being tracked and fails the request
// with EIO instead.
bool record_piece(PendingRequest& p, uint32_t begin, uint32_t length) noexcept {
  const uint32_t end = begin + length;
  unsigned i = 0;
  while (i < p.piece_count && p.pieces[i].end <= begin) ++i;
  if (i < p.piece_count && p.pieces[i].begin < end) return false;
  const bool joins_previous = i > 0 && p.pieces[i - 1].end == begin;
  const bool joins_next = i < p.piece_count && p.pieces[i].begin == end;
  if (joins_previous && joins_next) {
    p.pieces[i - 1].end = p.pieces[i].end;
    for (unsigned k = i + 1; k < p.piece_count; ++k) p.pieces[k - 1] = p.pieces[k];
    --p.piece_count;
  } else if (joins_previous) {
    p.pieces[i - 1].end = end;
  } else if (joins_next) {
    p.pieces[i].begin = begin;
  } else if (p.piece_count == PendingRequest::max_pieces) {
    if (p.error == 0) p.error = EIO;
  } else {
    for (unsigned k = p.piece_count; k > i; --k) p.pieces[k] = p.pieces[k - 1];
    p.pieces[i] = {begin, end};
    ++p.piece_count;
  }
  return true;
}

}  // namespace

Result<void> ReplyParser::on_chunk_offset(ReplyHandler& handler) {
  PendingRequest* p = handler.find(handle_);
  if (p == nullptr) return fail("NBD reply chunk for a request no longer in flight");
  const uint64_t offset = be64(header_.data());
  const uint32_t length = chunk_length_ - 8;
  if (offset < p->offset || offset - p->offset > p->length || length > p->length - (offset - p->offset))
    return fail("malformed NBD reply: a data chunk outside its request");
  if (length > p->length - p->received) return fail("malformed NBD reply: data chunks cover more than the request");
  if (!record_piece(*p, static_cast<uint32_t>(offset - p->offset), length))
    return fail("malformed NBD reply: chunks overlap");
  p->received += length;
  data_pos_ = static_cast<uint32_t>(offset - p->offset);
  remaining_ = length;
  state_ = State::chunk_data;
  return {};
}

Result<void> ReplyParser::on_control_chunk(ReplyHandler& handler) {
  PendingRequest* p = handler.find(handle_);
  if (p == nullptr) return fail("NBD reply chunk for a request no longer in flight");
  const std::byte* c = control_.data();
  if (chunk_type_ == kReplyOffsetHole) {
    const uint64_t offset = be64(c);
    const uint32_t length = be32(c + 8);
    if (length == 0) return fail("malformed NBD reply: an empty hole chunk");
    if (offset < p->offset || offset - p->offset > p->length || length > p->length - (offset - p->offset))
      return fail("malformed NBD reply: a hole chunk outside its request");
    if (length > p->length - p->received) return fail("malformed NBD reply: data chunks cover more than the request");
    if (!record_piece(*p, static_cast<uint32_t>(offset - p->offset), length))
      return fail("malformed NBD reply: chunks overlap");
    // A fixed-buffer read has no address to zero here; its connections
    // negotiate simple replies, so a hole chunk for one is never valid.
    if (p->data == nullptr) return fail("malformed NBD reply: a hole chunk for a read without a buffer here");
    p->received += length;
    std::memset(p->data + (offset - p->offset), 0, length);
  } else {
    const uint32_t error = be32(c);
    const uint16_t message = be16(c + 4);
    const uint32_t fixed = chunk_type_ == kReplyErrorOffset ? 14 : 6;
    if (message > chunk_length_ - fixed) return fail("malformed NBD reply: an error message longer than its chunk");
    if (p->error == 0) p->error = error == 0 ? EIO : errno_from_nbd(error);
  }
  end_chunk(handler);
  return {};
}

void ReplyParser::end_chunk(ReplyHandler& handler) {
  state_ = State::header;
  if ((chunk_flags_ & kReplyFlagDone) == 0) return;
  PendingRequest* p = handler.find(handle_);
  if (p == nullptr) return;
  int result = 0;
  if (p->error != 0) {
    result = -p->error;
  } else if (p->type == kCmdRead && p->received != p->length) {
    result = -EIO;  // the server claimed success without sending all the data
  }
  handler.complete(handle_, result);
}

std::size_t ReplyParser::bytes_before_data() const noexcept {
  switch (state_) {
    case State::header:
      // Simple replies: a read's data follows its 16-byte header. Structured
      // replies: data follows a 20-byte chunk header and an 8-byte offset; a
      // simple reply there (16 bytes) never carries data, and is followed by
      // another header, so 28 bytes are data-free in every case.
      return (structured_ ? kStructuredHeaderSize + 8 : kSimpleReplySize) - have_;
    case State::chunk_offset:
      return 8 - have_;
    case State::chunk_control:
      return chunk_length_ - have_;  // on_header admits no empty control chunk
    case State::simple_data:
    case State::chunk_data:
      return 0;
    case State::failed:
      break;
  }
  return 1;  // a failed parser fails the next feed, whatever its size
}

ReplyParser::DirectRange ReplyParser::direct_range(ReplyHandler& handler) noexcept {
  if (state_ != State::simple_data && state_ != State::chunk_data) return {};
  PendingRequest* p = handler.find(handle_);
  if (p == nullptr) return {};
  return DirectRange{p, handle_, data_pos_, remaining_};
}

std::span<std::byte> ReplyParser::direct_span(ReplyHandler& handler) noexcept {
  const DirectRange r = direct_range(handler);
  if (r.request == nullptr || r.request->data == nullptr) return {};
  return {r.request->data + r.position, r.length};
}

void ReplyParser::direct_filled(std::size_t n, ReplyHandler& handler) {
  data_pos_ += static_cast<uint32_t>(n);
  remaining_ -= static_cast<uint32_t>(n);
  if (remaining_ != 0) return;
  if (state_ == State::simple_data) {
    state_ = State::header;
    handler.complete(handle_, 0);
  } else {
    end_chunk(handler);
  }
}

}  // namespace coblk::nbd
