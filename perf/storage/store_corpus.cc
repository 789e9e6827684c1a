#include "perf/storage/store_corpus.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

namespace coblk::storage::bench {

namespace {

constexpr std::size_t ps = compress::page_size;

// Appends up to `limit` pages of regular files under `dir` (recursively,
// sorted for repeatability), at most `per_file` pages from each file.
void add_files(const std::string& dir, Corpus& corpus, std::size_t limit, std::size_t per_file, int depth = 0) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (corpus.pages.size() >= limit) {
      return;
    }
    std::string path = dir;
    path.append("/").append(name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth < 4) {
        add_files(path, corpus, limit, per_file, depth + 1);
      }
      continue;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(ps)) {
      continue;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    Page page;
    for (std::size_t i = 0; i < per_file && corpus.pages.size() < limit; ++i) {
      if (::pread(fd, page.data(), ps, static_cast<off_t>(i * ps)) != static_cast<ssize_t>(ps)) {
        break;
      }
      corpus.pages.push_back(page);
    }
    ::close(fd);
  }
}

// Appends up to `limit` pages of private writable memory not backed by a
// file (heap, stacks, anonymous mappings: what gets swapped) of `pid`.
void add_process_memory(int pid, Corpus& corpus, std::size_t limit) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream maps(base + "/maps");
  const int mem = ::open((base + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (!maps || mem < 0) {
    if (mem >= 0) ::close(mem);
    return;
  }
  std::string line;
  while (std::getline(maps, line) && corpus.pages.size() < limit) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    fields >> range >> perms >> offset >> dev >> inode;
    std::getline(fields, path);
    path.erase(0, std::min(path.size(), path.find_first_not_of(' ')));
    if (perms.size() < 4 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' ||
        !(path.empty() || path == "[heap]" || path == "[stack]")) {
      continue;
    }
    unsigned long start = 0, end = 0;
    if (std::sscanf(range.c_str(), "%lx-%lx", &start, &end) != 2) {
      continue;
    }
    Page page;
    for (std::uint64_t a = start; a < end && corpus.pages.size() < limit; a += ps) {
      if (::pread(mem, page.data(), ps, static_cast<off_t>(a)) == static_cast<ssize_t>(ps)) {
        corpus.pages.push_back(page);
      }
    }
  }
  ::close(mem);
}

// A python3 with a realistic heap: many modules' code objects plus lists,
// dicts and strings built from this machine's files. Prints "ready" and
// sleeps until killed.
const char* const python_script = R"(
import sys, os, json, re, email, email.parser, http.client, xml.dom.minidom, decimal, fractions
import collections, itertools, functools, textwrap, difflib, argparse, logging, unittest, sqlite3
import csv, html.parser, urllib.parse, zipfile, tarfile, datetime, calendar, statistics, random
records = []
for root in ('/usr/share/doc', '/usr/lib/python3'):
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try: st = os.stat(p)
            except OSError: continue
            records.append({'path': p, 'size': st.st_size, 'mtime': st.st_mtime, 'parts': p.split('/')})
        if len(records) > 60000: break
words = [w for r in records for w in r['parts']]
index = collections.Counter(words)
numbers = [random.random() * i for i in range(200000)]
print('ready', flush=True)
import time; time.sleep(600)
)";

}  // namespace

Corpus binaries_corpus(std::size_t count) {
  Corpus corpus{"binaries", {}};
  add_files("/usr/bin", corpus, count / 2, 64);
  add_files("/usr/lib", corpus, count, 64);
  return corpus;
}

Corpus process_memory_corpus(std::size_t count) {
  Corpus corpus{"process_memory", {}};
  int out[2];
  if (::pipe2(out, O_CLOEXEC) == 0) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::execlp("python3", "python3", "-c", python_script, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    char ready[6] = {};
    if (pid > 0 && ::read(out[0], ready, 5) == 5 && std::strcmp(ready, "ready") == 0) {
      add_process_memory(pid, corpus, count);
    }
    ::close(out[0]);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  if (corpus.pages.size() < count) {
    add_process_memory(::getpid(), corpus, count);
  }
  return corpus;
}

Corpus zeros_corpus(std::size_t count) {
  Corpus corpus{"zeros", std::vector<Page>(count)};
  for (Page& p : corpus.pages) {
    p.fill(std::byte{0});
  }
  return corpus;
}

Corpus random_corpus(std::size_t count) {
  Corpus corpus{"random", std::vector<Page>(count)};
  std::mt19937_64 rng(42);
  for (Page& p : corpus.pages) {
    for (std::size_t i = 0; i < ps; i += 8) {
      const std::uint64_t w = rng();
      std::memcpy(p.data() + i, &w, 8);
    }
  }
  return corpus;
}

Corpus half_compressible_corpus(std::size_t count) {
  Corpus corpus{"half_compressible", std::vector<Page>(count)};
  std::mt19937_64 rng(43);
  for (Page& p : corpus.pages) {
    for (std::size_t chunk = 0; chunk < ps; chunk += 512) {
      for (std::size_t i = 0; i < 256; i += 8) {
        const std::uint64_t w = rng();
        std::memcpy(p.data() + chunk + i, &w, 8);
      }
      std::memset(p.data() + chunk + 256, 0, 256);
    }
  }
  return corpus;
}

}  // namespace coblk::storage::bench
