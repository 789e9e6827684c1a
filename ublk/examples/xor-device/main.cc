// main.cc - coblk_xor_device: serves an XorTarget as /dev/ublkbN, in the
// foreground, until SIGINT, SIGTERM or SIGHUP (or `coblk del -n N`).
//
//   coblk_xor_device [-n ID] [-q QUEUES] [--size MIB] [--key BYTE]
//   coblk_xor_device --self-test [--key BYTE]
//
// Prints the block device once it is ready, and each queue's counters when it
// stops. --self-test needs neither ublk nor root: it runs the target's
// operations directly on a one-core Runtime and checks the bytes.
//
// coblk's out-of-tree example: it is built against an installed coblk, with
// CMake (CMakeLists.txt) or pkg-config (Makefile). docs/writing-a-backend.md
// walks through it.
#include <sched.h>

#include <coblk/runtime/result.h>
#include <coblk/runtime/runtime.h>
#include <coblk/runtime/signals.h>
#include <coblk/runtime/task.h>
#include <coblk/ublk/abi.h>
#include <coblk/ublk/device.h>
#include <coblk/ublk/serve_until_signal.h>
#include <coblk/ublk/target.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "xor_target.h"

namespace {

namespace abi = coblk::ublk::abi;
namespace runtime = coblk::runtime;
namespace ublk = coblk::ublk;
using coblk::Error;
using coblk::Result;
using xor_device::XorTarget;

constexpr const char* kUsage =
    "usage: coblk_xor_device [-n ID] [-q QUEUES] [--size MIB] [--key BYTE]\n"
    "       coblk_xor_device --self-test [--key BYTE]";

// Exit statuses as coblk's: 1 the operation failed, 2 bad usage.
constexpr int kFailed = 1;
constexpr int kUsageError = 2;

int fail(const std::string& message, int status = kFailed) {
  std::fprintf(stderr, "coblk_xor_device: %s\n", message.c_str());
  return status;
}

// ---- the command line ---------------------------------------------------------

struct Options {
  int64_t id = -1;         // -n: the device id; -1 lets the kernel pick
  unsigned queues = 1;     // -q: hardware queues
  uint64_t size_mib = 64;  // --size: the device's size
  std::byte key{0x5a};     // --key: what every byte is XORed with
  bool self_test = false;  // --self-test: check the target, serve nothing
  bool help = false;       // -h, --help
};

// A whole number in [low, high]: decimal, or hexadecimal after "0x".
Result<long> parse_number(const std::string& option, const char* text, long low, long high) {
  const std::string s = text;
  const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str() + (hex ? 2 : 0), &end, hex ? 16 : 10);
  if (s.empty() || errno != 0 || *end != '\0' || v < low || v > high) {
    return Error(EINVAL, option + " needs a number from " + std::to_string(low) + " to " + std::to_string(high) +
                             ", not '" + s + "'");
  }
  return v;
}

Result<Options> parse_options(int argc, char** argv) {
  Options o;
  bool serving_option = false;  // one of -n, -q, --size: not for --self-test
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "--self-test") {
      o.self_test = true;
    } else if (arg == "-n" || arg == "-q" || arg == "--size" || arg == "--key") {
      if (i + 1 == argc) return Error(EINVAL, arg + " needs a value");
      const char* value = argv[++i];
      Result<long> v = arg == "-n"       ? parse_number(arg, value, 0, (1L << 20) - 1)
                       : arg == "-q"     ? parse_number(arg, value, 1, 64)
                       : arg == "--size" ? parse_number(arg, value, 1, 1L << 20)
                                         : parse_number(arg, value, 0, 255);
      if (!v) return std::move(v).error();
      if (arg == "-n") o.id = *v;
      if (arg == "-q") o.queues = static_cast<unsigned>(*v);
      if (arg == "--size") o.size_mib = static_cast<uint64_t>(*v);
      if (arg == "--key") o.key = static_cast<std::byte>(*v);
      serving_option = serving_option || arg != "--key";
    } else {
      return Error(EINVAL, "unknown argument '" + arg + "'");
    }
  }
  if (o.self_test && serving_option) return Error(EINVAL, "--self-test takes no -n, -q or --size");
  return o;
}

