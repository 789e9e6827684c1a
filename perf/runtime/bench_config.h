// perf/runtime/bench_config.h - the Runtime settings the runtime benchmarks use.
#pragma once

#include <chrono>
#include <vector>

#include "coblk/runtime/runtime.h"

namespace coblk::perf {

/// Default runtime settings on `cpus` (empty: the first allowed CPU), except
/// the stall threshold: a raw baseline runs inside the reactor's main task
/// and blocks the reactor on purpose, which must not be reported as a stall.
inline runtime::RuntimeConfig bench_runtime_config(std::vector<unsigned> cpus = {}) {
  runtime::RuntimeConfig config;
  config.cpus = std::move(cpus);
  config.reactor.stall_threshold = std::chrono::seconds(3600);
  return config;
}

}  // namespace coblk::perf
