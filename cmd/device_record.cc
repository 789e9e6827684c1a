#include "coblk/cmd/device_record.h"

#include "coblk/cmd/size_parse.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace coblk::cmd {
namespace {

constexpr char kArraySeparator = '\x1f';

// One member's value as read: a scalar's text, or an array's elements. The
// elements are kept apart because joining them (FlatJson's form) cannot tell
// [] from [""], nor an element holding the separator from two elements.
struct Member {
  std::string text;  ///< a scalar's text, or the elements joined by kArraySeparator
  bool is_array = false;
  std::vector<std::string> elements;
};
using Members = std::map<std::string, Member>;

// A recursive-descent reader for the flat objects this file writes. It is
// deliberately small: one level of object, scalar members, arrays of scalars.
class FlatJsonReader {
 public:
  explicit FlatJsonReader(const std::string& text) : s_(text) {}

  std::optional<Members> object() {
    Members out;
    skip_space();
    if (!eat('{')) return std::nullopt;
    skip_space();
    if (eat('}')) return finish(out);
    for (;;) {
      skip_space();
      auto key = string();
      if (!key) return std::nullopt;
      skip_space();
      if (!eat(':')) return std::nullopt;
      skip_space();
      auto value = member_value();
      if (!value) return std::nullopt;
      out[*key] = *value;
      skip_space();
      if (eat(',')) continue;
      if (eat('}')) return finish(out);
      return std::nullopt;
    }
  }

 private:
  std::optional<Members> finish(Members& out) {
    skip_space();
    if (pos_ != s_.size()) return std::nullopt;
    return std::move(out);
  }

  std::optional<Member> member_value() {
    Member m;
    if (peek() == '[') {
      ++pos_;
      m.is_array = true;
      skip_space();
      if (eat(']')) return m;
      for (bool first = true;; first = false) {
        skip_space();
        auto v = scalar();
        if (!v) return std::nullopt;
        if (!first) m.text += kArraySeparator;
        m.text += *v;
        m.elements.push_back(std::move(*v));
        skip_space();
        if (eat(',')) continue;
        if (eat(']')) return m;
        return std::nullopt;
      }
    }
    auto v = scalar();
    if (!v) return std::nullopt;
    m.text = std::move(*v);
    return m;
  }

  std::optional<std::string> scalar() {
    if (peek() == '"') return string();
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-' ||
                                s_[pos_] == '+' || s_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    return s_.substr(start, pos_ - start);
  }

  std::optional<std::string> string() {
    if (!eat('"')) return std::nullopt;
    std::string out;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return std::nullopt;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return std::nullopt;
          const unsigned long cp = std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16);
          pos_ += 4;
          // Only what json_quote emits (control characters) needs decoding.
          if (cp >= 0x80) return std::nullopt;
          out += static_cast<char>(cp);
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

// Reads a decimal number that fits T: a value out of T's range (a negative
// one for an unsigned field included) is not read, rather than wrapped.
template <class T>
bool read_number(const Members& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  const std::string& text = it->second.text;
  const char* const end = text.data() + text.size();
  T value{};
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty()) return false;
  out = value;
  return true;
}

void read_string(const Members& j, const char* key, std::string& out) {
  if (auto it = j.find(key); it != j.end()) out = it->second.text;
}

}  // namespace

std::string run_directory() {
  if (const char* dir = std::getenv("COBLK_RUN_DIR"); dir != nullptr && *dir != '\0') {
    // "/x/link/" would name the directory a link points to, not the link.
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d;
  }
  const uid_t uid = ::geteuid();
  if (uid == 0) return "/run/coblk";
  // /run/coblk is root's; an ordinary user (unprivileged devices) keeps
  // their state where only they can write.
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/coblk";
  }
  return "/tmp/coblk-" + std::to_string(uid);
}

std::string record_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".json"; }
std::string stats_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".zram-stats"; }
std::string metrics_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".metrics"; }

std::string keeper_status_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".keeper"; }

std::string log_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".log"; }

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string to_json(const DeviceRecord& r) {
  std::ostringstream o;
  o << "{\"dev_id\":" << r.dev_id << ",\"target\":" << json_quote(r.target)
    << ",\"data_path\":" << json_quote(r.data_path) << ",\"size_bytes\":" << r.size_bytes
    << ",\"block_size\":" << r.block_size << ",\"queues\":" << r.queues << ",\"depth\":" << r.depth
    << ",\"pid\":" << r.pid << ",\"keeper_pid\":" << r.keeper_pid << ",\"keeper_start\":" << r.keeper_start
    << ",\"unprivileged\":" << (r.unprivileged ? "true" : "false") << ",\"backing\":" << json_quote(r.backing)
    << ",\"backing_id\":" << json_quote(r.backing_id) << ",\"compression\":" << json_quote(r.compression)
    << ",\"name\":" << json_quote(r.name) << ",\"args\":[";
  for (size_t i = 0; i < r.args.size(); ++i) o << (i ? "," : "") << json_quote(r.args[i]);
  o << "],\"warnings\":[";
  for (size_t i = 0; i < r.warnings.size(); ++i) o << (i ? "," : "") << json_quote(r.warnings[i]);
  o << "]}\n";
  return o.str();
}

