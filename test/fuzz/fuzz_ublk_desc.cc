// Fuzzes what the ublk queue does with a descriptor the kernel wrote:
// ublk::request_from_desc (the step Queue::handle runs first), then the
// target operation the queue would start, against the ram target or the
// loop target on a small temporary file. No kernel ublk is needed: the
// target coroutines run on a one-core Runtime, as in test/ublk; it runs on
// a thread of its own for the whole process and is handed each input
// (starting a Runtime per input would cost more than the input).
//
// Input: byte 0 picks the target (bit 0: ram or loop); then up to 64 raw
// 24-byte ublksrv_io_desc records (op_flags, nr_sectors, start_sector, addr),
// served in order on a fresh device of 64 KiB, with a 32 KiB tag buffer.
//
// Checks, for every descriptor, against an independent computation in
// 128-bit arithmetic:
//   - a descriptor whose sector range cannot be expressed in bytes (offset
//     or end beyond 2^64, length beyond 2^32), a READ/WRITE longer than the
//     tag buffer, and a READ/WRITE/DISCARD/WRITE_ZEROES reaching past the
//     end of the device all complete with -EIO;
//   - other READ/WRITE complete with their length, DISCARD/WRITE_ZEROES
//     and FLUSH with 0, an unknown op with -EOPNOTSUPP;
//   - the device behaves as a byte array: a READ returns what the WRITEs
//     before it left (DISCARD and WRITE_ZEROES leave zeros);
//   - nothing touches memory outside the request: the tag buffer is an
//     exact-size heap allocation (ASan), and the loop target's backing file
//     is twice the device, its second half a pattern that must survive and
//     its size unchanged.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/ram_target.h"
#include "coblk/ublk/request_from_desc.h"
#include "test/fuzz/check.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr uint64_t kDeviceBytes = 64 * 1024;
constexpr uint32_t kMaxIoBytes = 32 * 1024;
constexpr size_t kMaxDescriptors = 64;
constexpr std::byte kOutsidePattern{0xee};
__extension__ typedef unsigned __int128 u128;

// What the queue starts for `r` (Queue::start_operation).
runtime::Task<int> start_operation(ublk::Target& target, const ublk::Request& r) {
  switch (r.op) {
    case ublk::abi::IO_OP_READ:
      return target.read(r);
    case ublk::abi::IO_OP_WRITE:
      return target.write(r);
    case ublk::abi::IO_OP_FLUSH:
      return target.flush(r);
    case ublk::abi::IO_OP_DISCARD:
      return target.discard(r);
    case ublk::abi::IO_OP_WRITE_ZEROES:
      return target.write_zeroes(r);
    default:
      return [](int e) -> runtime::Task<int> { co_return e; }(-EOPNOTSUPP);
  }
}

// The result the queue must complete `d` with, computed without the code
// under test; `range_ok` tells whether the range is a valid one inside the
// device (so that the model applies).
int expected_result(const ublk::abi::ublksrv_io_desc& d, bool& range_ok) {
  const u128 offset = u128{d.start_sector} * 512;
  const u128 length = u128{d.nr_sectors} * 512;
  const u128 end = offset + length;
  const bool expressible = end <= UINT64_MAX && length <= UINT32_MAX;
  const bool inside = expressible && end <= kDeviceBytes;
  range_ok = inside;
  switch (d.op_flags & 0xff) {
    case ublk::abi::IO_OP_READ:
    case ublk::abi::IO_OP_WRITE:
      range_ok = inside && length <= kMaxIoBytes;
      return range_ok ? static_cast<int>(length) : -EIO;
    case ublk::abi::IO_OP_DISCARD:
    case ublk::abi::IO_OP_WRITE_ZEROES:
      return inside ? 0 : -EIO;
    case ublk::abi::IO_OP_FLUSH:  // carries no range: the kernel's flush rq sits at sector (sector_t)-1
      return 0;
    default:
      return expressible ? -EOPNOTSUPP : -EIO;
  }
}

