// test/cmd/command_outcome.h - runs a shell command line and keeps its exit status, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace coblk::test {

/// What a command did: its exit status (-1 when a signal ended it) and
/// everything it wrote to stdout and stderr.
struct CommandOutcome {
  int status = -1;  ///< exit status, or -1
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// The whole content of the file at `path`, which is then removed ("" when
/// it cannot be read).
inline std::string take_file(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    std::fclose(f);
  }
  std::remove(path.c_str());
  return s;
}

/// Runs `command` through the shell with stdin from /dev/null and its
/// stdout and stderr in files /tmp/<scratch>-{out,err}-PID (removed
/// afterwards). `command` must not redirect either stream itself.
inline CommandOutcome run_command(const std::string& command, const std::string& scratch) {
  const std::string out_file = "/tmp/" + scratch + "-out-" + std::to_string(::getpid());
  const std::string err_file = "/tmp/" + scratch + "-err-" + std::to_string(::getpid());
  const int raw = std::system((command + " >" + out_file + " 2>" + err_file + " </dev/null").c_str());
  CommandOutcome o;
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = take_file(out_file);
  o.err = take_file(err_file);
  return o;
}

}  // namespace coblk::test
