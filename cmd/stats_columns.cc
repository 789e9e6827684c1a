#include "coblk/cmd/stats_columns.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "coblk/cmd/size_parse.h"

namespace coblk::cmd {
namespace {

using C = StatsColumn;

// Indexed by StatsColumn's value (stats_columns() relies on it; the
// unit test checks it). Help lines are zramctl's where the column is.
constexpr std::array<StatsColumnInfo, 25> kColumns{{
    {C::name, "NAME", "zram device name (the ublk block device)"},
    {C::disksize, "DISKSIZE", "limit on the uncompressed amount of data (the device size)"},
    {C::data, "DATA", "uncompressed size of stored data"},
    {C::compr, "COMPR", "compressed size of stored data"},
    {C::algorithm, "ALGORITHM", "the selected compression algorithm"},
    {C::streams, "STREAMS", "number of concurrent compress operations (compressing cores)"},
    {C::zero_pages, "ZERO-PAGES", "empty pages with no allocated memory (same-filled pages)"},
    {C::total, "TOTAL", "all memory including allocator fragmentation and metadata overhead"},
    {C::mem_limit, "MEM-LIMIT", "memory limit used to store compressed data"},
    {C::mem_used, "MEM-USED", "memory zram have been consumed to store compressed data (peak of TOTAL)"},
    {C::migrated, "MIGRATED", "number of objects migrated by compaction"},
    {C::comp_ratio, "COMP-RATIO", "compression ratio: DATA/TOTAL"},
    {C::mountpoint, "MOUNTPOINT", "where the device is mounted ([SWAP] as swap)"},
    {C::id, "ID", "coblk: the ublk device id (coblk -n ID)"},
    {C::huge_pages, "HUGE-PAGES", "coblk: incompressible pages, stored raw"},
    {C::staged_pages, "STAGED-PAGES", "coblk: pages written and not yet compressed (--compress-cores)"},
    {C::freed_pages, "FREED-PAGES", "coblk: pages freed by discards (swap needs them) and write-zeroes"},
    {C::failed_reads, "FAILED-READS", "coblk: reads that returned an error"},
    {C::failed_writes, "FAILED-WRITES", "coblk: writes that returned an error (memory limit)"},
    {C::written_back, "WRITTEN-BACK", "coblk: data written back to the backing tier, in its 4 KiB blocks"},
    {C::tier_size, "TIER-SIZE", "coblk: size of the backing tier"},
    {C::tier, "TIER", "coblk: what the backing tier does: active, failed, limit (spent)"},
    {C::bd_reads, "BD-READS", "coblk: pages read back from the backing tier"},
    {C::bd_writes, "BD-WRITES", "coblk: pages written to the backing tier"},
    {C::readmitted, "READMITTED", "coblk: written-back pages that reads brought back to RAM (--readmit-reads)"},
}};

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string valid_names() {
  std::string out;
  for (const StatsColumnInfo& c : kColumns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

std::string size_cell(std::uint64_t bytes, bool in_bytes) {
  return in_bytes ? std::to_string(bytes) : format_bytes(bytes);
}

// A cell for raw output: what would split it or be read as an escape,
// written as \xNN (libsmartcols' raw mode does the same).
std::string raw_cell(const std::string& cell) {
  std::string out;
  for (const char c : cell) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '\\') {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", u);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// Undoes the kernel's octal escapes of " \t\n\\" in /proc/swaps and
// /proc/self/mountinfo ("/mnt/a\040b" -> "/mnt/a b").
std::string unescape_octal(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      const std::string_view digits = text.substr(i + 1, 3);
      if (std::all_of(digits.begin(), digits.end(), [](char d) { return d >= '0' && d <= '7'; })) {
        out += static_cast<char>(((digits[0] - '0') << 6) | ((digits[1] - '0') << 3) | (digits[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

std::span<const StatsColumnInfo> stats_columns() noexcept { return kColumns; }

std::vector<StatsColumn> default_stats_columns(std::span<const StatsFigures> devices) {
  std::vector<StatsColumn> out{C::name,       C::disksize, C::data,      C::compr,    C::algorithm,
                               C::zero_pages, C::total,    C::mem_limit, C::mem_used, C::comp_ratio};
  if (std::any_of(devices.begin(), devices.end(), [](const StatsFigures& d) { return d.has_tier; })) {
    out.push_back(C::written_back);
    out.push_back(C::tier);
  }
  return out;
}

Result<std::vector<StatsColumn>> parse_stats_columns(std::string_view list, std::span<const StatsColumn> defaults) {
  std::vector<StatsColumn> out;
  const std::string_view whole = list;
  if (!list.empty() && list.front() == '+') {
    out.assign(defaults.begin(), defaults.end());
    list.remove_prefix(1);
  }
  while (true) {
    const size_t comma = list.find(',');
    const std::string name = upper(list.substr(0, comma));
    const auto found =
        std::find_if(kColumns.begin(), kColumns.end(), [&](const StatsColumnInfo& c) { return name == c.name; });
    if (found == kColumns.end()) {
      return Error(EINVAL, (name.empty() ? std::string("empty column name in ") + quote_for_message(whole)
                                         : "unknown column " + quote_for_message(list.substr(0, comma))) +
                               " (valid: " + valid_names() + ")");
    }
    out.push_back(found->column);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::string stats_cell(StatsColumn column, const StatsFigures& d, bool bytes) {
  switch (column) {
    case C::name:
      return d.name;
    case C::disksize:
      return size_cell(d.disksize, bytes);
    case C::algorithm:
      return d.algorithm.empty() ? "-" : d.algorithm;
    case C::streams:
      return d.streams == 0 ? "-" : std::to_string(d.streams);
    case C::mountpoint:
      return d.mountpoint.empty() ? "-" : d.mountpoint;
    case C::id:
      return std::to_string(d.dev_id);
    default:
      break;
  }
  if (!d.published) return "-";  // the rest is what the server publishes
  switch (column) {
    case C::data:
      return size_cell(d.orig_data_size, bytes);
    case C::compr:
      return size_cell(d.compr_data_size, bytes);
    case C::zero_pages:
      return std::to_string(d.same_pages);
    case C::total:
      return size_cell(d.mem_used_total, bytes);
    case C::mem_limit:
      return size_cell(d.mem_limit, bytes);
    case C::mem_used:
      return size_cell(d.mem_used_max, bytes);
    case C::migrated:
      return std::to_string(d.pages_compacted);
    case C::comp_ratio: {
      // Nothing stored (no data, or no memory held for it): no ratio to
      // speak of. Data gone while the allocator still holds a page would
      // otherwise print 0.00.
      if (d.mem_used_total == 0 || d.orig_data_size == 0) return "-";
      char ratio[32];
      std::snprintf(ratio, sizeof(ratio), "%.2f",
                    static_cast<double>(d.orig_data_size) / static_cast<double>(d.mem_used_total));
      return ratio;
    }
    case C::huge_pages:
      return std::to_string(d.huge_pages);
    case C::staged_pages:
      return std::to_string(d.staged_pages);
    case C::freed_pages:
      return std::to_string(d.notify_free);
    case C::failed_reads:
      return std::to_string(d.failed_reads);
    case C::failed_writes:
      return std::to_string(d.failed_writes);
    default:
      break;
  }
  if (!d.has_tier) return "-";  // the rest describes the backing tier
  switch (column) {
    case C::written_back:
      return size_cell(d.written_back, bytes);
    case C::tier_size:
      return size_cell(d.backing_bytes, bytes);
    case C::tier:
      return d.tier_state.empty() ? "-" : d.tier_state;
    case C::bd_reads:
      return std::to_string(d.bd_reads);
    case C::bd_writes:
      return std::to_string(d.bd_writes);
    case C::readmitted:
      return std::to_string(d.readmitted);
    default:
      return "-";
  }
}

std::string render_stats(std::span<const StatsColumn> columns, std::span<const StatsFigures> devices,
                         const StatsFormat& format) {
  std::vector<std::vector<std::string>> rows;
  if (format.headings) {
    auto& heading = rows.emplace_back();
    for (const StatsColumn c : columns) heading.emplace_back(kColumns[static_cast<unsigned>(c)].name);
  }
  for (const StatsFigures& d : devices) {
    auto& row = rows.emplace_back();
    for (const StatsColumn c : columns) row.push_back(stats_cell(c, d, format.bytes));
  }
  return format_columns(rows, format.raw);
}

std::string format_columns(const std::vector<std::vector<std::string>>& rows, bool raw) {
  std::string out;
  if (raw) {
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) {
        if (i != 0) out += ' ';
        out += raw_cell(row[i]);
      }
      out += '\n';
    }
    return out;
  }
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(width[i] + 2 - row[i].size(), ' ');
    }
    out += '\n';
  }
  return out;
}

std::string stats_columns_help() {
  size_t width = 0;
  for (const StatsColumnInfo& c : kColumns) width = std::max(width, std::string_view(c.name).size());
  std::string out = "Available columns (-o):\n";
  for (const StatsColumnInfo& c : kColumns) {
    out += "  ";
    out += c.name;
    out.append(width + 2 - std::string_view(c.name).size(), ' ');
    out += c.help;
    out += '\n';
  }
  return out;
}

std::string mountpoint_from(const std::string& dev_path, dev_t rdev, std::string_view swaps,
                            std::string_view mountinfo) {
  // /proc/swaps: a heading, then "Filename Type Size Used Priority".
  std::istringstream swap_lines{std::string(swaps)};
  for (std::string line; std::getline(swap_lines, line);) {
    const std::vector<std::string> w = words(line);
    if (!w.empty() && unescape_octal(w[0]) == dev_path) return "[SWAP]";
  }
  // /proc/self/mountinfo: "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...".
  const std::string device = std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  std::istringstream mount_lines{std::string(mountinfo)};
  for (std::string line; std::getline(mount_lines, line);) {
    const std::vector<std::string> w = words(line);
    if (w.size() >= 5 && w[2] == device) return unescape_octal(w[4]);
  }
  return "";
}

std::string find_mountpoint(const std::string& dev_path) {
  struct stat st {};
  if (::stat(dev_path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return "";
  auto read_all = [](const char* path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  return mountpoint_from(dev_path, st.st_rdev, read_all("/proc/swaps"), read_all("/proc/self/mountinfo"));
}

}  // namespace coblk::cmd
