// test/ublk/nbd_fake_server.h - a scriptable NBD server for in-process tests, on blocking sockets.
#pragma once

// Each helper is one protocol step of the server side, so a test scripts
// exactly the bytes it wants the client to see: short writes, replies out
// of order, error replies, malformed replies, a disconnect at any point.
// Helpers return false when the client went away (the script then ends).

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/ublk/nbd_protocol.h"

namespace coblk::nbd_test {

using Bytes = std::vector<std::byte>;

inline void put_be(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
inline uint64_t get_be(const std::byte* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

/// Writes all of `data`, `piece` bytes per send (0: all at once).
inline bool send_bytes(int fd, const Bytes& data, std::size_t piece = 0) {
  std::size_t done = 0;
  while (done < data.size()) {
    std::size_t n = data.size() - done;
    if (piece != 0 && n > piece) n = piece;
    const ssize_t w = ::send(fd, data.data() + done, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<std::size_t>(w);
  }
  return true;
}

inline bool recv_bytes(int fd, std::byte* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::recv(fd, out + done, n - done, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

/// The greeting: NBDMAGIC, IHAVEOPT, handshake flags.
inline Bytes greeting(uint16_t flags = nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes) {
  Bytes b;
  put_be(b, nbd::kInitPasswd, 8);
  put_be(b, nbd::kIHaveOpt, 8);
  put_be(b, flags, 2);
  return b;
}

/// One option reply.
inline Bytes option_reply(uint32_t option, uint32_t type, const Bytes& payload = {}) {
  Bytes b;
  put_be(b, nbd::kOptionReplyMagic, 8);
  put_be(b, option, 4);
  put_be(b, type, 4);
  put_be(b, payload.size(), 4);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

/// NBD_REP_INFO with NBD_INFO_EXPORT.
inline Bytes info_export(uint32_t option, uint64_t size, uint16_t flags) {
  Bytes p;
  put_be(p, nbd::kInfoExport, 2);
  put_be(p, size, 8);
  put_be(p, flags, 2);
  return option_reply(option, nbd::kRepInfo, p);
}

/// NBD_REP_INFO with NBD_INFO_BLOCK_SIZE.
inline Bytes info_block_size(uint32_t option, uint32_t min, uint32_t preferred, uint32_t max) {
  Bytes p;
  put_be(p, nbd::kInfoBlockSize, 2);
  put_be(p, min, 4);
  put_be(p, preferred, 4);
  put_be(p, max, 4);
  return option_reply(option, nbd::kRepInfo, p);
}

/// An option the client sent.
struct ClientOption {
  uint32_t option = 0;
  Bytes data;
};

inline bool read_option(int fd, ClientOption& out) {
  std::byte h[16];
  if (!recv_bytes(fd, h, 16)) return false;
  out.option = static_cast<uint32_t>(get_be(h + 8, 4));
  out.data.resize(get_be(h + 12, 4));
  return out.data.empty() || recv_bytes(fd, out.data.data(), out.data.size());
}

/// What the scripted export looks like.
struct ExportFacts {
  uint64_t size = 1 << 20;
  uint16_t flags = nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendFua | nbd::kFlagSendTrim |
                   nbd::kFlagSendWriteZeroes | nbd::kFlagCanMultiConn;
  bool structured = true;
  std::string name;  ///< the only export; any other name is NBD_REP_ERR_UNKNOWN
};

/// The server's side of a good handshake; false if the client left or
/// asked for another export (refused with NBD_REP_ERR_UNKNOWN).
inline bool serve_handshake(int fd, const ExportFacts& facts = {}) {
  if (!send_bytes(fd, greeting())) return false;
  std::byte flags[4];
  if (!recv_bytes(fd, flags, 4)) return false;
  for (;;) {
    ClientOption o;
    if (!read_option(fd, o)) return false;
    if (o.option == nbd::kOptStructuredReply) {
      if (!send_bytes(fd, option_reply(o.option, facts.structured ? nbd::kRepAck : nbd::kRepErrUnsup))) return false;
      continue;
    }
    if (o.option == nbd::kOptGo || o.option == nbd::kOptInfo) {
      const std::size_t len = o.data.size() >= 4 ? get_be(o.data.data(), 4) : 0;
      const std::string name(reinterpret_cast<const char*>(o.data.data()) + 4, len);
      if (name != facts.name) {
        send_bytes(fd, option_reply(o.option, nbd::kRepErrUnknown));
        continue;
      }
      Bytes b = info_export(o.option, facts.size, facts.flags);
      const Bytes bs = info_block_size(o.option, 1, 4096, 32 << 20);
      b.insert(b.end(), bs.begin(), bs.end());
      const Bytes ack = option_reply(o.option, nbd::kRepAck);
      b.insert(b.end(), ack.begin(), ack.end());
      if (!send_bytes(fd, b)) return false;
      if (o.option == nbd::kOptGo) return true;
      continue;
    }
    if (o.option == nbd::kOptAbort) return false;
    send_bytes(fd, option_reply(o.option, nbd::kRepErrUnsup));
  }
}

/// A transmission request the client sent (with its write payload).
struct ClientRequest {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  Bytes data;
};

inline bool read_request(int fd, ClientRequest& r) {
  std::byte h[nbd::kRequestHeaderSize];
  if (!recv_bytes(fd, h, sizeof(h))) return false;
  if (get_be(h, 4) != nbd::kRequestMagic) return false;
  r.flags = static_cast<uint16_t>(get_be(h + 4, 2));
  r.type = static_cast<uint16_t>(get_be(h + 6, 2));
  r.handle = get_be(h + 8, 8);
  r.offset = get_be(h + 16, 8);
  r.length = static_cast<uint32_t>(get_be(h + 24, 4));
  r.data.clear();
  if (r.type == nbd::kCmdWrite) {
    r.data.resize(r.length);
    if (!recv_bytes(fd, r.data.data(), r.length)) return false;
  }
  return true;
}

/// A simple reply, with `data` after it.
inline Bytes simple_reply(uint64_t handle, uint32_t error, const Bytes& data = {}) {
  Bytes b;
  put_be(b, nbd::kSimpleReplyMagic, 4);
  put_be(b, error, 4);
  put_be(b, handle, 8);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// A structured reply chunk.
inline Bytes chunk(uint64_t handle, uint16_t type, uint16_t flags, const Bytes& payload) {
  Bytes b;
  put_be(b, nbd::kStructuredReplyMagic, 4);
  put_be(b, flags, 2);
  put_be(b, type, 2);
  put_be(b, handle, 8);
  put_be(b, payload.size(), 4);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

/// An NBD_REPLY_TYPE_OFFSET_DATA chunk.
inline Bytes data_chunk(uint64_t handle, uint64_t offset, const std::byte* data, std::size_t n, bool done) {
  Bytes p;
  put_be(p, offset, 8);
  p.insert(p.end(), data, data + n);
  return chunk(handle, nbd::kReplyOffsetData, done ? nbd::kReplyFlagDone : 0, p);
}

/// An NBD_REPLY_TYPE_ERROR chunk.
inline Bytes error_chunk(uint64_t handle, uint32_t error, const std::string& message, bool done = true) {
  Bytes p;
  put_be(p, error, 4);
  put_be(p, message.size(), 2);
  for (char c : message) p.push_back(static_cast<std::byte>(c));
  return chunk(handle, nbd::kReplyError, done ? nbd::kReplyFlagDone : 0, p);
}

/// The reply a correct memory-backed server sends for `r` on `disk`.
inline Bytes serve_request(std::vector<std::byte>& disk, const ClientRequest& r, bool structured) {
  const bool in_range = r.offset <= disk.size() && r.length <= disk.size() - r.offset;
  if (!in_range) return structured ? error_chunk(r.handle, 22, "out of range") : simple_reply(r.handle, 22);
  switch (r.type) {
    case nbd::kCmdRead:
      if (structured) return data_chunk(r.handle, r.offset, disk.data() + r.offset, r.length, true);
      return simple_reply(r.handle, 0,
                          Bytes(disk.begin() + static_cast<std::ptrdiff_t>(r.offset),
                                disk.begin() + static_cast<std::ptrdiff_t>(r.offset + r.length)));
    case nbd::kCmdWrite:
      std::memcpy(disk.data() + r.offset, r.data.data(), r.length);
      return simple_reply(r.handle, 0);
    case nbd::kCmdTrim:
    case nbd::kCmdWriteZeroes:
      std::memset(disk.data() + r.offset, 0, r.length);
      return simple_reply(r.handle, 0);
    default:
      return simple_reply(r.handle, 0);
  }
}

/// Serves requests on `fd` from `disk` until the client leaves or sends
/// NBD_CMD_DISC, or `max_requests` were served (then returns true).
inline bool serve_disk(int fd, std::vector<std::byte>& disk, bool structured, std::size_t max_requests = SIZE_MAX) {
  for (std::size_t i = 0; i < max_requests; ++i) {
    ClientRequest r;
    if (!read_request(fd, r) || r.type == nbd::kCmdDisc) return false;
    if (!send_bytes(fd, serve_request(disk, r, structured))) return false;
  }
  return true;
}

/// A listening unix socket in /tmp, removed on destruction.
struct UnixListener {
  std::string path;
  int fd = -1;
  UnixListener() {
    char dir[] = "/tmp/coblk-nbd-test-XXXXXX";
    path = std::string(::mkdtemp(dir)) + "/sock";
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0 || ::listen(fd, 16) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  ~UnixListener() { stop(); }
  /// Stops listening: later connections are refused.
  void stop() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (!path.empty()) {
      ::unlink(path.c_str());
      ::rmdir(path.substr(0, path.size() - 5).c_str());
      path.clear();
    }
  }
};

}  // namespace coblk::nbd_test
