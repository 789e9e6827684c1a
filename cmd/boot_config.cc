#include "coblk/cmd/boot_config.h"

#include <dirent.h>
#include <sys/swap.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "coblk/cmd/ram_expression.h"

// Linux's swapon(2) flags (include/linux/swap.h) that glibc's <sys/swap.h> lacks.
#ifndef SWAP_FLAG_DISCARD_ONCE
#define SWAP_FLAG_DISCARD_ONCE 0x20000  // discard the whole area at swapon only
#endif
#ifndef SWAP_FLAG_DISCARD_PAGES
#define SWAP_FLAG_DISCARD_PAGES 0x40000  // discard freed clusters only
#endif

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// zram-generator's defaults.
constexpr const char* kDefaultZramSize = "min(ram / 2, 4096)";
constexpr int kDefaultSwapPriority = 100;

// One `KEY = VALUE` as read, and where.
struct Entry {
  std::string key;
  std::string value;
  std::string file;
  unsigned line = 0;
};

// A section merged over every file: the first header's place, and each key's
// last assignment (later lines and files win, as in zram-generator).
struct Section {
  std::string name;
  std::string file;
  unsigned line = 0;
  std::vector<Entry> entries;  // one per key, in the order keys first appear
};

Error config_error(const std::string& file, unsigned line, const std::string& key, const std::string& what) {
  return Error(EINVAL, file + ":" + std::to_string(line) + ": " + key + ": " + what);
}
Error config_error(const Entry& e, const std::string& what) { return config_error(e.file, e.line, e.key, what); }

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const size_t last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
}

// Reads one file into `sections` (`order` keeps first appearances). The
// text goes through Program_options' config-file parser, which yields the
// options in file order; a scan of the lines alongside gives each its line
// number (the parser keeps none) and catches what it would only reject as
// a whole, with the line.
Result<void> read_file(const std::string& file, const std::string& text, std::map<std::string, Section>& sections,
                       std::vector<std::string>& order) {
  struct OptionLine {
    unsigned line;
    std::string section;
    std::string key;
  };
  std::vector<OptionLine> lines;
  std::istringstream in(text);
  std::string raw;
  std::string section;
  unsigned number = 0;
  while (std::getline(in, raw)) {
    ++number;
    // As the parser does: '#' starts a comment anywhere on the line.
    std::string s = trim(raw.substr(0, raw.find('#')));
    if (s.empty()) continue;
    if (s.front() == '[' && s.back() == ']') {
      section = trim(s.substr(1, s.size() - 2));
      if (!valid_name(section))
        return config_error(file, number, "[" + section + "]",
                            "a section's name is the device's name: 1 to 64 letters, digits, '_' or '-'");
      if (sections.find(section) == sections.end()) {
        sections[section] = Section{section, file, number, {}};
        order.push_back(section);
      }
      continue;
    }
    const size_t eq = s.find('=');
    if (eq == std::string::npos)
      return config_error(file, number, quote_for_message(s), "expected KEY = VALUE or [NAME]");
    const std::string key = trim(s.substr(0, eq));
    if (key.empty()) return config_error(file, number, "(none)", "a line with a value but no key");
    if (section.empty()) return config_error(file, number, key, "a key outside any [NAME] section");
    lines.push_back({number, section, key});
  }

  std::istringstream again(text);
  const po::options_description none;
  po::parsed_options parsed(&none);
  try {
    parsed = po::parse_config_file(again, none, true);
  } catch (const po::error& e) {
    return Error(EINVAL, file + ": " + e.what());
  }
  if (parsed.options.size() != lines.size())
    return Error(EINVAL, file + ": read " + std::to_string(parsed.options.size()) + " keys, expected " +
                             std::to_string(lines.size()));
  for (size_t i = 0; i < lines.size(); ++i) {
    const po::option& option = parsed.options[i];
    const OptionLine& at = lines[i];
    // The parser names an option "<section>.<key>".
    if (option.string_key != at.section + "." + at.key)
      return Error(EINVAL, file + ":" + std::to_string(at.line) + ": read as '" + option.string_key + "'");
    Entry entry{at.key, option.value.empty() ? std::string() : option.value.front(), file, at.line};
    std::vector<Entry>& entries = sections[at.section].entries;
    auto same = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.key == at.key; });
    if (same != entries.end()) {
      *same = std::move(entry);
    } else {
      entries.push_back(std::move(entry));
    }
  }
  return {};
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::from_errno(errno, "cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Error(EIO, "cannot read " + path);
  return s.str();
}

