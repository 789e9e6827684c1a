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
  pid_t pid = 0;                  ///< the serving process
  std::string backing;            ///< loop: the backing file
  std::string compression;        ///< zram: e.g. "lz4:1", "zstd:3"
  std::vector<std::string> args;  ///< the `coblk add` arguments, for `coblk recover`
};

/// The run directory: $COBLK_RUN_DIR if set (tests), else /run/coblk.
std::string run_directory();
/// "<run dir>/<id>.json".
std::string record_path(uint32_t dev_id);
/// "<run dir>/<id>.zram-stats": the statistics a zram server publishes (a small binary file mapped shared; see
/// ublk/zram_stats.h).
std::string stats_path(uint32_t dev_id);

/// Creates the run directory if needed. Returns 0 or -errno.
int ensure_run_directory();

/// Renders the record as one JSON object.
std::string to_json(const DeviceRecord& record);
/// Parses what to_json produced (unknown keys are ignored, so newer servers
/// can add fields). nullopt if the text is not such an object.
std::optional<DeviceRecord> record_from_json(const std::string& text);

/// Writes the record atomically (temporary file + rename), creating the run
/// directory if needed. Returns 0 or -errno.
int save_record(const DeviceRecord& record);
/// Reads the record of `dev_id`; nullopt if absent or unreadable.
std::optional<DeviceRecord> load_record(uint32_t dev_id);
/// Removes the record and the stats file of `dev_id` (absent is fine).
void remove_record(uint32_t dev_id);

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
