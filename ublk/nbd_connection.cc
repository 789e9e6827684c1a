#include "coblk/ublk/nbd_connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "coblk/runtime/io.h"
#include "coblk/runtime/spawn.h"
#include "coblk/ublk/nbd_blocking.h"

namespace coblk::nbd {

using runtime::Task;

// ---- endpoints and the blocking probe ----

Result<Endpoint> parse_endpoint(const std::string& text) {
  Endpoint e;
  e.text = text;
  if (text.rfind("unix:", 0) == 0) {
    const std::string path = text.substr(5);
    sockaddr_un un{};
    if (path.empty()) return Error(EINVAL, "--connect unix:PATH needs a socket path");
    if (path.size() >= sizeof(un.sun_path))
      return Error(EINVAL, "--connect: unix socket path " + quote_for_message(path) + " is too long");
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&e.address, &un, sizeof(un));
    e.address_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return e;
  }
  if (text.rfind("tcp:", 0) == 0) {
    const std::string rest = text.substr(4);
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
      return Error(EINVAL, "--connect: expected tcp:HOST:PORT, not " + quote_for_message(text));
    std::string host = rest.substr(0, colon);
    const std::string port = rest.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port_number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (ec != std::errc() || end != port.data() + port.size() || port_number == 0 || port_number > 65535)
      return Error(EINVAL, "--connect: port " + quote_for_message(port) + " is not a number from 1 to 65535");
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0 || found == nullptr)
      return Error(EHOSTUNREACH, "--connect: cannot resolve host " + quote_for_message(host) + ": " +
                                     (rc != 0 ? ::gai_strerror(rc) : "no address"));
    std::memcpy(&e.address, found->ai_addr, found->ai_addrlen);
    e.address_length = found->ai_addrlen;
    ::freeaddrinfo(found);
    return e;
  }
  return Error(EINVAL, "--connect: expected unix:PATH or tcp:HOST:PORT, not " + quote_for_message(text));
}

namespace {

int new_socket(const Endpoint& endpoint, int extra_flags) {
  return ::socket(endpoint.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | extra_flags, 0);
}

// Latency matters more than packet count: a 28-byte request header must
// not wait for Nagle. A unix stream socket's send buffer (208 KiB by
// default, with no autotuning) bounds the bytes queued towards the server:
// a 1 MiB write would go out in pieces, each waiting for the server to
// drain the last. 4 MiB holds a few large writes at once (SO_SNDBUFFORCE
// as root, past net.core.wmem_max; else as much as SO_SNDBUF allows). TCP
// keeps its own autotuning, which setting a size would turn off.
void tune_socket(int fd, const Endpoint& endpoint) {
  if (endpoint.address.ss_family == AF_UNIX) {
    const int bytes = 4 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string connect_error(const Endpoint& endpoint, int err) {
  return "cannot connect to NBD server " + quote_for_message(endpoint.text) + ": " + std::strerror(err);
}

}  // namespace

Result<int> connect_blocking(const Endpoint& endpoint, std::chrono::milliseconds timeout) {
  const int fd = new_socket(endpoint, SOCK_NONBLOCK);
  if (fd < 0) return Error::from_errno(errno, "socket");
  auto give_up = [&](int err) -> Result<int> {
    ::close(fd);
    return Error(err, connect_error(endpoint, err));
  };
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.address_length) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return give_up(errno);
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready == 0) return give_up(ETIMEDOUT);
    if (ready < 0) return give_up(errno);
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return give_up(err);
  }
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  tune_socket(fd, endpoint);
  return fd;
}

Result<ExportInfo> probe_export(const Endpoint& endpoint, const std::string& export_name,
                                std::chrono::milliseconds timeout) {
  Result<BlockingSession> session = BlockingSession::open(endpoint, export_name, timeout, HandshakeGoal::info);
  if (!session) return std::move(session).error();
  return session->info();
}

// ---- Connection ----

