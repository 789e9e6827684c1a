#include "coblk/ublk/queue.h"

#include "coblk/ublk/swap_safety.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/io_metrics_file.h"
#include "coblk/ublk/request_from_desc.h"

namespace coblk::ublk {
namespace {

size_t round_up_to_page(size_t n) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// A ublk I/O command (FETCH_REQ / COMMIT_AND_FETCH_REQ) as an io_uring
// operation. The 16-byte ublksrv_io_cmd fits the command area of a regular
// 64-byte SQE, so the queue's ring needs no SQE128. `sqe_addr` carries the
// AUTO_BUF_REG data in zero-copy mode (runtime::uring_cmd cannot set it).
// With `fixed`, `fd` is an index into the ring's fixed-file table.
auto io_command(int fd, bool fixed, uint32_t op, const abi::ublksrv_io_cmd& cmd, uint64_t sqe_addr) {
  return runtime::IoOp([fd, fixed, op, cmd, sqe_addr](io_uring_sqe* s) noexcept {
    io_uring_prep_rw(IORING_OP_URING_CMD, s, fd, nullptr, 0, 0);
    if (fixed) s->flags |= IOSQE_FIXED_FILE;  // IoOp ORs its own flags in after this
    s->cmd_op = op;
    s->addr = sqe_addr;
    static_assert(sizeof(cmd) <= 16, "must fit a 64-byte SQE's command area");
    std::memcpy(s->cmd, &cmd, sizeof(cmd));
  });
}

}  // namespace

Queue::Queue(const QueueConfig& config, Target& target) : config_(config), target_(target) {}

Queue::~Queue() { unmap(); }

void Queue::unmap() {
  if (descs_ != nullptr) ::munmap(const_cast<abi::ublksrv_io_desc*>(descs_), descs_bytes_);
  if (buffers_ != nullptr) ::munmap(buffers_, buffers_bytes_);
  descs_ = nullptr;
  buffers_ = nullptr;
  descs_bytes_ = buffers_bytes_ = 0;
}

int Queue::map(std::string& error) {
  // The kernel lays the queues' arrays out at a stride sized for the largest
  // possible depth, but maps exactly this queue's depth; the mapping must be
  // read-only (it refuses VM_WRITE).
  const size_t stride = round_up_to_page(abi::MAX_QUEUE_DEPTH * sizeof(abi::ublksrv_io_desc));
  descs_bytes_ = round_up_to_page(size_t{config_.depth} * sizeof(abi::ublksrv_io_desc));
  const off_t offset = static_cast<off_t>(abi::SRV_CMD_BUF_OFFSET + size_t{config_.queue_id} * stride);
  void* d = ::mmap(nullptr, descs_bytes_, PROT_READ, MAP_SHARED | MAP_POPULATE, config_.char_fd, offset);
  if (d == MAP_FAILED) {
    const int err = errno;
    error = "cannot map the descriptors of queue " + std::to_string(config_.queue_id) + ": " + std::strerror(err);
    descs_bytes_ = 0;
    return -err;
  }
  descs_ = static_cast<const abi::ublksrv_io_desc*>(d);

  if (config_.data_path != DataPath::zero_copy) {
    buffers_bytes_ = size_t{config_.depth} * config_.max_io_bytes;
    void* b = ::mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | (config_.prefault_buffers ? MAP_POPULATE : MAP_NORESERVE), -1, 0);
    if (b == MAP_FAILED) {
      const int err = errno;
      error = "cannot allocate the buffers of queue " + std::to_string(config_.queue_id) + ": " + std::strerror(err);
      buffers_bytes_ = 0;
      return -err;
    }
    buffers_ = static_cast<std::byte*>(b);
  }
  return 0;
}

