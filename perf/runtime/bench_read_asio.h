// perf/runtime/bench_read_asio.h - bench_read's Boost.Asio side.
#pragma once

#include <cstdint>

#include "perf/runtime/read_workload.h"

namespace coblk::perf {

/// Runs `total` 4 KiB reads at the workload's offsets through Boost.Asio's
/// io_uring backend: `depth` coroutines (co_spawn + use_awaitable), each
/// looping random_access_file::async_read_some_at, on one io_context run by
/// the calling thread. Returns reads per second (setup not timed). Throws on
/// a failed or short read.
double asio_random_reads(const ReadWorkload& workload, unsigned depth, std::uint64_t total);

}  // namespace coblk::perf
