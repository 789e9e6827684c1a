// perf/storage/bench_tier.cc - the backing tier's cost, each figure against
// its baseline in the same run (perf/ab_report.h: alternating rounds,
// median ratio, spread):
//
//   bench_tier [--quick] [--rounds N] [--pages N] [--dir D] [--only NAME_PART] [--slots 1|2]
//
// 1. tier_writeback: writing every page of a store back to a file
//    (PageStore::writeback_prepare, one io_uring write per run of
//    consecutive blocks, writeback_commit; two batches out at once, as
//    the zram target's sweep, or one with --slots 1), in bytes of backing
//    blocks per second, against raw sequential io_uring writes of as many
//    blocks to the same file, 32 blocks a write, one write at a time.
//    Goal >= 0.8.
//    tier_writeback_depth2: the same writeback against raw writes of 32
//    blocks with two in flight, the I/O depth of two batches (not with
//    --slots 1).
// 2. tier_resident_reads: reading every page of a store that has a backing
//    tier but nothing written back (read_resident, the zram target's read
//    path with --backing), against the same store without a tier (read).
//    Goal >= 0.95.
// 3. tier_readmit_reads: four passes of reads over every page of a store
//    whose pages were all written back (read_resident, an io_uring read
//    of each missed block into the page, finish_backing_read: the zram
//    target's read path), in pages per second, with re-admission at the
//    second read (readmit_reads 2, the zram default: the first pass reads
//    from the tier, the second too and re-admits, the last two read RAM)
//    against without (readmit_reads 0: every pass reads the tier). Each
//    round writes back a fresh store first; only the reads are timed.
//
// The file is opened with O_DIRECT where the directory's file system
// allows it (default /var/tmp). The first line records the load averages:
// this host is shared.
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/storage/page_store.h"
#include "perf/ab_report.h"
#include "perf/storage/store_corpus.h"

using namespace coblk;           // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage;         // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage::bench;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = compress::page_size;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_tier: %s\n", what.c_str());
  std::exit(1);
}

struct Ring {
  io_uring ring{};
  Ring() {
    if (io_uring_queue_init(64, &ring, 0) != 0) fail("io_uring_queue_init failed");
  }
  ~Ring() { io_uring_queue_exit(&ring); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  // Writes `len` bytes at `offset`, waiting for the completion.
  void write(int fd, const void* data, unsigned len, std::uint64_t offset) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, fd, data, len, offset);
    io_uring_submit(&ring);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring, &cqe) != 0 || cqe->res != static_cast<int>(len)) fail("a write failed");
    io_uring_cqe_seen(&ring, cqe);
  }
  // Reads `len` bytes at `offset`, waiting for the completion.
  void read(int fd, void* data, unsigned len, std::uint64_t offset) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, fd, data, len, offset);
    io_uring_submit(&ring);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring, &cqe) != 0 || cqe->res != static_cast<int>(len)) fail("a read failed");
    io_uring_cqe_seen(&ring, cqe);
  }
};

std::unique_ptr<PageStore> filled_store(const Corpus& corpus, int fd, std::uint64_t backing_blocks,
                                        std::uint32_t readmit_reads = 0) {
  PageStoreConfig c;
  c.size_bytes = corpus.bytes();
  c.backing_blocks = backing_blocks;
  c.backing_fd = fd;
  c.readmit_reads = readmit_reads;
  auto store = PageStore::create(c);
  if (!store) fail(store.error().message());
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    if ((*store)->write(0, i * ps, corpus.pages[i]) != 0) fail("a write failed");
  }
  return std::move(store).value();
}

