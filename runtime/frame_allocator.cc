#include "coblk/runtime/frame_allocator.h"

#include "coblk/runtime/fault_injection.h"

#include <new>

#if COBLK_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace coblk::runtime {

void* allocate_frame(std::size_t size) {
  if (fault::fail(fault::Site::frame_alloc)) throw std::bad_alloc();
#if COBLK_USE_MIMALLOC
  // mi_malloc uses the calling thread's default heap: no lock, and frames
  // made on a reactor stay in that core's memory.
  void* p = mi_malloc(size);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
#else
  return ::operator new(size);
#endif
}

void free_frame(void* p, std::size_t size) noexcept {
#if COBLK_USE_MIMALLOC
  (void)size;
  mi_free(p);
#elif defined(__cpp_sized_deallocation)
  ::operator delete(p, size);
#else
  // clang before 19 has no sized deallocation unless -fsized-deallocation.
  (void)size;
  ::operator delete(p);
#endif
}

}  // namespace coblk::runtime
