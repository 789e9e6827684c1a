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

/// One published view of a zram device: kernel zram's mm_stat and io_stat
/// plus what zramctl shows besides.
struct ZramStats {
  storage::MmStat mm;            ///< the store's mm_stat (PageStore::mm_stat)
  storage::IoStat io;            ///< the store's io_stat (PageStore::io_stat)
  std::uint64_t disksize = 0;    ///< device size in bytes
  std::string algorithm;         ///< e.g. "lz4", "zstd:3"
  std::uint64_t updated_ns = 0;  ///< CLOCK_REALTIME of the snapshot
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

}  // namespace coblk::ublk
