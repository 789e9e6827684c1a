// perf/runtime/read_workload.h - the file and offsets bench_read reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coblk::perf {

/// A file of random bytes (on tmpfs by default) and a fixed pseudo-random sequence of
/// page-aligned 4 KiB offsets into it, the same for every side of bench_read.
/// The file is unlinked when the workload is destroyed.
class ReadWorkload {
 public:
  static constexpr unsigned block_size = 4096;

  /// Creates `<dir>/coblk-bench-read-<pid>` of `file_bytes` bytes.
  /// Throws std::runtime_error when it cannot.
  ReadWorkload(const std::string& dir, std::uint64_t file_bytes);
  ~ReadWorkload();
  ReadWorkload(const ReadWorkload&) = delete;
  ReadWorkload& operator=(const ReadWorkload&) = delete;

  const std::string& path() const noexcept { return path_; }
  /// A read-only descriptor of the file (O_RDONLY | O_CLOEXEC).
  int fd() const noexcept { return fd_; }
  /// The offset of the i-th read (any i; the sequence repeats).
  std::uint64_t offset(std::uint64_t i) const noexcept { return offsets_[i & (offsets_.size() - 1)]; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::uint64_t> offsets_;  // power-of-two length
};

}  // namespace coblk::perf
