// compress/page.h - the unit every compress/ call works on: one block-device page.
#pragma once

#include <cstddef>

namespace coblk::compress {

/// Size in bytes of the page every codec, same-fill and entropy call works on.
/// It matches the kernel's PAGE_SIZE on x86-64 and the ublk logical block
/// size coblk exports, so one I/O sector range maps to whole pages.
inline constexpr std::size_t page_size = 4096;

}  // namespace coblk::compress
