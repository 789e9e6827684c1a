// The NBD wire protocol as pure functions: request encoding, the
// fixed-newstyle handshake and the reply parser, fed scripted bytes in
// pieces of every size.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "coblk/ublk/nbd_protocol.h"
#include "test/ublk/nbd_fake_server.h"

BOOST_AUTO_TEST_SUITE(ublk_nbd_protocol_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using nbd_test::Bytes;

namespace {

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Runs a handshake against `server` (all the bytes the server sends, in
// order), feeding wanted() bytes at a time. Returns the error, or "" when
// done; `sent` collects what the client sent.
std::string run_handshake(nbd::Handshake& hs, const Bytes& server, Bytes* sent = nullptr) {
  std::size_t at = 0;
  for (;;) {
    const Bytes out = hs.take_output();
    if (sent != nullptr) sent->insert(sent->end(), out.begin(), out.end());
    if (hs.done()) return "";
    const std::size_t want = hs.wanted();
    if (want == 0) return "stalled";
    if (at + want > server.size()) return "eof";
    Result<void> r = hs.feed({server.data() + at, want});
    at += want;
    if (!r) return r.error().message() + " [" + std::to_string(r.error().code()) + "]";
  }
}

Bytes good_go_replies(uint32_t option, uint64_t size, uint16_t flags) {
  return cat({nbd_test::info_export(option, size, flags), nbd_test::info_block_size(option, 512, 4096, 1 << 20),
              nbd_test::option_reply(option, nbd::kRepAck)});
}

// A handler with a table of requests, recording completions.
struct Table final : nbd::ReplyHandler {
  std::map<uint64_t, nbd::PendingRequest> pending;
  std::map<uint64_t, int> completed;
  std::map<uint64_t, Bytes> buffers;

  void add(uint64_t handle, uint16_t type, uint64_t offset, uint32_t length) {
    buffers[handle].assign(length, std::byte{0xee});
    pending[handle] = nbd::PendingRequest{type, offset, length, buffers[handle].data(), 0, 0};
  }
  nbd::PendingRequest* find(uint64_t handle) override {
    auto it = pending.find(handle);
    return it == pending.end() ? nullptr : &it->second;
  }
  void complete(uint64_t handle, int result) override {
    BOOST_TEST(completed.count(handle) == 0);
    completed[handle] = result;
    pending.erase(handle);
  }
};

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  return v;
}

// Feeds `stream` to a fresh parser in pieces of `piece` bytes.
Result<void> feed_in_pieces(nbd::ReplyParser& parser, Table& t, const Bytes& stream, std::size_t piece) {
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const std::size_t n = std::min(piece, stream.size() - at);
    if (Result<void> r = parser.feed({stream.data() + at, n}, t); !r) return r;
  }
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_request_header_is_28_bytes_in_network_order) {
  const auto h = nbd::encode_request(nbd::kCmdWrite, nbd::kCmdFlagFua, 0x0102030405060708ULL, 0x1000, 0x200);
  const Bytes expected = cat(
      {{std::byte{0x25}, std::byte{0x60}, std::byte{0x95}, std::byte{0x13}},
       {std::byte{0}, std::byte{1}, std::byte{0}, std::byte{1}},
       {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}, std::byte{6}, std::byte{7}, std::byte{8}},
       {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0x10},
        std::byte{0}},
       {std::byte{0}, std::byte{0}, std::byte{2}, std::byte{0}}});
  BOOST_TEST(Bytes(h.begin(), h.end()) == expected);
}

BOOST_AUTO_TEST_CASE(server_error_values_map_to_errnos) {
  BOOST_TEST(nbd::errno_from_nbd(1) == EPERM);
  BOOST_TEST(nbd::errno_from_nbd(5) == EIO);
  BOOST_TEST(nbd::errno_from_nbd(12) == ENOMEM);
  BOOST_TEST(nbd::errno_from_nbd(22) == EINVAL);
  BOOST_TEST(nbd::errno_from_nbd(28) == ENOSPC);
  BOOST_TEST(nbd::errno_from_nbd(75) == EOVERFLOW);
  BOOST_TEST(nbd::errno_from_nbd(95) == ENOTSUP);
  BOOST_TEST(nbd::errno_from_nbd(108) == ESHUTDOWN);
  BOOST_TEST(nbd::errno_from_nbd(12345) == EIO);
}

