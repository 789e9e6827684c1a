// ublk/tier_backend.h - TierBackend, the block I/O of the zram backing tier (file, device, NBD).
#pragma once

// The zram target (ublk/zram_tier.cc) writes batches of blocks back and
// reads written-back blocks through this interface, on the queue's own
// core; the page store does its few blocking accesses (the header block)
// through block_io() or fd(). See docs/storage.md, "Backing tier", and
// docs/nbd.md, "A remote tier for zram".

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"
#include "coblk/storage/backing_io.h"

namespace coblk::ublk {

/// Which backing tier to open, and how.
struct TierBackendConfig {
  /// A file or block device path, or `nbd:unix:PATH` / `nbd:tcp:HOST:PORT`
  /// (the NBD target's --connect syntax after `nbd:`).
  std::string spec;
  std::string export_name;                             ///< NBD: the export ("" = the server's default)
  unsigned queues = 1;                                 ///< the device's queues (each may do tier I/O on its core)
  std::chrono::milliseconds reconnect_timeout{30000};  ///< NBD: see nbd::ClientConfig
  std::chrono::milliseconds connect_timeout{5000};     ///< NBD: one connection attempt's limit
  std::chrono::milliseconds request_timeout{30000};    ///< NBD: see nbd::ClientConfig (0: none)
};

/// True when `spec` names an NBD export (`nbd:` prefix) rather than a path.
bool is_nbd_tier(const std::string& spec) noexcept;

/// A backing tier's block I/O. Offsets and lengths are multiples of 4096.
/// read() and write() run on the core of `queue`, after start_queue(queue)
/// ran there, and return the bytes transferred or a negative errno, like
/// runtime::read and runtime::write.
class TierBackend {
 public:
  virtual ~TierBackend() = default;
  /// Blocks of 4 KiB on the tier (at least 64).
  virtual std::uint64_t blocks() const noexcept = 0;
  /// The tier's file descriptor for storage::PageStoreConfig::backing_fd,
  /// or -1 when block_io() is to be used instead.
  virtual int fd() const noexcept { return -1; }
  /// The store's blocking block I/O (storage::PageStoreConfig::backing_io),
  /// or null when fd() serves. Usable until end_setup().
  virtual storage::BackingBlockIo* block_io() noexcept { return nullptr; }
  /// Called once the store exists (its header block is written or
  /// checked): blocking I/O ends here; later block_io() calls fail with
  /// -EIO (the store makes one only for a partial write of a written-back
  /// page, which a 4 KiB-block device never receives).
  virtual void end_setup() noexcept {}
  /// Prepares `queue`'s tier I/O on the calling core (its queue's core).
  /// Returns 0; a tier that cannot be reached now is retried by the I/O.
  virtual runtime::Task<int> start_queue(std::uint16_t queue) = 0;
  /// Reads `bytes` at byte `offset` into `out` for `queue`.
  virtual runtime::Task<int> read(std::uint16_t queue, std::uint64_t offset, std::byte* out, std::uint32_t bytes) = 0;
  /// Writes `bytes` from `data` at byte `offset` for `queue`; it returns
  /// only after the tier acknowledged the write.
  virtual runtime::Task<int> write(std::uint16_t queue, std::uint64_t offset, const std::byte* data,
                                   std::uint32_t bytes) = 0;
  /// True once the tier failed for good (an NBD export that did not come
  /// back within the reconnect timeout, or came back without its data):
  /// every read and write then fails with -EIO at once. Any thread
  /// (relaxed: a flag that guards no memory).
  virtual bool failed() const noexcept { return false; }
};

/// Opens the tier `config` names. A path: opened as a file or block device
/// (see ZramTargetConfig::backing_path for the rules). `nbd:...`: the
/// export is negotiated with a blocking session, which block_io() uses
/// until end_setup(). Error (one line, naming the tier): a missing,
/// unwritable, busy or too small (fewer than 64 blocks) tier; for NBD also
/// an unreachable server, an unknown export, a read-only export, or one
/// whose minimum block size exceeds 4096.
Result<std::unique_ptr<TierBackend>> open_tier_backend(const TierBackendConfig& config);

/// Opens a file or block device as the tier (see open_tier_backend).
Result<std::unique_ptr<TierBackend>> open_file_tier(const std::string& path);

/// Opens an NBD export as the tier (see open_tier_backend).
Result<std::unique_ptr<TierBackend>> open_nbd_tier(const TierBackendConfig& config);

}  // namespace coblk::ublk
