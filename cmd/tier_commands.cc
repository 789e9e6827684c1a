// coblk writeback, coblk idle: commands to a zram device's backing tier,
// carried to its server by the device's stats file (ublk::send_zram_command).
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/device_record.h"
#if COBLK_HAVE_ZRAM
#include "coblk/storage/page_store.h"
#include "coblk/ublk/zram_stats.h"
#endif

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// How long a command may take: a writeback of a large device writes many
// batches.
constexpr int kCommandTimeoutMs = 300000;

// The zram device named by -n, or an exit status after reporting why not.
std::optional<int> zram_device(const char* command, const po::variables_map& vm, uint32_t& id) {
  if (!vm.count("number")) return report_error(command, "-n ID is required", kExitUsage);
  std::string error;
  if (!parse_dev_id(vm["number"].as<std::string>(), id, error)) return report_error(command, error, kExitUsage);
  auto r = load_record(id);
  if (!r) return report_error(command, "no coblk device " + std::to_string(id));
  if (r->target != "zram")
    return report_error(command, "device " + std::to_string(id) + " is a " + r->target +
                                     " device; only zram devices have a backing tier");
  return std::nullopt;
}

// Parses a whole decimal number in [lo, hi] (no sign, no suffix).
bool parse_whole(const std::string& text, unsigned long long lo, unsigned long long hi, unsigned long long& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(text.c_str(), &end, 10);
  return !text.empty() && *end == '\0' && text[0] != '-' && text[0] != '+' && errno == 0 && out >= lo && out <= hi;
}

#if COBLK_HAVE_ZRAM
// The pages a writeback or recompression takes, from --type (`fallback`
// when not given; "incompressible" only where `incompressible` is true, as
// a name of "huge"), and at most --max-pages; into `request`. An exit
// status after reporting a bad value, else nullopt.
std::optional<int> parse_page_selection(const char* command, const po::variables_map& vm, const char* fallback,
                                        bool incompressible, ublk::ZramCommand& request) {
  const std::string type = vm.count("type") ? vm["type"].as<std::string>() : fallback;
  if (type == "idle") {
    request.arg = static_cast<uint64_t>(storage::WritebackKind::idle);
  } else if (type == "huge" || (incompressible && type == "incompressible")) {
    request.arg = static_cast<uint64_t>(storage::WritebackKind::huge);
  } else if (type == "all") {
    request.arg = static_cast<uint64_t>(storage::WritebackKind::aged);  // aged by 0 s: every page
  } else {
    return report_error(command,
                        std::string("--type must be idle, huge") + (incompressible ? ", incompressible" : "") +
                            " or all, not '" + type + "'",
                        kExitUsage);
  }
  if (vm.count("max-pages")) {
    const std::string& n = vm["max-pages"].as<std::string>();
    unsigned long long v = 0;
    if (!parse_whole(n, 1, ULLONG_MAX, v))
      return report_error(command, "--max-pages must be a whole number of pages above 0, not '" + n + "'", kExitUsage);
    request.max_pages = v;
  }
  return std::nullopt;
}

int send(const char* command, uint32_t id, const ublk::ZramCommand& request, const char* what) {
  const auto answer = ublk::send_zram_command(stats_path(id), request, kCommandTimeoutMs);
  if (!answer) return report_error(command, answer.error().message());
  switch (answer->error) {
    case 0:
      std::cout << answer->count << ' ' << what << '\n';
      return kExitOk;
    case ENODEV:
      return report_error(command, "device " + std::to_string(id) + " has no backing tier (coblk add --backing)");
    case EIO:
      return report_error(command, "device " + std::to_string(id) + "'s backing tier failed; writeback is stopped (" +
                                       std::to_string(answer->count) + " pages written before)");
    case ENOSPC:
      return report_error(command, "device " + std::to_string(id) + " has spent its --writeback-limit");
    case ENOPROTOOPT:
      return report_error(command, "device " + std::to_string(id) + " has no second codec (coblk add --recompress)");
    default:
      return report_error(command, std::string("the server refused: ") + std::strerror(answer->error));
  }
}
#endif

}  // namespace

int run_writeback(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk writeback -n ID --type idle|huge|incompressible|all [--max-pages N]\n"
      "Writes pages of a zram device back to its backing tier now (kernel zram's writeback).\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"), "the device")(
      "type", po::value<std::string>()->value_name("TYPE"),
      "idle: pages marked by coblk idle and not used since; huge, incompressible: pages stored raw; all: every page")(
      "max-pages", po::value<std::string>()->value_name("N"), "write back at most N pages (default: no limit)");
  po::variables_map vm;
  if (auto done = parse_command_line("writeback", args, desc, vm)) return *done;
  uint32_t id = 0;
  if (auto done = zram_device("writeback", vm, id)) return *done;
  if (!vm.count("type"))
    return report_error("writeback", "--type is required (idle, huge, incompressible or all)", kExitUsage);
#if COBLK_HAVE_ZRAM
  ublk::ZramCommand request;
  request.kind = ublk::ZramCommand::Kind::writeback;
  if (auto done = parse_page_selection("writeback", vm, "", true, request)) return *done;
  return send("writeback", id, request, "pages written back");
#else
  return report_error("writeback", "this coblk was built without the zram target");
#endif
}

int run_recompress(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk recompress -n ID [--type huge|idle|all] [--max-pages N]\n"
      "Recompresses pages of a zram device with its second codec (--recompress) now, keeping a result only\n"
      "if it is stored in a smaller size class (kernel zram's recompress).\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"), "the device")(
      "type", po::value<std::string>()->value_name("TYPE"),
      "huge: pages stored raw; idle: pages marked by coblk idle; all: every page (default)")(
      "max-pages", po::value<std::string>()->value_name("N"), "try at most N pages (default: no limit)");
  po::variables_map vm;
  if (auto done = parse_command_line("recompress", args, desc, vm)) return *done;
  uint32_t id = 0;
  if (auto done = zram_device("recompress", vm, id)) return *done;
#if COBLK_HAVE_ZRAM
  ublk::ZramCommand request;
  request.kind = ublk::ZramCommand::Kind::recompress;
  if (auto done = parse_page_selection("recompress", vm, "all", false, request)) return *done;
  return send("recompress", id, request, "pages recompressed");
#else
  return report_error("recompress", "this coblk was built without the zram target");
#endif
}

int run_idle(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk idle -n ID [--age SECONDS]\n"
      "Marks idle the pages of a zram device not accessed for SECONDS (default 0: every stored page);\n"
      "any access clears the mark. `coblk writeback --type idle` then writes them back.\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"), "the device")(
      "age", po::value<std::string>()->value_name("SECONDS"), "only pages not accessed for this long");
  po::variables_map vm;
  if (auto done = parse_command_line("idle", args, desc, vm)) return *done;
  uint32_t id = 0;
  if (auto done = zram_device("idle", vm, id)) return *done;
#if COBLK_HAVE_ZRAM
  ublk::ZramCommand request;
  request.kind = ublk::ZramCommand::Kind::mark_idle;
  if (vm.count("age")) {
    const std::string& n = vm["age"].as<std::string>();
    unsigned long long v = 0;
    if (!parse_whole(n, 0, 0xffffffffULL, v))
      return report_error("idle", "--age must be a whole number of seconds, not '" + n + "'", kExitUsage);
    request.arg = v;
  }
  return send("idle", id, request, "pages marked idle");
#else
  return report_error("idle", "this coblk was built without the zram target");
#endif
}

}  // namespace coblk::cmd
