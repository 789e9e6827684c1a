// A complete coblk runtime program: two cores play ping-pong over a pair of
// channels, then core 0 asks core 1 for its counters with submit_to.
//
// Build: part of the default build (target runtime_ping_pong).
// Run:   build/release/runtime/runtime_ping_pong [rounds]
#include <cstdio>
#include <cstdlib>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/submit_to.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Channel;
using runtime::Task;

// Runs on core 1: returns every ball it receives, one higher.
Task<void> pong(Channel<int>& in, Channel<int>& out) {
  while (auto ball = co_await in.recv()) {
    co_await out.send(*ball + 1);
  }
  out.close();
}

// Runs on core 0.
Task<int> ping(int rounds) {
  Channel<int> to_pong(64);
  Channel<int> to_ping(64);
  // Start the partner on core 1. The lambda runs there; spawn() puts the
  // task on that core's reactor.
  co_await runtime::submit_to(1, [&] { runtime::spawn(pong(to_pong, to_ping), "pong"); });

  int ball = 0;
  for (int i = 0; i < rounds; ++i) {
    co_await to_pong.send(ball);
    ball = *co_await to_ping.recv();
  }
  to_pong.close();
  co_await to_ping.recv();  // nullopt: pong saw the close and finished

  const auto remote_messages =
      co_await runtime::submit_to(1, [] { return runtime::Reactor::current()->stats().messages_received.get(); });
  std::printf("ball=%d after %d rounds; core 1 handled %llu messages\n", ball, rounds,
              static_cast<unsigned long long>(remote_messages));
  co_return ball == rounds ? 0 : 1;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 100000;
  auto rt = runtime::Runtime::create(runtime::RuntimeConfig{.cpus = {0, 1}});
  if (!rt) {
    std::fprintf(stderr, "ping_pong: %s\n", rt.error().message().c_str());
    return 1;
  }
  return (*rt)->run([rounds] { return ping(rounds); });
}
