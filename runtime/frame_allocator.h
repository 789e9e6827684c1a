// runtime/frame_allocator.h - where coroutine frames live.
#pragma once

#include <cstddef>

namespace coblk::runtime {

/// Allocates `size` bytes for a coroutine frame (Task, spawn's detached
/// roots, when_all's children: their promise types' operator new).
///
/// With COBLK_USE_MIMALLOC (the default) the memory comes from mimalloc's
/// heap for the calling thread: each reactor thread allocates from its own
/// heap without a lock, and a block freed by another thread is handed back to
/// its owner by mimalloc's lock-free delayed-free list. Linking mimalloc also
/// replaces malloc and operator new process-wide, so other allocations come
/// from mimalloc too, from the heap of the thread that makes them; nothing
/// else in coblk calls this function. Sanitizer builds use the global
/// operator new so that ASan and TSan see every allocation.
///
/// Throws std::bad_alloc when memory is exhausted.
void* allocate_frame(std::size_t size);

/// Frees memory from allocate_frame(). `size` must be the size allocated.
void free_frame(void* p, std::size_t size) noexcept;

}  // namespace coblk::runtime