// ---- the runtime ----------------------------------------------------------------

// The one place this program builds a Runtime: one reactor thread per CPU of
// `config`, pinned, each with its own io_uring. Runs `main` on core 0 and
// returns its result once it has finished and every core has stopped.
Result<void> run_on_runtime(const runtime::RuntimeConfig& config,
                            const std::function<runtime::Task<Result<void>>()>& main) {
  Result<std::unique_ptr<runtime::Runtime>> rt = runtime::Runtime::create(config);
  if (!rt) return std::move(rt).error();
  return (*rt)->run(main);
}

// The first `wanted` CPUs this process may run on, or all of them if fewer.
std::vector<unsigned> usable_cpus(unsigned wanted) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<unsigned> cpus;
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE && cpus.size() < wanted; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  return cpus;
}

// ---- serving a device -----------------------------------------------------------

void print_counters(const XorTarget& target) {
  for (unsigned q = 0; q < target.queues(); ++q) {
    const xor_device::XorQueueCounters& c = target.counters(q);
    std::fprintf(stderr,
                 "queue %u: %llu reads (%llu bytes), %llu writes (%llu bytes), %llu flushes, %llu discards, "
                 "%llu write-zeroes, %llu errors\n",
                 q, static_cast<unsigned long long>(c.reads), static_cast<unsigned long long>(c.bytes_read),
                 static_cast<unsigned long long>(c.writes), static_cast<unsigned long long>(c.bytes_written),
                 static_cast<unsigned long long>(c.flushes), static_cast<unsigned long long>(c.discards),
                 static_cast<unsigned long long>(c.write_zeroes), static_cast<unsigned long long>(c.errors));
  }
}

int serve(const Options& o) {
  // Stop signals become data before any thread exists: every reactor thread
  // inherits the mask, and serve_until_signal reads them from a signalfd.
  Result<runtime::SignalSet> signals = runtime::SignalSet::block();
  if (!signals) return fail(signals.error().message());

  // The target first: it does not need the device's id, and if it cannot be
  // made, no device has been created yet.
  Result<std::unique_ptr<XorTarget>> target = XorTarget::create(o.size_mib << 20, o.key, o.queues);
  if (!target) return fail(target.error().message());

  // ADD_DEV, then SET_PARAMS from the target's geometry, /dev/ublkcN opened
  // and every queue mapped. `device` is declared after `target`, so it is
  // destroyed first; if anything fails from here on, its destructor deletes
  // the device again.
  ublk::DeviceConfig config;  // copy data path, 128 tags per queue
  config.dev_id = o.id;
  config.queues = o.queues;
  Result<std::unique_ptr<ublk::Device>> device = ublk::Device::create(config);
  if (!device) return fail(device.error().message());
  ublk::Device& dev = **device;
  if (Result<void> configured = dev.configure(**target); !configured) return fail(configured.error().message());

  // Queue q is served by core q % cores, one core per CPU we may use (at
  // most one per queue). With fewer CPUs than queues a core serves several
  // queues, each as a task of its own, and its ring must hold all their tags.
  const std::vector<unsigned> cpus = usable_cpus(o.queues);
  if (cpus.empty()) return fail("no CPU to run on (sched_getaffinity failed)");
  const auto cores = static_cast<unsigned>(cpus.size());
  runtime::RuntimeConfig rc;
  rc.cpus = cpus;
  rc.reactor.ring_entries = ublk::ring_entries_for((o.queues + cores - 1) / cores * config.depth);
  std::vector<ublk::ServedDevice> served(1);
  served[0].device = &dev;
  for (unsigned q = 0; q < o.queues; ++q) served[0].cores.push_back(q % cores);
  served[0].on_ready = [&dev] {
    std::printf("%s\n", dev.block_device().c_str());
    std::fflush(stdout);
  };

  // START_DEV once every queue waits for requests, then serve until a stop
  // signal (or `coblk del -n N`, or a failed queue).
  const Result<void> result = run_on_runtime(rc, [&]() -> runtime::Task<Result<void>> {
    co_return co_await ublk::serve_until_signal(*signals, std::move(served));
  });
  // STOP_DEV and DEL_DEV: blocking calls, made once no reactor runs.
  const Result<void> removed = dev.remove();

  // No core runs any more, so the per-queue counters can be read here.
  print_counters(**target);
  if (!result) return fail(result.error().message());
  if (!removed) return fail(removed.error().message());
  return 0;
}

