#include "coblk/cmd/top_frame.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "coblk/cmd/size_parse.h"
#include "coblk/runtime/latency_histogram.h"

namespace coblk::cmd {

namespace {

// Each queue slot's counters must only grow between two publishes of the
// same server; a new server starts from zero.
bool went_back(const ublk::QueueSnapshot& before, const ublk::QueueSnapshot& now) {
  if (now.publishes < before.publishes || now.reactor.busy_ns < before.reactor.busy_ns) return true;
  for (unsigned op = 0; op < ublk::kMetricOps; ++op) {
    const ublk::OpSnapshot& b = before.ops[op];
    const ublk::OpSnapshot& n = now.ops[op];
    if (n.requests < b.requests || n.bytes < b.bytes) return true;
    for (unsigned i = 0; i < runtime::LatencyBuckets::count; ++i) {
      if (n.latency_ns.buckets[i] < b.latency_ns.buckets[i]) return true;
    }
  }
  return false;
}

// The histogram of the samples recorded between the two snapshots, every
// operation merged (went_back said no bucket shrank).
runtime::HistogramCounts<> interval_histogram(const ublk::QueueSnapshot& before, const ublk::QueueSnapshot& now) {
  runtime::HistogramCounts<> out;
  for (unsigned op = 0; op < ublk::kMetricOps; ++op) {
    const auto& b = before.ops[op].latency_ns.buckets;
    const auto& n = now.ops[op].latency_ns.buckets;
    for (unsigned i = 0; i < runtime::LatencyBuckets::count; ++i) out.buckets[i] += n[i] - b[i];
  }
  return out;
}

std::string printf_text(const char* format, double value) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// A column of the table: its header, how it is aligned, and how readily it
// goes when the terminal is narrow (the highest drop rank goes first; 0
// never goes).
struct Column {
  const char* header;
  bool right;
  unsigned drop_rank;
};

constexpr Column kColumns[] = {
    {"DEVICE", false, 0}, {"CORE", true, 5}, {"R_IOPS", true, 0}, {"W_IOPS", true, 0},  {"R_MB/s", true, 2},
    {"W_MB/s", true, 2},  {"P99", true, 1},  {"BUSY%", true, 1},  {"TARGET", false, 4},
};
constexpr size_t kColumnCount = sizeof(kColumns) / sizeof(kColumns[0]);

using Row = std::vector<std::string>;  // kColumnCount cells, or one free line (a zram line, a note)

// The cells of a rates row after DEVICE/QUEUE/CORE.
void add_rates(Row& row, const std::optional<QueueRates>& r) {
  if (!r) {
    for (int i = 0; i < 6; ++i) row.emplace_back("-");
    return;
  }
  row.push_back(format_rate(r->read_iops));
  row.push_back(format_rate(r->write_iops));
  row.push_back(printf_text("%.1f", r->read_mbps));
  row.push_back(printf_text("%.1f", r->write_mbps));
  row.push_back(r->p99_ns ? format_latency(*r->p99_ns) : "-");
  row.push_back(r->busy_pct ? printf_text("%.0f", *r->busy_pct) : "-");
}

const DeviceMetrics* find_device(const TopSnapshot* snapshot, std::uint32_t id) {
  if (snapshot == nullptr) return nullptr;
  for (const DeviceMetrics& d : snapshot->devices) {
    if (d.record.dev_id == id) return &d;
  }
  return nullptr;
}

#if COBLK_HAVE_ZRAM
std::string zram_line(const ublk::ZramStats& z) {
  std::string line = "  zram " + z.algorithm + ": ratio ";
  // Nothing stored: no ratio to speak of (as `coblk stats`).
  line +=
      z.mm.orig_data_size == 0 || z.mm.mem_used_total == 0
          ? std::string("-")
          : printf_text("%.2f", static_cast<double>(z.mm.orig_data_size) / static_cast<double>(z.mm.mem_used_total));
  line += "  data " + format_bytes(z.mm.orig_data_size) + "  mem " + format_bytes(z.mm.mem_used_total) + " / " +
          (z.mm.mem_limit == 0 ? std::string("no limit") : format_bytes(z.mm.mem_limit)) + "  same " +
          std::to_string(z.mm.same_pages) + " pages";
  if (z.tier_state != ublk::TierState::none) {
    line += "  tier " + std::string(ublk::tier_state_name(z.tier_state)) + ": " +
            std::to_string(z.tier.written_back_pages) + " pages written back (" + format_bytes(z.bd.bd_count * 4096) +
            " of " + format_bytes(z.tier.backing_blocks * 4096) + ")";
  }
  return line;
}
#endif

}  // namespace

std::optional<QueueRates> rates_between(const ublk::QueueSnapshot& before, const ublk::QueueSnapshot& now,
                                        double seconds) {
  if (!(seconds > 0) || now.publishes == 0 || went_back(before, now)) return std::nullopt;
  const auto per_second = [&](std::uint64_t b, std::uint64_t n) { return static_cast<double>(n - b) / seconds; };
  const auto& read = now.ops[static_cast<unsigned>(ublk::MetricOp::read)];
  const auto& read0 = before.ops[static_cast<unsigned>(ublk::MetricOp::read)];
  const auto& write = now.ops[static_cast<unsigned>(ublk::MetricOp::write)];
  const auto& write0 = before.ops[static_cast<unsigned>(ublk::MetricOp::write)];
  QueueRates r;
  r.read_iops = per_second(read0.requests, read.requests);
  r.write_iops = per_second(write0.requests, write.requests);
  r.read_mbps = per_second(read0.bytes, read.bytes) / 1e6;
  r.write_mbps = per_second(write0.bytes, write.bytes) / 1e6;
  const runtime::HistogramCounts<> interval = interval_histogram(before, now);
  r.requests = interval.count();
  if (r.requests != 0) r.p99_ns = interval.percentile(0.99);
  // A queue that had not published before has no reactor time to compare.
  if (before.publishes != 0) {
    r.busy_pct = std::min(100.0, static_cast<double>(now.reactor.busy_ns - before.reactor.busy_ns) / (seconds * 1e7));
  }
  return r;
}

std::string format_rate(double per_second) {
  if (per_second < 0.5) return "0";
  if (per_second < 10000) return printf_text("%.0f", per_second);
  if (per_second < 999500) return printf_text("%.1fk", per_second / 1e3);
  return printf_text("%.2fM", per_second / 1e6);
}

std::string format_latency(std::uint64_t ns) {
  const auto v = static_cast<double>(ns);
  if (ns < 1000) return std::to_string(ns) + "ns";
  if (ns < 1000000) return printf_text(v < 1e4 ? "%.2fus" : v < 1e5 ? "%.1fus" : "%.0fus", v / 1e3);
  if (ns < 1000000000) return printf_text(v < 1e7 ? "%.2fms" : v < 1e8 ? "%.1fms" : "%.0fms", v / 1e6);
  return printf_text("%.2fs", v / 1e9);
}

std::vector<std::string> render_top_frame(const TopSnapshot* before, const TopSnapshot& now, const TopLayout& layout,
                                          const std::string& title) {
  std::vector<std::string> lines{title};
  if (now.devices.empty()) {
    lines.emplace_back("no coblk devices");
  } else {
    const double seconds = before != nullptr && now.taken_ns > before->taken_ns
                               ? static_cast<double>(now.taken_ns - before->taken_ns) / 1e9
                               : 0;
    std::vector<Row> rows;
    Row header;
    for (const Column& c : kColumns) header.emplace_back(c.header);
    rows.push_back(header);
    for (const DeviceMetrics& d : now.devices) {
      const std::string name = "ublkb" + std::to_string(d.record.dev_id);
      const DeviceMetrics* old = find_device(before, d.record.dev_id);
      if (!d.io) {
        Row row{name, "-"};
        for (int i = 0; i < 6; ++i) row.emplace_back("-");
        row.push_back(d.record.target);
        rows.push_back(row);
        rows.push_back({"  no metrics published (--no-metrics, or the server is gone)" +
                        (d.io_error.empty() ? std::string() : ": " + d.io_error)});
      } else {
        // Each queue's rates; the device's are their sums, and its busy %
        // the mean over the distinct cores its queues run on.
        std::vector<std::optional<QueueRates>> queues;
        for (size_t q = 0; q < d.io->queues.size(); ++q) {
          const bool comparable = old != nullptr && old->io && old->io->pid == d.io->pid && q < old->io->queues.size();
          queues.push_back(comparable ? rates_between(old->io->queues[q], d.io->queues[q], seconds) : std::nullopt);
        }
        std::optional<QueueRates> total;
        if (!queues.empty() && std::all_of(queues.begin(), queues.end(), [](const auto& r) { return r.has_value(); })) {
          total = QueueRates{};
          runtime::HistogramCounts<> merged;
          std::map<unsigned, double> busy_by_core;
          for (size_t q = 0; q < queues.size(); ++q) {
            const QueueRates& r = *queues[q];
            total->read_iops += r.read_iops;
            total->write_iops += r.write_iops;
            total->read_mbps += r.read_mbps;
            total->write_mbps += r.write_mbps;
            total->requests += r.requests;
            merged.add(interval_histogram(old->io->queues[q], d.io->queues[q]));
            if (r.busy_pct) busy_by_core[d.io->queues[q].core] = *r.busy_pct;
          }
          if (total->requests != 0) total->p99_ns = merged.percentile(0.99);
          if (!busy_by_core.empty()) {
            double sum = 0;
            for (const auto& [core, pct] : busy_by_core) sum += pct;
            total->busy_pct = sum / static_cast<double>(busy_by_core.size());
          }
        }
        Row row{name, ""};
        add_rates(row, total);
        row.push_back(d.record.target);
        rows.push_back(row);
        for (size_t q = 0; q < queues.size(); ++q) {
          Row qrow{"  q" + std::to_string(q), std::to_string(d.io->queues[q].core)};
          add_rates(qrow, queues[q]);
          qrow.emplace_back("");
          rows.push_back(qrow);
        }
      }
#if COBLK_HAVE_ZRAM
      if (d.zram) rows.push_back({zram_line(*d.zram)});
#endif
    }

    // Column fitting: widths from every table row; drop the columns of the
    // highest rank while the table is wider than the terminal.
    std::vector<size_t> width(kColumnCount, 0);
    for (const Row& r : rows) {
      if (r.size() != kColumnCount) continue;
      for (size_t i = 0; i < kColumnCount; ++i) width[i] = std::max(width[i], r[i].size());
    }
    std::vector<bool> shown(kColumnCount, true);
    const auto table_width = [&] {
      size_t w = 0;
      bool first = true;
      for (size_t i = 0; i < kColumnCount; ++i) {
        if (!shown[i]) continue;
        w += width[i] + (first ? 0 : 2);
        first = false;
      }
      return w;
    };
    while (layout.width != 0 && table_width() > layout.width) {
      size_t victim = kColumnCount;
      for (size_t i = 0; i < kColumnCount; ++i) {
        if (shown[i] && kColumns[i].drop_rank != 0 &&
            (victim == kColumnCount || kColumns[i].drop_rank > kColumns[victim].drop_rank)) {
          victim = i;
        }
      }
      if (victim == kColumnCount) break;  // only the essentials left: the lines are cut below
      shown[victim] = false;
    }
    for (const Row& r : rows) {
      if (r.size() != kColumnCount) {
        lines.push_back(r.empty() ? std::string() : r[0]);
        continue;
      }
      std::string line;
      bool first = true;
      for (size_t i = 0; i < kColumnCount; ++i) {
        if (!shown[i]) continue;
        if (!first) line += "  ";
        first = false;
        const std::string pad(width[i] - r[i].size(), ' ');
        line += kColumns[i].right ? pad + r[i] : r[i] + pad;
      }
      line.erase(line.find_last_not_of(' ') + 1);
      lines.push_back(line);
    }
  }
  if (layout.width != 0) {
    for (std::string& line : lines) {
      if (line.size() > layout.width) line.resize(layout.width);
    }
  }
  if (layout.height != 0 && lines.size() > layout.height) {
    const size_t kept = layout.height > 1 ? layout.height - 1 : 0;
    const size_t cut = lines.size() - kept;
    lines.resize(kept);
    std::string note = "... " + std::to_string(cut) + " more lines (a taller terminal shows them)";
    if (layout.width != 0 && note.size() > layout.width) note.resize(layout.width);
    lines.push_back(note);
  }
  return lines;
}

}  // namespace coblk::cmd
