// Fuzzes ublk/nbd_protocol.h: the transmission reply parser on any byte
// stream a server could send, and the handshake on any server greeting and
// option replies.
//
// Input: byte 0 selects the mode (bit 0: structured replies negotiated;
// bit 1: fuzz the handshake instead; bits 2-7: the piece size of the split
// run); the rest is what the server sends.
//
// Reply parser, against four requests in flight (two reads in exact-size
// heap buffers, so ASan catches any write outside them, a write and a
// flush), the stream is parsed four ways: whole, in pieces, in pieces
// with read data received through direct_span, and as nbd::Connection does
// while a large read is in flight (feed() at most bytes_before_data(), all
// read data through direct_span); and a fifth way, as a zero-copy
// connection does: the reads have no buffer in the parser's view (their
// data is an io_uring fixed buffer), feed() gets at most
// bytes_before_data(), and read data goes by direct_range's position into
// a shadow of each buffer. Checks:
//   - no crash and no access outside a request's buffer;
//   - an error is EPROTO with one non-empty line, and the parser stays failed;
//   - each request completes at most once, with 0 or a negative errno, and
//     only requests in flight complete;
//   - a structured read that succeeded was covered by exactly its length;
//   - the four ways agree on completions, results, buffer contents and
//     whether (and at which point of the stream) the parser failed;
//   - the zero-copy way agrees with the fourth wherever it did not fail (it
//     fails where a structured hole chunk would have to zero a buffer it
//     cannot address), and always without structured replies;
//   - fed at most bytes_before_data(), the parser never takes read data:
//     whenever it then wants data, direct_span is all of that reply's or
//     chunk's data, as its header (the bytes just fed) says.
// Handshake: fed wanted() bytes at a time, it ends done, failed with a
// one-line error, or wanting more than the input has; never wants 0 bytes
// while neither; a done handshake has a non-zero size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coblk/ublk/nbd_protocol.h"
#include "test/fuzz/check.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

struct Request {
  uint16_t type;
  uint64_t offset;
  uint32_t length;
};
// Handles look like Connection's: a generation above a slot index.
constexpr uint64_t kHandles[] = {0x0000000100000000ULL, 0x0000000100000001ULL, 0x0000000700000002ULL, 3};
constexpr Request kRequests[] = {
    {nbd::kCmdRead, 4096, 4096}, {nbd::kCmdRead, 0, 1}, {nbd::kCmdWrite, 512, 512}, {nbd::kCmdFlush, 0, 0}};

struct Outcome {
  std::map<uint64_t, int> completed;
  std::vector<std::vector<std::byte>> buffers;
  bool failed = false;
};

class Table final : public nbd::ReplyHandler {
 public:
  // `fixed`: the reads' buffers are not given to the parser (zero copy);
  // the caller fills them by position through shadow().
  explicit Table(bool fixed = false) {
    for (std::size_t i = 0; i < 4; ++i) {
      const Request& r = kRequests[i];
      // Exact size: a byte past the end is outside the allocation.
      buffers_[i].reset(r.length != 0 && r.type == nbd::kCmdRead ? new std::byte[r.length] : nullptr);
      if (buffers_[i]) std::memset(buffers_[i].get(), 0xa5, r.length);
      pending_[kHandles[i]] =
          nbd::PendingRequest{r.type, r.offset, r.length, fixed ? nullptr : buffers_[i].get(), 0, 0};
    }
  }
  // The buffer of the request with `handle`, and its length.
  std::span<std::byte> shadow(uint64_t handle) {
    for (std::size_t i = 0; i < 4; ++i) {
      if (kHandles[i] == handle) return {buffers_[i].get(), buffers_[i] ? kRequests[i].length : 0};
    }
    return {};
  }
  nbd::PendingRequest* find(uint64_t handle) override {
    auto it = pending_.find(handle);
    return it == pending_.end() ? nullptr : &it->second;
  }
  void complete(uint64_t handle, int result) override {
    auto it = pending_.find(handle);
    COBLK_FUZZ_CHECK(it != pending_.end(), "completed a request that is not in flight");
    COBLK_FUZZ_CHECK(outcome_.completed.count(handle) == 0, "a request completed twice");
    COBLK_FUZZ_CHECK(result <= 0 && result >= -4095, "result is neither 0 nor a negative errno");
    const nbd::PendingRequest& p = it->second;
    if (result == 0 && structured_ && p.type == nbd::kCmdRead)
      COBLK_FUZZ_CHECK(p.received == p.length, "a structured read succeeded without full coverage");
    outcome_.completed[handle] = result;
    pending_.erase(it);
  }
  Outcome finish(bool failed) {
    outcome_.failed = failed;
    for (std::size_t i = 0; i < 4; ++i) {
      if (buffers_[i]) outcome_.buffers.emplace_back(buffers_[i].get(), buffers_[i].get() + kRequests[i].length);
    }
    return std::move(outcome_);
  }
  bool structured_ = false;

