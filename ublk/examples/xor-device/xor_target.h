// ublk/examples/xor-device/xor_target.h - XorTarget, the block device of coblk's out-of-tree example.
#pragma once

// An in-memory disk that keeps every byte XORed with a one-byte key.
//
// Built against an installed coblk; see docs/writing-a-backend.md, "Out of
// tree: a backend built against an installed coblk".

#include <coblk/runtime/result.h>
#include <coblk/runtime/task.h>
#include <coblk/ublk/target.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace xor_device {

/// What one queue has done. Every field is written only by the core that
/// serves the queue, so none of them needs to be atomic: read them after the
/// device has stopped, or on that core.
struct XorQueueCounters {
  uint64_t reads = 0;          ///< READ requests served
  uint64_t writes = 0;         ///< WRITE requests served
  uint64_t flushes = 0;        ///< FLUSH requests served
  uint64_t discards = 0;       ///< DISCARD requests served
  uint64_t write_zeroes = 0;   ///< WRITE_ZEROES requests served
  uint64_t bytes_read = 0;     ///< bytes returned by reads
  uint64_t bytes_written = 0;  ///< bytes stored by writes
  uint64_t errors = 0;         ///< requests refused with -EIO
};

/// A block device held in this process's memory, every byte stored XORed
/// with `key` and XORed back on read: a stand-in for any transformation a
/// backend applies between the block layer and its store (encryption,
/// checksums, compression).
///
/// The store is one allocation, filled with the key when the target is
/// created: that is how a zero byte is stored, so a fresh device reads as
/// zeros. Discard and write-zeroes store the same encoding, so a discarded
/// or zeroed range reads back as zeros too.
///
/// One XorTarget serves every queue of a device, each queue's requests on
/// that queue's core. Queues share the store: requests on distinct ranges
/// touch distinct bytes, so no lock is needed, and two requests that
/// overlap while in flight are the block layer's business, as on any disk.
/// Each queue has its own counters, written only by its core.
class XorTarget final : public coblk::ublk::Target {
 public:
  /// The device's logical block size: requests are multiples of it.
  static constexpr uint32_t kBlockSize = 512;
  /// Physical block size and discard granularity.
  static constexpr uint32_t kPageSize = 4096;

  /// A device of `size_bytes` (a positive multiple of kPageSize) storing its
  /// bytes XORed with `key`, for a device with `queues` queues. Fails with
  /// EINVAL on a bad size or queue count, ENOMEM when the memory cannot be
  /// allocated.
  static coblk::Result<std::unique_ptr<XorTarget>> create(uint64_t size_bytes, std::byte key, unsigned queues);

  XorTarget(const XorTarget&) = delete;
  XorTarget& operator=(const XorTarget&) = delete;

  /// 512-byte blocks on 4 KiB pages, discard and write-zeroes, no volatile
  /// cache (a completed write is already in the store).
  coblk::ublk::TargetGeometry geometry() const override;

  /// Copies r.length bytes from the store into r.data, XORing each with the key.
  coblk::runtime::Task<int> read(const coblk::ublk::Request& r) override;
  /// Copies r.data into the store, XORing each byte with the key.
  coblk::runtime::Task<int> write(const coblk::ublk::Request& r) override;
  /// Nothing to do: no write is ever held back. The kernel does not even
  /// send FLUSH, as geometry() reports no volatile cache.
  coblk::runtime::Task<int> flush(const coblk::ublk::Request& r) override;
  /// Stores zeros over the range, so it reads back as zeros.
  coblk::runtime::Task<int> discard(const coblk::ublk::Request& r) override;
  /// Stores zeros over the range.
  coblk::runtime::Task<int> write_zeroes(const coblk::ublk::Request& r) override;

  /// The number of queues the target was created for.
  unsigned queues() const { return static_cast<unsigned>(queues_.size()); }
  /// The counters of `queue` (see XorQueueCounters for when to read them).
  const XorQueueCounters& counters(unsigned queue) const { return queues_.at(queue).counters; }
  /// The store as it is kept: each device byte XORed with the key. For tests.
  std::span<const std::byte> stored() const { return {store_.get(), size_bytes_}; }

 private:
  // One queue's state, cache-line aligned so two cores' counters never share
  // a line.
  struct alignas(64) QueueState {
    XorQueueCounters counters;
  };

  XorTarget(uint64_t size_bytes, std::byte key, std::unique_ptr<std::byte[]> store, unsigned queues);

  // The counters of r's queue, or null for a queue this target does not have.
  XorQueueCounters* counters_of(const coblk::ublk::Request& r);
  // True when r lies inside the device.
  bool in_device(const coblk::ublk::Request& r) const {
    return r.offset <= size_bytes_ && r.length <= size_bytes_ - r.offset;
  }
  // Stores zeros over r's range: the shared part of discard and write_zeroes.
  int zero_range(const coblk::ublk::Request& r, XorQueueCounters& c);

  uint64_t size_bytes_;
  std::byte key_;
  std::unique_ptr<std::byte[]> store_;
  std::vector<QueueState> queues_;
};

}  // namespace xor_device