// Bytes per second of writing every page of `store` back; `blocks` gets
// the blocks written. As the zram target's sweep does: batches of up to
// writeback_max_pages pages in writeback_batch (32) blocks, up to `slots`
// (default writeback_slots) batches out at once, the next one prepared
// (walked and copied) while the last one's writes are in flight; each
// batch committed when all of its writes completed.
double writeback_rate(PageStore& store, Ring& ring, int fd, std::uint64_t& blocks, unsigned slots = writeback_slots) {
  blocks = 0;
  WritebackBatch out[writeback_slots];
  unsigned writes_left[writeback_slots] = {};  // per slot: its writes not yet completed
  bool busy[writeback_slots] = {};
  unsigned in_flight = 0;
  bool drained = false;
  const double start = perf::now_seconds();
  while (!drained || in_flight != 0) {
    while (!drained && in_flight < slots) {
      const WritebackBatch b = store.writeback_prepare(0, WritebackKind::aged, 0, writeback_max_pages);
      if (b.pages == 0) {
        drained = b.wrapped;
        if (drained) break;
        continue;
      }
      if (busy[b.slot]) fail("prepare returned a slot that is out");
      out[b.slot] = b;
      busy[b.slot] = true;
      ++in_flight;
      for (std::uint32_t k = 0; k < b.block_count;) {
        std::uint32_t run = 1;
        while (k + run < b.block_count && b.blocks[k + run] == b.blocks[k] + run) ++run;
        io_uring_sqe* sqe = io_uring_get_sqe(&ring.ring);
        if (sqe == nullptr) fail("the ring is full");
        io_uring_prep_write(sqe, fd, b.data + k * ps, run * static_cast<unsigned>(ps), b.blocks[k] * ps);
        // The slot and the length: a completion must be the whole run.
        io_uring_sqe_set_data64(sqe, (std::uint64_t{run} << 8) | b.slot);
        ++writes_left[b.slot];
        k += run;
      }
      io_uring_submit(&ring.ring);
    }
    if (in_flight == 0) break;
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring.ring, &cqe) != 0) fail("waiting for a write failed");
    const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
    const auto slot = static_cast<unsigned>(tag & 0xff);
    if (cqe->res != static_cast<int>((tag >> 8) * ps)) fail("a write failed");
    io_uring_cqe_seen(&ring.ring, cqe);
    if (--writes_left[slot] == 0) {
      store.writeback_commit(0, out[slot], true);
      blocks += out[slot].block_count;
      busy[slot] = false;
      --in_flight;
    }
  }
  return static_cast<double>(blocks * ps) / (perf::now_seconds() - start);
}

// Bytes per second of writing `blocks` blocks sequentially, 32 at a time.
double raw_rate(Ring& ring, int fd, const std::byte* data, std::uint64_t blocks) {
  const double start = perf::now_seconds();
  for (std::uint64_t b = 0; b < blocks; b += 32) {
    const std::uint64_t n = blocks - b < 32 ? blocks - b : 32;
    ring.write(fd, data, static_cast<unsigned>(n * ps), b * ps);
  }
  return static_cast<double>(blocks * ps) / (perf::now_seconds() - start);
}

// Bytes per second of writing `blocks` blocks sequentially, 32 at a time,
// with two writes in flight: the I/O depth two writeback batches reach.
double raw_rate_depth2(Ring& ring, int fd, const std::byte* data, std::uint64_t blocks) {
  const double start = perf::now_seconds();
  unsigned in_flight = 0;
  for (std::uint64_t b = 0; b < blocks || in_flight != 0;) {
    while (b < blocks && in_flight < 2) {
      const std::uint64_t n = blocks - b < 32 ? blocks - b : 32;
      io_uring_sqe* sqe = io_uring_get_sqe(&ring.ring);
      io_uring_prep_write(sqe, fd, data, static_cast<unsigned>(n * ps), b * ps);
      io_uring_sqe_set_data64(sqe, n);
      io_uring_submit(&ring.ring);
      ++in_flight;
      b += n;
    }
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring.ring, &cqe) != 0) fail("waiting for a write failed");
    if (cqe->res != static_cast<int>(io_uring_cqe_get_data64(cqe) * ps)) fail("a write failed");
    io_uring_cqe_seen(&ring.ring, cqe);
    --in_flight;
  }
  return static_cast<double>(blocks * ps) / (perf::now_seconds() - start);
}

