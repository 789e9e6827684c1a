// log_replay: replays a dm-log-writes log onto a device or file, for the
// crash-consistency test of the loop target (test/vm/guest/crash-consistency.sh).
//
//   log_replay LOG --list              print "INDEX flush" for every FLUSH entry
//                                      and "INDEX mark NAME" for every mark
//   log_replay LOG TARGET FROM TO      apply entries FROM..TO (inclusive)
//
// The log format is the kernel's (drivers/md/dm-log-writes.c, described in
// Documentation/admin-guide/device-mapper/log-writes.rst): a super block of
// one device sector at offset 0 (magic, version, entry count, sector size),
// then every logged bio in completion order, each as one sector holding its
// entry header (target sector, sector count, flags, data length; a mark's
// text follows the header in that sector), followed, for a write, by its
// data. Discards have no data; replaying one writes zeros, which is what the
// loop target's discard reads back as. A FLUSH entry is where everything
// before it had reached the device when the flush completed: a state the
// file system must be able to recover from.
//
// Errors are one line on stderr and exit status 1.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t log_magic = 0x6a736677736872ULL;
constexpr std::uint64_t flag_flush = 1U << 0;
constexpr std::uint64_t flag_discard = 1U << 2;
constexpr std::uint64_t flag_mark = 1U << 3;

// Little-endian on disk; this tool runs on x86 only, like the VM.
struct Super {
  std::uint64_t magic;
  std::uint64_t version;
  std::uint64_t entries;
  std::uint32_t sector_size;
};

struct Entry {
  std::uint64_t sector;
  std::uint64_t sectors;
  std::uint64_t flags;
  std::uint64_t data_length;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "log_replay: %s\n", message.c_str());
  std::exit(1);
}

void read_exact(int fd, void* out, std::size_t length, std::uint64_t offset, const char* what) {
  auto* p = static_cast<char*>(out);
  while (length > 0) {
    const ssize_t n = ::pread(fd, p, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      die(std::string("cannot read the ") + what + " at byte " + std::to_string(offset) + ": " +
          (n == 0 ? "end of log" : std::strerror(errno)));
    p += n;
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::size_t>(n);
  }
}

void write_exact(int fd, const void* data, std::size_t length, std::uint64_t offset) {
  const auto* p = static_cast<const char*>(data);
  while (length > 0) {
    const ssize_t n = ::pwrite(fd, p, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("cannot write the replay target at byte " + std::to_string(offset) + ": " + std::strerror(errno));
    p += n;
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::size_t>(n);
  }
}

std::uint64_t number(const char* text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0) die(std::string("bad ") + what + " '" + text + "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const bool list_flushes = argc == 3 && std::strcmp(argv[2], "--list") == 0;
  if (!list_flushes && argc != 5) {
    std::fprintf(stderr, "usage: log_replay LOG --list | log_replay LOG TARGET FROM TO\n");
    return 2;
  }
  const int log = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (log < 0) die(std::string("cannot open ") + argv[1] + ": " + std::strerror(errno));
  Super super{};
  read_exact(log, &super, sizeof super, 0, "super block");
  if (super.magic != log_magic) die(std::string(argv[1]) + " is not a dm-log-writes log (bad magic)");
  if (super.version != 1) die("unknown log version " + std::to_string(super.version));
  if (super.sector_size < 512 || super.sector_size > 65536 || (super.sector_size & (super.sector_size - 1)) != 0) {
    die("impossible log sector size " + std::to_string(super.sector_size));
  }
  const std::uint64_t sector_size = super.sector_size;
  int target = -1;
  std::uint64_t from = 0, to = 0;
  if (!list_flushes) {
    target = ::open(argv[2], O_WRONLY | O_CLOEXEC);
    if (target < 0) die(std::string("cannot open ") + argv[2] + ": " + std::strerror(errno));
    from = number(argv[3], "first entry");
    to = number(argv[4], "last entry");
    if (to >= super.entries)
      die("entry " + std::to_string(to) + " is beyond the log's " + std::to_string(super.entries));
  }
  std::vector<char> block(sector_size);
  std::vector<char> data;
  std::uint64_t at = sector_size;  // the first entry follows the super block
  for (std::uint64_t i = 0; i < super.entries && (list_flushes || i <= to); ++i) {
    read_exact(log, block.data(), sector_size, at, "entry header");
    Entry e{};
    std::memcpy(&e, block.data(), sizeof e);
    at += sector_size;
    const bool has_data = (e.flags & (flag_discard | flag_mark)) == 0;
    const std::uint64_t bytes = e.sectors * sector_size;
    if (bytes > (std::uint64_t{1} << 30))
      die("entry " + std::to_string(i) + " claims " + std::to_string(bytes) + " bytes");
    if (list_flushes) {
      if (e.flags & flag_flush) std::printf("%llu flush\n", static_cast<unsigned long long>(i));
      if (e.flags & flag_mark) {
        const std::size_t room = sector_size - sizeof e;
        const std::string name(block.data() + sizeof e, strnlen(block.data() + sizeof e, room));
        std::printf("%llu mark %s\n", static_cast<unsigned long long>(i), name.c_str());
      }
    } else if (i >= from && (e.flags & flag_mark) == 0 && bytes > 0) {
      data.assign(bytes, 0);
      if (has_data) read_exact(log, data.data(), bytes, at, "entry data");
      write_exact(target, data.data(), bytes, e.sector * sector_size);
    }
    if (has_data) at += bytes;
  }
  if (target >= 0 && ::fsync(target) != 0) die(std::string("fsync: ") + std::strerror(errno));
  return 0;
}
