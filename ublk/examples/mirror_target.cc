#include "coblk/ublk/examples/mirror_target.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/abi.h"

namespace coblk::ublk::examples {
namespace {

constexpr uint64_t kPage = 4096;

// Runs one operation on each file concurrently and completes when both
// have: with the first error, else with `ok`. The two tasks have not started
// yet (Tasks are lazy); when_all starts both on this core and resumes us
// after the second one finishes.
runtime::Task<int> on_both(runtime::Task<int> primary, runtime::Task<int> secondary, int ok) {
  std::vector<runtime::Task<int>> both;
  both.reserve(2);
  both.push_back(std::move(primary));
  both.push_back(std::move(secondary));
  const std::vector<int> done = co_await runtime::when_all(std::move(both));
  if (done[0] < 0) co_return done[0];
  if (done[1] < 0) co_return done[1];
  co_return ok;
}

runtime::Task<int> sync_file(int file) { co_return co_await runtime::fdatasync(file).fixed_file(); }

// KEEP_SIZE: the file must not shrink, or the device would lose its end.
runtime::Task<int> punch_hole(int file, uint64_t offset, uint64_t length) {
  co_return co_await runtime::fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length).fixed_file();
}

}  // namespace

// ---- setup (any thread, before the device exists) -------------------------

MirrorTarget::MirrorTarget(unsigned queues) : queues_(queues) {}

Result<std::unique_ptr<MirrorTarget>> MirrorTarget::create(const std::string& primary, const std::string& secondary,
                                                           unsigned queues) {
  if (queues == 0) return Error(EINVAL, "a device needs at least one queue");
  std::unique_ptr<MirrorTarget> t(new MirrorTarget(queues));
  const std::string* paths[2] = {&primary, &secondary};
  uint64_t smallest = UINT64_MAX;
  for (int i = 0; i < 2; ++i) {
    // The destructor closes whatever was opened if we give up half way.
    t->fds_[i] = ::open(paths[i]->c_str(), O_RDWR | O_CLOEXEC);
    struct stat st {};
    if (t->fds_[i] < 0 || ::fstat(t->fds_[i], &st) != 0)
      return Error::from_errno(errno, "cannot open '" + *paths[i] + "'");
    // Hole punching (discard) is a file system feature: regular files only.
    if (!S_ISREG(st.st_mode)) return Error(EINVAL, "'" + *paths[i] + "' is not a regular file");
    smallest = std::min(smallest, static_cast<uint64_t>(st.st_size));
  }
  t->size_bytes_ = smallest / kPage * kPage;
  if (t->size_bytes_ == 0) return Error(EINVAL, "the mirror files must be at least 4096 bytes long");
  return t;
}

MirrorTarget::~MirrorTarget() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

TargetGeometry MirrorTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = size_bytes_;
  g.logical_block_size = 512;
  g.physical_block_size = kPage;
  // Writes sit in the page cache until fdatasync: the kernel must send
  // FLUSH (and FUA), or a completed write could be lost on power failure.
  g.volatile_cache = true;
  g.discard = true;
  g.discard_granularity = kPage;
  return g;
}

// ---- per queue (on the queue's core) ---------------------------------------

runtime::Task<int> MirrorTarget::start_queue(uint16_t queue) {
  if (queue >= queues_.size()) co_return -EINVAL;
  // The registered-file table belongs to this core's ring, and a ring set up
  // with SINGLE_ISSUER accepts registrations only from its own thread: that
  // is why this happens here and not in the constructor.
  const int ret = runtime::Reactor::current()->register_files(std::span<const int>(fds_, 2));
  if (ret < 0) co_return ret;
  queues_[queue].started = true;
  co_return 0;
}

MirrorTarget::QueueState* MirrorTarget::checked(const Request& r) {
  if (r.queue >= queues_.size() || !queues_[r.queue].started) return nullptr;
  if (r.offset > size_bytes_ || r.length > size_bytes_ - r.offset) return nullptr;
  return &queues_[r.queue];
}

// ---- one file --------------------------------------------------------------

runtime::Task<int> MirrorTarget::read_one(int file, const Request& r) {
  uint32_t done = 0;
  // A short read is legal (e.g. a signal); continue where it stopped. End
  // of file inside the device means the file shrank under us.
  while (done < r.length) {
    const int n = co_await runtime::read(file, r.data + done, r.length - done, r.offset + done).fixed_file();
    if (n < 0) co_return n;
    if (n == 0) co_return -EIO;
    done += static_cast<uint32_t>(n);
  }
  co_return static_cast<int>(done);
}

runtime::Task<int> MirrorTarget::write_one(int file, const Request& r) {
  uint32_t done = 0;
  while (done < r.length) {
    const int n = co_await runtime::write(file, r.data + done, r.length - done, r.offset + done).fixed_file();
    if (n < 0) co_return n;
    if (n == 0) co_return -EIO;
    done += static_cast<uint32_t>(n);
  }
  // FUA: this write must be durable when it completes, not at the next flush.
  if ((r.flags & abi::IO_F_FUA) != 0) {
    const int s = co_await runtime::fdatasync(file).fixed_file();
    if (s < 0) co_return s;
  }
  co_return static_cast<int>(done);
}

// ---- the request kinds -----------------------------------------------------

runtime::Task<int> MirrorTarget::read(const Request& r) {
  QueueState* q = checked(r);
  if (q == nullptr || r.data == nullptr) co_return -EIO;
  ++q->counters.reads;
  int n = co_await read_one(kPrimary, r);
  if (n < 0) {
    // The secondary holds the same bytes: a failing primary costs a retry,
    // not an I/O error. If both fail, report the primary's error.
    const int second = co_await read_one(kSecondary, r);
    if (second >= 0) ++q->counters.reads_from_secondary;
    n = second >= 0 ? second : n;
  }
  if (n < 0) ++q->counters.errors;
  co_return n;
}

runtime::Task<int> MirrorTarget::write(const Request& r) {
  QueueState* q = checked(r);
  if (q == nullptr || r.data == nullptr) co_return -EIO;
  ++q->counters.writes;
  // Both writes borrow `r`. That is safe because on_both returns only after
  // both have finished, and the queue keeps `r` alive until we return.
  const int ret = co_await on_both(write_one(kPrimary, r), write_one(kSecondary, r), static_cast<int>(r.length));
  if (ret < 0) ++q->counters.errors;
  co_return ret;
}

runtime::Task<int> MirrorTarget::flush(const Request& r) {
  QueueState* q = checked(r);
  if (q == nullptr) co_return -EIO;
  ++q->counters.flushes;
  const int ret = co_await on_both(sync_file(kPrimary), sync_file(kSecondary), 0);
  if (ret < 0) ++q->counters.errors;
  co_return ret;
}

runtime::Task<int> MirrorTarget::discard(const Request& r) {
  QueueState* q = checked(r);
  if (q == nullptr) co_return -EIO;
  ++q->counters.discards;
  const int ret =
      co_await on_both(punch_hole(kPrimary, r.offset, r.length), punch_hole(kSecondary, r.offset, r.length), 0);
  if (ret < 0) ++q->counters.errors;
  co_return ret;
}

}  // namespace coblk::ublk::examples