// ---- --self-test: the target's operations, without a kernel ----------------------

// The self-test's device: 1 MiB, two queues.
constexpr uint64_t kSelfTestSize = 1 << 20;
constexpr unsigned kSelfTestQueues = 2;

// Expectations that failed, collected so that one run reports all of them.
struct Checks {
  unsigned passed = 0;
  std::vector<std::string> failures;

  void expect(bool ok, const std::string& what) {
    if (ok) {
      ++passed;
    } else {
      failures.push_back(what);
    }
  }
};

// Runs one request on the target as a ublk queue does: the Request lives in
// this coroutine's frame until the operation has completed.
runtime::Task<int> submit(XorTarget& target, uint8_t op, uint64_t offset, uint32_t length, std::byte* data = nullptr,
                          uint16_t queue = 0) {
  ublk::Request r;
  r.op = op;
  r.offset = offset;
  r.length = length;
  r.data = data;
  r.queue = queue;
  switch (op) {
    case abi::IO_OP_READ:
      co_return co_await target.read(r);
    case abi::IO_OP_WRITE:
      co_return co_await target.write(r);
    case abi::IO_OP_FLUSH:
      co_return co_await target.flush(r);
    case abi::IO_OP_DISCARD:
      co_return co_await target.discard(r);
    case abi::IO_OP_WRITE_ZEROES:
      co_return co_await target.write_zeroes(r);
    default:
      co_return -EOPNOTSUPP;
  }
}

bool all_equal(std::span<const std::byte> bytes, std::byte value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](std::byte b) { return b == value; });
}

