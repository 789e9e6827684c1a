#include "coblk/cmd/device_metrics.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/metric_families.h"

namespace coblk::cmd {

// ---------------------------------------------------------------------------
// Collecting

std::vector<DeviceMetrics> collect_device_metrics() {
  std::vector<uint32_t> ids;
  const std::string dir = run_directory();
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      const size_t dot = name.find('.');
      if (dot == std::string::npos || name.substr(dot) != ".json") continue;
      uint32_t id = 0;
      std::string ignored;
      if (parse_dev_id(name.substr(0, dot), id, ignored)) ids.push_back(id);
    }
    ::closedir(d);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<DeviceMetrics> out;
  for (const uint32_t id : ids) {
    Result<DeviceRecord> record = load_record(id);
    if (!record) continue;  // removed meanwhile, or not to be trusted
    DeviceMetrics m;
    m.record = std::move(record).value();
    if (Result<ublk::IoMetricsSnapshot> io = ublk::read_io_metrics(metrics_path(id)); io) {
      m.io = std::move(io).value();
    } else if (io.error().code() != ENOENT) {
      m.io_error = io.error().message();
    }
#if COBLK_HAVE_ZRAM
    if (m.record.target == "zram") {
      if (Result<ublk::ZramStats> z = ublk::read_zram_stats(stats_path(id)); z) m.zram = std::move(z).value();
    }
#endif
    out.push_back(std::move(m));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Rendering

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {name="value",...}, or nothing for a series without labels (the format
// allows "name{} value", but the usual spelling has no braces).
std::string label_text(const MetricSample& s, const std::string& extra = "") {
  std::string out;
  for (const auto& [name, value] : s.labels)
    out += (out.empty() ? "" : ",") + name + "=\"" + escape_label(value) + "\"";
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? out : "{" + out + "}";
}

std::string device_name(uint32_t id) { return "ublkb" + std::to_string(id); }

}  // namespace

std::string render_prometheus(const std::vector<DeviceMetrics>& devices) {
  std::string out;
  for (const MetricFamily& f : metric_families(devices)) {
    if (f.samples.empty()) continue;
    const char* type = f.type == MetricType::counter ? "counter" : f.type == MetricType::gauge ? "gauge" : "histogram";
    out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + type + "\n";
    for (const MetricSample& s : f.samples) {
      if (f.type != MetricType::histogram) {
        out += f.name + label_text(s) + " " + (f.seconds ? seconds_text(s.value) : std::to_string(s.value)) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (size_t i = 0; i < s.counts.size(); ++i) {
        cumulative += s.counts[i];
        const std::string le = i < f.bounds_ns.size() ? seconds_text(f.bounds_ns[i]) : "+Inf";
        out += f.name + "_bucket" + label_text(s, "le=\"" + le + "\"") + " " + std::to_string(cumulative) + "\n";
      }
      out += f.name + "_sum" + label_text(s) + " " + seconds_text(s.sum_ns) + "\n";
      out += f.name + "_count" + label_text(s) + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

std::string render_summary(const std::vector<DeviceMetrics>& devices) {
  std::vector<std::vector<std::string>> rows{
      {"DEVICE", "QUEUE", "OP", "REQUESTS", "BYTES", "ERRORS", "P50_US", "P99_US", "P99.9_US"}};
  auto us = [](std::uint64_t ns) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(ns) / 1000);
    return std::string(text);
  };
  for (const DeviceMetrics& d : devices) {
    if (!d.io) continue;
    for (unsigned q = 0; q < d.io->queues.size(); ++q) {
      for (unsigned op = 0; op < ublk::kMetricOps; ++op) {
        const ublk::OpSnapshot& o = d.io->queues[q].ops[op];
        if (o.requests == 0) continue;
        rows.push_back({device_name(d.record.dev_id), std::to_string(q), ublk::metric_op_name(op),
                        std::to_string(o.requests), std::to_string(o.bytes), std::to_string(o.errors),
                        us(o.latency_ns.percentile(0.5)), us(o.latency_ns.percentile(0.99)),
                        us(o.latency_ns.percentile(0.999))});
      }
    }
  }
  if (rows.size() == 1) return "no I/O recorded\n";
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace coblk::cmd
