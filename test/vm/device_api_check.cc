// device_api_check: drives ublk::Device through the failure and stop paths
// that the coblk daemon rarely takes, on a real ublk device. One mode per
// run; prints one line and exits 0 when the device behaved as it must.
//
//   device_api_check queue-start-fails ID   queue 1's target fails to start:
//       serve() must end (the other queue's fetches stopped) with that
//       queue's error, and the device must delete cleanly.
//   device_api_check stop-before-start ID   stop() is awaited right after
//       serve() began, before START_DEV can have completed: serve() must end
//       without an error and the device must delete cleanly.
//   device_api_check commit-fails ID        (fault-injection builds only;
//       exit 77 elsewhere) once the device is live, the next I/O command
//       completion is turned into a failure, so a request is left in the
//       kernel that the server cannot complete. The server must give the
//       device up by exiting (status 3), so that the kernel fails the
//       request: the reader must not hang.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/device.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// Reads zeros, swallows writes; queue `failing_queue` cannot start.
class Target final : public ublk::Target {
 public:
  explicit Target(int failing_queue) : failing_queue_(failing_queue) {}
  ublk::TargetGeometry geometry() const override {
    ublk::TargetGeometry g;
    g.size_bytes = 64ULL << 20;
    return g;
  }
  runtime::Task<int> start_queue(uint16_t queue) override { co_return queue == failing_queue_ ? -EIO : 0; }
  runtime::Task<int> read(const ublk::Request& r) override { co_return static_cast<int>(r.length); }
  runtime::Task<int> write(const ublk::Request& r) override { co_return static_cast<int>(r.length); }

 private:
  int failing_queue_;
};

int fail(const std::string& message) {
  std::printf("device_api_check: FAIL: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return fail("usage: device_api_check queue-start-fails|stop-before-start ID");
  const std::string mode = argv[1];
  const bool start_fails = mode == "queue-start-fails";
  const bool commit_fails = mode == "commit-fails";
  if (!start_fails && !commit_fails && mode != "stop-before-start") return fail("unknown mode " + mode);
  if (commit_fails && !runtime::fault::available()) {
    std::printf("device_api_check: SKIP: this build has no fault injection\n");
    return 77;
  }

  Target target(start_fails ? 1 : -1);
  ublk::DeviceConfig config;
  config.dev_id = std::atoi(argv[2]);
  config.queues = 2;
  config.depth = 8;
  if (commit_fails) {
    config.on_unrecoverable = [] {
      std::printf("device_api_check: unrecoverable after a failed command; exiting\n");
      std::fflush(stdout);
      std::_Exit(3);
    };
  }
  Result<std::unique_ptr<ublk::Device>> created = ublk::Device::create(config);
  if (!created) return fail(created.error().message());
  ublk::Device& device = **created;
  if (Result<void> c = device.configure(target); !c) return fail(c.error().message());

  runtime::RuntimeConfig rc;
  rc.cpus = {0, 1};
  Result<std::unique_ptr<runtime::Runtime>> created_rt = runtime::Runtime::create(rc);
  if (!created_rt) return fail(created_rt.error().message());
  runtime::Runtime& rt = **created_rt;
  const Result<void> served = rt.run([&]() -> runtime::Task<Result<void>> {
    std::vector<unsigned> cores{0, 1};
    if (start_fails) co_return co_await device.serve(cores);
    if (commit_fails) {
      co_return co_await device.serve(cores, [&device] {
        // The next command completion (a request arriving) "fails". Armed
        // before the device is announced: the test reads only after that.
        runtime::fault::arm(
            {.site = runtime::fault::Site::io_result, .opcode = IORING_OP_URING_CMD, .result = -EINVAL});
        std::printf("%s\n", device.block_device().c_str());
        std::fflush(stdout);
      });
    }
    // Serve and stop at once: the stop arrives while START_DEV is still in
    // the kernel's hands (it waits for every fetch of both queues).
    Result<void> result;
    auto serve = [&]() -> runtime::Task<void> { result = co_await device.serve(cores); };
    auto stop = [&]() -> runtime::Task<void> { co_await device.stop(); };
    std::vector<runtime::Task<void>> both;
    both.push_back(serve());
    both.push_back(stop());
    co_await runtime::when_all(std::move(both));
    co_return result;
  });
  const Result<void> removed = device.remove();
  if (!removed) return fail("remove: " + removed.error().message());
  if (start_fails) {
    if (served.ok()) return fail("serve() succeeded although queue 1 could not start");
    if (served.error().code() != EIO) return fail("serve() failed with the wrong error: " + served.error().message());
    std::printf("device_api_check: serve ended with: %s\n", served.error().message().c_str());
  } else {
    if (!served.ok()) return fail("serve() failed after a stop: " + served.error().message());
    std::printf("device_api_check: stopped before it started, cleanly\n");
  }
  return 0;
}
