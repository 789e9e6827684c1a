// perf/runtime/bench_config.h - the Runtime settings the runtime benchmarks use.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <utility>
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

/// Runtime::create(config) for a benchmark: a configuration this machine
/// cannot run ends the benchmark, so the Error is thrown as a
/// std::runtime_error that the benchmark's main reports before exiting 1.
inline std::unique_ptr<runtime::Runtime> bench_runtime(runtime::RuntimeConfig config) {
  auto rt = runtime::Runtime::create(std::move(config));
  if (!rt) throw std::runtime_error(rt.error().message());
  return std::move(rt).value();
}

}  // namespace coblk::perf