struct Connection::Slot {
  PendingRequest request;
  uint64_t handle = 0;
  std::array<std::byte, kRequestHeaderSize> header{};
  const std::byte* payload = nullptr;  // WRITE data (null with fixed_buffer)
  uint32_t payload_length = 0;
  int fixed_buffer = -1;        // >= 0: the READ or WRITE data is in this fixed buffer of the ring (Op::fixed_buffer)
  std::uintptr_t fixed_at = 0;  // ... at this io_uring address
  runtime::Waiter waiter{};
  int result = 0;
  bool waiting = false;       // the submitter is suspended on this slot
  bool replied = false;       // complete() was called
  bool sent = false;          // the sender no longer looks at header or payload
  bool large_read = false;    // counted in Connection::large_reads_
  bool changes = false;       // a change the server may cache: counted in acked_changes_ once acknowledged
  uint64_t flush_covers = 0;  // a flush: acked_changes_ when it was submitted
  uint32_t generation = 0;
  std::chrono::steady_clock::time_point submitted{};  // for the request timeout (vDSO clock: no syscall)
};

class Connection::Handler final : public ReplyHandler {
 public:
  explicit Handler(Connection& c) : c_(c) {}
  PendingRequest* find(uint64_t handle) override { return c_.find(handle); }
  void complete(uint64_t handle, int result) override { c_.complete(handle, result); }

 private:
  Connection& c_;
};

// Suspends the submitter until its slot is both replied to and sent.
struct Connection::ReplyAwait {
  Slot* slot;
  bool await_ready() const noexcept { return slot->replied && slot->sent; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    slot->waiter = runtime::Reactor::current()->waiter_for(h);
    slot->waiting = true;
  }
  int await_resume() const noexcept { return slot->result; }
};

Connection::Connection(int fd, const ExportInfo& info, bool fixed_buffers)
    : fd_(fd), info_(info), fixed_buffers_(fixed_buffers) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Sends all of `data` within `deadline`; 0 or -errno.
Task<int> send_all(int fd, std::span<const std::byte> data, std::chrono::steady_clock::time_point deadline) {
  while (!data.empty()) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return -ETIMEDOUT;
    const int n = co_await runtime::send(fd, data.data(), data.size(), MSG_NOSIGNAL).with_timeout(left);
    if (n == -ECANCELED) co_return -ETIMEDOUT;
    if (n < 0) co_return n;
    if (n == 0) co_return -EPIPE;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  co_return 0;
}

// Receives exactly `data.size()` bytes within `deadline`; 0, -EPIPE at the
// end of the stream, or -errno.
Task<int> recv_all(int fd, std::span<std::byte> data, std::chrono::steady_clock::time_point deadline) {
  while (!data.empty()) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return -ETIMEDOUT;
    const int n = co_await runtime::recv(fd, data.data(), data.size()).with_timeout(left);
    if (n == -ECANCELED) co_return runtime::Reactor::current()->draining() ? -ECANCELED : -ETIMEDOUT;
    if (n < 0) co_return n;
    if (n == 0) co_return -EPIPE;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  co_return 0;
}

}  // namespace

Task<Result<std::shared_ptr<Connection>>> Connection::open(const Endpoint& endpoint, std::string export_name,
                                                           std::chrono::milliseconds timeout, bool fixed_buffers) {
  const int fd = new_socket(endpoint, 0);
  if (fd < 0) co_return Error::from_errno(errno, "socket");
  const int ret =
      co_await runtime::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.address_length)
          .with_timeout(timeout);
  if (ret < 0) {
    ::close(fd);
    const int err = ret == -ECANCELED ? ETIMEDOUT : -ret;
    co_return Error(err, connect_error(endpoint, err));
  }
  tune_socket(fd, endpoint);
  co_return co_await handshake(fd, std::move(export_name), timeout, fixed_buffers);
}

