// runtime/runtime.h - N pinned reactors, connected by SPSC mailboxes.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/result.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/task.h"

namespace coblk::runtime {

/// Settings of a Runtime.
struct RuntimeConfig {
  /// CPUs to run on, one reactor each; core index i runs on cpus[i]. Empty
  /// means one reactor on the CPU the caller is allowed to run on first.
  std::vector<unsigned> cpus;
  /// Pin each reactor thread to its CPU with sched_setaffinity.
  bool pin = true;
  /// Settings applied to every reactor.
  ReactorConfig reactor;
};

/// A thread-per-core runtime: one Reactor per CPU, each on its own pinned
/// thread with its own io_uring, connected to every other by a pair of
/// lock-free SPSC mailboxes (one per direction).
///
/// create(config) validates the configuration; no thread or ring exists
/// yet. run(main) starts the threads, runs `main()` (a callable returning a
/// Task<R>) on core 0, and when that task finishes stops every core:
/// pending I/O is cancelled and reaped, then unfinished detached tasks are
/// destroyed, and run() returns main's result (or rethrows its exception).
/// A Runtime can run() more than once, but not concurrently.
class Runtime {
 public:
  /// A Runtime for `config`. Returns Error EINVAL (one line) for a CPU
  /// listed twice, a CPU this process may not use (or not below
  /// CPU_SETSIZE), or ring_entries outside 1..32768. The Runtime neither
  /// moves nor copies, hence the unique_ptr.
  static Result<std::unique_ptr<Runtime>> create(RuntimeConfig config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Number of cores (reactors).
  unsigned cores() const noexcept { return static_cast<unsigned>(config_.cpus.size()); }
  /// The CPU that core `core` runs on.
  unsigned cpu_of(unsigned core) const { return config_.cpus.at(core); }
  /// Counters of one core; valid from the start of run() until the Runtime
  /// is destroyed, readable from any thread.
  const ReactorStats& stats(unsigned core) const;
  /// The reactor of one core (for registering files and buffers from that
  /// core, or reading its ring flags). Valid as stats().
  Reactor& reactor(unsigned core) const;

  /// Runs `main()` on core 0 and returns its result; see the class comment.
  /// If request_stop() ends the run before a non-void main has returned,
  /// throws std::runtime_error (there is no result to return).
  ///
  /// A core that cannot start (its thread cannot be pinned, or the kernel
  /// refuses its io_uring: EPERM where io_uring is disabled, EMFILE, ENOMEM
  /// over RLIMIT_MEMLOCK on old kernels, ...) makes run() throw
  /// std::system_error with that errno and a what() such as "runtime: core
  /// 1: cannot create an io_uring: Cannot allocate memory" (or "...: cannot
  /// pin its thread to CPU 3: ..."); main has not run then and every thread
  /// is joined. This one failure is an
  /// exception rather than a Result because it can only happen inside
  /// run(), whose value is main's: a ring belongs to the thread that
  /// creates it, so create() cannot make the rings in advance.
  template <typename F>
  auto run(F main) -> typename std::invoke_result_t<F&>::value_type {
    using TaskType = std::invoke_result_t<F&>;
    using R = typename TaskType::value_type;
    static_assert(is_task_v<TaskType>, "Runtime::run needs a callable that returns a Task");
    Outcome<R> outcome;
    run_main([&]() -> Task<void> { return main_wrapper<F, R>(this, &main, &outcome); });
    if (outcome.error) {
      std::rethrow_exception(outcome.error);
    }
    if constexpr (!std::is_void_v<R>) {
      // request_stop() can end the run before main produced a value;
      // there is nothing to return then.
      if (!outcome.value) {
        throw std::runtime_error("runtime: stopped before main returned a value");
      }
      return std::move(*outcome.value);
    }
  }

  /// Asks every core to stop; run() then shuts down as when main ends.
  /// Any thread may call it at any time: a request made before run() has
  /// started its cores ends that run as soon as they start, and is
  /// cleared when run() returns.
  void request_stop() noexcept;

 private:
  explicit Runtime(RuntimeConfig config);  // a configuration create() validated

  template <typename R>
  struct Outcome {
    std::optional<std::conditional_t<std::is_void_v<R>, char, R>> value;
    std::exception_ptr error;
  };

  template <typename F, typename R>
  static Task<void> main_wrapper(Runtime* self, F* main, Outcome<R>* out) {
    try {
      if constexpr (std::is_void_v<R>) {
        co_await (*main)();
      } else {
        out->value.emplace(co_await (*main)());
      }
    } catch (...) {
      out->error = std::current_exception();
    }
    self->request_stop();
  }

  void run_main(const std::function<Task<void>()>& make_main);
  void core_thread(unsigned core, const std::function<Task<void>()>* make_main);

  struct Shared;
  RuntimeConfig config_;
  std::unique_ptr<Shared> shared_;  // one run's start-up and shutdown state
  // Outlive every run. The reactors that exist right now, and whether a
  // stop was requested: seq_cst on both sides (a core stores its reactor,
  // then reads stop; request_stop stores stop, then reads the reactors),
  // so a request can never miss a core that is just starting.
  std::unique_ptr<std::atomic<Reactor*>[]> live_;
  // Held by request_stop while it uses a reactor it read from live_, and
  // by a core while it takes its reactor out of live_ at the end of a run:
  // a reactor is destroyed only after that (at the next run or with the
  // Runtime), so another thread's request_stop never writes to a freed
  // one. Shutdown only; never on a hot path.
  std::mutex live_mutex_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::unique_ptr<SpscRing<Message>>> mailboxes_;  // [from * n + to]
};

}  // namespace coblk::runtime
