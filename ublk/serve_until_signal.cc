#include "coblk/ublk/serve_until_signal.h"

#include <cerrno>
#include <optional>
#include <stop_token>

#include "coblk/runtime/when_all.h"

namespace coblk::ublk {
namespace {

// What the parts of one serve_until_signal share; all of them run on the
// calling core (Device::serve and stop return to the core that awaited them).
struct Shared {
  std::vector<ServedDevice> devices;
  std::vector<std::optional<Error>> errors;
  unsigned running = 0;
  std::stop_source stop_watching;  // ends the signal wait once nothing is served
};

runtime::Task<void> serve_one(Shared& shared, size_t i) {
  ServedDevice& d = shared.devices[i];
  Result<void> served = co_await d.device->serve(d.cores, d.on_ready);
  if (!served.ok()) shared.errors[i] = std::move(served).error();
  if (--shared.running == 0) shared.stop_watching.request_stop();
}

runtime::Task<void> watch(Shared& shared, runtime::SignalSet& signals) {
  const int signal = co_await signals.wait(shared.stop_watching.get_token());
  if (signal <= 0) co_return;  // every device ended by itself
  for (ServedDevice& d : shared.devices) co_await d.device->stop();
}

}  // namespace

runtime::Task<Result<void>> serve_until_signal(runtime::SignalSet& signals, std::vector<ServedDevice> devices) {
  Shared shared;
  shared.devices = std::move(devices);
  shared.errors.resize(shared.devices.size());
  shared.running = static_cast<unsigned>(shared.devices.size());
  if (shared.running == 0) co_return Error(EINVAL, "no device to serve");
  std::vector<runtime::Task<void>> parts;
  parts.reserve(shared.devices.size() + 1);
  for (size_t i = 0; i < shared.devices.size(); ++i) parts.push_back(serve_one(shared, i));
  parts.push_back(watch(shared, signals));
  co_await runtime::when_all(std::move(parts));
  for (std::optional<Error>& e : shared.errors) {
    if (e) co_return std::move(*e);
  }
  co_return ok();
}

}  // namespace coblk::ublk
