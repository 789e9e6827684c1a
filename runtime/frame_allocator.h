// runtime/frame_allocator.h - where coroutine frames and per-core objects live.
#pragma once

#include <cstddef>

namespace coblk::runtime {

/// Allocates `size` bytes for a coroutine frame or a per-core object.
///
/// With COBLK_USE_MIMALLOC (the default) the memory comes from mimalloc's
/// heap for the calling thread: each reactor thread allocates from its own
/// heap without a lock, and a block freed by another thread is handed back to
/// its owner by mimalloc's lock-free delayed-free list. Sanitizer builds use
/// the global operator new so that ASan and TSan see every allocation.
///
/// Throws std::bad_alloc when memory is exhausted.
void* allocate_frame(std::size_t size);

/// Frees memory from allocate_frame(). `size` must be the size allocated.
void free_frame(void* p, std::size_t size) noexcept;

/// True when frames come from mimalloc's per-thread heaps.
bool frames_use_mimalloc() noexcept;

}  // namespace coblk::runtime
