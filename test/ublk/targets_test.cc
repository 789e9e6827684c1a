// The null, ram and loop targets, driven on a one-core runtime as a queue
// would drive them (no kernel ublk needed).
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/null_target.h"
#include "coblk/ublk/nvme_passthrough.h"
#include "coblk/ublk/ram_target.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_targets_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using ublk::Request;

namespace {

// Runs `body` on a single-reactor runtime and returns its result.
template <class F>
int run_on_runtime(F body) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime::RuntimeConfig{}));
  return rt->run(std::move(body));
}

Request make(uint8_t op, uint64_t offset, uint32_t length, std::byte* data) {
  Request r;
  r.op = op;
  r.offset = offset;
  r.length = length;
  r.data = data;
  return r;
}

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return v;
}

bool all_zero(const std::vector<std::byte>& v) {
  for (std::byte b : v) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

// A temporary backing file, in /tmp or in `dir`.
struct TempFile {
  std::string path;
  explicit TempFile(uint64_t bytes, const std::string& dir = "/tmp") {
    std::string tmpl = dir + "/coblk-loop-XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    path = tmpl;
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

// 512-byte blocks the file holds on disk (or in memory, for tmpfs).
long long allocated_blocks(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_blocks) : -1;
}

// Writes a pattern over [0, 64 KiB) of a loop device, zeroes [16 KiB, 48 KiB)
// with `flags`, and checks that exactly that range reads back as zeros.
// Returns the file's allocated blocks before and after the zeroing.
std::pair<long long, long long> zero_the_middle(ublk::LoopTarget& loop, const std::string& path, uint32_t flags) {
  long long before = -1;
  const int ok = run_on_runtime([&]() -> Task<int> {
    auto data = pattern(65536, 9);
    if (co_await loop.write(make(ublk::abi::IO_OP_WRITE, 0, 65536, data.data())) != 65536) co_return 1;
    if (co_await loop.flush(make(ublk::abi::IO_OP_FLUSH, 0, 0, nullptr)) != 0) co_return 2;
    before = allocated_blocks(path);
    Request z = make(ublk::abi::IO_OP_WRITE_ZEROES, 16384, 32768, nullptr);
    z.flags = flags;
    if (co_await loop.write_zeroes(z) != 0) co_return 3;
    std::vector<std::byte> back(65536);
    if (co_await loop.read(make(ublk::abi::IO_OP_READ, 0, 65536, back.data())) != 65536) co_return 4;
    for (size_t i = 0; i < back.size(); ++i) {
      const bool zeroed = i >= 16384 && i < 49152;
      if (back[i] != (zeroed ? std::byte{0} : data[i])) co_return 5;
    }
    co_return 0;
  });
  BOOST_TEST(ok == 0);
  return {before, allocated_blocks(path)};
}

// True if `dir` is a tmpfs whose files refuse FALLOC_FL_ZERO_RANGE.
bool tmpfs_without_zero_range(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0 || fs.f_type != 0x01021994 /* TMPFS_MAGIC */) return false;
  TempFile probe(65536, dir);
  const int fd = ::open(probe.path.c_str(), O_RDWR | O_CLOEXEC);
  const bool refused = ::fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096) != 0 && errno == EOPNOTSUPP;
  ::close(fd);
  return refused;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_ram_device_returns_what_was_written_and_zeros_elsewhere) {
  const auto owned_ram = test::require_ok(ublk::RamTarget::create(1 << 20, 512));
  ublk::RamTarget& ram = *owned_ram;
  const int ok = run_on_runtime([&]() -> Task<int> {
    auto data = pattern(8192, 7);
    if (co_await ram.write(make(ublk::abi::IO_OP_WRITE, 4096, 8192, data.data())) != 8192) co_return 1;
    std::vector<std::byte> back(8192);
    if (co_await ram.read(make(ublk::abi::IO_OP_READ, 4096, 8192, back.data())) != 8192) co_return 2;
    if (back != data) co_return 3;
    std::vector<std::byte> untouched(4096, std::byte{1});
    co_await ram.read(make(ublk::abi::IO_OP_READ, 65536, 4096, untouched.data()));
    co_return all_zero(untouched) ? 0 : 4;
  });
  BOOST_TEST(ok == 0);
}