Task<Result<std::shared_ptr<Connection>>> Connection::handshake(int fd, std::string export_name,
                                                                std::chrono::milliseconds timeout, bool fixed_buffers) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Fixed-buffer reads take simple replies: a structured hole chunk would
  // need zeros written into a buffer that has no address here.
  Handshake hs(std::move(export_name), HandshakeGoal::go, !fixed_buffers);
  std::vector<std::byte> in;
  for (;;) {
    const std::vector<std::byte> out = hs.take_output();
    if (!out.empty()) {
      if (const int r = co_await send_all(fd, out, deadline); r < 0) {
        ::close(fd);
        co_return Error(-r, std::string("NBD handshake: cannot send: ") + std::strerror(-r));
      }
    }
    if (hs.done()) break;
    in.resize(hs.wanted());
    if (const int r = co_await recv_all(fd, in, deadline); r < 0) {
      ::close(fd);
      if (r == -EPIPE)
        co_return Error(EPROTO,
                        "the NBD server closed the connection during the handshake (unknown export, or not NBD?)");
      co_return Error(-r, std::string("NBD handshake: ") + std::strerror(-r));
    }
    if (Result<void> fed = hs.feed(in); !fed) {
      ::close(fd);
      co_return std::move(fed).error();
    }
  }
  auto c = std::shared_ptr<Connection>(new Connection(fd, hs.info(), fixed_buffers));
  runtime::spawn(run_reader(c), "nbd-reader");
  co_return c;
}

PendingRequest* Connection::find(uint64_t handle) noexcept {
  const auto index = static_cast<uint32_t>(handle);
  if (index >= slots_.size()) return nullptr;
  Slot& s = *slots_[index];
  if (s.handle != handle || s.replied || s.handle == 0) return nullptr;
  return &s.request;
}

void Connection::complete(uint64_t handle, int result) noexcept {
  const auto index = static_cast<uint32_t>(handle);
  Slot& s = *slots_[index];
  s.replied = true;
  s.result = result;
  // Counted here, as the reply is parsed, not when the submitter resumes:
  // a drop right after the reply must already see the change.
  if (result == 0 && s.changes) ++acked_changes_;
  if (result == 0 && s.request.type == kCmdFlush) flushed_changes_ = std::max(flushed_changes_, s.flush_covers);
  if (result == -ESHUTDOWN) {
    // The server is going away: the spec asks for a disconnect, and the
    // request deserves another try elsewhere.
    s.result = -ENOTCONN;
    drop("the NBD server is shutting down");
  }
  wake_if_finished(s);
}

void Connection::wake_if_finished(Slot& s) noexcept {
  if (s.waiting && s.replied && s.sent) {
    s.waiting = false;
    runtime::Reactor::current()->schedule(s.waiter);
  }
}

void Connection::drop(std::string why) noexcept {
  if (!alive_) return;
  alive_ = false;
  failure_ = std::move(why);
  if (lost_changes_ != nullptr && unflushed_changes() != 0 && (info_.flags & kFlagSendFlush) != 0) {
    // Release: pairs with the acquire of the flush that reads it (on any
    // core); set before the reader fails the requests in flight, so a
    // flush re-sent because of this drop already sees it.
    lost_changes_->store(true, std::memory_order_release);
    std::fprintf(stderr,
                 "coblk: %s: the connection dropped while the server held %llu acknowledged writes it had not "
                 "flushed; they may be lost, so every later FLUSH fails with EIO\n",
                 lost_changes_name_.c_str(), static_cast<unsigned long long>(unflushed_changes()));
  }
  // Ends the reader's recv and the sender's sendmsg; the reader then fails
  // every request in flight. The fd stays open until both are done.
  ::shutdown(fd_, SHUT_RDWR);
}

std::chrono::steady_clock::duration Connection::oldest_request_age(
    std::chrono::steady_clock::time_point now) const noexcept {
  std::chrono::steady_clock::duration oldest{};
  for (const std::unique_ptr<Slot>& s : slots_) {
    // Not yet sent whole counts too: a server that replied to a write's
    // header and stopped reading its payload holds it as much.
    if (s->handle != 0 && (!s->replied || !s->sent)) oldest = std::max(oldest, now - s->submitted);
  }
  return oldest;
}

void Connection::close() noexcept {
  drop("");
  failure_.clear();
}

void Connection::report_lost_changes_to(std::atomic<bool>* lost, std::string name) {
  lost_changes_ = lost;
  lost_changes_name_ = std::move(name);
}