// The "*.conf" files of `dir`, sorted by name; none when it does not exist.
std::vector<std::string> conf_files(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 5 && name[0] != '.' && name.compare(name.size() - 5, 5, ".conf") == 0) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (std::string& n : names) n.insert(0, dir + "/");
  return names;
}

// A size in MiB from a zram-generator expression, as bytes rounded down to
// whole 4 KiB pages.
Result<uint64_t> expression_bytes(const Entry& e, double ram_mib) {
  Result<double> mib = evaluate_ram_expression(e.value, ram_mib);
  if (!mib) return config_error(e, quote_for_message(e.value) + ": " + mib.error().message());
  if (*mib < 0) return config_error(e, quote_for_message(e.value) + " is negative (" + std::to_string(*mib) + " MiB)");
  const double bytes = std::floor(*mib * 1048576.0);
  if (bytes >= 0x1p62) return config_error(e, quote_for_message(e.value) + " is too large");
  return static_cast<uint64_t>(bytes) / 4096 * 4096;
}

bool parse_bool(const std::string& v, bool& out) {
  if (v == "true" || v == "yes" || v == "on" || v == "1") {
    out = true;
  } else if (v == "false" || v == "no" || v == "off" || v == "0") {
    out = false;
  } else {
    return false;
  }
  return true;
}

// Where a key came from, for the option it became.
struct Origin {
  std::string option;  // long name of the `coblk add` option
  const Entry* entry;  // the key that set it
};

// parse_add_options' message names the option it is about, as --long or
// -s: find the first option of `origins` it names, so that the error can
// name the key and its line instead.
Error attribute(const std::string& message, const std::vector<Origin>& origins, const Section& section,
                const std::vector<AddOptionInfo>& options) {
  size_t best = std::string::npos;
  const Origin* culprit = nullptr;
  std::string token;
  const auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; };
  for (const Origin& o : origins) {
    const auto info =
        std::find_if(options.begin(), options.end(), [&](const AddOptionInfo& i) { return i.long_name == o.option; });
    std::vector<std::string> tokens{"--" + o.option};
    if (info != options.end() && info->short_name != 0) tokens.push_back(std::string("-") + info->short_name);
    for (const std::string& t : tokens) {
      for (size_t at = message.find(t); at != std::string::npos; at = message.find(t, at + 1)) {
        const bool starts = at == 0 || message[at - 1] == ' ' || message[at - 1] == '(';
        const bool ends = at + t.size() == message.size() || !is_word(message[at + t.size()]);
        if (starts && ends) {
          if (at < best) {
            best = at;
            culprit = &o;
            token = t;
          }
          break;
        }
      }
    }
  }
  if (culprit == nullptr) {
    // No option named ("unknown target 'tape'"): the key whose value the
    // message quotes, else the section.
    for (const Origin& o : origins) {
      if (message.find(quote_for_message(o.entry->value)) != std::string::npos) return config_error(*o.entry, message);
    }
    return config_error(section.file, section.line, "[" + section.name + "]", message);
  }
  std::string what = message;
  if (what.compare(best, token.size() + 2, token + ": ") == 0 && best == 0) {
    what.erase(0, token.size() + 2);
  } else {
    what.replace(best, token.size(), culprit->entry->key);
  }
  return config_error(*culprit->entry, what);
}

