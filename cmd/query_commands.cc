// coblk list, coblk features, coblk stats: commands that only look (stats' columns: cmd/stats_columns.h).
#include <dirent.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "coblk/cmd/add_options.h"
#include "coblk/cmd/commands.h"
#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/device_ops.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/keeper.h"
#include "coblk/cmd/size_parse.h"
#include "coblk/cmd/stats_columns.h"
#include "coblk/ublk/control.h"
#include "coblk/ublk/device.h"
#include "coblk/ublk/features.h"
#if COBLK_HAVE_ZRAM
#include "coblk/ublk/zram_stats.h"
#endif

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

using Table = std::vector<std::vector<std::string>>;

// Zram devices according to the run directory's records, sorted by id.
std::vector<DeviceRecord> zram_records() {
  std::vector<DeviceRecord> out;
  const std::string dir = run_directory();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    uint32_t id = 0;
    std::string ignored;
    const size_t dot = name.find('.');
    if (dot == std::string::npos || name.substr(dot) != ".json") continue;
    if (!parse_dev_id(name.substr(0, dot), id, ignored)) continue;
    if (auto r = load_record(id); r && r->target == "zram") out.push_back(*r);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.dev_id < b.dev_id; });
  return out;
}

// The statistics a zram server publishes, added to `out` in kernel zram's
// mm_stat/io_stat order; nothing when none are published.
void add_stats_fields(uint32_t dev_id, boost::json::object& out) {
#if COBLK_HAVE_ZRAM
  const auto s = ublk::read_zram_stats(stats_path(dev_id));
  if (!s) return;
  auto add = [&](const char* key, uint64_t v) { out[key] = v; };
  add("disksize", s->disksize);
  add("orig_data_size", s->mm.orig_data_size);
  add("compr_data_size", s->mm.compr_data_size);
  add("mem_used_total", s->mm.mem_used_total);
  add("mem_limit", s->mm.mem_limit);
  add("mem_used_max", s->mm.mem_used_max);
  add("same_pages", s->mm.same_pages);
  add("pages_compacted", s->mm.pages_compacted);
  add("huge_pages", s->mm.huge_pages);
  add("huge_pages_since", s->mm.huge_pages_since);
  add("failed_reads", s->io.failed_reads);
  add("failed_writes", s->io.failed_writes);
  add("invalid_io", s->io.invalid_io);
  add("notify_free", s->io.notify_free);
  add("bd_count", s->bd.bd_count);
  add("bd_reads", s->bd.bd_reads);
  add("bd_writes", s->bd.bd_writes);
  add("backing_blocks", s->tier.backing_blocks);
  add("written_back_pages", s->tier.written_back_pages);
  add("backing_read_errors", s->tier.read_errors);
  add("backing_write_errors", s->tier.write_errors);
  add("backing_checksum_errors", s->tier.checksum_errors);
  add("recompressed_pages", s->tier.recompressed_pages);
  add("readmitted_pages", s->tier.readmitted_pages);
  add("staged_pages", s->mm.staged_pages);
  out["tier_state"] = ublk::tier_state_name(s->tier_state);
  if (s->writeback_budget != UINT64_MAX) add("writeback_budget_pages", s->writeback_budget);
#else
  (void)dev_id;
  (void)out;
#endif
}

