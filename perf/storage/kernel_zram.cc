#include "perf/storage/kernel_zram.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace coblk::storage::bench {

namespace {

const std::string sys = "/sys/block/zram0/";

std::string read_attr(const std::string& name) {
  std::ifstream in(sys + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool write_attr(const std::string& name, const std::string& value) {
  std::ofstream out(sys + name);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

KernelZramResult measure_kernel_zram(const Corpus& corpus, const std::string& algorithm) {
  KernelZramResult r;
  if (::access((sys + "disksize").c_str(), F_OK) != 0) {
    r.skipped_because = "no /sys/block/zram0 (zram module not loaded)";
    return r;
  }
  if (::access((sys + "reset").c_str(), W_OK) != 0) {
    r.skipped_because = "/sys/block/zram0 is not writable (needs root)";
    return r;
  }
  if (std::strtoull(read_attr("disksize").c_str(), nullptr, 10) != 0) {
    r.skipped_because = "zram0 is in use (non-zero disksize); not touching it";
    return r;
  }
  if (read_attr("comp_algorithm").find(algorithm) == std::string::npos) {
    r.skipped_because = "the kernel's zram lacks " + algorithm + " (has: " + read_attr("comp_algorithm") + ")";
    while (!r.skipped_because.empty() && r.skipped_because.back() == '\n') r.skipped_because.pop_back();
    for (char& c : r.skipped_because)
      if (c == '\n') c = ' ';
    return r;
  }
  if (!write_attr("reset", "1") || !write_attr("comp_algorithm", algorithm) ||
      !write_attr("disksize", std::to_string(corpus.bytes()))) {
    r.skipped_because = "configuring zram0 failed";
    write_attr("reset", "1");
    return r;
  }
  const int fd = ::open("/dev/zram0", O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    r.skipped_because = std::string("open /dev/zram0: ") + std::strerror(errno);
    write_attr("reset", "1");
    return r;
  }
  constexpr std::size_t batch = 64;
  void* buffer = std::aligned_alloc(4096, batch * compress::page_size);
  bool ok = true;
  for (std::size_t i = 0; i < corpus.pages.size() && ok; i += batch) {
    const std::size_t n = std::min(batch, corpus.pages.size() - i);
    std::memcpy(buffer, corpus.pages[i].data(), n * compress::page_size);
    ok = ::pwrite(fd, buffer, n * compress::page_size, static_cast<off_t>(i * compress::page_size)) ==
         static_cast<ssize_t>(n * compress::page_size);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  std::free(buffer);
  if (!ok) {
    r.skipped_because = std::string("writing /dev/zram0 failed: ") + std::strerror(errno);
    write_attr("reset", "1");
    return r;
  }
  // mm_stat: orig compr mem_used mem_limit mem_used_max same_pages pages_compacted huge_pages ...
  std::istringstream mm(read_attr("mm_stat"));
  std::uint64_t mem_limit, mem_used_max, pages_compacted;
  mm >> r.orig_data_size >> r.compr_data_size >> r.mem_used_total >> mem_limit >> mem_used_max >> r.same_pages >>
      pages_compacted >> r.huge_pages;
  r.measured = static_cast<bool>(mm);
  if (!r.measured) r.skipped_because = "could not parse mm_stat";
  write_attr("reset", "1");
  return r;
}

}  // namespace coblk::storage::bench
