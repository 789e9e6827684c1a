// ublk/request_from_desc.h - the Request a ublk I/O descriptor describes.
#pragma once

// As the queue hands it to a target, and the target's answer as the queue
// hands it back: pure functions, shared by Queue::handle and the descriptor
// fuzzer (test/fuzz/fuzz_ublk_desc.cc).

#include <cstdint>

#include "coblk/ublk/abi.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Fills `out` with the request that `desc` describes on queue `queue`, tag
/// `tag`, whose tag buffer holds `max_io_bytes`: op, flags (the whole
/// op_flags word), byte offset and byte length, queue and tag. The data
/// fields (`data`, `fixed_buffer`) depend on the data path and are left to
/// the caller.
///
/// Returns 0, or -EIO (and `out` is not to be used) when the descriptor
/// cannot be served, whatever its op:
///   - its sector range has no byte form: start_sector * 512 or its end
///     beyond 2^64, or nr_sectors * 512 beyond Request::length's 32 bits
///     (the kernel never sends these; wrapping them would make another,
///     valid-looking range);
///   - a READ or WRITE is longer than `max_io_bytes`: it would overrun the
///     tag buffer.
/// Whether the range lies inside the device is the target's check (the ram
/// and loop targets answer -EIO to a range past the end).
///
/// Pure: no I/O, no allocation, no state; the same arguments always give
/// the same answer.
int request_from_desc(const abi::ublksrv_io_desc& desc, uint16_t queue, uint16_t tag, uint32_t max_io_bytes,
                      Request& out) noexcept;

/// The result the kernel is told for request `r`, whose target returned
/// `done`: `done` itself, except that a READ or WRITE that returned anything
/// but a negative errno or exactly `r.length` fails with -EIO. The kernel
/// takes a READ or WRITE result as the bytes done: 0 would requeue a WRITE
/// for ever (the I/O hangs), a short count completes part of the request
/// (and some kernels report the rest as done although no byte of it was
/// read or written), and a count beyond `r.length` would make the
/// user-copy path copy past the tag buffer. Other ops pass unchanged (any
/// result >= 0 is success for them). Pure, as request_from_desc.
int result_for_kernel(const Request& r, int done) noexcept;

}  // namespace coblk::ublk