// What `coblk stats` shows of the zram device `record`: its record, the
// figures its server publishes (if it does) and the mount table.
StatsFigures stats_figures(const DeviceRecord& record) {
  StatsFigures d;
  d.dev_id = record.dev_id;
  d.name = ublk::block_device_path(record.dev_id);
  d.algorithm = record.compression;
  d.disksize = record.size_bytes;
  // Each queue's core compresses its own writes, unless --compress-cores
  // gave the work to that many cores (parsed as `coblk recover` would).
  d.streams = record.queues;
  if (const AddParse parsed = parse_add_options(record.args); parsed.error.empty() && !parsed.help) {
    if (parsed.options.compress_cores != 0) d.streams = parsed.options.compress_cores;
  }
  d.mountpoint = find_mountpoint(d.name);
#if COBLK_HAVE_ZRAM
  const auto s = ublk::read_zram_stats(stats_path(record.dev_id));
  if (!s) return d;
  d.published = true;
  d.algorithm = s->algorithm;
  d.disksize = s->disksize;
  d.orig_data_size = s->mm.orig_data_size;
  d.compr_data_size = s->mm.compr_data_size;
  d.mem_used_total = s->mm.mem_used_total;
  d.mem_limit = s->mm.mem_limit;
  d.mem_used_max = s->mm.mem_used_max;
  d.same_pages = s->mm.same_pages;
  d.pages_compacted = s->mm.pages_compacted;
  d.huge_pages = s->mm.huge_pages;
  d.staged_pages = s->mm.staged_pages;
  d.notify_free = s->io.notify_free;
  d.failed_reads = s->io.failed_reads;
  d.failed_writes = s->io.failed_writes;
  d.has_tier = s->tier_state != ublk::TierState::none;
  d.tier_state = ublk::tier_state_name(s->tier_state);
  d.backing_bytes = s->tier.backing_blocks * 4096;
  d.written_back = s->bd.bd_count * 4096;  // bd_stat counts the tier's 4 KiB blocks
  d.bd_reads = s->bd.bd_reads;
  d.bd_writes = s->bd.bd_writes;
  d.readmitted = s->tier.readmitted_pages;
#endif
  return d;
}

// A warning's short form for the WARN column: its words before the first
// ':', joined by '-' ("memory not locked: ..." -> "memory-not-locked").
std::string warning_tag(const std::string& warning) {
  std::string tag = warning.substr(0, warning.find(':'));
  std::replace(tag.begin(), tag.end(), ' ', '-');
  return tag.empty() ? "warning" : tag;
}

}  // namespace