BOOST_AUTO_TEST_CASE(discarding_ram_zeroes_whole_pages_and_ragged_ends) {
  const auto owned_ram = test::require_ok(ublk::RamTarget::create(1 << 20, 512));
  ublk::RamTarget& ram = *owned_ram;
  const int ok = run_on_runtime([&]() -> Task<int> {
    auto data = pattern(16384, 3);
    co_await ram.write(make(ublk::abi::IO_OP_WRITE, 0, 16384, data.data()));
    // [512, 15360): a partial first page, two whole pages, a partial last page.
    if (co_await ram.discard(make(ublk::abi::IO_OP_DISCARD, 512, 14848, nullptr)) != 0) co_return 1;
    std::vector<std::byte> back(16384);
    co_await ram.read(make(ublk::abi::IO_OP_READ, 0, 16384, back.data()));
    for (size_t i = 0; i < back.size(); ++i) {
      const bool zeroed = i >= 512 && i < 15360;
      if (back[i] != (zeroed ? std::byte{0} : data[i])) co_return 2;
    }
    co_return 0;
  });
  BOOST_TEST(ok == 0);
}

BOOST_AUTO_TEST_CASE(a_request_beyond_the_ram_device_fails_with_eio_instead_of_overrunning) {
  const auto owned_ram = test::require_ok(ublk::RamTarget::create(65536, 512));
  ublk::RamTarget& ram = *owned_ram;
  const int result = run_on_runtime([&]() -> Task<int> {
    std::vector<std::byte> buf(8192);
    co_return co_await ram.read(make(ublk::abi::IO_OP_READ, 61440, 8192, buf.data()));
  });
  BOOST_TEST(result == -EIO);
}

BOOST_AUTO_TEST_CASE(the_ram_geometry_advertises_discard_and_write_zeroes) {
  const auto owned_ram = test::require_ok(ublk::RamTarget::create(1 << 20, 4096));
  ublk::RamTarget& ram = *owned_ram;
  const auto g = ram.geometry();
  BOOST_TEST(g.size_bytes == 1U << 20);
  BOOST_TEST(g.logical_block_size == 4096U);
  BOOST_TEST(g.discard);
  BOOST_TEST(g.write_zeroes);
  BOOST_TEST(!g.volatile_cache);
}

BOOST_AUTO_TEST_CASE(a_loop_device_writes_through_to_its_file) {
  TempFile file(1 << 20);
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  auto data = pattern(4096, 11);
  const int ok = run_on_runtime([&]() -> Task<int> {
    if (co_await loop.write(make(ublk::abi::IO_OP_WRITE, 8192, 4096, data.data())) != 4096) co_return 1;
    if (co_await loop.flush(make(ublk::abi::IO_OP_FLUSH, 0, 0, nullptr)) != 0) co_return 2;
    std::vector<std::byte> back(4096);
    if (co_await loop.read(make(ublk::abi::IO_OP_READ, 8192, 4096, back.data())) != 4096) co_return 3;
    co_return back == data ? 0 : 4;
  });
  BOOST_TEST(ok == 0);
  // The file itself holds the bytes.
  std::vector<std::byte> on_disk(4096);
  const int fd = ::open(file.path.c_str(), O_RDONLY);
  BOOST_REQUIRE(fd >= 0);
  BOOST_TEST(::pread(fd, on_disk.data(), on_disk.size(), 8192) == 4096);
  ::close(fd);
  BOOST_TEST((on_disk == data));
}