std::optional<DeviceRecord> record_from_json(const std::string& text) {
  auto j = FlatJsonReader(text).object();
  if (!j) return std::nullopt;
  DeviceRecord r;
  if (!read_number(*j, "dev_id", r.dev_id)) return std::nullopt;
  read_string(*j, "target", r.target);
  read_string(*j, "data_path", r.data_path);
  read_number(*j, "size_bytes", r.size_bytes);
  read_number(*j, "block_size", r.block_size);
  read_number(*j, "queues", r.queues);
  read_number(*j, "depth", r.depth);
  read_number(*j, "pid", r.pid);
  read_number(*j, "keeper_pid", r.keeper_pid);
  read_number(*j, "keeper_start", r.keeper_start);
  if (auto it = j->find("unprivileged"); it != j->end()) r.unprivileged = it->second.text == "true";
  read_string(*j, "backing", r.backing);
  read_string(*j, "backing_id", r.backing_id);
  read_string(*j, "compression", r.compression);
  read_string(*j, "name", r.name);
  if (auto it = j->find("args"); it != j->end()) {
    if (it->second.is_array) {
      r.args = std::move(it->second.elements);
    } else if (!it->second.text.empty()) {
      r.args.push_back(std::move(it->second.text));  // a lone string: one argument
    }
  }
  if (auto it = j->find("warnings"); it != j->end()) {
    if (it->second.is_array) {
      r.warnings = std::move(it->second.elements);
    } else if (!it->second.text.empty()) {
      r.warnings.push_back(std::move(it->second.text));
    }
  }
  return r;
}

std::optional<FlatJson> parse_flat_json(const std::string& text) {
  auto members = FlatJsonReader(text).object();
  if (!members) return std::nullopt;
  FlatJson out;
  for (auto& [key, member] : *members) out.emplace(key, std::move(member.text));
  return out;
}

namespace {

Error untrusted(const std::string& what, const std::string& why) {
  return Error(EPERM, what + " " + why + ": refusing to keep device state there (see COBLK_RUN_DIR in docs/cli.md)");
}

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool trusted_owner(uid_t owner) { return owner == ::geteuid() || owner == 0; }

// One directory on the way to the run directory (already resolved, no
// symbolic link left): owned by us or root, and writable by nobody else
// unless sticky (others may then add entries, but never rename or remove
// ours).
Result<void> check_ancestor(const std::string& path, const std::string& dir) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Error::from_errno(errno, "run directory '" + dir + "': " + path);
  const std::string what = "'" + path + "' (on the way to run directory '" + dir + "')";
  if (!trusted_owner(st.st_uid)) return untrusted(what, "is owned by uid " + std::to_string(st.st_uid));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
    return untrusted(what, "is writable by other users and not sticky (mode " + octal_mode(st.st_mode) + ")");
  return ok();
}

// The prefixes "/a", "/a/b", ... of an absolute path, without the path itself.
std::vector<std::string> ancestors_of(const std::string& path) {
  std::vector<std::string> out;
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (slash > 0 && path[slash - 1] != '/') out.push_back(path.substr(0, slash));
  }
  return out;
}

// A new file in `dir` with an unpredictable name starting with `prefix`:
// created exclusively, never through a symbolic link, mode 0644 whatever
// the umask. Returns the fd and sets `name`; -errno on failure.
int create_unique(const std::string& prefix, std::string& name) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    unsigned char random[8];
    if (::getrandom(random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random))) return -EIO;
    char suffix[2 * sizeof(random) + 1];
    for (size_t i = 0; i < sizeof(random); ++i) std::snprintf(suffix + 2 * i, 3, "%02x", random[i]);
    name = prefix + "." + suffix;
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      if (::fchmod(fd, 0644) != 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(name.c_str());
        return -err;
      }
      return fd;
    }
    if (errno != EEXIST) return -errno;
  }
  return -EEXIST;
}

}  // namespace

