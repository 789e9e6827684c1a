// cmd/loop_backing.h - the size of a loop device's backing file, block device or NVMe char device.
#pragma once

#include <cstdint>
#include <string>

#include "coblk/cmd/add_options.h"

namespace coblk::cmd {

/// Sets `bytes` to the size of `o.file`: a regular file's length, a block
/// device's size or, with `o.passthrough`, the NVMe namespace's behind the
/// char device, whose LBA size then becomes `o.block_size` unless
/// --block-size was given (which must then be a multiple of it). Returns
/// an empty string, or one line saying what is wrong.
std::string loop_backing(AddOptions& o, uint64_t& bytes);

}  // namespace coblk::cmd
