// coblk_example_multi: several ublk devices served by one process, on one
// Runtime, with the queues of every device sharing the same cores.
//
//   coblk_example_multi [-c CORES] [-d DEPTH] SPEC...
//     SPEC: zram:ID:MIB:ALGORITHM   a compressed RAM device (lz4, zstd, ...)
//           loop:ID:FILE            a loop device over FILE (its whole size)
//
// Every device gets CORES queues, queue q on core q, so each core serves one
// queue of every device. Prints each block device once it is ready, and
// serves until SIGINT/SIGTERM/SIGHUP (or until every device was deleted
// with `coblk del`). It shows the composable Device API: create and
// configure each device, then serve them all from one task.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/signals.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/loop_target.h"
#include "coblk/ublk/serve_until_signal.h"
#include "coblk/ublk/zram_target.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr const char* kUsage = "usage: coblk_example_multi [-c CORES] [-d DEPTH] zram:ID:MIB:ALGORITHM|loop:ID:FILE...";

int fail(const std::string& message, int status = 1) {
  std::fprintf(stderr, "coblk_example_multi: %s\n", message.c_str());
  return status;
}

// Parses a whole decimal number in [low, high]; false on anything else.
bool parse_number(const std::string& text, long low, long high, long& out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || text.empty() || *end != '\0' || v < low || v > high) return false;
  out = v;
  return true;
}

// "a:b:c" -> {"a", "b", "c"}; the last field keeps any further colons.
std::vector<std::string> split(const std::string& spec, size_t fields) {
  std::vector<std::string> out;
  size_t start = 0;
  while (out.size() + 1 < fields) {
    const size_t colon = spec.find(':', start);
    if (colon == std::string::npos) break;
    out.push_back(spec.substr(start, colon - start));
    start = colon + 1;
  }
  out.push_back(spec.substr(start));
  return out;
}

// One device of the command line, with its target.
struct Served {
  std::unique_ptr<ublk::Target> target;
  std::unique_ptr<ublk::Device> device;  // destroyed before its target
};

// Builds the target a SPEC describes, or says why not.
std::unique_ptr<ublk::Target> make_target(const std::vector<std::string>& f, unsigned queues, std::string& error) {
  long mib = 0;
  if (f[0] == "zram") {
    if (f.size() != 4 || !parse_number(f[2], 1, 1 << 20, mib)) {
      error = "a zram device is zram:ID:MIB:ALGORITHM";
      return nullptr;
    }
    Result<compress::CodecSpec> spec = compress::parse_codec_spec(f[3]);
    if (!spec) {
      error = spec.error().message();
      return nullptr;
    }
    ublk::ZramTargetConfig config;
    config.size_bytes = static_cast<uint64_t>(mib) << 20;
    config.codec = *spec;
    config.queues = queues;
    Result<std::unique_ptr<ublk::ZramTarget>> t = ublk::ZramTarget::create(config);
    if (!t) {
      error = t.error().message();
      return nullptr;
    }
    return std::move(t).value();
  }
  if (f[0] == "loop") {
    struct stat st {};
    if (f.size() != 3 || ::stat(f[2].c_str(), &st) != 0) {
      error = "a loop device is loop:ID:FILE, with an existing FILE";
      return nullptr;
    }
    Result<std::unique_ptr<ublk::LoopTarget>> t =
        ublk::LoopTarget::create(f[2], static_cast<uint64_t>(st.st_size), 512, false);
    if (!t) {
      error = t.error().message();
      return nullptr;
    }
    return std::move(t).value();
  }
  error = "unknown device kind '" + f[0] + "' (" + kUsage + ")";
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  long cores = 2;
  long depth = 64;
  std::vector<std::string> specs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-c" || arg == "-d") {
      long* out = arg == "-c" ? &cores : &depth;
      if (i + 1 == argc || !parse_number(argv[i + 1], 1, arg == "-c" ? 64 : 4096, *out)) {
        return fail(arg + " needs a number (" + kUsage + ")", 2);
      }
      ++i;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (" + kUsage + ")", 2);
    } else {
      specs.push_back(arg);
    }
  }
  if (specs.empty()) return fail(std::string("no device given (") + kUsage + ")", 2);

  Result<runtime::SignalSet> signals = runtime::SignalSet::block();
  if (!signals) return fail(signals.error().message());

  std::vector<Served> devices(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::vector<std::string> f = split(specs[i], specs[i].rfind("zram:", 0) == 0 ? 4 : 3);
    long id = 0;
    if (f.size() < 3 || !parse_number(f[1], 0, (1L << 20) - 1, id)) {
      return fail("'" + specs[i] + "': " + kUsage, 2);
    }
    std::string error;
    devices[i].target = make_target(f, static_cast<unsigned>(cores), error);
    if (!devices[i].target) return fail("'" + specs[i] + "': " + error, 2);
    ublk::DeviceConfig config;
    config.dev_id = id;
    config.queues = static_cast<unsigned>(cores);
    config.depth = static_cast<unsigned>(depth);
    Result<std::unique_ptr<ublk::Device>> created = ublk::Device::create(config);
    if (!created) return fail(created.error().message());
    devices[i].device = std::move(created).value();
    if (Result<void> c = devices[i].device->configure(*devices[i].target); !c) return fail(c.error().message());
  }

  // Core q serves queue q of every device: its ring must hold all their tags.
  runtime::RuntimeConfig rc;
  for (long c = 0; c < cores; ++c) rc.cpus.push_back(static_cast<unsigned>(c));
  rc.reactor.ring_entries = ublk::ring_entries_for(static_cast<unsigned>(depth * static_cast<long>(specs.size())));
  std::vector<ublk::ServedDevice> served;
  for (Served& d : devices) {
    ublk::Device* device = d.device.get();
    served.push_back({device, rc.cpus, [device] {
                        std::printf("%s\n", device->block_device().c_str());
                        std::fflush(stdout);
                      }});
  }
  Result<std::unique_ptr<runtime::Runtime>> rt = runtime::Runtime::create(rc);
  if (!rt) return fail(rt.error().message());
  const Result<void> result = (*rt)->run([&]() -> runtime::Task<Result<void>> {
    co_return co_await ublk::serve_until_signal(*signals, std::move(served));
  });

  int status = 0;
  for (Served& d : devices) {
    std::fprintf(stderr, "device %u:", d.device->id());
    for (long q = 0; q < cores; ++q) {
      std::fprintf(stderr, " queue %ld %llu requests", q,
                   static_cast<unsigned long long>(d.device->queue(static_cast<unsigned>(q)).completed()));
    }
    std::fprintf(stderr, "\n");
  }
  for (Served& d : devices) {
    if (Result<void> removed = d.device->remove(); !removed) status = fail(removed.error().message());
  }
  if (!result) return fail(result.error().message());
  return status;
}
