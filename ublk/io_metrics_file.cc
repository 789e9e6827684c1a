#include "coblk/ublk/io_metrics_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "coblk/ublk/published_file.h"

namespace coblk::ublk {

namespace {

using Buckets = runtime::LatencyBuckets;
using Word = std::atomic<std::uint64_t>;
static_assert(Word::is_always_lock_free, "shared mapping needs address-free atomics");

constexpr std::uint64_t metrics_magic = 0x636f626c6b696f31ull;  // "coblkio1"
constexpr std::uint64_t layout_version = 1;

// The file: a header page, then one slot per queue. Every field is an
// atomic 64-bit word, so a reader's copy during a concurrent publish is a
// race on atomics (defined), which the slot's sequence tells it to discard.
enum HeaderWord : unsigned {
  h_magic,  // written last, with release: a reader that sees it sees the rest
  h_version,
  h_dev_id,
  h_queues,
  h_ops,      // kMetricOps
  h_buckets,  // Buckets::count
  h_sub_bits,
  h_max_bits,
  h_slot_offset,  // bytes
  h_slot_bytes,
  h_pid,
  h_words,
};
constexpr std::size_t header_bytes = 4096;

enum SlotWord : unsigned {
  s_sequence,  // odd while a publish is under way
  s_updated_ns,
  s_core,
  s_publishes,
  s_reactor,  // reactor_words of ReactorSnapshot, in its order
  s_ops = 16,
};
// The 11th word (enters) was added in a slot word that older servers left
// 0, so the layout version stays: their files read as 0 system calls.
constexpr unsigned reactor_words = 11;
static_assert(s_reactor + reactor_words <= s_ops);
// Per operation: requests, bytes, errors, latency sum, then the buckets.
constexpr unsigned op_requests = 0, op_bytes = 1, op_errors = 2, op_sum = 3, op_buckets = 4;
constexpr unsigned op_words = op_buckets + Buckets::count;
constexpr unsigned slot_words = s_ops + kMetricOps * op_words;
// Whole pages: queues on different cores never share a cache line.
constexpr std::size_t slot_bytes = (slot_words * 8 + 4095) / 4096 * 4096;

std::size_t file_bytes(unsigned queues) { return header_bytes + std::size_t{queues} * slot_bytes; }

std::uint64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

Word* slot_of(void* map, unsigned queue) {
  return reinterpret_cast<Word*>(static_cast<char*>(map) + header_bytes + std::size_t{queue} * slot_bytes);
}

}  // namespace

Result<std::unique_ptr<IoMetricsPublisher>> IoMetricsPublisher::create(const std::string& path, std::uint32_t dev_id,
                                                                       unsigned queues) {
  if (queues == 0 || queues > kMaxMetricsQueues) {
    return Error(EINVAL, "cannot create " + path + ": " + std::to_string(queues) + " queues (1.." +
                             std::to_string(kMaxMetricsQueues) + ")");
  }
  std::string tmp;
  const int fd = create_file_beside(path, tmp);
  if (fd < 0) return Error::from_errno(-fd, "cannot create " + path);
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error::from_errno(err, std::string(what) + path);
  };
  const std::size_t bytes = file_bytes(queues);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return fail("cannot size ");
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail("cannot map ");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::munmap(map, bytes);
    errno = err;
    return fail("cannot stat ");
  }
  ::close(fd);
  std::unique_ptr<IoMetricsPublisher> publisher(new IoMetricsPublisher(path, map, bytes, queues));
  publisher->dev_ = st.st_dev;
  publisher->ino_ = st.st_ino;
  auto* header = static_cast<Word*>(map);
  header[h_version].store(layout_version, std::memory_order_relaxed);
  header[h_dev_id].store(dev_id, std::memory_order_relaxed);
  header[h_queues].store(queues, std::memory_order_relaxed);
  header[h_ops].store(kMetricOps, std::memory_order_relaxed);
  header[h_buckets].store(Buckets::count, std::memory_order_relaxed);
  header[h_sub_bits].store(Buckets::sub_bits, std::memory_order_relaxed);
  header[h_max_bits].store(Buckets::max_bits, std::memory_order_relaxed);
  header[h_slot_offset].store(header_bytes, std::memory_order_relaxed);
  header[h_slot_bytes].store(slot_bytes, std::memory_order_relaxed);
  header[h_pid].store(static_cast<std::uint64_t>(::getpid()), std::memory_order_relaxed);
  // Release: a reader that sees the magic sees the header (and zeroed,
  // even-sequenced slots: the file is new).
  header[h_magic].store(metrics_magic, std::memory_order_release);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    publisher->path_.clear();  // nothing of ours at `path` to remove
    return Error::from_errno(err, "cannot create " + path);
  }
  return publisher;
}

IoMetricsPublisher::IoMetricsPublisher(std::string path, void* map, std::size_t bytes, unsigned queues)
    : path_(std::move(path)), map_(map), bytes_(bytes), queues_(queues) {}

IoMetricsPublisher::~IoMetricsPublisher() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
  // Only our own file: a newer server of the same device may have put its
  // file at the path since.
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