std::string describe(const ublk::abi::ublksrv_io_desc& d, size_t index) {
  return "descriptor " + std::to_string(index) + " (op " + std::to_string(d.op_flags & 0xff) + ", flags 0x" +
         [&] {
           char buf[16];
           std::snprintf(buf, sizeof buf, "%x", d.op_flags >> 8);
           return std::string(buf);
         }() +
         ", start_sector " + std::to_string(d.start_sector) + ", nr_sectors " + std::to_string(d.nr_sectors) + ")";
}

// The buffers every input reuses (allocating and faulting them in per input
// cost more than the input).
struct Workspace {
  std::vector<std::byte> model = std::vector<std::byte>(kDeviceBytes);  // what the device must hold
  // Write data: the pattern from a descriptor-dependent start.
  std::vector<std::byte> pattern = [] {
    std::vector<std::byte> p(kMaxIoBytes + 256);
    for (size_t b = 0; b < p.size(); ++b) p[b] = static_cast<std::byte>((b * 7 + 1) & 0xff);
    return p;
  }();
  // The tag buffer, exactly max_io_bytes of heap: ASan sees any overrun.
  std::unique_ptr<std::byte[]> buffer = std::make_unique<std::byte[]>(kMaxIoBytes);
};

runtime::Task<void> serve(Workspace& w, ublk::Target& target, const std::vector<ublk::abi::ublksrv_io_desc>& descs) {
  std::memset(w.model.data(), 0, w.model.size());
  std::byte* const buffer = w.buffer.get();
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& d = descs[i];
    bool range_ok = false;
    const int expected = expected_result(d, range_ok);
    const uint8_t op = d.op_flags & 0xff;
    if (op == ublk::abi::IO_OP_WRITE) {
      const size_t fill = static_cast<size_t>(std::min<uint64_t>(uint64_t{d.nr_sectors} * 512, kMaxIoBytes));
      std::memcpy(buffer, w.pattern.data() + (i * 31) % 256, fill);
    }

    // What Queue::handle does with a descriptor, on the copy data path.
    ublk::Request r;
    int result = ublk::request_from_desc(d, 0, 0, kMaxIoBytes, r);
    if (result == 0) {
      r.data = buffer;
      result = co_await start_operation(target, r);
    }
    COBLK_FUZZ_CHECK(result == expected, describe(d, i) + " completed with " + std::to_string(result) + ", expected " +
                                             std::to_string(expected));
    if (!range_ok || result < 0) continue;

    const size_t offset = static_cast<size_t>(d.start_sector * 512);
    const size_t length = static_cast<size_t>(d.nr_sectors) * 512;
    switch (op) {
      case ublk::abi::IO_OP_WRITE:
        std::memcpy(w.model.data() + offset, buffer, length);
        break;
      case ublk::abi::IO_OP_READ:
        COBLK_FUZZ_CHECK(std::memcmp(buffer, w.model.data() + offset, length) == 0,
                         describe(d, i) + " read what was not written");
        break;
      case ublk::abi::IO_OP_DISCARD:
      case ublk::abi::IO_OP_WRITE_ZEROES:
        std::memset(w.model.data() + offset, 0, length);
        break;
      default:
        break;
    }
  }
}

// One input's work, handed to the runtime's thread.
struct Job {
  ublk::Target* target = nullptr;
  const std::vector<ublk::abi::ublksrv_io_desc>* descs = nullptr;
};

struct Setup {
  std::unique_ptr<runtime::Runtime> runtime;
  std::unique_ptr<ublk::LoopTarget> loop;
  int backing_fd = -1;  // the loop target's file, for resets and checks
  int wake_fd = -1;     // eventfd: a job (or the end) is there
  std::atomic<const Job*> job{nullptr};
  std::binary_semaphore done{0};
  std::thread thread;