int run_list(const std::vector<std::string>& args) {
  po::options_description desc("Usage: coblk list [-n ID] [--json] [--verbose]\nLists ublk devices.\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"),
                                                 "only device ID")("json", "one JSON object per device and line")(
      "verbose,v", "also print each device's warnings in full");
  po::variables_map vm;
  if (auto done = parse_command_line("list", args, desc, vm)) return *done;

  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT)
    return report_error("list", dir.error().message());

  std::vector<uint32_t> ids;
  if (vm.count("number")) {
    uint32_t id = 0;
    std::string error;
    if (!parse_dev_id(vm["number"].as<std::string>(), id, error)) return report_error("list", error, kExitUsage);
    ids.push_back(id);
  } else {
    ids = existing_device_ids();
  }

  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return report_error("list", error);

  const bool json = vm.count("json") != 0;
  Table rows{
      {"ID", "STATE", "QUEUES", "DEPTH", "SIZE", "TARGET", "DATA_PATH", "PID", "RESTARTS", "BLOCK_DEVICE", "WARN"}};
  std::vector<std::string> verbose_lines;
  for (const uint32_t id : ids) {
    ublk::abi::ublksrv_ctrl_dev_info info{};
    const int ret = look_up_device(control, id, info);
    if (ret == -ENODEV && !vm.count("number")) continue;  // deleted while we looked
    // Another user's device (or root's, to an ordinary user) is not ours to show.
    if ((ret == -EPERM || ret == -EACCES) && !vm.count("number")) continue;
    if (ret < 0) return report_error("list", command_error("get info of", ret, control, id));
    ublk::abi::ublk_params params{};
    std::string size = "-";
    uint64_t size_bytes = 0;
    if (control.get_params(id, params) == 0 && (params.types & ublk::abi::PARAM_TYPE_BASIC) != 0) {
      size_bytes = params.basic.dev_sectors << 9;
      size = format_size(size_bytes);
    }
    const auto record = load_record(id);
    // The kernel's flags, not the record: they decide how requests' data
    // moves, and recovery refuses a server on another path (Device::recover).
    const std::string data_path = ublk::data_path_name(ublk::data_path_of(info.flags));
    // A device with crash-safe memory: its keeper says how many servers it
    // restarted, and whether it is restarting one or gave up.
    std::string state(ublk::device_state_name(info.state));
    std::string restarts = "-";
    if (record && record->keeper_pid > 0) {
      const std::optional<KeeperStatus> keeper = load_keeper_status(id);
      if (keeper) restarts = std::to_string(keeper->restarts);
      if (!keeper_alive(record->keeper_pid, record->keeper_start)) {
        state += "/memory-lost";  // no space: scripts split columns
      } else if (keeper && info.state != ublk::abi::S_DEV_LIVE && keeper->state != "serving") {
        state += "/" + keeper->state;
      }
    }
    const std::string block_device = info.state != ublk::abi::S_DEV_DEAD ? ublk::block_device_path(id) : "";
    // What the server recorded as unsafe for swap (ublk/swap_safety.h).
    const std::vector<std::string> warnings = record ? record->warnings : std::vector<std::string>{};
    if (json) {
      // Numbers as numbers, absent values as null: for scripts.
      boost::json::object o;
      o["dev_id"] = id;
      o["state"] = state;
      o["queues"] = info.nr_hw_queues;
      o["depth"] = info.queue_depth;
      o["size_bytes"] = size_bytes;
      o["target"] = record ? boost::json::value(record->target) : boost::json::value(nullptr);
      o["data_path"] = data_path;
      o["pid"] = info.ublksrv_pid > 0 ? boost::json::value(info.ublksrv_pid) : boost::json::value(nullptr);
      o["restarts"] = restarts == "-" ? boost::json::value(nullptr) : boost::json::value(std::stoul(restarts));
      o["block_device"] = block_device.empty() ? boost::json::value(nullptr) : boost::json::value(block_device);
      o["warnings"] = boost::json::array(warnings.begin(), warnings.end());
      std::cout << boost::json::serialize(o) << '\n';
      continue;
    }
    std::string warn;
    for (const std::string& w : warnings) {
      if (!warn.empty()) warn += ',';
      warn += warning_tag(w);
      verbose_lines.push_back("device " + std::to_string(id) + ": warning: " + w);
    }
    if (warn.empty()) warn = "-";
    rows.push_back({std::to_string(id), state, std::to_string(info.nr_hw_queues), std::to_string(info.queue_depth),
                    size, record ? record->target : std::string("-"), data_path,
                    info.ublksrv_pid > 0 ? std::to_string(info.ublksrv_pid) : std::string("-"), restarts,
                    // A quiesced or fail-io device keeps its disk while it waits for a server.
                    info.state != ublk::abi::S_DEV_DEAD ? ublk::block_device_path(id) : std::string("-"), warn});
  }
  // Swap that never hears of freed slots keeps them in memory (docs/cli.md,
  // "Swap needs discards").
  for (const uint32_t id : ids) {
    if (std::string warning = swap_without_discards(id); !warning.empty())
      std::cerr << "coblk list: warning: " << warning << '\n';
  }
  if (json) return kExitOk;
  if (rows.size() == 1) {
    std::cout << "no ublk devices\n";
    return kExitOk;
  }
  std::cout << format_columns(rows, false);
  if (vm.count("verbose")) {
    for (const std::string& line : verbose_lines) std::cout << line << '\n';
  }
  return kExitOk;
}

int run_features(const std::vector<std::string>& args) {
  po::options_description desc("Usage: coblk features\nPrints the ublk features of the running kernel.\nOptions");
  desc.add_options()("help,h", "show this help");
  po::variables_map vm;
  if (auto done = parse_command_line("features", args, desc, vm)) return *done;

  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return report_error("features", error);
  if (!control.features_known()) {
    std::cout << "ublk driver predates GET_FEATURES (Linux < 6.5): legacy command set, no feature list\n";
    return kExitOk;
  }
  const uint64_t f = control.features();
  char hex[32];
  std::snprintf(hex, sizeof(hex), "0x%016llx", static_cast<unsigned long long>(f));
  std::cout << "ublk features " << hex << '\n';
  for (const auto& known : ublk::known_features()) {
    if ((f & known.bit) == 0) continue;
    std::cout << "  " << std::left << std::setw(24) << known.name << known.what << '\n';
  }
  for (unsigned i = 0; i < 64; ++i) {
    const uint64_t bit = 1ULL << i;
    if ((f & bit) != 0 && ublk::feature_name(bit).empty())
      std::cout << "  bit" << std::left << std::setw(21) << i << "unknown to this coblk\n";
  }
  return kExitOk;
}

