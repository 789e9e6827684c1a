// coblk_example_mirror: serves /dev/ublkbN mirrored onto two files, in the
// foreground, until SIGINT/SIGTERM/SIGHUP (or `coblk del -n N`).
//
//   coblk_example_mirror [-n ID] [-q QUEUES] [-d DEPTH] PRIMARY SECONDARY
//
// Prints the block device once it is ready, and each queue's counters on
// exit. The smallest complete program around a ublk::Target; see
// docs/writing-a-backend.md.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/runtime/runtime.h"
#include "coblk/runtime/signals.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/examples/mirror_target.h"
#include "coblk/ublk/serve_until_signal.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr const char* kUsage = "usage: coblk_example_mirror [-n ID] [-q QUEUES] [-d DEPTH] PRIMARY SECONDARY";

// Exit statuses as coblk's: 1 the operation failed, 2 bad usage.
int fail(const std::string& message, int status = 1) {
  std::fprintf(stderr, "coblk_example_mirror: %s\n", message.c_str());
  return status;
}

// Parses a whole decimal number in [low, high]; false on anything else.
bool parse_number(const char* text, long low, long high, long& out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < low || v > high) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  ublk::DeviceConfig config;  // copy data path, kernel-chosen id, 1 queue of depth 128
  const char* files[2] = {nullptr, nullptr};
  int nfiles = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-n" || arg == "-q" || arg == "-d") {
      long v = 0;
      const long high = arg == "-n" ? (1L << 20) - 1 : arg == "-q" ? 64 : 4096;
      if (i + 1 == argc || !parse_number(argv[i + 1], arg == "-n" ? 0 : 1, high, v)) {
        return fail(arg + " needs a number from " + (arg == "-n" ? "0" : "1") + " to " + std::to_string(high), 2);
      }
      ++i;
      if (arg == "-n") config.dev_id = v;
      if (arg == "-q") config.queues = static_cast<unsigned>(v);
      if (arg == "-d") config.depth = static_cast<unsigned>(v);
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (" + kUsage + ")", 2);
    } else if (nfiles < 2) {
      files[nfiles++] = argv[i];
    } else {
      return fail(std::string("too many files (") + kUsage + ")", 2);
    }
  }
  if (nfiles != 2) return fail(std::string("two files are needed (") + kUsage + ")", 2);

  // Stop signals become data before any thread exists: every reactor the
  // runtime starts inherits the mask, and serve_until_signal reads them.
  Result<runtime::SignalSet> signals = runtime::SignalSet::block();
  if (!signals) return fail(signals.error().message());

  // The target first: bad files are reported before any device exists.
  Result<std::unique_ptr<ublk::examples::MirrorTarget>> made =
      ublk::examples::MirrorTarget::create(files[0], files[1], config.queues);
  if (!made) return fail(made.error().message());
  ublk::examples::MirrorTarget& target = **made;

  // ADD_DEV, then SET_PARAMS from the target's geometry and the queue
  // mappings. `device` is declared after `target`, so it goes first; if
  // anything fails from here on, its destructor deletes the device.
  Result<std::unique_ptr<ublk::Device>> created = ublk::Device::create(config);
  if (!created) return fail(created.error().message());
  ublk::Device& device = **created;
  if (Result<void> configured = device.configure(target); !configured) return fail(configured.error().message());

  // One core per queue, queue q on core q. The runtime is ours: a program
  // could serve more devices on the same cores, or run its own tasks there.
  runtime::RuntimeConfig rc;
  for (unsigned q = 0; q < config.queues; ++q) rc.cpus.push_back(q);
  rc.reactor.ring_entries = ublk::ring_entries_for(config.depth);
  std::vector<ublk::ServedDevice> served(1);
  served[0].device = &device;
  served[0].cores = rc.cpus;  // core q is CPU q here
  served[0].on_ready = [&device] {
    std::printf("%s\n", device.block_device().c_str());
    std::fflush(stdout);
  };
  Result<std::unique_ptr<runtime::Runtime>> rt = runtime::Runtime::create(rc);
  if (!rt) return fail(rt.error().message());
  // Serves until SIGINT/SIGTERM/SIGHUP or `coblk del -n N`.
  const Result<void> result = (*rt)->run([&]() -> runtime::Task<Result<void>> {
    co_return co_await ublk::serve_until_signal(*signals, std::move(served));
  });
  const Result<void> removed = device.remove();

  for (unsigned q = 0; q < config.queues; ++q) {
    const auto& c = target.counters(static_cast<uint16_t>(q));
    std::fprintf(stderr,
                 "queue %u: %llu reads (%llu from the secondary), %llu writes, %llu flushes, %llu discards, "
                 "%llu errors\n",
                 unsigned{q}, static_cast<unsigned long long>(c.reads),
                 static_cast<unsigned long long>(c.reads_from_secondary), static_cast<unsigned long long>(c.writes),
                 static_cast<unsigned long long>(c.flushes), static_cast<unsigned long long>(c.discards),
                 static_cast<unsigned long long>(c.errors));
  }
  if (!result) return fail(result.error().message());
  if (!removed) return fail(removed.error().message());
  return 0;
}
