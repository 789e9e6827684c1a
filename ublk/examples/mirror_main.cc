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

#include "coblk/ublk/control.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/examples/mirror_target.h"

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

  // The target first: bad files are reported before any device exists.
  ublk::examples::MirrorTarget target(files[0], files[1], config.queues);
  if (!target.error().empty()) return fail(target.error());

  // ADD_DEV, then SET_PARAMS from the target's geometry and the queue
  // mappings. `device` must not outlive `target` (declared after it).
  std::string error;
  ublk::Device device(config);
  if (device.create(error) < 0 || device.configure(target, error) < 0) {
    std::string ignored;
    device.remove(ignored);
    return fail(error);
  }

  // Runs the queues on pinned reactors, START_DEV, then waits for a signal
  // or for the device to be deleted.
  const uint32_t id = device.id();
  const int served = device.serve(
      [id] {
        std::printf("%s\n", ublk::block_device_path(id).c_str());
        std::fflush(stdout);
      },
      error);
  std::string remove_error;
  device.remove(remove_error);

  for (uint16_t q = 0; q < config.queues; ++q) {
    const auto& c = target.counters(q);
    std::fprintf(stderr,
                 "queue %u: %llu reads (%llu from the secondary), %llu writes, %llu flushes, %llu discards, "
                 "%llu errors\n",
                 unsigned{q}, static_cast<unsigned long long>(c.reads),
                 static_cast<unsigned long long>(c.reads_from_secondary), static_cast<unsigned long long>(c.writes),
                 static_cast<unsigned long long>(c.flushes), static_cast<unsigned long long>(c.discards),
                 static_cast<unsigned long long>(c.errors));
  }
  if (served < 0) return fail(error);
  if (!remove_error.empty()) return fail(remove_error);
  return 0;
}
