// ublk/zram_stats.h - a zram device's statistics, shared with `coblk stats`.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "coblk/runtime/result.h"
#include "coblk/storage/store_stats.h"

namespace coblk::ublk {

/// What a zram device's backing tier is doing.
enum class TierState : std::uint64_t {
  none = 0,        ///< no backing tier
  active = 1,      ///< writing back as its policy says
  failed = 2,      ///< a backing write failed: writeback stopped (pages in RAM stay intact)
  limit_spent = 3  ///< the --writeback-limit budget is used up: writeback stopped
};

/// The name of a TierState: "-", "active", "failed", "limit".
const char* tier_state_name(TierState s) noexcept;

/// One published view of a zram device: kernel zram's mm_stat, io_stat and
/// bd_stat plus what zramctl shows besides.
struct ZramStats {
  storage::MmStat mm;                      ///< the store's mm_stat (PageStore::mm_stat)
  storage::IoStat io;                      ///< the store's io_stat (PageStore::io_stat)
  storage::BdStat bd;                      ///< the store's bd_stat (PageStore::bd_stat)
  storage::TierStat tier;                  ///< the backing tier's figures (PageStore::tier_stat)
  TierState tier_state = TierState::none;  ///< what the tier is doing
  /// Pages writeback may still write (--writeback-limit); UINT64_MAX when unlimited.
  std::uint64_t writeback_budget = UINT64_MAX;
  std::uint64_t disksize = 0;    ///< device size in bytes
  std::string algorithm;         ///< e.g. "lz4", "zstd:3"
  std::uint64_t updated_ns = 0;  ///< CLOCK_REALTIME of the snapshot
};

/// A request to a running zram device's server, carried by its stats file
/// (send_zram_command; the server's maintenance task executes it).
struct ZramCommand {
  /// What to do.
  enum class Kind : std::uint64_t {
    writeback = 1,   ///< write back pages of type `arg` (a storage::WritebackKind), at most `max_pages`
    mark_idle = 2,   ///< mark idle the pages not accessed for `arg` seconds
    recompress = 3,  ///< recompress pages of type `arg` (a storage::WritebackKind), at most `max_pages`
  };
  Kind kind = Kind::writeback;  ///< the command
  std::uint64_t arg = 0;        ///< its argument (see Kind)
  std::uint64_t max_pages = 0;  ///< writeback: most pages to write (0 = no limit)
};

/// A server's answer to a ZramCommand.
struct ZramCommandResult {
  int error = 0;            ///< 0, or the errno of the refusal (ENODEV: no backing tier; EIO: tier failed)
  std::uint64_t count = 0;  ///< pages written back or marked idle
};

/// The serving process's side: a small file mapped shared (the `coblk`
/// command puts it in its run directory, /run/coblk/ID.zram-stats), into
/// which publish() copies the current figures with a sequence lock.
/// publish() only writes memory (no syscall), so a reactor may call it.
class ZramStatsPublisher {
 public:
  /// Creates a new file under an unpredictable name beside `path`
  /// (O_EXCL, O_NOFOLLOW, mode 0644), maps it, and renames it to `path`:
  /// a file already there (an earlier server's, still read by someone) is
  /// replaced, never truncated, and a symbolic link there is never
  /// followed. Returns the Error of the failed open, ftruncate, mmap or
  /// rename (its errno, and a line naming the path).
  static Result<std::unique_ptr<ZramStatsPublisher>> create(const std::string& path);
  /// Unmaps the file and removes it, unless another file has taken its
  /// place at the path since.
  ~ZramStatsPublisher();
  ZramStatsPublisher(const ZramStatsPublisher&) = delete;
  ZramStatsPublisher& operator=(const ZramStatsPublisher&) = delete;

  /// Publishes a snapshot. Single writer.
  void publish(const ZramStats& stats) noexcept;

  /// The command a `coblk` client has left in the file and not yet had
  /// answered (send_zram_command), if any. Only memory reads: a reactor
  /// may poll it.
  bool pending_command(ZramCommand& out) const noexcept;
  /// Answers the pending command: the client waiting in
  /// send_zram_command returns `result`.
  void answer_command(const ZramCommandResult& result) noexcept;

 private:
  ZramStatsPublisher(std::string path, void* map);  // takes over a mapped file

  std::string path_;
  void* map_ = nullptr;
  dev_t dev_ = 0;  // the file we created, to recognise it at path_
  ino_t ino_ = 0;
};

/// The reader's side: takes a consistent copy of `path` with pread under
/// the publisher's sequence lock. It never maps the file, so a file
/// truncated or replaced while it reads is an error, never a SIGBUS.
/// Returns the Error of the failed open (e.g. ENOENT when no device
/// publishes there), Error EINVAL if the file is not (or no longer) a whole
/// coblk zram stats file, or Error EAGAIN if a publisher kept changing it
/// for 1000 reads; the message names the path.
Result<ZramStats> read_zram_stats(const std::string& path);

/// The client's side of a ZramCommand: leaves `command` in the stats file
/// at `path` (which it maps; clients are serialised with flock) and waits
/// for the server's answer, polling every 20 ms for up to `timeout_ms`.
/// Returns the answer, or the Error of the failed open/map (ENOENT: no
/// device publishes there), Error EINVAL (not a stats file) or Error
/// ETIMEDOUT (no answer: the server is gone or busy).
Result<ZramCommandResult> send_zram_command(const std::string& path, const ZramCommand& command, int timeout_ms);

}  // namespace coblk::ublk
