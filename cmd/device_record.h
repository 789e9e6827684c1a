// cmd/device_record.h - the per-device state file the `coblk` command keeps (/run/coblk/ID.json).
#pragma once

// `coblk list`, `stats` and `recover` read it to tell what serves a device:
// the kernel only knows queues, depth and flags. The run directory is the
// command's convention, not the ublk framework's: a target that publishes
// something (the zram target's stats file) is handed the path in its config.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// What the server of one device recorded about it.
struct DeviceRecord {
  uint32_t dev_id = 0;
  std::string target;     ///< "null", "ram", "loop", "zram"
  std::string data_path;  ///< "copy", "user_copy", "zero_copy"
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  unsigned queues = 0;
  unsigned depth = 0;
  pid_t pid = 0;              ///< the serving process
  pid_t keeper_pid = 0;       ///< ram/zram with --recovery: the process holding the data's memory
  uint64_t keeper_start = 0;  ///< when that process started (/proc/PID/stat field 22), to tell it from a reused pid
  bool unprivileged = false;  ///< added with --unprivileged (UBLK_F_UNPRIVILEGED_DEV)
  std::string backing;        ///< loop: the backing file
  /// loop: backing_identity() of the backing file when the server started;
  /// empty in records of older coblk versions (then not checked).
  std::string backing_id;
  std::string compression;        ///< zram: e.g. "lz4:1", "zstd:3"
  std::vector<std::string> args;  ///< the `coblk add` arguments, for `coblk recover`
  std::string name;               ///< `coblk add --name` (`coblk up`: the config section), "" = none
  /// What makes the device unsafe as swap, one line each, as the server
  /// found it at start (ublk::protect_server_process); `coblk list` shows them.
  std::vector<std::string> warnings;
};

/// The run directory: $COBLK_RUN_DIR if set (tests), else /run/coblk for
/// root and, for any other user, $XDG_RUNTIME_DIR/coblk or, without it,
/// /tmp/coblk-UID. check_run_directory() refuses a relative COBLK_RUN_DIR.
std::string run_directory();
/// "<run dir>/<id>.json".
std::string record_path(uint32_t dev_id);
/// "<run dir>/<id>.zram-stats": the statistics a zram server publishes (a small binary file mapped shared; see
/// ublk/zram_stats.h).
std::string stats_path(uint32_t dev_id);

/// "<run dir>/<id>.metrics": the I/O metrics a server publishes (a binary file mapped shared; see
/// ublk/io_metrics_file.h), which `coblk metrics` serves.
std::string metrics_path(uint32_t dev_id);

/// "<run dir>/<id>.keeper": the keeper's state of a device with crash-safe
/// memory (one line: state, restarts, last event).
std::string keeper_status_path(uint32_t dev_id);
/// "<run dir>/<id>.log": what the keeper and the servers it starts write
/// to stderr.
std::string log_path(uint32_t dev_id);
/// Checks that the run directory can be trusted with device state (the
/// records hold the arguments `coblk recover` serves a device with), and
/// with `create` makes it (mode 0755) if it is absent. Trusted means: an
/// absolute path; the run directory itself a real directory (not a
/// symbolic link), owned by this process's effective uid or by root, and
/// writable by nobody else, sticky or not (its file names are fixed, so
/// another user could plant them); every directory on the way to it owned
/// by the effective uid or root and writable by nobody else unless it is
/// sticky (like /tmp); every symbolic link on the way owned by the
/// effective uid or root. Error ENOENT when it is absent (and not
/// `create`), EPERM with one line naming the path and the reason when it
/// cannot be trusted, else the errno of the failed mkdir or lstat.
Result<void> check_run_directory(bool create);
/// check_run_directory(true).
Result<void> ensure_run_directory();

/// Renders the record as one JSON object.
std::string to_json(const DeviceRecord& record);
/// Parses what to_json produced (unknown keys are ignored, so newer servers
/// can add fields). nullopt if the text is not such an object.
std::optional<DeviceRecord> record_from_json(const std::string& text);

/// Writes the record atomically, creating the run directory if needed and
/// checking that it is trusted (ensure_run_directory): the text goes into a
/// new file of an unpredictable name, created exclusively (O_EXCL,
/// O_NOFOLLOW, mode 0644), which is then renamed over "<id>.json".
Result<void> save_record(const DeviceRecord& record);
/// Reads the record of `dev_id` from a trusted run directory. Error ENOENT
/// when there is none, EPERM when the run directory (or the record, if
/// owned by another user than this one or root) cannot be trusted, EINVAL
/// when it is not a record of `dev_id`.
Result<DeviceRecord> load_record(uint32_t dev_id);
/// Removes the record, the stats and metrics files, the keeper's status and the log of
/// `dev_id` (absent is fine); does
/// nothing in a run directory that cannot be trusted.
void remove_record(uint32_t dev_id);

/// Why `coblk recover` must not serve device `record.dev_id` again; empty
/// when it may. The kernel kept the device's geometry (GET_PARAMS:
/// `kernel_size` bytes of `kernel_block_size`-byte blocks); the record
/// must say the same, and so must what its arguments resolve to now
/// (`size_bytes`, `block_size`: a loop device's backing file may have
/// changed size since). One line.
std::string recovery_mismatch(const DeviceRecord& record, uint64_t size_bytes, uint32_t block_size,
                              uint64_t kernel_size, uint32_t kernel_block_size);

/// Why `coblk recover` must not serve loop device `record.dev_id` from
/// its backing path now: `identity_now` (backing_identity() of the path)
/// is not the file or device the record's server served, so a new server
/// would serve another file's data. Empty when it may: the same file, or
/// a record without an identity (older coblk) or an NVMe node's record
/// from before wwids ("char MAJ:MIN", matching the same number with any
/// wwid now), or a path that cannot be stat'ed now (opening it fails
/// later, with its own message). One line.
std::string backing_mismatch(const DeviceRecord& record, const std::string& identity_now);

/// A flat JSON object's members: strings and numbers keep their text.
using FlatJson = std::map<std::string, std::string>;
/// Parses a flat JSON object such as a record (string / number / bool
/// members; an array of scalars becomes its elements joined by '\x1f').
/// record_from_json is built on it. nullopt on malformed text, nested
/// objects included.
std::optional<FlatJson> parse_flat_json(const std::string& text);
/// Escapes `s` as a JSON string literal, quotes included.
std::string json_quote(const std::string& s);

}  // namespace coblk::cmd
