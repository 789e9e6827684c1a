// xor_target.cc - XorTarget: see xor_target.h.
#include "xor_target.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace xor_device {
namespace {

using coblk::Error;
using coblk::Result;
using coblk::ublk::Request;
using coblk::ublk::TargetGeometry;

// dst[i] = src[i] ^ key for n bytes: encodes on the way in, decodes on the
// way out (XOR is its own inverse). Eight bytes at a time: a request is up
// to 512 KiB, and this runs on the queue's core, between its other requests.
void xor_copy(std::byte* dst, const std::byte* src, size_t n, std::byte key) {
  const uint64_t key8 = 0x0101010101010101ULL * std::to_integer<uint64_t>(key);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, src + i, 8);
    word ^= key8;
    std::memcpy(dst + i, &word, 8);
  }
  for (; i < n; ++i) dst[i] = src[i] ^ key;
}

}  // namespace

// ---- setup: ordinary code, before the device exists ------------------------

Result<std::unique_ptr<XorTarget>> XorTarget::create(uint64_t size_bytes, std::byte key, unsigned queues) {
  if (size_bytes == 0 || size_bytes % kPageSize != 0) {
    return Error(EINVAL, "the device size must be a positive multiple of " + std::to_string(kPageSize) + " bytes");
  }
  if (queues == 0) return Error(EINVAL, "a device needs at least one queue");
  std::unique_ptr<std::byte[]> store(new (std::nothrow) std::byte[size_bytes]);
  if (!store) return Error(ENOMEM, "cannot allocate " + std::to_string(size_bytes >> 20) + " MiB for the device");
  // Zero bytes XORed with the key: the fresh device reads as zeros.
  std::memset(store.get(), std::to_integer<int>(key), size_bytes);
  return std::unique_ptr<XorTarget>(new XorTarget(size_bytes, key, std::move(store), queues));
}

XorTarget::XorTarget(uint64_t size_bytes, std::byte key, std::unique_ptr<std::byte[]> store, unsigned queues)
    : size_bytes_(size_bytes), key_(key), store_(std::move(store)), queues_(queues) {}

TargetGeometry XorTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = size_bytes_;
  g.logical_block_size = kBlockSize;
  g.physical_block_size = kPageSize;
  g.volatile_cache = false;
  g.discard = true;
  g.write_zeroes = true;
  g.discard_granularity = kPageSize;
  return g;
}

// ---- requests: on the core of r.queue ---------------------------------------
//
// Each operation completes without suspending: the work is a copy in memory.
// A target doing real I/O would co_await coblk::runtime awaitables here
// (runtime/io.h), and the core would serve other requests meanwhile.

XorQueueCounters* XorTarget::counters_of(const Request& r) {
  return r.queue < queues_.size() ? &queues_[r.queue].counters : nullptr;
}

coblk::runtime::Task<int> XorTarget::read(const Request& r) {
  XorQueueCounters* c = counters_of(r);
  if (c == nullptr) co_return -EIO;
  // The kernel sends neither a range outside the device nor (in the copy
  // data path) a request without a buffer; a backend still refuses them
  // rather than overrun memory.
  if (!in_device(r) || r.data == nullptr) {
    ++c->errors;
    co_return -EIO;
  }
  xor_copy(r.data, store_.get() + r.offset, r.length, key_);
  ++c->reads;
  c->bytes_read += r.length;
  co_return static_cast<int>(r.length);
}

coblk::runtime::Task<int> XorTarget::write(const Request& r) {
  XorQueueCounters* c = counters_of(r);
  if (c == nullptr) co_return -EIO;
  if (!in_device(r) || r.data == nullptr) {
    ++c->errors;
    co_return -EIO;
  }
  xor_copy(store_.get() + r.offset, r.data, r.length, key_);
  ++c->writes;
  c->bytes_written += r.length;
  co_return static_cast<int>(r.length);
}

coblk::runtime::Task<int> XorTarget::flush(const Request& r) {
  XorQueueCounters* c = counters_of(r);
  if (c == nullptr) co_return -EIO;
  ++c->flushes;
  co_return 0;
}

coblk::runtime::Task<int> XorTarget::discard(const Request& r) {
  XorQueueCounters* c = counters_of(r);
  if (c == nullptr) co_return -EIO;
  const int ret = zero_range(r, *c);
  if (ret == 0) ++c->discards;
  co_return ret;
}

coblk::runtime::Task<int> XorTarget::write_zeroes(const Request& r) {
  XorQueueCounters* c = counters_of(r);
  if (c == nullptr) co_return -EIO;
  const int ret = zero_range(r, *c);
  if (ret == 0) ++c->write_zeroes;
  co_return ret;
}

int XorTarget::zero_range(const Request& r, XorQueueCounters& c) {
  if (!in_device(r)) {
    ++c.errors;
    return -EIO;
  }
  std::memset(store_.get() + r.offset, std::to_integer<int>(key_), r.length);
  return 0;
}

}  // namespace xor_device