Task<int> Connection::submit(Op op) {
  if (!alive_) co_return -ENOTCONN;
  if (op.fixed_buffer >= 0 && !fixed_buffers_) co_return -EINVAL;
  const std::shared_ptr<Connection> keep = shared_from_this();
  uint32_t index = 0;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.push_back(std::make_unique<Slot>());
  }
  Slot& s = *slots_[index];
  if (++s.generation == 0) s.generation = 1;
  s.handle = (uint64_t{s.generation} << 32) | index;
  const bool moves_data = op.type == kCmdRead || op.type == kCmdWrite;
  s.fixed_buffer = moves_data ? op.fixed_buffer : -1;
  const bool fixed = s.fixed_buffer >= 0;
  // A fixed-buffer read has no address here: the parser refuses any of its
  // data fed through the reader's buffer (see large_read below).
  s.request = PendingRequest{op.type, op.offset, op.length, fixed ? nullptr : op.read_into, 0, 0};
  s.header = encode_request(op.type, op.flags, s.handle, op.offset, op.length);
  s.fixed_at = !fixed                ? 0
               : op.type == kCmdRead ? reinterpret_cast<std::uintptr_t>(op.read_into)
                                     : reinterpret_cast<std::uintptr_t>(op.write_from);
  s.payload = op.type == kCmdWrite && !fixed ? op.write_from : nullptr;
  s.payload_length = op.type == kCmdWrite ? op.length : 0;
  s.result = 0;
  s.submitted = std::chrono::steady_clock::now();
  s.waiting = s.replied = s.sent = false;
  s.large_read = op.type == kCmdRead && (op.length >= kReceiveBuffer || fixed);
  s.changes =
      (op.type == kCmdWrite || op.type == kCmdWriteZeroes || op.type == kCmdTrim) && (op.flags & kCmdFlagFua) == 0;
  s.flush_covers = acked_changes_;
  if (s.large_read) ++large_reads_;
  ++in_flight_;
  send_queue_.push_back(index);
  if (!sending_) co_await run_sender();
  const int result = co_await ReplyAwait{&s};
  s.handle = 0;  // no reply can match it any more
  if (s.large_read) --large_reads_;
  --in_flight_;
  free_slots_.push_back(index);
  co_return result;
}

Task<void> Connection::run_sender() {
  sending_ = true;
  // The batch and its iovecs are members, reused: after the first requests
  // the sender allocates nothing. Requests queued while a send is in
  // flight go out together in the next one.
  std::vector<uint32_t>& batch = sending_batch_;
  std::vector<iovec>& iov = sending_iov_;
  while (!send_queue_.empty()) {
    batch.swap(send_queue_);
    send_queue_.clear();
    std::size_t next = 0;
    // The requests before this position in the batch went out whole.
    std::size_t sent_whole = 0;
    while (alive_ && next < batch.size()) {
      // Gather headers and payloads up to the first fixed-buffer payload,
      // which no iovec can name: it follows its header in a send of its own.
      iov.clear();
      const Slot* fixed = nullptr;
      while (next < batch.size() && fixed == nullptr) {
        Slot& s = *slots_[batch[next++]];
        iov.push_back({s.header.data(), s.header.size()});
        if (s.payload_length == 0) continue;
        if (s.fixed_buffer >= 0) {
          fixed = &s;
        } else {
          iov.push_back({const_cast<std::byte*>(s.payload), s.payload_length});
        }
      }
      std::size_t first = 0;
      while (alive_ && first < iov.size()) {
        msghdr msg{};
        msg.msg_iov = iov.data() + first;
        msg.msg_iovlen = std::min<std::size_t>(iov.size() - first, IOV_MAX);
        // MSG_WAITALL: io_uring sends the rest of a partial send itself as
        // the socket drains, instead of completing to this task each time.
        const int sent = co_await runtime::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_WAITALL);
        if (sent <= 0) {
          drop(sent == 0 ? "the NBD server stopped receiving" : std::string("send: ") + std::strerror(-sent));
          break;
        }
        // Skip what went out; a partial iovec is advanced in place.
        auto left = static_cast<std::size_t>(sent);
        while (first < iov.size() && left >= iov[first].iov_len) {
          left -= iov[first].iov_len;
          ++first;
        }
        if (left != 0) {
          iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
          iov[first].iov_len -= left;
        }
      }
      // A write from a fixed buffer: a socket write returns what the send
      // buffer took, so loop. (No MSG_NOSIGNAL here: a user of fixed
      // buffers ignores SIGPIPE, see NbdTarget::start_queue.)
      uint32_t done = 0;
      while (alive_ && fixed != nullptr && done < fixed->payload_length) {
        const int n = co_await runtime::write_fixed(fd_, reinterpret_cast<const void*>(fixed->fixed_at + done),
                                                    fixed->payload_length - done, 0, fixed->fixed_buffer);
        if (n <= 0) {
          drop(n == 0 ? "the NBD server stopped receiving" : std::string("send (fixed buffer): ") + std::strerror(-n));
          break;
        }
        done += static_cast<uint32_t>(n);
      }
      if (alive_) sent_whole = next;
    }
    for (std::size_t at = 0; at < batch.size(); ++at) {
      Slot& s = *slots_[batch[at]];
      s.sent = true;
      // A reply the server sent before it had the whole request (a write
      // acknowledged before its payload arrived) proves nothing: fail it
      // as the drop fails requests without a reply, so it is sent again.
      if (at >= sent_whole && s.replied && s.result >= 0) s.result = -ENOTCONN;
      wake_if_finished(s);
    }
  }
  sending_ = false;
}