// start_queue puts the file in the core's fixed-file table; every kind of
// request then names it by index, and stop_queue gives the slot back.
BOOST_AUTO_TEST_CASE(a_started_loop_queue_serves_every_request_through_its_fixed_file) {
  TempFile file(1 << 20);
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  const int ok = run_on_runtime([&]() -> Task<int> {
    if (co_await loop.start_queue(0) != 0) co_return 1;
    auto data = pattern(8192, 3);
    Request w = make(ublk::abi::IO_OP_WRITE, 4096, 8192, data.data());
    w.flags = ublk::abi::IO_F_FUA;
    if (co_await loop.write(w) != 8192) co_return 2;
    if (co_await loop.flush(make(ublk::abi::IO_OP_FLUSH, 0, 0, nullptr)) != 0) co_return 3;
    std::vector<std::byte> back(8192);
    if (co_await loop.read(make(ublk::abi::IO_OP_READ, 4096, 8192, back.data())) != 8192) co_return 4;
    if (back != data) co_return 5;
    const int z = co_await loop.write_zeroes(make(ublk::abi::IO_OP_WRITE_ZEROES, 4096, 4096, nullptr));
    if (z != 0 && z != -EOPNOTSUPP) co_return 6;
    loop.stop_queue(0);
    // The slot is free again: the next install gets it back.
    runtime::Reactor* reactor = runtime::Reactor::current();
    const int index = reactor->install_file(0);
    if (index > 0) co_return 7;  // slot 0 was the loop file's and must be free
    if (index == 0) reactor->remove_file(index);
    co_return 0;
  });
  BOOST_TEST(ok == 0);
}

namespace {

// Open file descriptions of this process naming `path` (one per fd here:
// the test opens each one separately).
int open_descriptions_of(const std::string& path) {
  int n = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    char link[64], target[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t len = ::readlink(link, target, sizeof target - 1);
    if (len > 0 && std::string(target, static_cast<size_t>(len)) == path) ++n;
  }
  return n;
}

}  // namespace

// Each core syncs through an open file description of its own: the kernel
// reports a writeback error once per description, so with a shared one a
// sync on one core could take the error another core's sync needed.
BOOST_AUTO_TEST_CASE(a_started_loop_queue_has_an_open_file_of_its_own_until_it_stops) {
  TempFile file(1 << 20);
  char real[4096];
  BOOST_REQUIRE(::realpath(file.path.c_str(), real) != nullptr);
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  BOOST_TEST(open_descriptions_of(real) == 1);
  const int ok = run_on_runtime([&]() -> Task<int> {
    if (co_await loop.start_queue(0) != 0) co_return 1;
    if (open_descriptions_of(real) != 2) co_return 2;
    auto data = pattern(4096, 5);
    Request w = make(ublk::abi::IO_OP_WRITE, 0, 4096, data.data());
    w.flags = ublk::abi::IO_F_FUA;
    if (co_await loop.write(w) != 4096) co_return 3;
    loop.stop_queue(0);
    if (open_descriptions_of(real) != 1) co_return 4;
    co_return 0;
  });
  BOOST_TEST(ok == 0);
}

BOOST_AUTO_TEST_CASE(write_zeroes_on_a_loop_device_reads_back_as_zeros) {
  TempFile file(1 << 20);
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  const int ok = run_on_runtime([&]() -> Task<int> {
    auto data = pattern(16384, 5);
    co_await loop.write(make(ublk::abi::IO_OP_WRITE, 0, 16384, data.data()));
    Request z = make(ublk::abi::IO_OP_WRITE_ZEROES, 4096, 8192, nullptr);
    const int r = co_await loop.write_zeroes(z);
    if (r == -EOPNOTSUPP) co_return 0;  // a file system without hole punching
    if (r != 0) co_return 1;
    std::vector<std::byte> back(8192, std::byte{1});
    co_await loop.read(make(ublk::abi::IO_OP_READ, 4096, 8192, back.data()));
    co_return all_zero(back) ? 0 : 2;
  });
  BOOST_TEST(ok == 0);
}

