// cmd/stats_columns.h - `coblk stats`' table: its columns, zramctl's output options (-o, --raw, --bytes, --noheadings).
#pragma once

// Pure functions of figures gathered beforehand (cmd/query_commands.cc reads
// the servers' stats files, the records and the mount table), so every
// column, unit and escape is unit-tested without a device. The column
// names and meanings are zramctl's where coblk has the same value, and the
// table is printed the way `coblk list` prints its own.

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// What `coblk stats` knows of one zram device: the figures its server
/// published (kernel zram's mm_stat, io_stat and bd_stat meanings,
/// storage/store_stats.h), and what its record and the mount table add.
struct StatsFigures {
  std::uint32_t dev_id = 0;    ///< the ublk device id
  std::string name;            ///< the block device, "/dev/ublkbN"
  std::string algorithm;       ///< the codec, e.g. "lz4", "zstd:3"
  std::uint64_t disksize = 0;  ///< the device's size in bytes
  unsigned streams = 0;        ///< cores that compress: the queues', or --compress-cores; 0 unknown
  std::string mountpoint;      ///< where it is mounted, "[SWAP]" when used as swap; "" neither
  /// False when the server published no figures (it is starting, or gone):
  /// every column below then shows "-", never a made-up 0.
  bool published = false;
  std::uint64_t orig_data_size = 0;   ///< bytes stored, uncompressed (same-filled pages included)
  std::uint64_t compr_data_size = 0;  ///< bytes of the compressed objects
  std::uint64_t mem_used_total = 0;   ///< bytes of memory the store holds
  std::uint64_t mem_limit = 0;        ///< the limit on mem_used_total in bytes, 0 none
  std::uint64_t mem_used_max = 0;     ///< the high-water mark of mem_used_total, bytes
  std::uint64_t same_pages = 0;       ///< pages stored as a fill word, with no object
  std::uint64_t pages_compacted = 0;  ///< pages freed by compaction
  std::uint64_t huge_pages = 0;       ///< pages stored raw (incompressible) now
  std::uint64_t staged_pages = 0;     ///< pages written and not yet compressed (--compress-cores)
  std::uint64_t notify_free = 0;      ///< pages freed by discards and write-zeroes
  std::uint64_t failed_reads = 0;     ///< reads that returned an error
  std::uint64_t failed_writes = 0;    ///< writes that returned an error (memory limit)
  bool has_tier = false;              ///< the device has a backing tier (--backing)
  std::string tier_state;             ///< what the tier does: "active", "failed", "limit"; "-" without one
  std::uint64_t backing_bytes = 0;    ///< the tier's size in bytes
  std::uint64_t written_back = 0;     ///< bytes of the tier's blocks that hold written-back pages
  std::uint64_t bd_reads = 0;         ///< pages read back from the tier
  std::uint64_t bd_writes = 0;        ///< pages written to the tier
  std::uint64_t readmitted = 0;       ///< written-back pages brought back to RAM by reads
};

/// A column of `coblk stats`, in the order --output-all prints them:
/// zramctl's first, then coblk's own.
enum class StatsColumn : unsigned {
  name,
  disksize,
  data,
  compr,
  algorithm,
  streams,
  zero_pages,
  total,
  mem_limit,
  mem_used,
  migrated,
  comp_ratio,
  mountpoint,
  id,
  huge_pages,
  staged_pages,
  freed_pages,
  failed_reads,
  failed_writes,
  written_back,
  tier_size,
  tier,
  bd_reads,
  bd_writes,
  readmitted,
};

/// A column's name as -o takes it and its one line of help.
struct StatsColumnInfo {
  StatsColumn column;  ///< which one
  const char* name;    ///< as -o takes it (any case) and the heading prints it, e.g. "COMP-RATIO"
  const char* help;    ///< what it shows, one line for `coblk stats --help` and the man page
};

/// Every column, in StatsColumn's order (the index is the enum's value).
std::span<const StatsColumnInfo> stats_columns() noexcept;

/// The columns `coblk stats` prints without -o: zramctl's NAME, DISKSIZE,
/// DATA, COMPR, ALGORITHM, ZERO-PAGES, TOTAL, MEM-LIMIT, MEM-USED,
/// COMP-RATIO, then WRITTEN-BACK and TIER when any of `devices` has a
/// backing tier.
std::vector<StatsColumn> default_stats_columns(std::span<const StatsFigures> devices);

/// Parses -o's comma-separated `list` of column names (any case). A list
/// starting with '+' adds its columns to `defaults`, as util-linux tools
/// do. Error EINVAL naming the first unknown or empty name and listing the
/// valid ones, e.g. "unknown column 'FOO' (valid: NAME, DISKSIZE, ...)".
Result<std::vector<StatsColumn>> parse_stats_columns(std::string_view list, std::span<const StatsColumn> defaults);

/// How the table is printed: zramctl's --raw, --bytes and --noheadings.
struct StatsFormat {
  bool raw = false;      ///< one space between cells, none padded; spaces and backslashes in a cell escaped
  bool bytes = false;    ///< sizes as whole numbers of bytes, not "1.5M"
  bool headings = true;  ///< the first line names the columns
};

/// One cell: `column`'s value for `device`. Sizes as format_bytes shows
/// them ("1.5M") or, with `bytes`, as a number of bytes; counts as
/// numbers; "-" where the value does not exist (nothing published, no
/// tier, no data for a ratio, not mounted).
std::string stats_cell(StatsColumn column, const StatsFigures& device, bool bytes);

/// The whole table: a heading line unless `format.headings` is false, then
/// a line per device; each line ends in '\n'.
std::string render_stats(std::span<const StatsColumn> columns, std::span<const StatsFigures> devices,
                         const StatsFormat& format);

/// Rows of cells as text lines ending in '\n'. Aligned: each column
/// left-aligned to its widest cell, two spaces apart, no trailing spaces
/// (`coblk list` and `coblk stats`). `raw`: one space apart, each cell's
/// spaces, tabs, newlines and backslashes written as "\x20"-style escapes
/// so that splitting on spaces always gives the cells back, as
/// libsmartcols' raw output (zramctl --raw) does.
std::string format_columns(const std::vector<std::vector<std::string>>& rows, bool raw);

/// The text `coblk stats --help` appends: "Available columns:" and a line
/// per column with its help, as zramctl lists them.
std::string stats_columns_help();

/// zramctl's MOUNTPOINT for the block device `dev_path` whose device
/// number is `rdev`: "[SWAP]" when `swaps` (the text of /proc/swaps) lists
/// it, else the mount point of its first mount in `mountinfo` (the text of
/// /proc/self/mountinfo, matched by major:minor, octal escapes undone);
/// "" when neither.
std::string mountpoint_from(const std::string& dev_path, dev_t rdev, std::string_view swaps,
                            std::string_view mountinfo);

/// mountpoint_from with this system's /proc/swaps and /proc/self/mountinfo
/// and `dev_path`'s device number; "" when `dev_path` is not a block device
/// or the tables cannot be read.
std::string find_mountpoint(const std::string& dev_path);

}  // namespace coblk::cmd