BOOST_AUTO_TEST_CASE(go_handshake_learns_size_flags_block_sizes_and_structured_replies) {
  nbd::Handshake hs("disk", nbd::HandshakeGoal::go);
  const uint16_t flags = nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim;
  const Bytes server = cat({nbd_test::greeting(), nbd_test::option_reply(nbd::kOptStructuredReply, nbd::kRepAck),
                            good_go_replies(nbd::kOptGo, 8 << 20, flags)});
  Bytes sent;
  BOOST_TEST(run_handshake(hs, server, &sent) == "");
  BOOST_TEST(hs.info().size == 8u << 20);
  BOOST_TEST(hs.info().flags == flags);
  BOOST_TEST(hs.info().min_block == 512u);
  BOOST_TEST(hs.info().max_block == 1u << 20);
  BOOST_TEST(hs.info().block_sizes_known);
  BOOST_TEST(hs.info().structured_replies);
  // Client flags, then NBD_OPT_STRUCTURED_REPLY, then NBD_OPT_GO naming
  // the export and asking for the block sizes.
  BOOST_REQUIRE(sent.size() == 4 + 16 + 16 + 4 + 4 + 2 + 2);
  BOOST_TEST(nbd_test::get_be(sent.data(), 4) == (nbd::kClientFixedNewstyle | nbd::kClientNoZeroes));
  BOOST_TEST(nbd_test::get_be(sent.data() + 4 + 8, 4) == nbd::kOptStructuredReply);
  BOOST_TEST(nbd_test::get_be(sent.data() + 20 + 8, 4) == nbd::kOptGo);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sent.data()) + 40, 4) == "disk");
}

BOOST_AUTO_TEST_CASE(info_handshake_ends_with_an_abort) {
  nbd::Handshake hs("", nbd::HandshakeGoal::info);
  const Bytes server = cat({nbd_test::greeting(), nbd_test::option_reply(nbd::kOptStructuredReply, nbd::kRepErrUnsup),
                            good_go_replies(nbd::kOptInfo, 4096, nbd::kFlagHasFlags)});
  Bytes sent;
  BOOST_TEST(run_handshake(hs, server, &sent) == "");
  BOOST_TEST(!hs.info().structured_replies);  // an error reply just means simple replies
  BOOST_REQUIRE(sent.size() >= 16);
  BOOST_TEST(nbd_test::get_be(sent.data() + sent.size() - 16 + 8, 4) == nbd::kOptAbort);
}

BOOST_AUTO_TEST_CASE(a_server_without_go_is_entered_with_export_name) {
  nbd::Handshake hs("x", nbd::HandshakeGoal::go);
  Bytes old_reply;
  nbd_test::put_be(old_reply, 1 << 20, 8);
  nbd_test::put_be(old_reply, nbd::kFlagHasFlags | nbd::kFlagReadOnly, 2);
  const Bytes server = cat({nbd_test::greeting(), nbd_test::option_reply(nbd::kOptStructuredReply, nbd::kRepErrUnsup),
                            nbd_test::option_reply(nbd::kOptGo, nbd::kRepErrUnsup), old_reply});
  BOOST_TEST(run_handshake(hs, server) == "");
  BOOST_TEST(hs.info().size == 1u << 20);
  BOOST_TEST((hs.info().flags & nbd::kFlagReadOnly) != 0);
}