  Setup() {
    runtime::RuntimeConfig config;
    config.pin = false;  // several fuzzing jobs share the machine's CPUs
    auto rt = runtime::Runtime::create(config);
    if (!rt) fuzz::fail(__FILE__, __LINE__, rt.error().message());
    runtime = std::move(rt).value();
    wake_fd = ::eventfd(0, EFD_CLOEXEC);
    if (wake_fd < 0) fuzz::fail(__FILE__, __LINE__, "eventfd failed");

    const char* tmp = std::getenv("TMPDIR");
    std::string path = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/coblk-fuzz-loop-XXXXXX";
    backing_fd = ::mkstemp(path.data());
    if (backing_fd < 0) fuzz::fail(__FILE__, __LINE__, "mkstemp failed");
    auto target = ublk::LoopTarget::create(path, kDeviceBytes, 512, false);
    ::unlink(path.c_str());  // both descriptors stay open
    if (!target) fuzz::fail(__FILE__, __LINE__, target.error().message());
    loop = std::move(target).value();
    thread = std::thread([this] { runtime->run([this] { return serve_jobs(); }); });
  }

  ~Setup() {
    post(nullptr);
    thread.join();
    ::close(wake_fd);
    ::close(backing_fd);
  }

  // Runs `j` (nullptr: stop) on the runtime and waits until it is done.
  void post(const Job* j) {
    job.store(j, std::memory_order_release);
    const uint64_t one = 1;
    if (::write(wake_fd, &one, sizeof one) != sizeof one) fuzz::fail(__FILE__, __LINE__, "eventfd write failed");
    if (j != nullptr) done.acquire();
  }

  runtime::Task<void> serve_jobs() {
    for (;;) {
      uint64_t count = 0;
      if (co_await runtime::read(wake_fd, &count, sizeof count, 0) != sizeof count)
        fuzz::fail(__FILE__, __LINE__, "eventfd read failed");
      const Job* j = job.load(std::memory_order_acquire);
      if (j == nullptr) co_return;
      co_await serve(workspace, *j->target, *j->descs);
      done.release();
    }
  }

  // The backing file as a fresh device: zeros inside, the pattern outside.
  void reset_backing() const {
    if (::pwrite(backing_fd, file_image.data(), file_image.size(), 0) != static_cast<ssize_t>(file_image.size()) ||
        ::ftruncate(backing_fd, static_cast<off_t>(file_image.size())) != 0)
      fuzz::fail(__FILE__, __LINE__, "cannot reset the backing file");
  }

  void check_backing_outside() {
    struct stat st {};
    COBLK_FUZZ_CHECK(::fstat(backing_fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == 2 * kDeviceBytes,
                     "the backing file changed size: " + std::to_string(st.st_size));
    COBLK_FUZZ_CHECK(
        ::pread(backing_fd, outside.data(), outside.size(), kDeviceBytes) == static_cast<ssize_t>(outside.size()),
        "cannot read the backing file");
    COBLK_FUZZ_CHECK(std::memcmp(outside.data(), file_image.data() + kDeviceBytes, kDeviceBytes) == 0,
                     "the loop target wrote outside the device");
  }

  Workspace workspace;
  // The backing file of a fresh device, and room to read its second half.
  const std::vector<std::byte> file_image = [] {
    std::vector<std::byte> f(2 * kDeviceBytes, std::byte{0});
    std::memset(f.data() + kDeviceBytes, static_cast<int>(kOutsidePattern), kDeviceBytes);
    return f;
  }();
  std::vector<std::byte> outside = std::vector<std::byte>(kDeviceBytes);
};

Setup& setup() {
  static Setup s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Setup& s = setup();
  std::vector<ublk::abi::ublksrv_io_desc> descs;
  for (size_t at = 1; at + sizeof(ublk::abi::ublksrv_io_desc) <= size && descs.size() < kMaxDescriptors;
       at += sizeof(ublk::abi::ublksrv_io_desc)) {
    ublk::abi::ublksrv_io_desc d;
    std::memcpy(&d, data + at, sizeof d);
    descs.push_back(d);
  }

  const bool use_loop = (data[0] & 1) != 0;
  std::unique_ptr<ublk::RamTarget> ram;
  ublk::Target* target = nullptr;
  if (use_loop) {
    s.reset_backing();
    target = s.loop.get();
  } else {
    auto created = ublk::RamTarget::create(kDeviceBytes, 512);
    if (!created) fuzz::fail(__FILE__, __LINE__, created.error().message());
    ram = std::move(created).value();
    target = ram.get();
  }
  const Job job{target, &descs};
  s.post(&job);
  if (use_loop) s.check_backing_outside();
  return 0;
}