BOOST_AUTO_TEST_CASE(write_zeroes_with_nounmap_keeps_the_loop_files_blocks_allocated) {
  TempFile file(1 << 20);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  const auto [before, after] = zero_the_middle(*loop, file.path, ublk::abi::IO_F_NOUNMAP);
  BOOST_TEST(before >= 128);  // 64 KiB written
  BOOST_TEST(after == before);
}

BOOST_AUTO_TEST_CASE(write_zeroes_with_nounmap_writes_zeros_where_the_file_system_has_no_zero_range) {
  // tmpfs refuses FALLOC_FL_ZERO_RANGE; the fallback must not punch a hole.
  const std::string dir = "/dev/shm";
  if (!tmpfs_without_zero_range(dir)) {
    BOOST_TEST_MESSAGE(dir << " is not a tmpfs that refuses ZERO_RANGE; nothing to check here");
    return;
  }
  TempFile file(1 << 20, dir);
  const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
  const auto [before, after] = zero_the_middle(*loop, file.path, ublk::abi::IO_F_NOUNMAP);
  BOOST_TEST(before >= 128);
  BOOST_TEST(after == before);
}

BOOST_AUTO_TEST_CASE(write_zeroes_without_nounmap_may_free_the_loop_files_blocks) {
  for (const std::string dir : {"/tmp", "/dev/shm"}) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) continue;
    TempFile file(1 << 20, dir);
    const auto loop = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
    const auto [before, after] = zero_the_middle(*loop, file.path, 0);
    BOOST_TEST(after <= before - 64, dir);  // the 32 KiB hole is given back
  }
}

// Found by test/fuzz (fuzz_ublk_desc): the loop target checked no range, so
// a request past the device read or wrote the file beyond it (and grew it).
BOOST_AUTO_TEST_CASE(a_request_beyond_the_loop_device_fails_with_eio_and_leaves_the_file_alone) {
  TempFile file(2 * 65536);  // the device is the first half of the file
  const auto owned_loop = test::require_ok(ublk::LoopTarget::create(file.path, 65536, 512, false));
  ublk::LoopTarget& loop = *owned_loop;
  const int ok = run_on_runtime([&]() -> Task<int> {
    std::vector<std::byte> buf(8192, std::byte{7});
    if (co_await loop.read(make(ublk::abi::IO_OP_READ, 61440, 8192, buf.data())) != -EIO) co_return 1;
    if (co_await loop.write(make(ublk::abi::IO_OP_WRITE, 65536, 4096, buf.data())) != -EIO) co_return 2;
    if (co_await loop.write(make(ublk::abi::IO_OP_WRITE, 2 * 65536, 512, buf.data())) != -EIO) co_return 3;
    if (co_await loop.discard(make(ublk::abi::IO_OP_DISCARD, 65536 - 512, 1024, nullptr)) != -EIO) co_return 4;
    if (co_await loop.write_zeroes(make(ublk::abi::IO_OP_WRITE_ZEROES, UINT64_MAX - 511, 512, nullptr)) != -EIO)
      co_return 5;
    // The last block inside is fine; a zero-length discard is nothing to do.
    if (co_await loop.write(make(ublk::abi::IO_OP_WRITE, 65536 - 512, 512, buf.data())) != 512) co_return 6;
    if (co_await loop.discard(make(ublk::abi::IO_OP_DISCARD, 0, 0, nullptr)) != 0) co_return 7;
    co_return 0;
  });
  BOOST_TEST(ok == 0);
  struct stat st {};
  BOOST_TEST(::stat(file.path.c_str(), &st) == 0);
  BOOST_TEST(st.st_size == 2 * 65536);
  std::vector<std::byte> outside(65536, std::byte{1});
  const int fd = ::open(file.path.c_str(), O_RDONLY);
  BOOST_REQUIRE(fd >= 0);
  BOOST_TEST(::pread(fd, outside.data(), outside.size(), 65536) == 65536);
  ::close(fd);
  BOOST_TEST(all_zero(outside));
}