Task<void> Connection::run_reader(std::shared_ptr<Connection> self) {
  Connection& c = *self;
  Handler handler(c);
  ReplyParser parser(c.info_.structured_replies);
  const std::unique_ptr<std::byte[]> buffer(new std::byte[kReceiveBuffer]);
  std::string why = "the NBD server closed the connection";
  for (;;) {
    // While a large read is in flight, the buffer takes only what comes
    // before the next possible read data (a reply header), so that a large
    // read's data is never copied out of the buffer, but received in place:
    // one extra receive per reply, against up to 64 KiB copied per reply.
    // Otherwise the buffer takes whatever the socket has: many small replies
    // per receive. A connection for fixed buffers is always exact: a read
    // submitted while a receive is already waiting must not find its data
    // taken into the buffer, where it has nowhere to go.
    const bool exact = c.large_reads_ != 0 || c.fixed_buffers_;
    // Read data of 4 KiB or more (any size while exact) goes straight into
    // the request's buffer, all of it in one operation: with MSG_WAITALL
    // io_uring receives the pieces as they arrive without completing to
    // this task for each.
    const ReplyParser::DirectRange direct = parser.direct_range(handler);
    if (direct.request != nullptr && direct.length != 0 && (direct.length >= 4096 || exact)) {
      const Slot& s = *c.slots_[static_cast<uint32_t>(direct.handle)];
      int n = 0;
      if (s.fixed_buffer >= 0) {
        // Into the request's fixed buffer (a ublk request's pages): a
        // socket read takes what has arrived, so this may be a part; the
        // parser counts it, and the request completes only when all of
        // its data is in (a drop before that fails it, never half-filled).
        n = co_await runtime::read_fixed(c.fd_, reinterpret_cast<void*>(s.fixed_at + direct.position), direct.length, 0,
                                         s.fixed_buffer);
      } else {
        n = co_await runtime::recv(c.fd_, direct.request->data + direct.position, direct.length, MSG_WAITALL);
      }
      if (n <= 0) {
        if (n < 0)
          why = std::string(s.fixed_buffer >= 0 ? "receive (fixed buffer): " : "receive: ") + std::strerror(-n);
        break;
      }
      parser.direct_filled(static_cast<std::size_t>(n), handler);
      continue;
    }
    const std::size_t want =
        exact ? std::clamp<std::size_t>(parser.bytes_before_data(), 1, kReceiveBuffer) : kReceiveBuffer;
    const int n = co_await runtime::recv(c.fd_, buffer.get(), want);
    if (n <= 0) {
      if (n < 0) why = std::string("receive: ") + std::strerror(-n);
      break;
    }
    if (Result<void> fed = parser.feed({buffer.get(), static_cast<std::size_t>(n)}, handler); !fed) {
      why = fed.error().message();
      break;
    }
  }
  c.drop(why);
  // Every request still in flight fails; the submitters re-send or give up.
  for (auto& slot : c.slots_) {
    Slot& s = *slot;
    if (s.handle != 0 && !s.replied) {
      s.replied = true;
      s.result = -ENOTCONN;
      c.wake_if_finished(s);
    }
  }
}

