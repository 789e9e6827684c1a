// Re-admission and writeback against SIGKILL: a store in shared memory with
// a backing file, whose pages move between RAM and the tier and back while
// their contents never change, survives a kill at any moment. After
// recovery every page reads back exactly, no entry names freed sectors or
// a freed object (recovery itself refuses sectors claimed twice and
// objects owned twice), and the arenas hold exactly the objects of the
// pages in RAM.
//
// A child process attaches to the memory and loops: write back a batch,
// read pages through the tier (re-admitting them at their first read:
// readmit_reads 1), read pages synchronously (which re-admits too), compact.
// The parent kills it at a random moment, attaches (recovery), checks, and
// goes on with the next seed on the same memory and file. Seeds are fixed
// (1..COBLK_READMIT_CRASH_ROUNDS, default 300).
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/kill_moment.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_readmit_crash_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 96;

// Page p's content (never changes): seed p + 1; every 16th page is zeros
// (same-filled, no object).
std::vector<std::byte> content(std::uint64_t p) {
  std::vector<std::byte> page(ps);
  if (p % 16 != 15) storage_test::make_page(page, p + 1);
  return page;
}

PageStoreConfig store_config(int backing_fd) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = 1;
  c.memory = runtime::MemoryKind::shared;
  c.backing_blocks = pages + 1;
  c.backing_fd = backing_fd;
  c.writeback_batch = 8;
  c.readmit_reads = 1;
  return c;
}

// Shared with the child: how far it got.
struct Progress {
  std::atomic<std::uint64_t> attached;    // children that finished recovery
  std::atomic<std::uint64_t> operations;  // operations the children completed
};

[[noreturn]] void child_main(const PageStoreConfig& config, const std::vector<int>& fds, int fd, Progress& progress,
                             std::uint64_t seed) {
  Result<std::unique_ptr<PageStore>> attached = PageStore::attach(config, fds);
  if (!attached) _exit(2);
  PageStore& s = **attached;
  progress.attached.fetch_add(1, std::memory_order_release);
  std::mt19937_64 rng(seed);
  std::vector<std::byte> got(ps);
  for (;;) {
    const std::uint64_t p = rng() % pages;
    switch (rng() % 4) {
      case 0: {
        const WritebackBatch b = s.writeback_prepare(0, WritebackKind::aged, 0, 8);
        bool written = true;
        for (std::uint32_t k = 0; k < b.block_count; ++k) {
          written = written &&
                    ::pwrite(fd, b.data + k * ps, ps, static_cast<off_t>(b.blocks[k] * ps)) == static_cast<ssize_t>(ps);
        }
        if (b.pages != 0) s.writeback_commit(0, b, written);
        break;
      }
      case 1: {
        BackingRead miss[1];
        std::size_t missed = 0;
        if (s.read_resident(0, p * ps, got, miss, missed) != 0) _exit(3);
        if (missed == 1) {
          const bool ok =
              ::pread(fd, miss[0].out, ps, static_cast<off_t>(miss[0].where.block * ps)) == static_cast<ssize_t>(ps);
          if (s.finish_backing_read(
                  0, miss[0], ok ? std::span<const std::byte>(miss[0].out, ps) : std::span<const std::byte>()) != 0) {
            _exit(4);
          }
        }
        if (got != content(p)) _exit(5);
        break;
      }
      case 2:
        if (s.read(0, p * ps, got) != 0 || got != content(p)) _exit(6);
        break;
      default:
        if (rng() % 8 == 0) s.compact_step(0);
        break;
    }
    progress.operations.fetch_add(1, std::memory_order_relaxed);
  }
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

BOOST_AUTO_TEST_CASE(pages_moving_between_ram_and_the_tier_read_back_exactly_after_sigkill_at_a_random_moment) {
  char name[] = "/tmp/coblk-readmit-crash-XXXXXX";
  const int fd = ::mkstemp(name);
  BOOST_REQUIRE(fd >= 0);
  ::unlink(name);
  BOOST_REQUIRE_EQUAL(::ftruncate(fd, static_cast<off_t>((pages + 1) * ps)), 0);
  const PageStoreConfig config = store_config(fd);
  std::vector<int> fds;
  {
    std::unique_ptr<PageStore> fresh = test::require_ok(PageStore::create(config));
    for (std::uint64_t p = 0; p < pages; ++p) BOOST_REQUIRE_EQUAL(fresh->write(0, p * ps, content(p)), 0);
    for (const int f : fresh->memory_fds()) fds.push_back(::dup(f));
  }
  void* shared = ::mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(shared != MAP_FAILED);
  Progress& progress = *new (shared) Progress{};
  const std::uint64_t rounds = env_number("COBLK_READMIT_CRASH_ROUNDS", 300);
  std::uint64_t readmitted_seen = 0, written_back_seen = 0;
  for (std::uint64_t seed = 1; seed <= rounds; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) {
      const std::uint64_t attached_before = progress.attached.load();
      const std::uint64_t operations_before = progress.operations.load();
      const pid_t child = ::fork();
      BOOST_REQUIRE(child >= 0);
      if (child == 0) child_main(config, fds, fd, progress, seed);
      // After recovery, a seed-chosen number of operations (so the work
      // per round does not depend on the machine's load), then a short
      // random while, so that the kill lands anywhere in an operation.
      storage_test::wait_for_count(child, progress.attached, attached_before + 1);
      storage_test::wait_for_count(child, progress.operations, operations_before + 10 + (seed * 7919) % 40);
      std::this_thread::sleep_for(std::chrono::microseconds((seed * 104729) % 1000));
      ::kill(child, SIGKILL);
      int status = 0;
      BOOST_REQUIRE_EQUAL(::waitpid(child, &status, 0), child);
      BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status),
                            "the child stopped on its own (exit status " << WEXITSTATUS(status) << ")");
      // Re-admission off here, so that checking does not move pages.
      PageStoreConfig checking = config;
      checking.readmit_reads = 0;
      Result<std::unique_ptr<PageStore>> attached = PageStore::attach(checking, fds);
      BOOST_REQUIRE_MESSAGE(attached, "recovery failed: " << (attached ? "" : attached.error().message()));
      PageStore& store = **attached;
      std::vector<std::byte> got(ps);
      const std::uint64_t on_tier = store.tier_stat().written_back_pages;
      written_back_seen += on_tier != 0 ? 1 : 0;
      readmitted_seen += on_tier != pages - pages / 16 ? 1 : 0;
      const MmStat mm = store.mm_stat();
      BOOST_REQUIRE_EQUAL(store.allocator_stats().live_objects, mm.orig_data_size / ps - mm.same_pages - on_tier);
      BOOST_REQUIRE_EQUAL(mm.orig_data_size, pages * ps);  // same-filled pages included
      BOOST_REQUIRE_EQUAL(mm.same_pages, pages / 16);
      for (std::uint64_t p = 0; p < pages; ++p) {
        BOOST_REQUIRE_EQUAL(store.read(0, p * ps, got), 0);
        BOOST_REQUIRE_MESSAGE(got == content(p), "page " << p << " differs after recovery");
      }
    }
  }
  BOOST_TEST_MESSAGE(rounds << " rounds, " << progress.operations.load() << " operations; rounds ending with pages "
                            << "on the tier: " << written_back_seen << ", with pages in RAM: " << readmitted_seen);
  // The kills landed while pages were moving both ways.
  BOOST_TEST(progress.operations.load() > rounds * 10);
  BOOST_TEST(written_back_seen > 0u);
  for (const int f : fds) ::close(f);
  ::munmap(shared, sizeof(Progress));
  ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_readmit_crash_test