bool equal(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// The checks, on a device of kSelfTestSize bytes and kSelfTestQueues queues.
runtime::Task<void> exercise(XorTarget& t, std::byte key, Checks& checks) {
  constexpr int kPage = static_cast<int>(XorTarget::kPageSize);  // an int, as the operations' results
  std::vector<std::byte> pattern(4 * kPage);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<std::byte>(i * 7 + 1);
  std::vector<std::byte> buf(4 * kPage);
  const std::span<const std::byte> got(buf);

  // A fresh device reads as zeros: every byte is stored as the key.
  checks.expect(co_await submit(t, abi::IO_OP_READ, 0, 4 * kPage, buf.data()) == 4 * kPage, "read 16 KiB");
  checks.expect(all_equal(got, std::byte{0}), "a fresh device reads as zeros");
  checks.expect(all_equal(t.stored(), key), "a fresh device stores only the key");

  // A write is stored XORed with the key and reads back as written.
  checks.expect(co_await submit(t, abi::IO_OP_WRITE, 2 * kPage, 4 * kPage, pattern.data()) == 4 * kPage,
                "write 16 KiB at 8 KiB");
  bool encoded = true;
  for (size_t i = 0; i < pattern.size(); ++i) encoded = encoded && t.stored()[2 * kPage + i] == (pattern[i] ^ key);
  checks.expect(encoded, "written bytes are stored XORed with the key");
  checks.expect(co_await submit(t, abi::IO_OP_READ, 2 * kPage, 4 * kPage, buf.data()) == 4 * kPage,
                "read 16 KiB at 8 KiB");
  checks.expect(equal(got, pattern), "a write reads back as written");

  // Discard and write-zeroes make their range read as zeros, and only it.
  checks.expect(co_await submit(t, abi::IO_OP_DISCARD, 3 * kPage, kPage) == 0, "discard 4 KiB at 12 KiB");
  checks.expect(co_await submit(t, abi::IO_OP_WRITE_ZEROES, 4 * kPage, kPage) == 0, "write zeroes 4 KiB at 16 KiB");
  checks.expect(co_await submit(t, abi::IO_OP_READ, 2 * kPage, 4 * kPage, buf.data()) == 4 * kPage,
                "read 16 KiB at 8 KiB again");
  checks.expect(equal(got.subspan(0, kPage), std::span(pattern).subspan(0, kPage)),
                "the page before a discarded range keeps its data");
  checks.expect(all_equal(got.subspan(kPage, 2 * kPage), std::byte{0}), "discarded and zeroed ranges read as zeros");
  checks.expect(equal(got.subspan(3 * kPage), std::span(pattern).subspan(3 * kPage)),
                "the page after a zeroed range keeps its data");

  // Flush has nothing to do.
  checks.expect(co_await submit(t, abi::IO_OP_FLUSH, 0, 0) == 0, "flush succeeds");

  // The last page is inside the device; a request beyond the end is refused.
  checks.expect(co_await submit(t, abi::IO_OP_WRITE, kSelfTestSize - kPage, kPage, pattern.data()) == kPage,
                "write the last page");
  checks.expect(co_await submit(t, abi::IO_OP_READ, kSelfTestSize - kPage, 2 * kPage, buf.data()) == -EIO,
                "a read past the end fails with EIO");
  checks.expect(co_await submit(t, abi::IO_OP_DISCARD, kSelfTestSize, kPage) == -EIO,
                "a discard past the end fails with EIO");

  // Each queue counts its own requests; a queue the device lacks is refused.
  checks.expect(co_await submit(t, abi::IO_OP_WRITE, 0, kPage, pattern.data(), 1) == kPage, "write on queue 1");
  checks.expect(co_await submit(t, abi::IO_OP_READ, 0, kPage, buf.data(), 2) == -EIO, "a read on queue 2 fails");
  const xor_device::XorQueueCounters& q0 = t.counters(0);
  const xor_device::XorQueueCounters& q1 = t.counters(1);
  checks.expect(q0.reads == 3 && q0.writes == 2 && q0.flushes == 1 && q0.discards == 1 && q0.write_zeroes == 1 &&
                    q0.errors == 2 && q0.bytes_read == 12 * kPage && q0.bytes_written == 5 * kPage,
                "queue 0 counted its own requests");
  checks.expect(q1.writes == 1 && q1.reads == 0 && q1.errors == 0 && q1.bytes_written == kPage,
                "queue 1 counted its own requests");
}

int self_test(const Options& o) {
  Result<std::unique_ptr<XorTarget>> target = XorTarget::create(kSelfTestSize, o.key, kSelfTestQueues);
  if (!target) return fail(target.error().message());
  Checks checks;
  // No CPUs given: one core, on the first CPU this process may use. Both of
  // the target's queues run on it, as two queues may share a core when served.
  const Result<void> ran = run_on_runtime(runtime::RuntimeConfig{}, [&]() -> runtime::Task<Result<void>> {
    co_await exercise(**target, o.key, checks);
    co_return coblk::ok();
  });
  if (!ran) return fail(ran.error().message());
  for (const std::string& failure : checks.failures) fail("self-test: FAILED: " + failure);
  if (!checks.failures.empty()) return kFailed;
  std::printf("coblk_xor_device: self-test passed (%u checks)\n", checks.passed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Result<Options> options = parse_options(argc, argv);
  if (!options) return fail(options.error().message() + "\n" + kUsage, kUsageError);
  if (options->help) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  return options->self_test ? self_test(*options) : serve(*options);
}