Task<int> Connection::read(uint64_t offset, std::span<std::byte> buffer) {
  return submit(Op{kCmdRead, 0, offset, static_cast<uint32_t>(buffer.size()), buffer.data(), nullptr});
}

Task<int> Connection::write(uint64_t offset, std::span<const std::byte> data, bool fua) {
  return submit(
      Op{kCmdWrite, fua ? kCmdFlagFua : uint16_t{0}, offset, static_cast<uint32_t>(data.size()), nullptr, data.data()});
}

Task<int> Connection::flush() { return submit(Op{kCmdFlush, 0, 0, 0, nullptr, nullptr}); }

Task<int> Connection::trim(uint64_t offset, uint32_t length) {
  return submit(Op{kCmdTrim, 0, offset, length, nullptr, nullptr});
}

Task<int> Connection::write_zeroes(uint64_t offset, uint32_t length, bool no_hole) {
  return submit(Op{kCmdWriteZeroes, no_hole ? kCmdFlagNoHole : uint16_t{0}, offset, length, nullptr, nullptr});
}

// ---- Client ----

struct Client::Park {
  Client* client;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    client->waiting_.push_back(runtime::Reactor::current()->waiter_for(h));
  }
  void await_resume() const noexcept {}
};

Client::Client(ClientConfig config, const ExportInfo& expected) : config_(std::move(config)), expected_(expected) {}

Client::~Client() {
  if (watchdog_) watchdog_->client_gone = true;
}

Task<void> Client::watch_requests(Client* self, std::shared_ptr<WatchdogState> state) {
  const std::chrono::milliseconds limit = self->config_.request_timeout;
  const auto tick = std::max(limit / 4, std::chrono::milliseconds(10));
  for (;;) {
    // Cancelled (negative) when the runtime stops.
    if (co_await runtime::sleep_for(tick) < 0 || state->client_gone) co_return;
    Client& c = *self;
    if (c.shut_down_ || c.gone_) co_return;
    if (c.conn_ && c.conn_->alive() && c.conn_->oldest_request_age(Clock::now()) > limit) {
      std::fprintf(stderr, "coblk: %s: a request got no reply within the request timeout (%lld ms); reconnecting\n",
                   c.config_.name.c_str(), static_cast<long long>(limit.count()));
      // Its requests complete with -ENOTCONN and are re-sent on a new
      // connection by submit(); the reconnect timeout bounds the rest.
      c.conn_->close();
    }
  }
}

void Client::wake_all() noexcept {
  std::vector<runtime::Waiter> waiting;
  waiting.swap(waiting_);
  for (const runtime::Waiter& w : waiting) runtime::Reactor::current()->schedule(w);
}

namespace {

// The transmission flags whose change would make the client act on wrong
// facts: read-only; a write cache (FLUSH); FUA; flushes that cover every
// connection (multi-conn). Lost trim or write-zeroes support only makes
// those commands fail, loudly.
constexpr uint16_t kFlagsThatMustStay = kFlagReadOnly | kFlagSendFlush | kFlagSendFua | kFlagCanMultiConn;

// Why a connection's export is not the one the client was made for; empty
// when its size and the flags above match.
std::string export_change(const ExportInfo& got, const ExportInfo& expected) {
  if (got.size != expected.size)
    return "the export changed: " + std::to_string(got.size) + " bytes instead of " + std::to_string(expected.size);
  if ((got.flags & kFlagsThatMustStay) != (expected.flags & kFlagsThatMustStay))
    return "the export changed its flags (read-only, write cache, FUA or multi-conn)";
  return {};
}

}  // namespace