BOOST_AUTO_TEST_CASE(bad_servers_fail_the_handshake_with_one_line) {
  struct Case {
    const char* what;
    Bytes server;
    const char* expect;
  };
  Bytes oldstyle;
  nbd_test::put_be(oldstyle, nbd::kInitPasswd, 8);
  nbd_test::put_be(oldstyle, nbd::kOldstyleMagic, 8);
  nbd_test::put_be(oldstyle, 0, 2);
  Bytes not_nbd(18, std::byte{'H'});
  Bytes oversized;
  nbd_test::put_be(oversized, nbd::kOptionReplyMagic, 8);
  nbd_test::put_be(oversized, nbd::kOptStructuredReply, 4);
  nbd_test::put_be(oversized, nbd::kRepAck, 4);
  nbd_test::put_be(oversized, 1 << 30, 4);
  const Bytes ack = nbd_test::option_reply(nbd::kOptStructuredReply, nbd::kRepAck);
  Bytes msg;
  for (char c : std::string("use TLS\n")) msg.push_back(static_cast<std::byte>(c));
  const std::vector<Case> cases = {
      {"not NBD", not_nbd, "not an NBD server"},
      {"oldstyle", oldstyle, "oldstyle"},
      {"newstyle without fixed", nbd_test::greeting(0), "fixed-newstyle"},
      {"TLS required",
       cat({nbd_test::greeting(), nbd_test::option_reply(nbd::kOptStructuredReply, nbd::kRepErrTlsReqd, msg)}),
       "requires TLS"},
      {"unknown export", cat({nbd_test::greeting(), ack, nbd_test::option_reply(nbd::kOptGo, nbd::kRepErrUnknown)}),
       "has no export"},
      {"oversized option reply", cat({nbd_test::greeting(), oversized}), "malformed"},
      {"reply to another option", cat({nbd_test::greeting(), nbd_test::option_reply(nbd::kOptGo, nbd::kRepAck)}),
       "malformed"},
      {"ack without size", cat({nbd_test::greeting(), ack, nbd_test::option_reply(nbd::kOptGo, nbd::kRepAck)}),
       "without telling its size"},
      {"empty export", cat({nbd_test::greeting(), ack, good_go_replies(nbd::kOptGo, 0, 1)}), "empty"},
      {"bad block sizes", cat({nbd_test::greeting(), ack, nbd_test::info_block_size(nbd::kOptGo, 3, 4096, 1 << 20)}),
       "NBD_INFO_BLOCK_SIZE"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      nbd::Handshake hs("disk", nbd::HandshakeGoal::go);
      const std::string error = run_handshake(hs, c.server);
      BOOST_TEST(error.find(c.expect) != std::string::npos, error);
      BOOST_TEST(error.find('\n') == std::string::npos);
      BOOST_TEST(!hs.done());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_simple_read_reply_is_parsed_from_pieces_of_any_size) {
  const Bytes data = pattern(3000, 1);
  const Bytes stream = cat({nbd_test::simple_reply(7, 0, data), nbd_test::simple_reply(9, 28)});
  for (std::size_t piece : {1, 2, 3, 15, 16, 17, 1000, 5000}) {
    BOOST_TEST_CONTEXT("piece " << piece) {
      Table t;
      t.add(7, nbd::kCmdRead, 4096, 3000);
      t.add(9, nbd::kCmdWrite, 0, 512);
      nbd::ReplyParser parser(false);
      BOOST_TEST(feed_in_pieces(parser, t, stream, piece).ok());
      BOOST_TEST(t.completed[7] == 0);
      BOOST_TEST(t.completed[9] == -ENOSPC);
      BOOST_TEST(t.buffers[7] == data);
      BOOST_TEST(parser.idle());
    }
  }
}

BOOST_AUTO_TEST_CASE(structured_chunks_out_of_order_and_holes_reassemble_a_read) {
  const Bytes data = pattern(4096, 3);
  Table t;
  t.add(1, nbd::kCmdRead, 8192, 4096);
  t.add(2, nbd::kCmdRead, 0, 1024);
  Bytes hole;
  nbd_test::put_be(hole, 8192 + 1024, 8);
  nbd_test::put_be(hole, 1024, 4);
  const Bytes stream = cat({
      nbd_test::data_chunk(1, 8192 + 2048, data.data() + 2048, 2048, false),
      nbd_test::data_chunk(2, 0, data.data(), 1024, true),  // interleaved with request 1's chunks
      nbd_test::chunk(1, nbd::kReplyOffsetHole, 0, hole),
      nbd_test::data_chunk(1, 8192, data.data(), 1024, false),
      nbd_test::chunk(1, nbd::kReplyNone, nbd::kReplyFlagDone, {}),
  });
  nbd::ReplyParser parser(true);
  BOOST_TEST(feed_in_pieces(parser, t, stream, 7).ok());
  BOOST_TEST(t.completed[1] == 0);
  BOOST_TEST(t.completed[2] == 0);
  Bytes expected = data;
  std::fill(expected.begin() + 1024, expected.begin() + 2048, std::byte{0});
  BOOST_TEST(t.buffers[1] == expected);
  BOOST_TEST(Bytes(t.buffers[2].begin(), t.buffers[2].end()) == Bytes(data.begin(), data.begin() + 1024));
}

BOOST_AUTO_TEST_CASE(error_chunks_and_missing_data_fail_the_request_not_the_stream) {
  Table t;
  t.add(1, nbd::kCmdRead, 0, 4096);
  t.add(2, nbd::kCmdRead, 0, 4096);
  t.add(3, nbd::kCmdWrite, 0, 4096);
  t.add(4, nbd::kCmdFlush, 0, 0);
  const Bytes data = pattern(4096, 5);
  Bytes unknown_error;
  nbd_test::put_be(unknown_error, 5, 4);
  nbd_test::put_be(unknown_error, 0, 2);
  const Bytes stream = cat({
      nbd_test::error_chunk(1, 1, "denied"),
      nbd_test::data_chunk(2, 0, data.data(), 100, true),  // success claimed, 3996 bytes short
      nbd_test::error_chunk(3, 28, "full", false),
      nbd_test::chunk(3, nbd::kReplyNone, nbd::kReplyFlagDone, {}),
      nbd_test::chunk(4, (1U << 15) + 99, nbd::kReplyFlagDone, unknown_error),
  });
  nbd::ReplyParser parser(true);
  BOOST_TEST(parser.feed(stream, t).ok());
  BOOST_TEST(t.completed[1] == -EPERM);
  BOOST_TEST(t.completed[2] == -EIO);
  BOOST_TEST(t.completed[3] == -ENOSPC);
  BOOST_TEST(t.completed[4] == -EIO);
}

BOOST_AUTO_TEST_CASE(protocol_violations_are_errors_and_never_touch_memory_outside_a_request) {
  const Bytes data = pattern(8192, 9);
  Bytes big_error;
  nbd_test::put_be(big_error, 5, 4);
  nbd_test::put_be(big_error, 0, 2);
  big_error.resize(nbd::kMaxControlChunk + 1);
  Bytes long_message;
  nbd_test::put_be(long_message, 5, 4);
  nbd_test::put_be(long_message, 100, 2);
  Bytes hole_over_data;  // [4096, 4096 + 2048): overlaps the data chunk at 4096 + 1024
  nbd_test::put_be(hole_over_data, 4096, 8);
  nbd_test::put_be(hole_over_data, 2048, 4);
  Bytes hole_outside;
  nbd_test::put_be(hole_outside, 6000, 8);
  nbd_test::put_be(hole_outside, 4096, 4);
  struct Case {
    const char* what;
    bool structured;
    Bytes stream;
  };
  const std::vector<Case> cases = {
      {"bad magic", true, Bytes(16, std::byte{0x11})},
      {"unknown handle", true, nbd_test::simple_reply(99, 0)},
      {"unknown handle in a chunk", true, nbd_test::chunk(99, nbd::kReplyNone, nbd::kReplyFlagDone, {})},
      {"data before the request", true, nbd_test::data_chunk(1, 0, data.data(), 100, true)},
      {"data past the request", true, nbd_test::data_chunk(1, 4096 + 4000, data.data(), 200, true)},
      {"data longer than the request", true, nbd_test::data_chunk(1, 4096, data.data(), 8192, true)},
      {"overlapping data", true,
       cat({nbd_test::data_chunk(1, 4096, data.data(), 4096, false),
            nbd_test::data_chunk(1, 4096, data.data(), 1, true)})},
      {"overlapping data that adds up to the request (half of it never sent)", true,
       cat({nbd_test::data_chunk(1, 4096, data.data(), 2048, false),
            nbd_test::data_chunk(1, 4096, data.data(), 2048, true)})},
      {"a hole over data already sent", true,
       cat({nbd_test::data_chunk(1, 4096 + 1024, data.data(), 4096 - 1024, false),
            nbd_test::chunk(1, nbd::kReplyOffsetHole, nbd::kReplyFlagDone, hole_over_data)})},
      {"hole outside the request", true, nbd_test::chunk(1, nbd::kReplyOffsetHole, 0, hole_outside)},
      {"oversized error chunk", true, nbd_test::chunk(1, nbd::kReplyError, nbd::kReplyFlagDone, big_error)},
      {"error message past its chunk", true, nbd_test::chunk(1, nbd::kReplyError, nbd::kReplyFlagDone, long_message)},
      {"unknown chunk type", true, nbd_test::chunk(1, 77, nbd::kReplyFlagDone, {})},
      {"data chunk for a write", true, nbd_test::data_chunk(2, 0, data.data(), 10, true)},
      {"none chunk not last", true, nbd_test::chunk(1, nbd::kReplyNone, 0, {})},
      {"structured without negotiation", false, nbd_test::chunk(1, nbd::kReplyNone, nbd::kReplyFlagDone, {})},
      {"simple read reply with structured replies", true, nbd_test::simple_reply(1, 0)},
      {"a simple success after an error chunk for a write", true,
       cat({nbd_test::error_chunk(2, 5, "io", false), nbd_test::simple_reply(2, 0)})},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      Table t;
      t.add(1, nbd::kCmdRead, 4096, 4096);
      t.add(2, nbd::kCmdWrite, 0, 4096);
      nbd::ReplyParser parser(c.structured);
      Result<void> r = parser.feed(c.stream, t);
      BOOST_TEST(!r.ok());
      if (!r.ok()) BOOST_TEST(r.error().code() == EPROTO);
      BOOST_TEST(t.completed.count(1) == 0);
      BOOST_TEST(t.completed.count(2) == 0);  // a write is never taken for done
      // The parser stays failed.
      BOOST_TEST(!parser.feed(nbd_test::simple_reply(2, 0), t).ok());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_read_in_more_pieces_than_are_tracked_fails_with_eio_and_adjacent_pieces_merge) {
  const Bytes data = pattern(4096, 11);
  Table scattered;
  scattered.add(1, nbd::kCmdRead, 0, 4096);
  Table in_order;
  in_order.add(1, nbd::kCmdRead, 0, 4096);
  Bytes backwards;  // 64 pieces of 64 bytes, last first: each joins the piece after it
  Bytes forwards;   // the same pieces in order: they merge into one
  for (unsigned k = 0; k < 64; ++k) {
    const unsigned back = 63 - k;
    backwards = cat({backwards, nbd_test::data_chunk(1, back * 64, data.data() + back * 64, 64, false)});
    forwards = cat({forwards, nbd_test::data_chunk(1, k * 64, data.data() + k * 64, 64, false)});
  }
  // Every other piece first, then the rest: 32 separate pieces at once.
  Bytes gaps;
  for (unsigned k = 0; k < 64; k += 2)
    gaps = cat({gaps, nbd_test::data_chunk(1, k * 64, data.data() + k * 64, 64, false)});
  for (unsigned k = 1; k < 64; k += 2)
    gaps = cat({gaps, nbd_test::data_chunk(1, k * 64, data.data() + k * 64, 64, false)});
  const Bytes done = nbd_test::chunk(1, nbd::kReplyNone, nbd::kReplyFlagDone, {});
  nbd::ReplyParser p1(true);
  BOOST_TEST(p1.feed(cat({backwards, done}), in_order).ok());
  BOOST_TEST(in_order.completed[1] == 0);
  BOOST_TEST(in_order.buffers[1] == data);
  nbd::ReplyParser p2(true);
  BOOST_TEST(p2.feed(cat({gaps, done}), scattered).ok());
  BOOST_TEST(scattered.completed[1] == -EIO);
  Table again;
  again.add(1, nbd::kCmdRead, 0, 4096);
  nbd::ReplyParser p3(true);
  BOOST_TEST(p3.feed(cat({forwards, done}), again).ok());
  BOOST_TEST(again.completed[1] == 0);
}

BOOST_AUTO_TEST_CASE(direct_span_lets_read_data_be_received_in_place) {
  const Bytes data = pattern(10000, 4);
  Table t;
  t.add(5, nbd::kCmdRead, 0, 10000);
  nbd::ReplyParser parser(true);
  const Bytes stream = nbd_test::data_chunk(5, 0, data.data(), data.size(), true);
  // Header and offset through feed, then the data straight into the buffer.
  BOOST_TEST(parser.feed({stream.data(), 28}, t).ok());
  std::span<std::byte> direct = parser.direct_span(t);
  BOOST_REQUIRE(direct.size() == 10000u);
  std::memcpy(direct.data(), data.data(), 6000);
  parser.direct_filled(6000, t);
  direct = parser.direct_span(t);
  BOOST_REQUIRE(direct.size() == 4000u);
  std::memcpy(direct.data(), data.data() + 6000, 4000);
  parser.direct_filled(4000, t);
  BOOST_TEST(t.completed[5] == 0);
  BOOST_TEST(t.buffers[5] == data);
  BOOST_TEST(parser.direct_span(t).empty());
}

// A read without an address in this process (zero copy: its buffer is an
// io_uring fixed buffer) is received through direct_range by position; any
// of its data fed through the parser, or a hole chunk for it, is refused
// instead of written through a null pointer.
BOOST_AUTO_TEST_CASE(a_read_without_a_buffer_is_received_by_position_and_never_fed) {
  const Bytes data = pattern(9000, 3);
  {
    Table t;
    t.add(7, nbd::kCmdRead, 4096, 9000);
    t.pending[7].data = nullptr;
    nbd::ReplyParser parser(false);
    const Bytes stream = nbd_test::simple_reply(7, 0, data);
    BOOST_TEST(parser.feed({stream.data(), 16}, t).ok());
    BOOST_TEST(parser.direct_span(t).empty());
    nbd::ReplyParser::DirectRange r = parser.direct_range(t);
    BOOST_REQUIRE(r.request != nullptr);
    BOOST_TEST(r.handle == 7u);
    BOOST_TEST(r.position == 0u);
    BOOST_TEST(r.length == 9000u);
    parser.direct_filled(5000, t);
    r = parser.direct_range(t);
    BOOST_TEST(r.position == 5000u);
    BOOST_TEST(r.length == 4000u);
    BOOST_TEST(t.completed.count(7) == 0u);
    parser.direct_filled(4000, t);
    BOOST_TEST(t.completed[7] == 0);
    BOOST_TEST(parser.direct_range(t).request == nullptr);
  }
  {
    Table t;
    t.add(8, nbd::kCmdRead, 0, 9000);
    t.pending[8].data = nullptr;
    nbd::ReplyParser parser(false);
    const Bytes stream = nbd_test::simple_reply(8, 0, data);
    BOOST_TEST(!parser.feed(stream, t).ok());
    BOOST_TEST(t.completed.count(8) == 0u);
  }
  {
    Table t;
    t.add(9, nbd::kCmdRead, 0, 4096);
    t.pending[9].data = nullptr;
    nbd::ReplyParser parser(true);
    Bytes hole;
    nbd_test::put_be(hole, 0, 8);
    nbd_test::put_be(hole, 4096, 4);
    const Bytes stream = nbd_test::chunk(9, nbd::kReplyOffsetHole, nbd::kReplyFlagDone, hole);
    BOOST_TEST(!parser.feed(stream, t).ok());
    BOOST_TEST(t.completed.count(9) == 0u);
  }
}

// A handshake without structured replies (a connection for fixed buffers)
// goes from the greeting straight to NBD_OPT_GO.
BOOST_AUTO_TEST_CASE(a_handshake_may_decline_structured_replies) {
  nbd::Handshake hs("disk", nbd::HandshakeGoal::go, /*structured_replies=*/false);
  const Bytes server = cat({nbd_test::greeting(), good_go_replies(nbd::kOptGo, 8 << 20, nbd::kFlagHasFlags)});
  Bytes sent;
  BOOST_TEST(run_handshake(hs, server, &sent) == "");
  BOOST_TEST(!hs.info().structured_replies);
  BOOST_REQUIRE(sent.size() == 4 + 16 + 4 + 4 + 2 + 2);
  BOOST_TEST(nbd_test::get_be(sent.data() + 4 + 8, 4) == nbd::kOptGo);
}

// nbd::Connection's reader, while a large read is in flight, feeds at most
// bytes_before_data() and receives all read data through direct_span: no
// byte of a read's data may pass through feed() then, in either reply form,
// next to replies without data, holes and errors.
BOOST_AUTO_TEST_CASE(fed_at_most_bytes_before_data_the_parser_leaves_every_read_byte_for_direct_receive) {
  const Bytes data = pattern(8192, 5);
  for (const bool structured : {false, true}) {
    BOOST_TEST_CONTEXT("structured " << structured) {
      Table t;
      t.add(1, nbd::kCmdRead, 0, 8192);
      t.add(2, nbd::kCmdWrite, 0, 512);
      t.add(3, nbd::kCmdRead, 8192, 4096);
      t.add(4, nbd::kCmdRead, 0, 4096);
      Bytes stream;
      if (structured) {
        Bytes hole;
        nbd_test::put_be(hole, 8192, 8);
        nbd_test::put_be(hole, 4096, 4);
        stream = cat({nbd_test::simple_reply(2, 0), nbd_test::data_chunk(1, 4096, data.data() + 4096, 4096, false),
                      nbd_test::chunk(3, nbd::kReplyOffsetHole, nbd::kReplyFlagDone, hole),
                      nbd_test::data_chunk(1, 0, data.data(), 4096, true), nbd_test::error_chunk(4, 5, "bad")});
      } else {
        stream = cat({nbd_test::simple_reply(2, 0), nbd_test::simple_reply(1, 0, data), nbd_test::simple_reply(3, 5),
                      nbd_test::simple_reply(4, 0, Bytes(data.begin(), data.begin() + 4096))});
      }
      nbd::ReplyParser parser(structured);
      std::size_t at = 0;
      std::size_t direct_bytes = 0;
      while (at < stream.size()) {
        const std::span<std::byte> direct = parser.direct_span(t);
        if (!direct.empty()) {
          std::memcpy(direct.data(), stream.data() + at, direct.size());
          parser.direct_filled(direct.size(), t);
          at += direct.size();
          direct_bytes += direct.size();
          continue;
        }
        const std::size_t n = std::min(parser.bytes_before_data(), stream.size() - at);
        BOOST_REQUIRE(n != 0u);
        BOOST_REQUIRE(parser.feed({stream.data() + at, n}, t).ok());
        at += n;
      }
      BOOST_TEST(direct_bytes == (structured ? 8192u : 8192u + 4096u));  // every data byte, none through feed()
      BOOST_TEST(t.completed[1] == 0);
      BOOST_TEST(t.completed[2] == 0);
      BOOST_TEST(t.completed[3] == (structured ? 0 : -EIO));
      BOOST_TEST(t.completed[4] == (structured ? -EIO : 0));
      BOOST_TEST(t.buffers[1] == data);
      BOOST_TEST(parser.idle());
      BOOST_TEST(parser.bytes_before_data() == (structured ? 28u : 16u));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_nbd_protocol_test