// Turns a section into a device: its keys into `coblk add` arguments and
// the use (swap or a file system).
Result<BootDevice> make_device(const Section& section, const BootEnvironment& env, bool check) {
  static const std::vector<AddOptionInfo> options = add_option_list();
  BootDevice d;
  d.name = section.name;
  d.file = section.file;
  d.line = section.line;

  std::map<std::string, const Entry*> own;  // zram-generator's keys
  std::vector<Origin> origins;
  std::vector<std::pair<const Entry*, const AddOptionInfo*>> passed;  // add options, in key order
  for (const Entry& e : section.entries) {
    static const char* const kOwnKeys[] = {"zram-size",
                                           "zram-resident-limit",
                                           "compression-algorithm",
                                           "writeback-device",
                                           "swap-priority",
                                           "fs-type",
                                           "mount-point",
                                           "options",
                                           "host-memory-limit"};
    if (std::find_if(std::begin(kOwnKeys), std::end(kOwnKeys), [&](const char* k) { return e.key == k; }) !=
        std::end(kOwnKeys)) {
      own[e.key] = &e;
      continue;
    }
    const auto info =
        std::find_if(options.begin(), options.end(), [&](const AddOptionInfo& i) { return i.long_name == e.key; });
    if (info == options.end()) return config_error(e, "unknown key");
    if (e.key == "help" || e.key == "foreground")
      return config_error(e, "not a device setting (coblk up serves every device as a daemon)");
    if (e.key == "name") return config_error(e, "the section's name [" + section.name + "] is the device's name");
    passed.emplace_back(&e, &*info);
  }
  const auto has = [&](const char* key) { return own.count(key) != 0; };
  const auto find_passed = [&](const char* key) -> const Entry* {
    for (const auto& [e, info] : passed) {
      if (e->key == key) return e;
    }
    return nullptr;
  };
  // The aliases: zram-generator's name and the option's mean the same.
  for (const auto& [alias, option] : {std::pair{"compression-algorithm", "algorithm"},
                                      {"writeback-device", "backing"},
                                      {"zram-size", "size"},
                                      {"zram-resident-limit", "mem-limit"}}) {
    if (has(alias) && find_passed(option) != nullptr)
      return config_error(*own[alias], std::string("give either ") + alias + " or " + option + ", not both");
  }

  const Entry* type = find_passed("type");
  const std::string target = type != nullptr ? type->value : "zram";

  // Device or not: zram-generator's host-memory-limit and a size of 0.
  if (has("host-memory-limit")) {
    const Entry& e = *own["host-memory-limit"];
    if (e.value != "none") {
      char* end = nullptr;
      const double limit = std::strtod(e.value.c_str(), &end);
      if (e.value.empty() || *end != '\0' || !(limit >= 0))
        return config_error(e, "expected a size in MiB or 'none', not " + quote_for_message(e.value));
      if (env.ram_mib > limit)
        d.skipped =
            "the machine's " + std::to_string(static_cast<uint64_t>(env.ram_mib)) + " MiB are above host-memory-limit";
    }
  }

  // The use, zram-generator's way: swap unless a mount point or another
  // file system is named.
  if (has("mount-point")) d.mount_point = own["mount-point"]->value;
  d.fs_type = has("fs-type") ? own["fs-type"]->value : (d.mount_point.empty() ? "swap" : "ext2");
  if (d.fs_type.empty() || d.fs_type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._+-") != std::string::npos)
    return config_error(*own["fs-type"],
                        "expected swap or a file system type such as ext4, not " + quote_for_message(d.fs_type));
  if (d.is_swap() && has("mount-point"))
    return config_error(*own["mount-point"], "swap has no mount point (set fs-type to a file system)");
  if (!d.is_swap() && d.mount_point.empty()) return config_error(*own["fs-type"], "a file system needs a mount-point");
  if (!d.mount_point.empty() && d.mount_point.front() != '/')
    return config_error(*own["mount-point"], "expected an absolute path, not " + quote_for_message(d.mount_point));
  if (has("swap-priority") && !d.is_swap())
    return config_error(*own["swap-priority"], "only swap has a priority (fs-type is " + d.fs_type + ")");
  // `options` defaults to discard, for swap and file systems alike: a
  // coblk device learns that data is dead only from discards.
  const std::string opts = has("options") ? own["options"]->value : "discard";
  if (d.is_swap()) {
    d.swap_priority = kDefaultSwapPriority;
    if (has("swap-priority")) {
      const Entry& e = *own["swap-priority"];
      char* end = nullptr;
      errno = 0;
      const long p = std::strtol(e.value.c_str(), &end, 10);
      if (e.value.empty() || *end != '\0' || errno != 0 || p < -1 || p > 32767)
        return config_error(e, "expected a number from -1 to 32767, not " + quote_for_message(e.value));
      d.swap_priority = static_cast<int>(p);
    }
    if (d.swap_priority >= 0)
      d.swap_flags = SWAP_FLAG_PREFER | ((d.swap_priority << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
    std::istringstream items(opts);
    std::string item;
    while (std::getline(items, item, ',')) {
      item = trim(item);
      if (item == "discard") {
        d.swap_flags |= SWAP_FLAG_DISCARD;
      } else if (item == "discard=once") {
        d.swap_flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_ONCE;
      } else if (item == "discard=pages") {
        d.swap_flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_PAGES;
      } else if (!item.empty()) {
        return config_error(*own["options"],
                            quote_for_message(item) + " is not a swap option (discard, discard=once, discard=pages)");
      }
    }
  } else {
    if (opts.find_first_of(" \t") != std::string::npos)
      return config_error(*own["options"], "mount options are separated by commas, not spaces");
    d.mount_options = opts;
  }

  // The `coblk add` arguments: the target first, then the keys in order.
  d.add_args = {"--type", target};
  if (type != nullptr) origins.push_back({"type", type});
  for (const auto& [e, info] : passed) {
    if (e == type) continue;
    bool on = false;
    if (info->value_optional) {
      // sqpoll = yes | no | CPU[,CPU...]: digits are CPUs (so 0 and 1 are
      // CPU numbers here, not no and yes), given as the '='-attached value
      // that `coblk add` checks; a yes/no word is the bare option or none.
      const bool cpus = !e->value.empty() && e->value.find_first_not_of("0123456789,") == std::string::npos;
      if (cpus || !parse_bool(e->value, on)) {
        d.add_args.push_back("--" + info->long_name + "=" + e->value);
      } else if (on) {
        d.add_args.push_back("--" + info->long_name);
      } else {
        continue;
      }
    } else if (info->takes_value) {
      d.add_args.push_back("--" + info->long_name);
      d.add_args.push_back(e->value);
    } else {
      if (!parse_bool(e->value, on))
        return config_error(*e, "expected yes or no (true/false, on/off, 1/0), not " + quote_for_message(e->value));
      if (!on) continue;
      d.add_args.push_back("--" + info->long_name);
    }
    origins.push_back({info->long_name, e});
  }
  for (const auto& [alias, option] :
       {std::pair{"compression-algorithm", "algorithm"}, std::pair{"writeback-device", "backing"}}) {
    if (!has(alias)) continue;
    d.add_args.insert(d.add_args.end(), {std::string("--") + option, own[alias]->value});
    origins.push_back({option, own[alias]});
  }
  // Sizes in MiB expressions of `ram`, for zram only (zram-generator's).
  for (const char* key : {"zram-size", "zram-resident-limit"}) {
    if (has(key) && target != "zram") return config_error(*own[key], "only valid with type = zram");
  }
  static const Entry kDefaultSize{"zram-size", kDefaultZramSize, "", 0};
  if (target == "zram" && find_passed("size") == nullptr) {
    const Entry& e = has("zram-size") ? *own["zram-size"] : kDefaultSize;
    Result<uint64_t> bytes = expression_bytes(e, env.ram_mib);
    if (!bytes) return std::move(bytes).error();
    if (*bytes == 0 && d.skipped.empty()) d.skipped = "zram-size is 0";
    d.add_args.insert(d.add_args.end(), {"--size", std::to_string(std::max<uint64_t>(*bytes, 4096))});
    if (&e != &kDefaultSize) origins.push_back({"size", &e});
  }
  if (has("zram-resident-limit")) {
    Result<uint64_t> bytes = expression_bytes(*own["zram-resident-limit"], env.ram_mib);
    if (!bytes) return std::move(bytes).error();
    if (*bytes != 0) {
      d.add_args.insert(d.add_args.end(), {"--mem-limit", std::to_string(*bytes)});
      origins.push_back({"mem-limit", own["zram-resident-limit"]});
    }
  }
  d.add_args.insert(d.add_args.end(), {"--name", d.name});

  if (check && d.skipped.empty()) {
    AddParse parsed = parse_add_options(d.add_args, env.limits);
    if (!parsed) return attribute(parsed.error, origins, section, options);
    d.options = std::move(parsed.options);
  }
  return d;
}

}  // namespace

BootEnvironment current_boot_environment() {
  BootEnvironment env;
  env.limits = current_limits();
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") {
      env.ram_mib = static_cast<double>(kib) / 1024.0;
      break;
    }
    in.ignore(1 << 20, '\n');
  }
  return env;
}

std::string default_config_dir() {
  const char* dir = std::getenv("COBLK_CONFIG_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "/etc/coblk";
}

Result<BootConfig> load_boot_config(const std::string& dir, const BootEnvironment& env, bool check) {
  BootConfig config;
  std::map<std::string, Section> sections;
  std::vector<std::string> order;
  std::vector<std::string> files{dir + "/coblk.conf"};
  for (std::string& f : conf_files(dir + "/coblk.conf.d")) files.push_back(std::move(f));
  for (const std::string& file : files) {
    Result<std::string> text = read_text(file);
    if (!text && text.error().code() == ENOENT) continue;
    if (!text) return std::move(text).error();
    config.files.push_back(file);
    if (Result<void> read = read_file(file, *text, sections, order); !read) return std::move(read).error();
  }
  for (const std::string& name : order) {
    Result<BootDevice> device = make_device(sections[name], env, check);
    if (!device) return std::move(device).error();
    config.devices.push_back(std::move(device).value());
  }
  return config;
}

}  // namespace coblk::cmd
