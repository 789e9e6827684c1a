// cmd/add_options.h - `coblk add`'s options, parsed and validated before anything touches the kernel.
#pragma once

// Every mistake is reported as one line, and nothing is created.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"
#include "coblk/ublk/nbd_protocol.h"

namespace coblk::cmd {

/// The backends `coblk add -t` can serve.
enum class TargetKind { null, ram, loop, zram, nbd };
/// How request data moves between the kernel and the server.
enum class DataPathKind {
  copy,       ///< the kernel copies into a per-tag server buffer
  user_copy,  ///< the server copies with pread/pwrite on /dev/ublkcN (UBLK_F_USER_COPY)
  zero_copy,  ///< request pages are registered as io_uring fixed buffers (UBLK_F_AUTO_BUF_REG)
};
/// "null", "ram", "loop", "zram", "nbd".
const char* to_string(TargetKind t);
/// "copy", "user_copy", "zero_copy".
const char* to_string(DataPathKind d);

/// A validated `coblk add` request.
struct AddOptions {
  TargetKind target = TargetKind::null;
  int64_t dev_id = -1;  ///< -1: let the kernel choose
  unsigned queues = 1;
  unsigned depth = 128;
  /// Idle polling of each queue's core, in microseconds: how long an idle
  /// core keeps checking for work before it sleeps
  /// (runtime::ReactorConfig::idle_poll_us, whose default this is). 0 sleeps
  /// at once: no CPU spent when idle, tens of microseconds more per request
  /// that finds the core asleep.
  unsigned poll_us = 50;
  /// --sqpoll: each queue's io_uring gets a kernel submission-polling thread
  /// (IORING_SETUP_SQPOLL, runtime::ReactorConfig::sqpoll), so that a
  /// submission costs no system call while that thread is awake. It spins
  /// on a CPU of its own; worth it only with a spare core.
  bool sqpoll = false;
  /// --sqpoll=CPU[,CPU...]: the CPUs the polling threads are pinned to: one
  /// for every queue's, or one per queue in queue order
  /// (runtime::ReactorConfig::sqpoll_cpus). Empty: not pinned.
  std::vector<unsigned> sqpoll_cpus;
  uint64_t size_bytes = 0;        ///< resolved: loop without --size uses the file's size
  uint32_t block_size = 512;      ///< logical block size
  bool block_size_given = false;  ///< --block-size was given (nbd: else the server's minimum, at least 512)
  std::string file;               ///< loop: backing file or block device
  bool direct_io = false;         ///< loop: open the backing file with O_DIRECT
  bool group_commit = true;       ///< loop: FLUSH/FUA requests arriving together share an fdatasync
  bool iopoll = false;            ///< loop: reads and writes on each core's polled ring (IOPOLL)
  bool passthrough = false;       ///< loop: NVMe commands by URING_CMD on /dev/ngXnY
  bool registered_files = true;   ///< register each ring's fd and use fixed files (/dev/ublkcN, loop's file)
  DataPathKind data_path = DataPathKind::copy;
  bool foreground = false;
  bool recovery = false;      ///< UBLK_F_USER_RECOVERY: the device outlives a crashed server
  bool restart = true;        ///< with recovery: the keeper restarts a server that died
  unsigned max_restarts = 5;  ///< with recovery: restarts within a minute before the keeper gives up
  bool unprivileged = false;  ///< UBLK_F_UNPRIVILEGED_DEV
  bool metrics = true;        ///< record and publish per-queue I/O metrics (off: --no-metrics)
  /// zram: the codec, in compress::CodecSpec's canonical form ("lz4",
  /// "lz4:8", "zstd", "zstd:-5"), validated by compress::parse_codec_spec.
  std::string algorithm = "lz4";
  uint64_t mem_limit = 0;        ///< zram: bytes of compressed memory allowed, 0 = no limit
  std::string recompress;        ///< zram: the secondary codec (canonical spec), "" = none
  bool entropy_routing = false;  ///< zram: --entropy-routing
  double entropy_low = 1.0;      ///< zram: --entropy-low (bits per byte)
  double entropy_high = 7.0;     ///< zram: --entropy-high (bits per byte)
  unsigned compress_cores = 0;   ///< zram: compression workers (0 = inline), ZramTargetConfig::compress_workers
  std::string backing;           ///< zram: backing tier (absolute path or nbd:ENDPOINT), "" = none
  unsigned writeback_high = 90;  ///< zram: % of mem_limit where automatic writeback starts
  unsigned writeback_low = 70;   ///< zram: % of mem_limit it writes back down to
  uint64_t writeback_age_s = 0;  ///< zram: write back pages idle this many seconds, 0 = off
  uint64_t writeback_limit = 0;  ///< zram: most bytes ever written back, 0 = no limit
  unsigned readmit_reads = 2;    ///< zram: re-admit a written-back page at this read from the tier, 0 = never
  std::string connect;           ///< nbd: the server, unix:PATH or tcp:HOST:PORT
  /// nbd, and zram with an nbd: tier: the export ("" is the server's default).
  std::string export_name;
  /// nbd, and zram with an nbd: tier: how long requests wait for a lost
  /// connection to come back.
  uint32_t reconnect_timeout_ms = 30000;
  /// nbd, and zram with an nbd: tier: a request without a reply this long
  /// drops its connection (then as for a lost one); 0 = no limit.
  uint32_t request_timeout_ms = 30000;
  nbd::ExportInfo nbd_info;       ///< nbd: the export's facts, filled by resolve_nbd_export
  std::vector<std::string> args;  ///< the arguments as given (kept for `coblk recover`)
  /// --name: a name unique among this host's coblk devices, kept in the
  /// device record ("" = none); `coblk up` finds its devices by it.
  std::string name;
};

/// One option of `coblk add`, as the config file (cmd/boot_config.h) maps
/// its keys onto them.
struct AddOptionInfo {
  std::string long_name;  ///< "size", "direct-io", ...
  char short_name = 0;    ///< 's' for -s; 0 when it has none
  bool takes_value = false;
  /// The value may be left out (--sqpoll, --sqpoll=CPU). The config file
  /// passes a value attached with '=', never as a word of its own.
  bool value_optional = false;
};
/// Every option `coblk add` accepts, --help included, in --help's order.
std::vector<AddOptionInfo> add_option_list();

/// The smallest block size an O_DIRECT I/O on `path` may use: a block
/// device's logical block size (BLKSSZGET); for a file, its file system's
/// direct I/O offset alignment (statx STATX_DIOALIGN, Linux 6.1+) or, where
/// the file system does not tell, the smallest of 512, 1024, 2048 and 4096
/// bytes that an O_DIRECT read of that many bytes accepts. Error EINVAL
/// (one line) when the file cannot be opened with O_DIRECT at all, else
/// the errno of the failed open, ioctl or read.
Result<uint32_t> direct_io_alignment(const std::string& path);

/// The machine facts validation depends on, injectable for tests.
struct AddLimits {
  unsigned cpus = 1;  ///< online CPUs: the queue count's upper bound
  /// How --direct-io finds the backing file's alignment; empty means
  /// direct_io_alignment.
  std::function<Result<uint32_t>(const std::string&)> direct_io_alignment;
  /// The CPUs this process may run on (its affinity mask, online ones
  /// only): what --sqpoll=CPU accepts.
  std::vector<unsigned> allowed_cpus;
};
/// The limits of this machine.
AddLimits current_limits();

/// Outcome of parse_add_options.
struct AddParse {
  AddOptions options;
  bool help = false;  ///< --help was given; `help_text` holds the usage
  std::string help_text;
  std::string error;  ///< one line, no "coblk add:" prefix; empty on success
  /// True when the options are valid (or help was asked for).
  explicit operator bool() const { return error.empty(); }
};

/// Parses and validates the arguments that follow "coblk add". Checks only
/// what needs no kernel: syntax, ranges, sizes, the backing file.
AddParse parse_add_options(const std::vector<std::string>& args, const AddLimits& limits = current_limits());

/// For -t nbd: connects to the server (NBD_OPT_INFO, blocking, at most
/// `timeout`), and fills `o.nbd_info`, `o.size_bytes` and, unless
/// --block-size was given, `o.block_size` (the server's minimum block
/// size, at least 512). Anything else is left alone. Error (one line, for
/// the user): an endpoint that does not parse or resolve, a refused or
/// unreachable connection, an unknown export, a TLS-only server, a server
/// without the fixed-newstyle handshake, a malformed reply, or an export
/// whose size is not a multiple of the block size. Creates nothing.
Result<void> resolve_nbd_export(AddOptions& o, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace coblk::cmd