// Pages per second of reading every page, `resident` through read_resident.
double read_rate(PageStore& store, std::size_t pages, bool resident) {
  std::vector<std::byte> out(ps);
  BackingRead misses[1];
  const double start = perf::now_seconds();
  for (int pass = 0; pass < 3; ++pass) {
    for (std::size_t i = 0; i < pages; ++i) {
      std::size_t missed = 0;
      const int rc = resident ? store.read_resident(0, i * ps, out, misses, missed) : store.read(0, i * ps, out);
      if (rc != 0 || missed != 0) fail("a read failed");
    }
  }
  return static_cast<double>(3 * pages) / (perf::now_seconds() - start);
}

// Pages per second of four passes of reads over every page through the
// tier path (misses read with io_uring into the page itself, which is
// 4096-aligned for O_DIRECT).
double tier_read_rate(PageStore& store, Ring& ring, int fd, std::size_t pages, std::byte* out) {
  BackingRead misses[1];
  const double start = perf::now_seconds();
  for (int pass = 0; pass < 4; ++pass) {
    for (std::size_t i = 0; i < pages; ++i) {
      std::size_t missed = 0;
      if (store.read_resident(0, i * ps, std::span<std::byte>(out, ps), misses, missed) != 0) fail("a read failed");
      if (missed == 1) {
        ring.read(fd, misses[0].out, static_cast<unsigned>(ps), misses[0].where.block * ps);
        if (store.finish_backing_read(0, misses[0], std::span<const std::byte>(misses[0].out, ps)) != 0) {
          fail("a tier read failed");
        }
      }
    }
  }
  return static_cast<double>(4 * pages) / (perf::now_seconds() - start);
}

