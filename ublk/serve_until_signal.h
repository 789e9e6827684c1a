// ublk/serve_until_signal.h - the common way to run devices: serve them all on one Runtime until a stop signal.
#pragma once

#include <functional>
#include <vector>

#include "coblk/runtime/result.h"
#include "coblk/runtime/signals.h"
#include "coblk/runtime/task.h"
#include "coblk/ublk/device.h"

namespace coblk::ublk {

/// One device for serve_until_signal: the configured device, the core of
/// each of its queues, and what to do once /dev/ublkbN exists.
struct ServedDevice {
  Device* device = nullptr;        ///< configured; must outlive the serving
  std::vector<unsigned> cores;     ///< cores[q] serves queue q
  std::function<void()> on_ready;  ///< may be empty
};

/// Serves every device of `devices` on the calling Runtime (each with
/// Device::serve) until one of `signals` arrives, which stops them all, or
/// until every device has ended on its own (`coblk del`, a failed queue).
/// Completes when all have ended; the first failure, if any, is its result.
/// Must be awaited by a task on a reactor of that Runtime.
runtime::Task<Result<void>> serve_until_signal(runtime::SignalSet& signals, std::vector<ServedDevice> devices);

}  // namespace coblk::ublk
