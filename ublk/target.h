// ublk/target.h - the interface a ublk backend implements: one coroutine per request kind.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "coblk/runtime/task.h"

namespace coblk::ublk {

/// One block request, as a target sees it. Offsets and lengths are in bytes.
struct Request {
  uint8_t op = 0;       ///< abi::IO_OP_*
  uint32_t flags = 0;   ///< abi::IO_F_* (e.g. IO_F_FUA, IO_F_NOUNMAP), as in op_flags
  uint64_t offset = 0;  ///< byte offset on the device
  uint32_t length = 0;  ///< bytes
  /// The request's data (reads fill it, writes take it). Null in zero-copy
  /// mode, where the data is reachable only as io_uring fixed buffer
  /// `fixed_buffer` at address 0 (read_fixed/write_fixed on this core).
  std::byte* data = nullptr;
  int fixed_buffer = -1;  ///< zero-copy mode: the fixed-buffer index holding the data (the tag); else -1
  uint16_t queue = 0;     ///< hardware queue; always served by the same core (Reactor::current()->core())
  uint16_t tag = 0;       ///< the request's slot in its queue, 0..depth-1, unique among requests in flight
};

/// What a target tells the kernel about the device it implements.
struct TargetGeometry {
  uint64_t size_bytes = 0;              ///< device size; the kernel sees size_bytes / 512 sectors
  uint32_t logical_block_size = 512;    ///< 512..4096, power of two
  uint32_t physical_block_size = 512;   ///< >= logical
  bool volatile_cache = false;          ///< the target buffers writes: the kernel sends FLUSH (and FUA)
  bool rotational = false;              ///< sets queue/rotational: the kernel then assumes seeks are costly
  bool read_only = false;               ///< marks the disk read-only (as `blockdev --setro` does)
  bool discard = false;                 ///< DISCARD supported
  bool write_zeroes = false;            ///< WRITE_ZEROES supported
  uint32_t discard_granularity = 4096;  ///< smallest unit a discard frees (bytes); non-zero, as the kernel requires
};

/// A ublk backend. One Target object serves every queue of a device; each
/// request's coroutine runs on the core of the request's queue, so state a
/// target keeps per queue needs no synchronization, while state shared by
/// queues must be read-only or synchronized by the target.
///
/// Each operation returns the bytes done (>= 0; for flush/discard/write
/// zeroes 0 means success) or a negative errno, which the kernel reports to
/// the block layer as an I/O error. An exception escaping an operation is
/// turned into -EIO.
class Target {
 public:
  virtual ~Target();
  /// The device's size and limits; called once before the device is added.
  virtual TargetGeometry geometry() const = 0;
  /// True if the target can work on fixed buffers (zero-copy data path).
  virtual bool supports_zero_copy() const { return false; }
  /// The memfds that hold the device's data, for a keeper process to hold
  /// so that the data outlives this server (crash-safe memory, see
  /// docs/architecture.md); empty when the data lives elsewhere (a file)
  /// or in private memory. The target keeps ownership.
  virtual std::vector<int> memory_fds() const { return {}; }
  /// Called once on each queue's core before its first request.
  /// The default does nothing and succeeds.
  virtual runtime::Task<int> start_queue(uint16_t queue);
  /// Called once on each queue's core after its last request, when
  /// start_queue succeeded (e.g. to release what start_queue set up there).
  virtual void stop_queue(uint16_t queue) { (void)queue; }

  virtual runtime::Task<int> read(const Request& r) = 0;   ///< fill r.data / r.fixed_buffer
  virtual runtime::Task<int> write(const Request& r) = 0;  ///< persist r's bytes
  /// Makes completed writes durable (only sent when volatile_cache is set).
  /// The default succeeds at once.
  virtual runtime::Task<int> flush(const Request& r);
  /// Forgets a range (reads may then return anything, usually zeros).
  /// The default returns -EOPNOTSUPP.
  virtual runtime::Task<int> discard(const Request& r);
  /// Makes a range read as zeros.
  /// The default returns -EOPNOTSUPP.
  virtual runtime::Task<int> write_zeroes(const Request& r);
};

}  // namespace coblk::ublk