runtime::Task<void> Queue::serve() {
  // This thread serves a block device that may be swap or back a file
  // system: it must not be throttled by, or recurse into, writeback to it.
  if (const int ret = mark_io_flusher_thread(); ret < 0 && config_.queue_id == 0) {
    std::fprintf(stderr, "coblk: warning: queue threads are not I/O flushers (PR_SET_IO_FLUSHER: %s)\n",
                 std::strerror(-ret));
  }
  if (config_.data_path == DataPath::zero_copy) {
    // AUTO_BUF_REG installs each request's pages at index `tag` of this
    // ring's (sparse) buffer table; the table must exist before any FETCH.
    const int ret = io_uring_register_buffers_sparse(runtime::Reactor::current()->ring(), config_.depth);
    if (ret < 0) {
      last_error_ = ret;
      std::fprintf(stderr, "coblk: queue %u: cannot register the zero-copy buffer table: %s\n",
                   unsigned{config_.queue_id}, std::strerror(-ret));
      co_return;
    }
  }
  if (runtime::fault::fail(runtime::fault::Site::queue_start)) {
    last_error_ = -EIO;
    std::fprintf(stderr, "coblk: queue %u: the target failed to start: injected fault\n", unsigned{config_.queue_id});
    co_return;
  }
  if (const int ret = co_await target_.start_queue(config_.queue_id); ret < 0) {
    last_error_ = ret;
    std::fprintf(stderr, "coblk: queue %u: the target failed to start: %s\n", unsigned{config_.queue_id},
                 std::strerror(-ret));
    co_return;
  }
  // Every request's commands name /dev/ublkcN: a fixed file spares the
  // kernel an fd lookup and a reference count on each. Without a table
  // (an older kernel, or none configured) the plain fd does the same job.
  runtime::Reactor* reactor = runtime::Reactor::current();
  const int index = reactor->install_file(config_.char_fd);
  char_fixed_ = index >= 0;
  char_file_ = char_fixed_ ? index : config_.char_fd;
  std::vector<runtime::Task<void>> tags;
  tags.reserve(config_.depth);
  for (uint16_t tag = 0; tag < config_.depth; ++tag) tags.push_back(serve_tag(tag));
  if (publisher_ == nullptr) {
    co_await runtime::when_all(std::move(tags));
  } else {
    std::stop_source done;
    std::vector<runtime::Task<void>> parts;
    parts.reserve(2);
    parts.push_back(serve_tags(std::move(tags), done));
    parts.push_back(publish_loop(done.get_token()));
    co_await runtime::when_all(std::move(parts));
  }
  // Every tag has ended, so no command names the slot any more.
  if (char_fixed_) reactor->remove_file(index);
  target_.stop_queue(config_.queue_id);
}

runtime::Task<void> Queue::serve_tags(std::vector<runtime::Task<void>> tags, std::stop_source& done) {
  co_await runtime::when_all(std::move(tags));
  done.request_stop();  // on this core, as a stop of a timeout on this ring must be
}

runtime::Task<void> Queue::publish_loop(std::stop_token done) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  for (;;) {
    publisher_->publish(config_.queue_id, reactor->core(), metrics_, reactor->stats());
    if (done.stop_requested()) co_return;
    // -ECANCELED: the tags ended (the final figures were published above
    // or are published next), or the reactor is shutting down.
    if (co_await runtime::sleep_for(publish_interval_).with_stop(done) < 0) {
      publisher_->publish(config_.queue_id, reactor->core(), metrics_, reactor->stats());
      co_return;
    }
  }
}

runtime::Task<void> Queue::serve_tag(uint16_t tag) {
  const uint32_t fetch = config_.ioctl_encoded ? abi::U_IO_FETCH_REQ : abi::IO_FETCH_REQ;
  const uint32_t commit = config_.ioctl_encoded ? abi::U_IO_COMMIT_AND_FETCH_REQ : abi::IO_COMMIT_AND_FETCH_REQ;
  uint64_t sqe_addr = 0;
  if (config_.data_path == DataPath::zero_copy) {
    abi::ublk_auto_buf_reg reg{};
    reg.index = tag;
    sqe_addr = abi::auto_buf_reg_to_sqe_addr(reg);
  }

  abi::ublksrv_io_cmd cmd{};
  cmd.q_id = config_.queue_id;
  cmd.tag = tag;
  if (config_.data_path == DataPath::copy) cmd.addr = reinterpret_cast<uint64_t>(tag_buffer(tag));
  uint32_t op = fetch;
  for (;;) {
    const int res = co_await io_command(char_file_, char_fixed_, op, cmd, sqe_addr);
    if (res == abi::IO_RES_ABORT) co_return;  // the device is going away: no re-fetch
    if (res < 0) {
      // -ECANCELED: the runtime is shutting down. Anything else is a broken
      // queue; the tag is lost, so make it visible.
      if (res != -ECANCELED && last_error_ == 0) {
        last_error_ = res;
        std::fprintf(stderr, "coblk: queue %u tag %u: io command failed: %s\n", unsigned{config_.queue_id},
                     unsigned{tag}, std::strerror(-res));
        if (config_.on_failure) config_.on_failure();
      }
      co_return;
    }
    // The kernel filled descs_[tag] before posting the CQE, and reaping the
    // CQE (an acquire load of the CQ tail) orders our reads after its writes.
    const abi::ublksrv_io_desc desc = descs_[tag];
    // The request's start is when the reactor resumed this task for the
    // fetch's completion: a time it read anyway, so a request costs one
    // clock read (at its end), not two.
    const uint64_t started = config_.metrics ? runtime::Reactor::current()->task_started() : 0;
    // Whatever happens while handling, the request is completed: an
    // exception outside the target (a coroutine frame that could not be
    // allocated, no SQE for a user-copy transfer) becomes -EIO for this
    // request instead of ending the tag's loop and leaving the request
    // waiting in the kernel for ever.
    int result = -EIO;
    try {
      result = co_await handle(tag, desc);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "coblk: queue %u tag %u: request failed: %s\n", unsigned{config_.queue_id}, unsigned{tag},
                   e.what());
    }
    cmd.result = result;
    ++completed_;
    if (config_.metrics) {
      metrics_.record(abi::get_op(desc), desc.nr_sectors, result, runtime::CycleClock::now() - started);
    }
    op = commit;
  }
}