Result<void> check_run_directory(bool create) {
  const std::string dir = run_directory();
  if (dir.empty() || dir[0] != '/') return Error(EINVAL, "COBLK_RUN_DIR must be an absolute path, not '" + dir + "'");
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) return Error::from_errno(errno, "run directory '" + dir + "'");
    // Created 0755: the records are for everyone to read.
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Error::from_errno(errno, "cannot create run directory '" + dir + "'");
    if (::lstat(dir.c_str(), &st) != 0) return Error::from_errno(errno, "run directory '" + dir + "'");
  }
  const std::string what = "run directory '" + dir + "'";
  if (S_ISLNK(st.st_mode)) return untrusted(what, "is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return Error(ENOTDIR, what + " is not a directory");
  if (!trusted_owner(st.st_uid)) {
    return untrusted(what, "is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                               std::to_string(::geteuid()) + ") or root");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return untrusted(what, "is writable by other users (mode " + octal_mode(st.st_mode) + ")");
  // The way there: a symbolic link on it must be ours or root's (another
  // user could point it elsewhere), and each directory it really passes
  // through must be one nobody else can rearrange.
  for (const std::string& p : ancestors_of(dir)) {
    if (::lstat(p.c_str(), &st) != 0) {
      std::string failed = what;
      failed += ": ";
      failed += p;
      return Error::from_errno(errno, failed);
    }
    if (S_ISLNK(st.st_mode) && !trusted_owner(st.st_uid)) {
      std::string where = "'";
      where += p;
      where += "' (on the way to ";
      where += what;
      where += ")";
      return untrusted(where, "is a symbolic link owned by uid " + std::to_string(st.st_uid));
    }
  }
  char* real = ::realpath(dir.c_str(), nullptr);
  if (real == nullptr) return Error::from_errno(errno, what);
  const std::string resolved = real;
  std::free(real);
  if (Result<void> r = check_ancestor("/", dir); !r) return r;
  for (const std::string& p : ancestors_of(resolved)) {
    if (Result<void> r = check_ancestor(p, dir); !r) return r;
  }
  return ok();
}

Result<void> ensure_run_directory() { return check_run_directory(true); }

Result<void> save_record(const DeviceRecord& record) {
  if (Result<void> dir = ensure_run_directory(); !dir) return dir;
  const std::string path = record_path(record.dev_id);
  std::string tmp;
  const int fd = create_unique(path, tmp);
  if (fd < 0) return Error::from_errno(-fd, "cannot create a record in run directory '" + run_directory() + "'");
  const std::string text = to_json(record);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error::from_errno(err, "cannot write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  // rename() is atomic: readers see the old record or the new one, never half.
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error::from_errno(err, "cannot rename " + tmp + " to " + path);
  }
  return ok();
}

Result<DeviceRecord> load_record(uint32_t dev_id) {
  if (Result<void> dir = check_run_directory(false); !dir) return std::move(dir).error();
  const std::string path = record_path(dev_id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !trusted_owner(st.st_uid)) {
    ::close(fd);
    return Error(EPERM, path + " is not a regular file of this user or root: ignoring it");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1U << 20)) break;  // no record is this long
  }
  ::close(fd);
  auto r = record_from_json(text);
  if (!r || r->dev_id != dev_id)
    return Error(EINVAL, path + " is not a coblk record of device " + std::to_string(dev_id));
  return std::move(*r);
}

std::string recovery_mismatch(const DeviceRecord& record, uint64_t size_bytes, uint32_t block_size,
                              uint64_t kernel_size, uint32_t kernel_block_size) {
  auto geometry = [](uint64_t bytes, uint32_t block) {
    return format_size(bytes) + " of " + std::to_string(block) + "-byte blocks";
  };
  const std::string device = "device " + std::to_string(record.dev_id) + " is " +
                             geometry(kernel_size, kernel_block_size) + " in the kernel, but ";
  const std::string refusal = ": refusing to serve it with another geometry";
  if (record.size_bytes != kernel_size || record.block_size != kernel_block_size)
    return device + "its record says " + geometry(record.size_bytes, record.block_size) + refusal;
  if (size_bytes != kernel_size || block_size != kernel_block_size) {
    return device + "its recorded arguments now give " + geometry(size_bytes, block_size) +
           (record.target == "loop" ? " (has the backing file changed size?)" : "") + refusal;
  }
  return {};
}

std::string backing_mismatch(const DeviceRecord& record, const std::string& identity_now) {
  if (record.backing_id.empty() || identity_now.empty() || identity_now == record.backing_id) return {};
  // A record of the coblk before wwids (an NVMe node's number alone, "char
  // MAJ:MIN"): what it knows must still hold. Records since always carry
  // a wwid word for such a node ("unknown" if sysfs had none).
  if (record.backing_id.rfind("char ", 0) == 0 && record.backing_id.find(' ', 5) == std::string::npos &&
      identity_now.rfind(record.backing_id + " wwid ", 0) == 0)
    return {};
  return "the backing file '" + record.backing + "' of device " + std::to_string(record.dev_id) +
         " is not the one it was added with (then " + record.backing_id + ", now " + identity_now +
         "): refusing to serve another file's data";
}

void remove_record(uint32_t dev_id) {
  if (!check_run_directory(false)) return;
  ::unlink(record_path(dev_id).c_str());
  ::unlink(stats_path(dev_id).c_str());
  ::unlink(metrics_path(dev_id).c_str());
  ::unlink(keeper_status_path(dev_id).c_str());
  ::unlink(log_path(dev_id).c_str());
}

}  // namespace coblk::cmd