 private:
  std::map<uint64_t, nbd::PendingRequest> pending_;
  std::unique_ptr<std::byte[]> buffers_[4];
  Outcome outcome_;
};

void check_error(const Result<void>& r) {
  COBLK_FUZZ_CHECK(r.error().code() == EPROTO, "a parser error that is not EPROTO");
  const std::string& m = r.error().message();
  COBLK_FUZZ_CHECK(!m.empty() && m.find('\n') == std::string::npos, "a parser error that is not one line");
}

uint64_t be(const std::byte* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

// Mode 3: the parser, fed up to `at`, wants read data (`direct`): that must
// be all the data its header announced, so that no byte of it went through
// feed(). The header ends at `at`: a simple reply's 16 bytes, or a data
// chunk's 20 and its 8-byte offset.
void check_untouched(const std::byte* data, std::size_t at, bool structured, std::span<std::byte> direct) {
  if (structured) {
    COBLK_FUZZ_CHECK(at >= 28, "a data chunk before a whole header");
    const uint64_t announced = be(data + at - 28 + 16, 4) - 8;
    COBLK_FUZZ_CHECK(direct.size() == announced, "feed() took read data it was not offered");
    return;
  }
  COBLK_FUZZ_CHECK(at >= 16, "read data before a whole header");
  const uint64_t handle = be(data + at - 16 + 8, 8);
  for (std::size_t i = 0; i < 4; ++i) {
    if (kHandles[i] == handle)
      COBLK_FUZZ_CHECK(direct.size() == kRequests[i].length, "feed() took read data it was not offered");
  }
}

// mode 0: whole; 1: pieces; 2: pieces, read data through direct_span; 3:
// at most bytes_before_data() through feed(), read data through direct_span;
// 4: as 3, with the reads' buffers out of the parser's sight, filled by
// direct_range's position.
Outcome parse(const std::byte* data, std::size_t size, bool structured, std::size_t piece, int mode) {
  Table t(mode == 4);
  t.structured_ = structured;
  nbd::ReplyParser parser(structured);
  std::size_t at = 0;
  bool failed = false;
  while (at < size && !failed) {
    if (mode == 4) {
      const nbd::ReplyParser::DirectRange direct = parser.direct_range(t);
      if (direct.request != nullptr) {
        COBLK_FUZZ_CHECK(direct.length != 0, "direct_range with nothing to receive");
        const std::span<std::byte> to = t.shadow(direct.handle);
        COBLK_FUZZ_CHECK(direct.position <= to.size() && direct.length <= to.size() - direct.position,
                         "direct_range outside its request");
        const std::size_t n = std::min<std::size_t>({direct.length, size - at, piece});
        std::memcpy(to.data() + direct.position, data + at, n);
        parser.direct_filled(n, t);
        at += n;
        continue;
      }
      const std::size_t n = std::min(parser.bytes_before_data(), size - at);
      const Result<void> r = parser.feed({data + at, n}, t);
      at += n;
      if (!r) {
        check_error(r);
        failed = true;
      }
      continue;
    }
    if (mode == 3) {
      const std::span<std::byte> direct = parser.direct_span(t);
      if (!direct.empty()) {
        const std::size_t n = std::min(direct.size(), size - at);
        std::memcpy(direct.data(), data + at, n);
        parser.direct_filled(n, t);
        at += n;
        continue;
      }
      const std::size_t want = parser.bytes_before_data();
      COBLK_FUZZ_CHECK(want != 0, "bytes_before_data() is 0 outside read data");
      const std::size_t n = std::min(want, size - at);
      const Result<void> r = parser.feed({data + at, n}, t);
      at += n;
      if (!r) {
        check_error(r);
        failed = true;
        continue;
      }
      const std::span<std::byte> next = parser.direct_span(t);
      if (!next.empty()) check_untouched(data, at, structured, next);
      continue;
    }
    if (mode == 2) {
      const std::span<std::byte> direct = parser.direct_span(t);
      if (!direct.empty()) {
        const std::size_t n = std::min<std::size_t>({direct.size(), size - at, piece});
        std::memcpy(direct.data(), data + at, n);
        parser.direct_filled(n, t);
        at += n;
        continue;
      }
    }
    const std::size_t n = mode == 0 ? size : std::min(piece, size - at);
    const Result<void> r = parser.feed({data + at, n}, t);
    at += n;
    if (!r) {
      check_error(r);
      failed = true;
      const std::byte more[1] = {std::byte{0}};
      COBLK_FUZZ_CHECK(!parser.feed(more, t), "a failed parser accepted more bytes");
    }
  }
  return t.finish(failed);
}

void fuzz_handshake(const std::byte* data, std::size_t size, bool info) {
  nbd::Handshake hs("export", info ? nbd::HandshakeGoal::info : nbd::HandshakeGoal::go);
  std::size_t at = 0;
  for (;;) {
    (void)hs.take_output();
    if (hs.done()) {
      COBLK_FUZZ_CHECK(hs.info().size != 0, "a done handshake with an empty export");
      return;
    }
    const std::size_t want = hs.wanted();
    COBLK_FUZZ_CHECK(want != 0, "a handshake that is neither done nor failed wants nothing");
    if (want > size - at) return;
    const Result<void> r = hs.feed({data + at, want});
    at += want;
    if (!r) {
      const std::string& m = r.error().message();
      COBLK_FUZZ_CHECK(!m.empty() && m.find('\n') == std::string::npos, "a handshake error that is not one line");
      COBLK_FUZZ_CHECK(hs.wanted() == 0 && !hs.done(), "a failed handshake goes on");
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, std::size_t size) {
  if (size == 0) return 0;
  const auto mode = raw[0];
  const auto* data = reinterpret_cast<const std::byte*>(raw + 1);
  --size;
  const bool structured = (mode & 1) != 0;
  if ((mode & 2) != 0) {
    fuzz_handshake(data, size, structured);
    return 0;
  }
  const std::size_t piece = 1 + (mode >> 2);
  const Outcome whole = parse(data, size, structured, piece, 0);
  const Outcome split = parse(data, size, structured, piece, 1);
  const Outcome direct = parse(data, size, structured, piece, 2);
  const Outcome exact = parse(data, size, structured, piece, 3);
  const Outcome fixed = parse(data, size, structured, piece, 4);
  if (!structured || !fixed.failed) {
    COBLK_FUZZ_CHECK(
        fixed.failed == exact.failed && fixed.completed == exact.completed && fixed.buffers == exact.buffers,
        "reads into buffers the parser cannot address end differently from reads into its own");
  }
  COBLK_FUZZ_CHECK(whole.failed == split.failed && whole.failed == direct.failed && whole.failed == exact.failed,
                   "the parser fails or not depending on how the stream is split");
  COBLK_FUZZ_CHECK(
      whole.completed == split.completed && whole.completed == direct.completed && whole.completed == exact.completed,
      "completions depend on how the stream is split");
  COBLK_FUZZ_CHECK(whole.buffers == split.buffers && whole.buffers == direct.buffers && whole.buffers == exact.buffers,
                   "read data depends on how the stream is split");
  return 0;
}