Task<int> Client::start() {
  started_ = true;
  last_try_ = Clock::now();
  if (config_.request_timeout.count() > 0 && !watchdog_) {
    watchdog_ = std::make_shared<WatchdogState>();
    runtime::spawn(watch_requests(this, watchdog_), "nbd-request-timeout");
  }
  Result<std::shared_ptr<Connection>> c =
      co_await Connection::open(config_.endpoint, config_.export_name, config_.connect_timeout, config_.fixed_buffers);
  if (!c) {
    std::fprintf(stderr, "coblk: %s: %s; reconnecting\n", config_.name.c_str(), c.error().message().c_str());
    outage_ = true;
    outage_since_ = Clock::now();
    reconnecting_ = true;
    runtime::spawn(reconnect(this, outage_since_ + config_.reconnect_timeout), "nbd-reconnect");
    co_return -c.error().code();
  }
  conn_ = std::move(c).value();
  conn_->report_lost_changes_to(config_.lost_changes, config_.name);
  // The owner acts on the facts the export showed when it was probed (a
  // FLUSH is sent only to a server with a write cache): a server that
  // shows others now is not what was probed.
  std::string wrong = export_change(conn_->info(), expected_);
  if (wrong.empty()) wrong = co_await check_identity(*conn_);
  if (!wrong.empty()) {
    std::fprintf(stderr, "coblk: %s: %s; failing requests with EIO\n", config_.name.c_str(), wrong.c_str());
    conn_->close();
    conn_.reset();
    failed_ = true;
    gone_ = true;
    co_return -EIO;
  }
  co_return 0;
}

Task<std::string> Client::check_identity(Connection& c) {
  if (config_.identity.empty()) co_return std::string();
  std::vector<std::byte> got(config_.identity.size());
  const int rc = co_await c.read(0, got);
  if (rc == -ENOTCONN) co_return std::string();  // dropped: the next attempt checks again
  if (rc < 0 || got != config_.identity)
    co_return "the export does not hold what this client wrote at its start (another export, or a server that lost "
              "its data)";
  co_return std::string();
}

void Client::drop_connection() noexcept {
  if (conn_) conn_->close();
}

void Client::shut_down() noexcept {
  shut_down_ = true;
  if (conn_) {
    conn_->report_lost_changes_to(nullptr, {});  // going away on purpose: nothing to fail later
    conn_->close();
  }
  conn_.reset();
  wake_all();
}

void Client::lost(const std::shared_ptr<Connection>& c) {
  if (c != conn_) return;  // another request already noticed
  if (!outage_) {
    outage_ = true;
    outage_since_ = Clock::now();
  }
  std::fprintf(stderr, "coblk: %s: connection lost (%s); reconnecting\n", config_.name.c_str(),
               c->failure().empty() ? "closed" : c->failure().c_str());
  c->close();
  conn_.reset();
}

Task<std::shared_ptr<Connection>> Client::connection() {
  for (;;) {
    // A runtime that is stopping (the device is being deleted) gets no new
    // connection: waiting requests fail instead of keeping the stop waiting.
    if (shut_down_ || gone_ || runtime::Reactor::current()->draining()) co_return nullptr;
    if (conn_ && conn_->alive()) co_return conn_;
    if (conn_) lost(conn_);
    if (!reconnecting_) {
      const Clock::time_point now = Clock::now();
      if (!outage_) {
        outage_ = true;
        outage_since_ = now;
      }
      Clock::time_point deadline = outage_since_ + config_.reconnect_timeout;
      if (failed_) {
        // Given up: try once more, at most once a second.
        if (now - last_try_ < std::chrono::seconds(1)) co_return nullptr;
        deadline = now;
      }
      reconnecting_ = true;
      runtime::spawn(reconnect(this, deadline), "nbd-reconnect");
    }
    co_await Park{this};
    if (failed_ && !reconnecting_ && !conn_) co_return nullptr;
  }
}

