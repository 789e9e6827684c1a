// ublk/published_file.h - file helpers shared by the files a server publishes (zram stats, I/O metrics).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace coblk::ublk {

/// Opens a new file next to `path` under an unpredictable name (`path`
/// plus a random suffix, returned in `name`), exclusively and never through
/// a symbolic link, mode 0644 whatever the umask (readers may run as
/// anyone). The caller renames it into place once it is ready, so a reader
/// never sees a half-made file. Returns the fd or -errno.
int create_file_beside(const std::string& path, std::string& name);

/// pread of exactly `n` bytes at `offset`, retrying on EINTR and short
/// reads. Returns false on an error or end of file (the file was truncated
/// or replaced under the reader).
bool pread_exactly(int fd, void* buf, std::size_t n, off_t offset);

}  // namespace coblk::ublk
