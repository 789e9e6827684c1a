#include "coblk/ublk/nbd_blocking.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>
#include <vector>

namespace coblk::nbd {

namespace {

// Sends all of `bytes`; 0 or a negative errno.
int send_all(int fd, const std::byte* bytes, std::size_t n) noexcept {
  for (std::size_t sent = 0; sent < n;) {
    const ssize_t w = ::send(fd, bytes + sent, n - sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -EPIPE;
    sent += static_cast<std::size_t>(w);
  }
  return 0;
}

// The one request in flight, for the reply parser.
class OneRequest final : public ReplyHandler {
 public:
  OneRequest(std::uint64_t handle, const PendingRequest& request) : handle_(handle), request_(request) {}
  PendingRequest* find(std::uint64_t handle) override { return handle == handle_ && !done_ ? &request_ : nullptr; }
  void complete(std::uint64_t handle, int result) override {
    if (handle == handle_) {
      done_ = true;
      result_ = result;
    }
  }
  bool done() const noexcept { return done_; }
  int result() const noexcept { return result_; }

 private:
  std::uint64_t handle_;
  PendingRequest request_;
  bool done_ = false;
  int result_ = 0;
};

}  // namespace

Result<BlockingSession> BlockingSession::open(const Endpoint& endpoint, const std::string& export_name,
                                              std::chrono::milliseconds timeout, HandshakeGoal goal) {
  Result<int> connected = connect_blocking(endpoint, timeout);
  if (!connected) return std::move(connected).error();
  const int fd = *connected;
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  const std::string where = "NBD server " + quote_for_message(endpoint.text);
  Handshake hs(export_name, goal);
  std::vector<std::byte> in;
  for (;;) {
    const std::vector<std::byte> out = hs.take_output();
    if (const int rc = send_all(fd, out.data(), out.size()); rc != 0 && !hs.done()) {
      return Error::from_errno(-rc, "cannot send to " + where);
    }  // after done(), the info goal's closing NBD_OPT_ABORT is best effort
    if (hs.done()) {
      closer.fd = -1;
      return BlockingSession(fd, hs.info());
    }
    in.resize(hs.wanted());
    for (std::size_t got = 0; got < in.size();) {
      const ssize_t n = ::recv(fd, in.data() + got, in.size() - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Error(ETIMEDOUT, where + " did not answer the handshake in time");
      if (n < 0) return Error::from_errno(errno, "cannot receive from " + where);
      if (n == 0)
        return Error(EPROTO, where + " closed the connection during the handshake (unknown export, or not NBD?)");
      got += static_cast<std::size_t>(n);
    }
    if (Result<void> fed = hs.feed(in); !fed) return std::move(fed).error();
  }
}

BlockingSession::~BlockingSession() { close(); }

BlockingSession::BlockingSession(BlockingSession&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), info_(other.info_), next_handle_(other.next_handle_) {}

BlockingSession& BlockingSession::operator=(BlockingSession&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    info_ = other.info_;
    next_handle_ = other.next_handle_;
  }
  return *this;
}

void BlockingSession::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int BlockingSession::read(std::uint64_t offset, std::span<std::byte> out) noexcept {
  return request(kCmdRead, offset, out.data(), nullptr, static_cast<std::uint32_t>(out.size()));
}

int BlockingSession::write(std::uint64_t offset, std::span<const std::byte> data) noexcept {
  return request(kCmdWrite, offset, nullptr, data.data(), static_cast<std::uint32_t>(data.size()));
}

int BlockingSession::request(std::uint16_t type, std::uint64_t offset, std::byte* read_into,
                             const std::byte* write_from, std::uint32_t length) noexcept {
  if (fd_ < 0) return -ENOTCONN;
  const std::uint64_t handle = next_handle_++;
  const std::array<std::byte, kRequestHeaderSize> header = encode_request(type, 0, handle, offset, length);
  int rc = send_all(fd_, header.data(), header.size());
  if (rc == 0 && write_from != nullptr) rc = send_all(fd_, write_from, length);
  if (rc != 0) {
    close();
    return rc;
  }
  PendingRequest pending;
  pending.type = type;
  pending.offset = offset;
  pending.length = length;
  pending.data = read_into;
  OneRequest one(handle, pending);
  // The reply parser checks every length against the request: a server
  // cannot make it write past `read_into`.
  ReplyParser parser(info_.structured_replies);
  std::array<std::byte, 4096> buffer{};
  while (!one.done()) {
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : -ECONNRESET;
      close();
      return rc;
    }
    try {
      if (Result<void> fed = parser.feed(std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)), one);
          !fed) {
        close();
        return -EIO;
      }
    } catch (...) {  // an allocation for a control chunk's payload
      close();
      return -ENOMEM;
    }
  }
  if (!parser.idle()) close();  // bytes beyond the reply: the stream is out of step
  return one.result();
}

}  // namespace coblk::nbd
