// test/runtime/support.h - small fixtures shared by the runtime tests:
// a pipe, a temporary file, a stderr capture, and one-line Runtime setups.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "coblk/runtime/runtime.h"
#include "test/require_ok.h"

namespace coblk::runtime_test {

/// A Runtime with one reactor per listed CPU. The machine has CPUs 0 and 1.
inline runtime::RuntimeConfig cores(std::initializer_list<unsigned> cpus) {
  runtime::RuntimeConfig config;
  config.cpus = cpus;
  return config;
}

/// Runs `main` (a callable returning a Task) on a fresh one-core Runtime.
template <typename F>
auto run_on_one_core(F main) {
  const auto rt = test::require_ok(runtime::Runtime::create(cores({0})));
  return rt->run(std::move(main));
}

/// An anonymous pipe whose ends are closed on destruction.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    read_end = fds[0];
    write_end = fds[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    ::close(read_end);
    ::close(write_end);
  }
};

/// A temporary file, unlinked at once and closed on destruction. `path`
/// stays reserved (as an empty name) only for tests that reopen by name.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    std::string pattern = "/tmp/coblk-runtime-test-XXXXXX";
    fd = ::mkstemp(pattern.data());
    if (fd < 0) {
      throw std::runtime_error("mkstemp failed");
    }
    path = pattern;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
};

/// Redirects the process's stderr (fd 2) into a temporary file while alive;
/// text() returns what was written so far.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(file_.fd, 2);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() { restore(); }

  /// Puts the original stderr back and returns everything captured.
  std::string text() {
    restore();
    std::string out;
    char buf[4096];
    ssize_t n;
    off_t offset = 0;
    while ((n = ::pread(file_.fd, buf, sizeof(buf), offset)) > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      offset += n;
    }
    return out;
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
  }
  TempFile file_;
  int saved_ = -1;
};

}  // namespace coblk::runtime_test
