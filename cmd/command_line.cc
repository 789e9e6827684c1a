#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iostream>

#include "coblk/cmd/commands.h"

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// Collects N from entries named "<prefix>N" in `dir`.
void scan_ids(const char* dir, const char* prefix, std::vector<uint32_t>& ids) {
  DIR* d = ::opendir(dir);
  if (d == nullptr) return;
  const size_t plen = std::strlen(prefix);
  while (const dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (std::strncmp(name, prefix, plen) != 0) continue;
    const char* first = name + plen;
    const char* last = name + std::strlen(name);
    uint32_t id = 0;
    auto [ptr, ec] = std::from_chars(first, last, id);
    if (ec == std::errc() && ptr == last && first != last) ids.push_back(id);
  }
  ::closedir(d);
}

}  // namespace

int report_error(const char* command, const std::string& message, int status) {
  std::cerr << "coblk " << command << ": " << message << '\n';
  return status;
}

std::optional<int> parse_command_line(const char* command, const std::vector<std::string>& args,
                                      const po::options_description& desc, po::variables_map& vm) {
  try {
    // An empty positional description makes stray words an error, not ignored.
    const po::positional_options_description no_positionals;
    po::store(po::command_line_parser(args).options(desc).positional(no_positionals).run(), vm);
    po::notify(vm);
  } catch (const po::too_many_positional_options_error&) {
    return report_error(
        command,
        std::string("unexpected argument: coblk ") + command + " takes only options (see coblk " + command + " --help)",
        kExitUsage);
  } catch (const po::error& e) {
    return report_error(command, std::string(e.what()) + " (see coblk " + command + " --help)", kExitUsage);
  }
  if (vm.count("help")) {
    std::cout << desc << '\n';
    return kExitOk;
  }
  return std::nullopt;
}

bool parse_dev_id(const std::string& text, uint32_t& id, std::string& error) {
  constexpr uint32_t kMaxDevId = (1U << 20) - 1;  // minor numbers of the ublk char region
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), last, id);
  if (ec == std::errc() && ptr == last && !text.empty() && id <= kMaxDevId) return true;
  error = "-n must be a device id from 0 to " + std::to_string(kMaxDevId) + ", not '" + text + "'";
  return false;
}

std::vector<uint32_t> existing_device_ids() {
  std::vector<uint32_t> ids;
  scan_ids("/sys/class/ublk-char", "ublkc", ids);
  if (ids.empty()) scan_ids("/dev", "ublkc", ids);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace coblk::cmd
