#include "coblk/cmd/device_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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
  if (const char* dir = std::getenv("COBLK_RUN_DIR"); dir != nullptr && *dir != '\0') return dir;
  return "/run/coblk";
}

std::string record_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".json"; }
std::string stats_path(uint32_t dev_id) { return run_directory() + "/" + std::to_string(dev_id) + ".zram-stats"; }

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
    << ",\"pid\":" << r.pid << ",\"backing\":" << json_quote(r.backing)
    << ",\"compression\":" << json_quote(r.compression) << ",\"args\":[";
  for (size_t i = 0; i < r.args.size(); ++i) o << (i ? "," : "") << json_quote(r.args[i]);
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
  read_string(*j, "backing", r.backing);
  read_string(*j, "compression", r.compression);
  if (auto it = j->find("args"); it != j->end()) {
    if (it->second.is_array) {
      r.args = std::move(it->second.elements);
    } else if (!it->second.text.empty()) {
      r.args.push_back(std::move(it->second.text));  // a lone string: one argument
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

int ensure_run_directory() {
  const std::string dir = run_directory();
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return -errno;
  return 0;
}

int save_record(const DeviceRecord& record) {
  if (const int ret = ensure_run_directory(); ret < 0) return ret;
  const std::string path = record_path(record.dev_id);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  const std::string text = to_json(record);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = -errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  // rename() is atomic: readers see the old record or the new one, never half.
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    const int err = -errno;
    ::unlink(tmp.c_str());
    return err;
  }
  return 0;
}

std::optional<DeviceRecord> load_record(uint32_t dev_id) {
  std::ifstream in(record_path(dev_id));
  if (!in) return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  auto r = record_from_json(buf.str());
  if (r && r->dev_id != dev_id) return std::nullopt;
  return r;
}

void remove_record(uint32_t dev_id) {
  ::unlink(record_path(dev_id).c_str());
  ::unlink(stats_path(dev_id).c_str());
}

}  // namespace coblk::cmd
