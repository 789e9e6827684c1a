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
//   device_api_check bad-results ID         the target answers reads with
//       half their length (at offset 0) or more than it (beyond), and
//       writes with 0: each such request must fail with EIO, neither hang
//       (a WRITE answered 0 would be requeued for ever) nor pass a partly
//       filled buffer as read. A thread reads and writes /dev/ublkbN with
//       O_DIRECT, then stops the server with SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/signals.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/serve_until_signal.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// Reads zeros, swallows writes; queue `failing_queue` cannot start. With
// `bad_results`, answers as no target may (see bad-results above).
class Target final : public ublk::Target {
 public:
  Target(int failing_queue, bool bad_results) : failing_queue_(failing_queue), bad_results_(bad_results) {}
  ublk::TargetGeometry geometry() const override {
    ublk::TargetGeometry g;
    g.size_bytes = 64ULL << 20;
    return g;
  }
  runtime::Task<int> start_queue(uint16_t queue) override { co_return queue == failing_queue_ ? -EIO : 0; }
  runtime::Task<int> read(const ublk::Request& r) override {
    if (!bad_results_) co_return static_cast<int>(r.length);
    co_return static_cast<int>(r.offset == 0 ? r.length / 2 : r.length + 4096);
  }
  runtime::Task<int> write(const ublk::Request& r) override { co_return bad_results_ ? 0 : static_cast<int>(r.length); }

 private:
  int failing_queue_;
  bool bad_results_;
};

// What bad-results' I/O thread found: "" when every request failed with EIO.
std::string bad_result_io(const std::string& block_device) {
  const int fd = ::open(block_device.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return "cannot open " + block_device + ": " + std::strerror(errno);
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, 4096, 8192) != 0) return "no memory";
  std::memset(buffer, 0xa5, 8192);
  std::string found;
  const auto expect_eio = [&](const char* what, ssize_t n) {
    if (found.empty() && !(n < 0 && errno == EIO))
      found =
          std::string(what) + " returned " + std::to_string(n) + (n < 0 ? std::string(" ") + std::strerror(errno) : "");
  };
  expect_eio("a write answered 0", ::pwrite(fd, buffer, 8192, 0));
  expect_eio("a read answered half", ::pread(fd, buffer, 8192, 0));
  expect_eio("a read answered more", ::pread(fd, buffer, 8192, 1 << 20));
  std::free(buffer);
  ::close(fd);
  return found;
}

int fail(const std::string& message) {
  std::printf("device_api_check: FAIL: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return fail("usage: device_api_check queue-start-fails|stop-before-start|bad-results ID");
  const std::string mode = argv[1];
  const bool start_fails = mode == "queue-start-fails";
  const bool commit_fails = mode == "commit-fails";
  const bool bad_results = mode == "bad-results";
  if (!start_fails && !commit_fails && !bad_results && mode != "stop-before-start") return fail("unknown mode " + mode);
  // Before any thread exists, so that every thread inherits the mask.
  Result<runtime::SignalSet> signals = runtime::SignalSet::block({SIGTERM});
  if (!signals) return fail(signals.error().message());
  if (commit_fails && !runtime::fault::available()) {
    std::printf("device_api_check: SKIP: this build has no fault injection\n");
    return 77;
  }

  Target target(start_fails ? 1 : -1, bad_results);
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
  std::thread io_thread;
  std::string io_problem;
  const Result<void> served = rt.run([&]() -> runtime::Task<Result<void>> {
    std::vector<unsigned> cores{0, 1};
    if (start_fails) co_return co_await device.serve(cores);
    if (bad_results) {
      std::vector<ublk::ServedDevice> one(1);
      one[0].device = &device;
      one[0].cores = cores;
      one[0].on_ready = [&] {
        // Blocking I/O: off the reactors, on a thread of its own.
        io_thread = std::thread([&] {
          io_problem = bad_result_io(device.block_device());
          ::kill(::getpid(), SIGTERM);
        });
      };
      co_return co_await ublk::serve_until_signal(*signals, std::move(one));
    }
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
  if (io_thread.joinable()) io_thread.join();
  const Result<void> removed = device.remove();
  if (!removed) return fail("remove: " + removed.error().message());
  if (start_fails) {
    if (served.ok()) return fail("serve() succeeded although queue 1 could not start");
    if (served.error().code() != EIO) return fail("serve() failed with the wrong error: " + served.error().message());
    std::printf("device_api_check: serve ended with: %s\n", served.error().message().c_str());
  } else if (bad_results) {
    if (!served.ok()) return fail("serve() failed: " + served.error().message());
    if (!io_problem.empty()) return fail(io_problem);
    std::printf("device_api_check: a write answered 0 and reads answered short or long all failed with EIO\n");
  } else {
    if (!served.ok()) return fail("serve() failed after a stop: " + served.error().message());
    std::printf("device_api_check: stopped before it started, cleanly\n");
  }
  return 0;
}