void IoMetricsPublisher::publish(unsigned queue, unsigned core, const QueueMetrics& metrics,
                                 const runtime::ReactorStats& reactor) noexcept {
  if (queue >= queues_) return;
  Word* slot = slot_of(map_, queue);
  const std::uint64_t seq = slot[s_sequence].load(std::memory_order_relaxed);
  slot[s_sequence].store(seq + 1, std::memory_order_relaxed);
  // Release fence: the odd sequence is visible before any field changes,
  // so a reader that copies a changed field also sees seq+1 (or later).
  std::atomic_thread_fence(std::memory_order_release);
  auto put = [](Word& w, std::uint64_t v) { w.store(v, std::memory_order_relaxed); };
  put(slot[s_updated_ns], realtime_ns());
  put(slot[s_core], core);
  put(slot[s_publishes], slot[s_publishes].load(std::memory_order_relaxed) + 1);
  std::uint64_t busy = 0;
  for (const runtime::GroupStats& g : reactor.groups) busy += g.runtime_ns.get();
  const std::uint64_t r[reactor_words] = {
      busy,
      reactor.tasks_run.get(),
      reactor.sqes_submitted.get(),
      reactor.cqes_reaped.get(),
      reactor.sleeps.get(),
      reactor.stalls.get(),
      reactor.max_stall_ns.get(),
      reactor.messages_sent.get(),
      reactor.messages_received.get(),
      reactor.missed_wakeups.get(),
      reactor.enters.get(),
  };
  for (unsigned i = 0; i < reactor_words; ++i) put(slot[s_reactor + i], r[i]);
  for (unsigned op = 0; op < kMetricOps; ++op) {
    const OpMetrics& m = metrics.op(op);
    Word* w = slot + s_ops + op * op_words;
    put(w[op_requests], m.requests.get());
    put(w[op_bytes], m.bytes.get());
    put(w[op_errors], m.errors.get());
    put(w[op_sum], m.latency_ns.sum());
    for (unsigned b = 0; b < Buckets::count; ++b) put(w[op_buckets + b], m.latency_ns.bucket(b));
  }
  // Release: the fields are visible before the even sequence that says
  // they are complete.
  slot[s_sequence].store(seq + 2, std::memory_order_release);
}

Result<IoMetricsSnapshot> read_io_metrics(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, path);
  auto invalid = [&] {
    ::close(fd);
    return Error(EINVAL, path + ": not a coblk metrics file");
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return invalid();
  std::uint64_t header[h_words] = {};
  if (!pread_exactly(fd, header, sizeof(header), 0)) return invalid();
  // Acquire: the header words were read after the magic was (the publisher
  // stored it last, with release, before the file got its name).
  std::atomic_thread_fence(std::memory_order_acquire);
  const std::uint64_t queues = header[h_queues];
  if (header[h_magic] != metrics_magic || header[h_version] != layout_version || queues == 0 ||
      queues > kMaxMetricsQueues || header[h_ops] != kMetricOps || header[h_buckets] != Buckets::count ||
      header[h_sub_bits] != Buckets::sub_bits || header[h_max_bits] != Buckets::max_bits ||
      header[h_slot_offset] != header_bytes || header[h_slot_bytes] != slot_bytes ||
      static_cast<std::uint64_t>(st.st_size) < file_bytes(static_cast<unsigned>(queues))) {
    return invalid();
  }
  IoMetricsSnapshot out;
  out.dev_id = static_cast<std::uint32_t>(header[h_dev_id]);
  out.pid = header[h_pid];
  out.queues.resize(queues);
  std::vector<std::uint64_t> copy(slot_words);
  for (unsigned q = 0; q < queues; ++q) {
    const auto at = static_cast<off_t>(header_bytes + std::size_t{q} * slot_bytes);
    for (int attempt = 0;; ++attempt) {
      // The sequence lock, as over the mapping: the sequence, the slot, the
      // sequence again, each its own pread, ordered by acquire fences.
      std::uint64_t before = 0;
      std::uint64_t after = 0;
      bool whole = pread_exactly(fd, &before, sizeof(before), at);
      std::atomic_thread_fence(std::memory_order_acquire);
      whole = whole && pread_exactly(fd, copy.data(), copy.size() * 8, at);
      std::atomic_thread_fence(std::memory_order_acquire);
      whole = whole && pread_exactly(fd, &after, sizeof(after), at);
      if (!whole) return invalid();
      if (before == after && (before & 1) == 0) break;
      if (attempt > 1000) {
        ::close(fd);
        return Error(EAGAIN, path + ": the metrics never settled");
      }
    }
    QueueSnapshot& s = out.queues[q];
    s.updated_ns = copy[s_updated_ns];
    s.core = static_cast<unsigned>(copy[s_core]);
    s.publishes = copy[s_publishes];
    const std::uint64_t* r = copy.data() + s_reactor;
    s.reactor = ReactorSnapshot{r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]};
    for (unsigned op = 0; op < kMetricOps; ++op) {
      const std::uint64_t* w = copy.data() + s_ops + op * op_words;
      OpSnapshot& o = s.ops[op];
      o.requests = w[op_requests];
      o.bytes = w[op_bytes];
      o.errors = w[op_errors];
      o.latency_ns.sum = w[op_sum];
      for (unsigned b = 0; b < Buckets::count; ++b) o.latency_ns.buckets[b] = w[op_buckets + b];
    }
  }
  ::close(fd);
  return out;
}

}  // namespace coblk::ublk