Task<void> Client::reconnect(Client* self, Clock::time_point deadline) {
  Client& c = *self;
  auto backoff = c.config_.first_backoff;
  std::string last_error;
  for (;;) {
    if (c.shut_down_ || runtime::Reactor::current()->draining()) break;
    c.last_try_ = Clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - c.last_try_);
    const auto limit = std::clamp(left, std::chrono::milliseconds(100), c.config_.connect_timeout);
    Result<std::shared_ptr<Connection>> opened =
        co_await Connection::open(c.config_.endpoint, c.config_.export_name, limit, c.config_.fixed_buffers);
    if (opened) {
      std::shared_ptr<Connection> conn = std::move(opened).value();
      const std::string changed = export_change(conn->info(), c.expected_);
      const bool same = changed.empty();
      std::string wrong;
      if (same) {
        // The request timeout's watchdog sees only the current connection,
        // which this is not yet: a server that never answers the identity
        // read would keep every waiting operation here for ever. So the
        // check gets the attempt's own limit; past it the connection is
        // closed, the read fails, and the next attempt tries again.
        const auto checked = std::make_shared<bool>(false);
        runtime::spawn(
            [](std::shared_ptr<Connection> watched, std::shared_ptr<bool> done,
               std::chrono::milliseconds within) -> Task<void> {
              co_await runtime::sleep_for(within);
              if (!*done) watched->close();
            }(conn, checked, limit),
            "nbd-identity-timeout");
        wrong = co_await c.check_identity(*conn);
        *checked = true;
      }
      if (!wrong.empty()) {
        // Permanent: waiting longer cannot bring the data back.
        conn->close();
        std::fprintf(stderr, "coblk: %s: %s; failing requests with EIO\n", c.config_.name.c_str(), wrong.c_str());
        c.failed_ = true;
        c.gone_ = true;
        break;
      }
      if (same && conn->alive()) {
        conn->report_lost_changes_to(c.config_.lost_changes, c.config_.name);
        c.conn_ = std::move(conn);
        c.failed_ = false;
        ++c.reconnects_;
        std::fprintf(stderr, "coblk: %s: reconnected\n", c.config_.name.c_str());
        break;
      }
      conn->close();
      last_error = !same ? changed : "the connection dropped while its export was checked";
    } else {
      last_error = opened.error().message();
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      if (!c.failed_) {
        std::fprintf(stderr, "coblk: %s: no connection within the reconnect timeout (%s); failing requests with EIO\n",
                     c.config_.name.c_str(), last_error.c_str());
      }
      c.failed_ = true;
      break;
    }
    const auto pause = std::min<Clock::duration>(backoff, deadline - now);
    if (co_await runtime::sleep_for(pause) < 0) break;
    backoff = std::min(backoff * 2, c.config_.max_backoff);
  }
  c.reconnecting_ = false;
  c.wake_all();
}

Task<int> Client::submit(Op op) {
  // When this request first lost its connection: the client's outage clock
  // restarts with any reply, so a request the server swallows every time
  // (a hung sector) while it answers others needs a limit of its own.
  std::optional<Clock::time_point> first_lost;
  for (;;) {
    const std::shared_ptr<Connection> c = co_await connection();
    if (!c) co_return -EIO;
    const int result = co_await c->submit(op);
    if (result != -ENOTCONN) {
      outage_ = false;  // a reply: the server is back
      co_return result;
    }
    lost(c);
    // A server that accepts connections but never answers (dropped by the
    // request timeout each time) must not keep a request for ever either.
    if (Clock::now() - outage_since_ >= config_.reconnect_timeout) {
      if (!failed_) {
        std::fprintf(stderr, "coblk: %s: no reply within the reconnect timeout; failing requests with EIO\n",
                     config_.name.c_str());
      }
      failed_ = true;
      co_return -EIO;
    }
    const Clock::time_point now = Clock::now();
    if (!first_lost) first_lost = now;
    if (now - *first_lost >= config_.reconnect_timeout) {
      if (!reported_swallowed_) {
        reported_swallowed_ = true;
        std::fprintf(stderr,
                     "coblk: %s: a request went unanswered on every connection for the reconnect timeout; it fails "
                     "with EIO (reported once)\n",
                     config_.name.c_str());
      }
      co_return -EIO;
    }
  }
}

}  // namespace coblk::nbd
