#include "coblk/runtime/runtime.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace coblk::runtime {

namespace detail {
extern std::atomic<int> running_runtimes;  // scheduling_group.cc
}

/// State the core threads of one run() share. Only used at start and stop.
struct Runtime::Shared {
  explicit Shared(unsigned n) : barrier(n), errors(n) {}
  std::barrier<> barrier;
  std::vector<std::exception_ptr> errors;
};

namespace {

cpu_set_t allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    for (unsigned c = 0; c < std::thread::hardware_concurrency(); ++c) {
      CPU_SET(c, &set);
    }
  }
  return set;
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeConfig config) {
  const cpu_set_t allowed = allowed_cpus();
  if (config.cpus.empty()) {
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) {
        config.cpus.push_back(c);
        break;
      }
    }
  }
  std::vector<unsigned> sorted = config.cpus;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Error(EINVAL, "runtime: a CPU appears twice in the CPU list");
  }
  for (unsigned c : config.cpus) {
    if (c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
      return Error(EINVAL, "runtime: CPU " + std::to_string(c) + " is not available to this process");
    }
  }
  if (config.reactor.ring_entries == 0 || config.reactor.ring_entries > 32768) {
    return Error(EINVAL, "runtime: ring_entries must be between 1 and 32768");
  }
  // Before any reactor thread exists: wakers then skip their fence for the
  // whole life of the process if the kernel has expedited membarriers.
  detail::enable_light_wakers();
  return std::unique_ptr<Runtime>(new Runtime(std::move(config)));
}

Runtime::Runtime(RuntimeConfig config)
    : config_(std::move(config)), live_(std::make_unique<std::atomic<Reactor*>[]>(config_.cpus.size())) {}

Runtime::~Runtime() = default;

const ReactorStats& Runtime::stats(unsigned core) const { return reactor(core).stats(); }

Reactor& Runtime::reactor(unsigned core) const {
  if (core >= reactors_.size() || !reactors_[core]) {
    throw std::out_of_range("runtime: no reactor for core " + std::to_string(core));
  }
  return *reactors_[core];
}

void Runtime::request_stop() noexcept {
  stop_.store(true, std::memory_order_seq_cst);
  const std::lock_guard<std::mutex> hold(live_mutex_);  // see live_mutex_
  for (unsigned c = 0; c < cores(); ++c) {
    if (Reactor* r = live_[c].load(std::memory_order_seq_cst)) {
      r->request_stop();
    }
  }
}

void Runtime::run_main(const std::function<Task<void>()>& make_main) {
  const unsigned n = cores();
  reactors_.clear();
  reactors_.resize(n);
  mailboxes_.clear();
  mailboxes_.resize(static_cast<std::size_t>(n) * n);
  for (unsigned from = 0; from < n; ++from) {
    for (unsigned to = 0; to < n; ++to) {
      if (from != to) {
        mailboxes_[from * n + to] = std::make_unique<SpscRing<Message>>(config_.reactor.mailbox_capacity);
      }
    }
  }
  shared_ = std::make_unique<Shared>(n);
  detail::running_runtimes.fetch_add(1, std::memory_order_relaxed);

  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned core = 0; core < n; ++core) {
    threads.emplace_back(&Runtime::core_thread, this, core, &make_main);
  }
  for (auto& t : threads) {
    t.join();
  }
  detail::running_runtimes.fetch_sub(1, std::memory_order_relaxed);
  stop_.store(false, std::memory_order_seq_cst);  // the request ended this run
  for (auto& e : shared_->errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

void Runtime::core_thread(unsigned core, const std::function<Task<void>()>* make_main) {
  Shared& shared = *shared_;
  const unsigned n = cores();
  try {
    if (config_.pin) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(config_.cpus[core], &set);
      const int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      if (err != 0) {
        throw std::system_error(err, std::generic_category(),
                                "runtime: core " + std::to_string(core) + ": cannot pin its thread to CPU " +
                                    std::to_string(config_.cpus[core]));
      }
    }
    // The ring is created on this thread: with SINGLE_ISSUER the kernel
    // binds it to its creator. (Reactor's constructor is private to us.)
    reactors_[core] = std::unique_ptr<Reactor>(new Reactor(this, core, config_.reactor));
    live_[core].store(reactors_[core].get(), std::memory_order_seq_cst);
  } catch (...) {
    shared.errors[core] = std::current_exception();
  }
  shared.barrier.arrive_and_wait();  // every reactor exists (or failed)

  const bool failed = std::any_of(shared.errors.begin(), shared.errors.end(), [](auto& e) { return e != nullptr; });
  Reactor* reactor = reactors_[core].get();
  if (!failed) {
    std::vector<SpscRing<Message>*> incoming(n, nullptr), outgoing(n, nullptr);
    std::vector<Reactor*> peers(n, nullptr);
    for (unsigned c = 0; c < n; ++c) {
      peers[c] = reactors_[c].get();
      if (c != core) {
        incoming[c] = mailboxes_[c * n + core].get();
        outgoing[c] = mailboxes_[core * n + c].get();
      }
    }
    reactor->connect(std::move(incoming), std::move(outgoing), std::move(peers));
    if (stop_.load(std::memory_order_seq_cst)) {
      reactor->request_stop();
    }
    if (core == 0) {
      try {
        spawn((*make_main)(), "main", SchedulingGroup::io());
      } catch (...) {
        shared.errors[core] = std::current_exception();
        request_stop();
      }
    }
    reactor->run();
  }
  // Every core has stopped running tasks and reaped its I/O before any
  // frame is destroyed, so no message or CQE can reach a freed frame. The
  // cores destroy their frames at the same time, though: a frame that
  // refers to another core's (a submit_to target's to its awaiter's, see
  // SubmitTo) must not use that reference while it is destroyed.
  shared.barrier.arrive_and_wait();
  if (reactor != nullptr) {
    reactor->destroy_remaining_roots();
  }
  {
    const std::lock_guard<std::mutex> hold(live_mutex_);  // see live_mutex_
    live_[core].store(nullptr, std::memory_order_seq_cst);
  }
  shared.barrier.arrive_and_wait();
}

}  // namespace coblk::runtime
