// cmd/bench_fio.h - `coblk bench`'s workloads and its fio runs: the command line, the process, and fio's JSON output.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coblk/cmd/bench_report.h"
#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// One fio workload `coblk bench` knows (the same five as perf/ublk/guest/bench.sh).
struct BenchWorkload {
  const char* name;   ///< e.g. "randread_4k_qd32"
  const char* rw;     ///< fio's --rw
  const char* bs;     ///< fio's --bs
  unsigned iodepth;   ///< fio's --iodepth
  Headline headline;  ///< what the ratio is taken of
};

/// Every workload, in the order `coblk bench` runs them by default.
const std::vector<BenchWorkload>& bench_workloads();

/// The workload called `name`, or nullptr.
const BenchWorkload* find_bench_workload(std::string_view name);

/// How one fio run is made.
struct FioJob {
  std::string fio = "fio";            ///< the fio program (a path, or a name looked up in PATH)
  std::string filename;               ///< the device
  BenchWorkload workload{};           ///< what to run
  double runtime_s = 3;               ///< --runtime, time based
  unsigned long long size_bytes = 0;  ///< --size
  unsigned jobs = 1;                  ///< --numjobs (reported as one group)
};

/// fio's arguments for `job` (argv[0] included): io_uring, O_DIRECT, 50%
/// compressible data refilled for every write, percentiles 50/99/99.9, JSON.
std::vector<std::string> fio_arguments(const FioJob& job);

/// The arguments that fill `device` once with `size_bytes` of the same data,
/// so that reads hit stored pages, not holes.
std::vector<std::string> fio_fill_arguments(const std::string& fio, const std::string& device,
                                            unsigned long long size_bytes);

/// The figures of fio's `--output-format=json` text (anything fio printed
/// before the JSON object is skipped). IOPS and bandwidth are the sums of
/// the read and write sections; the latency percentiles and the I/O count
/// come from whichever did more I/Os. Fails (EINVAL) on text that is not
/// fio's JSON or has no job, or when fio reports errors in the job.
Result<FioFigures> parse_fio_json(std::string_view text);

/// How long run_capture lets a program run unless told otherwise: the
/// helpers coblk bench runs (modprobe, rmmod, coblk add and del) finish in
/// seconds; a minute means something hangs.
inline constexpr std::chrono::seconds default_run_limit{60};

/// Runs `argv` (argv[0] looked up in PATH) with stdin from /dev/null,
/// stderr kept for the message, and returns its stdout. Fails when it
/// cannot be started or exits non-zero, with its last stderr line in the
/// message. A program still running after `limit` is killed (SIGKILL) and
/// the call fails with ETIMEDOUT; one that cannot even be reaped within
/// 10 s of the kill (stuck in the kernel on a hung device) is left behind
/// and said so in the message, rather than hang the caller.
Result<std::string> run_capture(const std::vector<std::string>& argv, std::chrono::seconds limit = default_run_limit);

/// The time limit for a fio job of `runtime_s` seconds: fio's own runtime
/// plus what it may spend laying out and ramping, with room for a slow
/// (emulated) machine: twice the runtime plus two minutes.
std::chrono::seconds fio_run_limit(double runtime_s);

/// The time limit for fio_fill_arguments on `size_bytes`: two minutes plus
/// a second per 4 MiB (a device writing under 4 MiB/s is broken, not slow).
std::chrono::seconds fio_fill_limit(std::uint64_t size_bytes);

/// The path `program` runs from: itself when it contains '/', else the
/// first executable of that name in PATH; empty when there is none.
std::string find_program(const std::string& program);

}  // namespace coblk::cmd
