#include "perf/runtime/read_workload.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace coblk::perf {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

}  // namespace

ReadWorkload::ReadWorkload(const std::string& dir, std::uint64_t file_bytes)
    : path_(dir + "/coblk-bench-read-" + std::to_string(::getpid())) {
  const int wfd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (wfd < 0) {
    fail("cannot create " + path_);
  }
  std::mt19937_64 random(42);
  std::vector<std::uint64_t> chunk(1 << 17);  // 1 MiB
  for (std::uint64_t written = 0; written < file_bytes;) {
    for (auto& word : chunk) {
      word = random();
    }
    const std::size_t want = std::min<std::uint64_t>(chunk.size() * 8, file_bytes - written);
    const ssize_t n = ::write(wfd, chunk.data(), want);
    if (n <= 0) {
      ::close(wfd);
      ::unlink(path_.c_str());
      fail("cannot fill " + path_);
    }
    written += static_cast<std::uint64_t>(n);
  }
  ::close(wfd);
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    ::unlink(path_.c_str());
    fail("cannot open " + path_);
  }
  const std::uint64_t blocks = file_bytes / block_size;
  offsets_.resize(1 << 16);
  for (auto& offset : offsets_) {
    offset = random() % blocks * block_size;
  }
}

ReadWorkload::~ReadWorkload() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

}  // namespace coblk::perf
