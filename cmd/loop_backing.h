// cmd/loop_backing.h - the size and identity of a loop device's backing file, block device or NVMe char device.
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

/// Which file `path` names now, as text to compare: "block MAJ:MIN
/// diskseq N" for a block device node (the disk or partition behind it,
/// and the kernel's sequence number of that disk, which a re-attached loop
/// device or a re-enumerated disk changes), "char MAJ:MIN" for a char
/// device, with " wwid W" for an NVMe generic node (its namespace's
/// world-wide id from sysfs), else "file MAJ:MIN
/// INODE" (the file system's device and the file's inode). Empty if
/// `path` cannot be stat'ed. Two answers are
/// equal only for the same file or disk while it exists (an inode number
/// is reused only after its file is gone); the record keeps it so that
/// `coblk recover` never serves another file that took the path
/// meanwhile. File systems without stable inode numbers (vfat, exFAT,
/// FUSE without use_ino) may answer differently for the same file after
/// its inode left the cache.
std::string backing_identity(const std::string& path);

/// backing_identity() of the file open as `fd`: the file a server holds,
/// whatever its path names by now. Empty if `fd` cannot be fstat'ed.
std::string backing_identity_of_fd(int fd);

}  // namespace coblk::cmd