BOOST_AUTO_TEST_CASE(a_missing_backing_file_is_reported_not_thrown) {
  const auto loop = ublk::LoopTarget::create("/nonexistent/coblk.img", 1 << 20, 512, false);
  BOOST_TEST(test::require_error(loop, ENOENT).find("cannot open backing file") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_file_another_loop_target_serves_is_refused_until_that_one_is_gone) {
  TempFile file(1 << 20);
  {
    const auto first = test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
    const auto second = ublk::LoopTarget::create(file.path, 1 << 20, 512, false);
    BOOST_TEST(test::require_error(second, EBUSY) ==
               "backing file '" + file.path + "' is in use by another coblk device");
  }
  // The lock went with the first target's file: the file can be served again.
  test::require_ok(ublk::LoopTarget::create(file.path, 1 << 20, 512, false));
}

// Polled I/O needs O_DIRECT on a block device whose driver polls; the VM's
// NVMe disk has one (test/vm/guest/nvme.sh), the host's files do not.
BOOST_AUTO_TEST_CASE(a_loop_target_with_iopoll_refuses_buffered_io_and_a_regular_file) {
  TempFile file(1 << 20);
  const auto buffered = ublk::LoopTarget::create(file.path, 1 << 20, 4096, false, true, true);
  BOOST_TEST(test::require_error(buffered, EINVAL).find("--iopoll needs --direct-io") != std::string::npos);
  const auto direct = ublk::LoopTarget::create(file.path, 1 << 20, 4096, true, true, true);
  if (!direct && direct.error().code() == EINVAL && direct.error().message().find("cannot open") != std::string::npos) {
    return;  // no O_DIRECT on this file system at all
  }
  BOOST_TEST(test::require_error(direct, EINVAL).find("is not one (polled I/O is the block layer's)") !=
             std::string::npos);
}

// Passthrough needs an NVMe namespace's char device: the VM's emulated
// disk has one (test/vm/guest/nvme.sh); here only the refusals.
BOOST_AUTO_TEST_CASE(a_loop_target_with_passthrough_refuses_a_regular_file_and_block_layer_options) {
  TempFile file(1 << 20);
  const auto direct = ublk::LoopTarget::create(file.path, 1 << 20, 512, true, true, false, true);
  BOOST_TEST(test::require_error(direct, EINVAL).find("--passthrough goes around the block layer") !=
             std::string::npos);
  const auto plain = ublk::LoopTarget::create(file.path, 1 << 20, 512, false, true, false, true);
  BOOST_TEST(test::require_error(plain, EINVAL).find("is not an NVMe namespace's generic char device") !=
             std::string::npos);
  // With --iopoll (polled commands) the file is refused for what it is.
  const auto polled = ublk::LoopTarget::create(file.path, 1 << 20, 512, false, true, true, true);
  BOOST_TEST(test::require_error(polled, EINVAL).find("is not an NVMe namespace's generic char device") !=
             std::string::npos);
  const auto null = ublk::nvme_namespace("/dev/null");
  BOOST_TEST(test::require_error(null, EINVAL).find("'/dev/null' is not an NVMe namespace's") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_null_device_completes_everything_at_full_length) {
  ublk::NullTarget null(1ULL << 30, 512);
  const int ok = run_on_runtime([&]() -> Task<int> {
    std::vector<std::byte> buf(4096);
    if (co_await null.read(make(ublk::abi::IO_OP_READ, 0, 4096, buf.data())) != 4096) co_return 1;
    if (co_await null.write(make(ublk::abi::IO_OP_WRITE, 0, 4096, buf.data())) != 4096) co_return 2;
    if (co_await null.discard(make(ublk::abi::IO_OP_DISCARD, 0, 4096, nullptr)) != 0) co_return 3;
    co_return 0;
  });
  BOOST_TEST(ok == 0);
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_targets_test