// The request's only coroutine frame besides the target operation's own:
// the user-copy transfers and the target call are awaited inline here.
runtime::Task<int> Queue::handle(uint16_t tag, const abi::ublksrv_io_desc& desc) {
  Request r;
  if (const int ret = request_from_desc(desc, config_.queue_id, tag, config_.max_io_bytes, r); ret < 0) co_return ret;
  const bool moves_data = r.op == abi::IO_OP_READ || r.op == abi::IO_OP_WRITE;
  if (config_.data_path == DataPath::zero_copy) {
    r.fixed_buffer = tag;
  } else {
    r.data = tag_buffer(tag);
  }
  const bool user_copy = config_.data_path == DataPath::user_copy && moves_data;
  const uint64_t at = abi::user_copy_offset(config_.queue_id, tag);

  // USER_COPY write: fetch the data from /dev/ublkcN at the tag's offset.
  if (user_copy && r.op == abi::IO_OP_WRITE) {
    uint32_t got = 0;
    while (got < r.length) {
      const int n = co_await runtime::read(config_.char_fd, r.data + got, r.length - got, at + got);
      if (n <= 0) co_return n < 0 ? n : -EIO;
      got += static_cast<uint32_t>(n);
    }
  }

  int done = -EIO;
  try {
    done = co_await start_operation(r);
  } catch (const std::exception& e) {
    // A target bug must cost one request, not the device.
    std::fprintf(stderr, "coblk: queue %u: target threw: %s\n", unsigned{r.queue}, e.what());
  } catch (...) {
    std::fprintf(stderr, "coblk: queue %u: target threw\n", unsigned{r.queue});
  }

  // A READ or WRITE is all or nothing: a target that answers 0, a short
  // count or more than asked has a bug, which must fail this request
  // loudly rather than hang it or pass a partly filled buffer as read.
  if (const int checked = result_for_kernel(r, done); checked != done) {
    if (!reported_bad_result_) {
      reported_bad_result_ = true;
      std::fprintf(stderr,
                   "coblk: queue %u: the target answered %d to a %s of %u bytes; such requests fail with EIO "
                   "(reported once)\n",
                   unsigned{r.queue}, done, r.op == abi::IO_OP_READ ? "read" : "write", r.length);
    }
    done = checked;
  }

  // USER_COPY read: hand the bytes to the kernel.
  if (user_copy && r.op == abi::IO_OP_READ && done > 0) {
    uint32_t put = 0;
    while (put < static_cast<uint32_t>(done)) {
      const int n = co_await runtime::write(config_.char_fd, r.data + put, static_cast<uint32_t>(done) - put, at + put);
      if (n <= 0) co_return n < 0 ? n : -EIO;
      put += static_cast<uint32_t>(n);
    }
  }
  co_return done;
}

runtime::Task<int> Queue::start_operation(const Request& r) {
  switch (r.op) {
    case abi::IO_OP_READ:
      return target_.read(r);
    case abi::IO_OP_WRITE:
      return target_.write(r);
    case abi::IO_OP_FLUSH:
      return target_.flush(r);
    case abi::IO_OP_DISCARD:
      return target_.discard(r);
    case abi::IO_OP_WRITE_ZEROES:
      return target_.write_zeroes(r);
    default:
      return unsupported();
  }
}

runtime::Task<int> Queue::unsupported() { co_return -EOPNOTSUPP; }

}  // namespace coblk::ublk
