// perf/storage/bench_tier.cc - the backing tier's cost, each figure against
// its baseline in the same run (perf/ab_report.h: alternating rounds,
// median ratio, spread):
//
//   bench_tier [--quick] [--rounds N] [--pages N] [--dir D]
//
// 1. tier_writeback: writing every page of a store back to a file
//    (PageStore::writeback_prepare, one io_uring write per run of
//    consecutive blocks, writeback_commit), in bytes of backing blocks
//    per second, against raw sequential io_uring writes of as many blocks
//    to the same file in batches of the same size. Goal >= 0.8.
// 2. tier_resident_reads: reading every page of a store that has a backing
//    tier but nothing written back (read_resident, the zram target's read
//    path with --backing), against the same store without a tier (read).
//    Goal >= 0.95.
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
};

std::unique_ptr<PageStore> filled_store(const Corpus& corpus, int fd, std::uint64_t backing_blocks) {
  PageStoreConfig c;
  c.size_bytes = corpus.bytes();
  c.backing_blocks = backing_blocks;
  c.backing_fd = fd;
  auto store = PageStore::create(c);
  if (!store) fail(store.error().message());
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    if ((*store)->write(0, i * ps, corpus.pages[i]) != 0) fail("a write failed");
  }
  return std::move(store).value();
}

// Bytes per second of writing every page of `store` back; `blocks` gets
// the blocks written.
double writeback_rate(PageStore& store, Ring& ring, int fd, std::uint64_t& blocks) {
  blocks = 0;
  const double start = perf::now_seconds();
  for (;;) {
    const WritebackBatch b = store.writeback_prepare(0, WritebackKind::aged, 0, 32);
    if (b.pages == 0) {
      if (b.wrapped) break;
      continue;
    }
    for (std::uint32_t k = 0; k < b.block_count;) {
      std::uint32_t run = 1;
      while (k + run < b.block_count && b.blocks[k + run] == b.blocks[k] + run) ++run;
      ring.write(fd, b.data + k * ps, run * static_cast<unsigned>(ps), b.blocks[k] * ps);
      k += run;
    }
    store.writeback_commit(0, true);
    blocks += b.block_count;
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

}  // namespace

int main(int argc, char** argv) {
  int rounds = 11;
  std::size_t pages = 16384;
  std::string dir = "/var/tmp";
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
    } else {
      fail("usage: bench_tier [--quick] [--rounds N] [--pages N] [--dir D]");
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
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(corpus.bytes())) != 0) fail("cannot size the backing file");
  double load[3] = {};
  getloadavg(load, 3);
  std::printf("{\"bench\":\"header\",\"load\":[%.2f,%.2f,%.2f],\"pages\":%zu,\"corpus\":\"%s\",\"o_direct\":%s}\n",
              load[0], load[1], load[2], corpus.pages.size(), corpus.name.c_str(), direct ? "true" : "false");
  Ring ring;
  void* raw = nullptr;
  if (posix_memalign(&raw, ps, 32 * ps) != 0) fail("out of memory");
  std::memset(raw, 0x5a, 32 * ps);

  perf::AbSeries writeback("tier_writeback", "B/s", perf::Better::higher);
  std::uint64_t last_blocks = 0;  // the same data packs into the same block count every round
  for (int r = 0; r < rounds; ++r) {
    auto store = filled_store(corpus, fd, corpus.pages.size());
    std::uint64_t blocks = 0;
    double ours = 0, base = 0;
    if (r % 2 == 0) {
      ours = writeback_rate(*store, ring, fd, blocks);
      base = raw_rate(ring, fd, static_cast<std::byte*>(raw), blocks);
    } else {
      // The baseline first, with the block count of the last round.
      base = raw_rate(ring, fd, static_cast<std::byte*>(raw), last_blocks);
      ours = writeback_rate(*store, ring, fd, blocks);
    }
    last_blocks = blocks;
    writeback.add(ours, base);
  }
  writeback.print(perf::json_number("load_1m", load[0]));

  perf::AbSeries reads("tier_resident_reads", "pages/s", perf::Better::higher);
  auto with_tier = filled_store(corpus, fd, corpus.pages.size());
  auto without = filled_store(corpus, -1, 0);
  for (int r = 0; r < rounds; ++r) {
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
  reads.print(perf::json_number("load_1m", load[0]));
  std::free(raw);
  ::close(fd);
  return 0;
}