int run_stats(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk stats [-n ID] [--json | [-o COLUMNS | --output-all] [--raw] [--bytes] [--noheadings]]\n"
      "Prints the statistics zram devices publish, with zramctl's columns and output options.\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"),
                                                 "only device ID")("json", "one JSON object per device and line")(
      "output,o", po::value<std::string>()->value_name("COLUMNS"),
      "the columns to print, comma-separated (+COLUMNS: added to the default ones)")(
      "output-all", "print every column")("raw", "no alignment: cells one space apart, spaces in them escaped")(
      "bytes,b", "sizes in bytes, not in human units")("noheadings", "no heading line");
  po::variables_map vm;
  if (auto done = parse_command_line("stats", args, desc, vm)) {
    if (*done == kExitOk) std::cout << stats_columns_help();  // after the options, as zramctl lists them
    return *done;
  }
  const bool json = vm.count("json") != 0;
  if (vm.count("output") && vm.count("output-all"))
    return report_error("stats", "-o and --output-all are mutually exclusive", kExitUsage);
  if (json) {
    for (const char* table_only : {"output", "output-all", "raw", "bytes", "noheadings"}) {
      if (vm.count(table_only))
        return report_error("stats", std::string("--") + table_only + " is a table option, not valid with --json",
                            kExitUsage);
    }
  }
  // Checked before any device is read: a bad list is a usage error even on
  // a host with no device.
  Result<std::vector<StatsColumn>> chosen = std::vector<StatsColumn>{};
  if (vm.count("output")) {
    chosen = parse_stats_columns(vm["output"].as<std::string>(), {});
    if (!chosen) return report_error("stats", chosen.error().message(), kExitUsage);
  }
  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT)
    return report_error("stats", dir.error().message());

  std::vector<DeviceRecord> records;
  if (vm.count("number")) {
    uint32_t id = 0;
    std::string error;
    if (!parse_dev_id(vm["number"].as<std::string>(), id, error)) return report_error("stats", error, kExitUsage);
    auto r = load_record(id);
    if (!r) return report_error("stats", "no coblk device " + std::to_string(id));
    if (r->target != "zram")
      return report_error("stats", "device " + std::to_string(id) + " is a " + r->target +
                                       " device; only zram devices have statistics");
    records.push_back(*r);
  } else {
    records = zram_records();
  }
  const StatsFormat format{vm.count("raw") != 0, vm.count("bytes") != 0, vm.count("noheadings") == 0};
  if (records.empty()) {
    // Nothing at all for scripts (zramctl prints nothing either).
    if (!json && !format.raw && format.headings) std::cout << "no zram devices\n";
    return kExitOk;
  }
  if (json) {
    for (const auto& r : records) {
      boost::json::object o;
      o["dev_id"] = r.dev_id;
      o["name"] = ublk::block_device_path(r.dev_id);
      o["compression"] = r.compression;
      o["size_bytes"] = r.size_bytes;
      add_stats_fields(r.dev_id, o);
      std::cout << boost::json::serialize(o) << '\n';
    }
    return kExitOk;
  }
  std::vector<StatsFigures> devices;
  devices.reserve(records.size());
  for (const auto& r : records) devices.push_back(stats_figures(r));
  std::vector<StatsColumn> columns = default_stats_columns(devices);
  if (vm.count("output-all")) {
    columns.clear();
    for (const StatsColumnInfo& c : stats_columns()) columns.push_back(c.column);
  } else if (vm.count("output")) {
    // "+LIST" adds to the defaults, which depend on the devices (a tier's columns).
    chosen = parse_stats_columns(vm["output"].as<std::string>(), columns);
    columns = *chosen;
  }
  std::cout << render_stats(columns, devices, format);
  return kExitOk;
}

}  // namespace coblk::cmd