// A store holding the corpus, every page written back.
std::unique_ptr<PageStore> written_back_store(const Corpus& corpus, Ring& ring, int fd, std::uint32_t readmit_reads) {
  auto store = filled_store(corpus, fd, corpus.pages.size() + 1, readmit_reads);
  std::uint64_t blocks = 0;
  writeback_rate(*store, ring, fd, blocks);
  if (store->tier_stat().written_back_pages == 0) fail("nothing was written back");
  return store;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 11;
  std::size_t pages = 16384;
  std::string dir = "/var/tmp";
  std::string only;                  // run only the series whose name contains this
  unsigned slots = writeback_slots;  // writeback batches out at once
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      rounds = 3;
      pages = 2048;
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--pages" && i + 1 < argc) {
      pages = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--slots" && i + 1 < argc) {
      slots = static_cast<unsigned>(std::atoi(argv[++i]));
      if (slots < 1 || slots > writeback_slots) fail("--slots must be 1 or 2");
    } else {
      fail("usage: bench_tier [--quick] [--rounds N] [--pages N] [--dir D] [--only NAME_PART] [--slots 1|2]");
    }
  }
  const Corpus corpus = process_memory_corpus(pages);
  std::string path = dir + "/coblk-bench-tier-XXXXXX";
  const int fd0 = ::mkstemp(path.data());
  if (fd0 < 0) fail("cannot create a file in " + dir);
  ::close(fd0);
  bool direct = true;
  int fd = ::open(path.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0) {
    direct = false;
    fd = ::open(path.c_str(), O_RDWR);
  }
  ::unlink(path.c_str());
  // One block more than the corpus: block 0 is the tier's header.
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(corpus.bytes() + ps)) != 0) fail("cannot size the backing file");
  double load[3] = {};
  getloadavg(load, 3);
  std::printf(
      "{\"bench\":\"header\",\"load\":[%.2f,%.2f,%.2f],\"pages\":%zu,\"corpus\":\"%s\",\"o_direct\":%s,"
      "\"writeback_slots\":%u}\n",
      load[0], load[1], load[2], corpus.pages.size(), corpus.name.c_str(), direct ? "true" : "false", slots);
  Ring ring;
  void* raw = nullptr;
  if (posix_memalign(&raw, ps, 32 * ps) != 0) fail("out of memory");
  std::memset(raw, 0x5a, 32 * ps);

  auto wanted = [&](const char* name) { return only.empty() || std::string(name).find(only) != std::string::npos; };
  perf::AbSeries writeback("tier_writeback", "B/s", perf::Better::higher);
  std::uint64_t last_blocks = 0;  // the same data packs into the same block count every round
  for (int r = 0; r < (wanted("tier_writeback") ? rounds : 0); ++r) {
    auto store = filled_store(corpus, fd, corpus.pages.size());
    std::uint64_t blocks = 0;
    double ours = 0, base = 0;
    if (r % 2 == 0) {
      ours = writeback_rate(*store, ring, fd, blocks, slots);
      base = raw_rate(ring, fd, static_cast<std::byte*>(raw), blocks);
    } else {
      // The baseline first, with the block count of the last round.
      base = raw_rate(ring, fd, static_cast<std::byte*>(raw), last_blocks);
      ours = writeback_rate(*store, ring, fd, blocks, slots);
    }
    last_blocks = blocks;
    writeback.add(ours, base);
  }
  if (wanted("tier_writeback")) writeback.print(perf::json_number("load_1m", load[0]));

  // The same writeback against a baseline with the same I/O depth: what
  // is left of the gap once both keep two writes in flight.
  perf::AbSeries depth2("tier_writeback_depth2", "B/s", perf::Better::higher);
  last_blocks = 0;
  for (int r = 0; r < (wanted("tier_writeback_depth2") && slots == 2 ? rounds : 0); ++r) {
    auto store = filled_store(corpus, fd, corpus.pages.size());
    std::uint64_t blocks = 0;
    double ours = 0, base = 0;
    if (r % 2 == 0) {
      ours = writeback_rate(*store, ring, fd, blocks, slots);
      base = raw_rate_depth2(ring, fd, static_cast<std::byte*>(raw), blocks);
    } else {
      base = raw_rate_depth2(ring, fd, static_cast<std::byte*>(raw), last_blocks);
      ours = writeback_rate(*store, ring, fd, blocks, slots);
    }
    last_blocks = blocks;
    depth2.add(ours, base);
  }
  if (wanted("tier_writeback_depth2") && slots == 2) depth2.print(perf::json_number("load_1m", load[0]));

  perf::AbSeries reads("tier_resident_reads", "pages/s", perf::Better::higher);
  auto with_tier = filled_store(corpus, fd, corpus.pages.size());
  auto without = filled_store(corpus, -1, 0);
  for (int r = 0; r < (wanted("tier_resident_reads") ? rounds : 0); ++r) {
    double ours = 0, base = 0;
    if (r % 2 == 0) {
      ours = read_rate(*with_tier, corpus.pages.size(), true);
      base = read_rate(*without, corpus.pages.size(), false);
    } else {
      base = read_rate(*without, corpus.pages.size(), false);
      ours = read_rate(*with_tier, corpus.pages.size(), true);
    }
    reads.add(ours, base);
  }
  if (wanted("tier_resident_reads")) reads.print(perf::json_number("load_1m", load[0]));
  with_tier.reset();
  without.reset();

  perf::AbSeries readmit("tier_readmit_reads", "pages/s", perf::Better::higher);
  void* page = nullptr;
  if (posix_memalign(&page, ps, ps) != 0) fail("out of memory");
  for (int r = 0; r < (wanted("tier_readmit_reads") ? rounds : 0); ++r) {
    double ours = 0, base = 0;
    for (int side = 0; side < 2; ++side) {
      // Alternating which side goes first.
      const bool readmitting = (side == 0) == (r % 2 == 0);
      auto store = written_back_store(corpus, ring, fd, readmitting ? 2 : 0);
      const double rate = tier_read_rate(*store, ring, fd, corpus.pages.size(), static_cast<std::byte*>(page));
      if (readmitting && store->tier_stat().readmitted_pages == 0) fail("nothing was re-admitted");
      (readmitting ? ours : base) = rate;
    }
    readmit.add(ours, base);
  }
  if (wanted("tier_readmit_reads")) readmit.print(perf::json_number("load_1m", load[0]));
  std::free(page);
  std::free(raw);
  ::close(fd);
  return 0;
}
