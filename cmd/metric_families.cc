#include "coblk/cmd/metric_families.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <string>

#include "coblk/cmd/keeper.h"
#include "coblk/runtime/latency_histogram.h"

namespace coblk::cmd {

std::string seconds_text(std::uint64_t ns) {
  std::string out = std::to_string(ns / 1000000000);
  const std::uint64_t fraction = ns % 1000000000;
  if (fraction == 0) return out;
  char digits[16];
  std::snprintf(digits, sizeof(digits), "%09llu", static_cast<unsigned long long>(fraction));
  std::string f = digits;
  f.erase(f.find_last_not_of('0') + 1);
  return out + "." + f;
}

std::uint64_t process_start_unix_ns(std::uint64_t pid) {
  if (pid == 0 || pid > static_cast<std::uint64_t>(INT32_MAX)) return 0;
  const std::uint64_t ticks = process_start_time(static_cast<pid_t>(pid));
  if (ticks == 0) return 0;
  // The boot time, in whole seconds, from the "btime" line of /proc/stat.
  std::ifstream in("/proc/stat");
  std::string key;
  std::uint64_t boot_s = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> boot_s;
      break;
    }
    in.ignore(1 << 20, '\n');
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (boot_s == 0 || hz <= 0) return 0;
  const auto per_tick = static_cast<std::uint64_t>(1000000000 / hz);
  return boot_s * 1000000000 + ticks * per_tick;
}

namespace {

using Buckets = runtime::LatencyBuckets;
using Labels = std::vector<std::pair<std::string, std::string>>;

// The histogram's exported upper bounds: every power of two from 2^10 ns
// (1.02 us) to 2^35 ns (34.4 s). Each is the lower edge of a log-linear
// bucket, so the counts are exact: a bound's cumulative count is the
// samples below it.
constexpr unsigned kFirstBound = 10;
constexpr unsigned kLastBound = 35;
static_assert(kLastBound < Buckets::max_bits);

// Families in the order they are first named, so that the output keeps one
// order whatever devices there are.
class Families {
 public:
  MetricFamily& family(const std::string& name, MetricType type, const std::string& help, bool seconds = false) {
    auto [it, fresh] = index_.try_emplace(name, families_.size());
    if (fresh) {
      MetricFamily f;
      f.name = name;
      f.type = type;
      f.help = help;
      f.seconds = seconds;
      if (type == MetricType::histogram) {
        for (unsigned k = kFirstBound; k <= kLastBound; ++k) f.bounds_ns.push_back(std::uint64_t{1} << k);
      }
      families_.push_back(std::move(f));
    }
    return families_[it->second];
  }
  std::vector<MetricFamily> take() {
    return std::vector<MetricFamily>(std::make_move_iterator(families_.begin()),
                                     std::make_move_iterator(families_.end()));
  }

 private:
  std::deque<MetricFamily> families_;  // family() hands out references: no reallocation
  std::map<std::string, size_t> index_;
};

void add(MetricFamily& f, Labels labels, std::uint64_t value, std::uint64_t start_ns = 0) {
  MetricSample s;
  s.labels = std::move(labels);
  s.value = value;
  s.start_unix_ns = start_ns;
  f.samples.push_back(std::move(s));
}

std::string device_name(uint32_t id) { return "ublkb" + std::to_string(id); }

void add_io(Families& x, const std::string& device, const ublk::IoMetricsSnapshot& io) {
  const std::uint64_t start = process_start_unix_ns(io.pid);
  MetricFamily& requests = x.family("coblk_io_requests_total", MetricType::counter,
                                    "Requests completed by the device's server, failed ones included.");
  MetricFamily& bytes = x.family("coblk_io_bytes_total", MetricType::counter,
                                 "Bytes of the requests completed without error (a discard or write_zeroes counts "
                                 "its range; a flush none).");
  MetricFamily& errors = x.family("coblk_io_errors_total", MetricType::counter, "Requests completed with an error.");
  MetricFamily& latency = x.family("coblk_io_latency_seconds", MetricType::histogram,
                                   "Server-side service time of a request: from the moment its queue takes it to the "
                                   "moment the result is committed to the kernel.",
                                   true);
  MetricFamily& updated =
      x.family("coblk_metrics_last_publish_timestamp_seconds", MetricType::gauge,
               "When the queue's core last published its figures (every second while it serves).", true);
  for (unsigned q = 0; q < io.queues.size(); ++q) {
    const ublk::QueueSnapshot& s = io.queues[q];
    const Labels dq = {{"device", device}, {"queue", std::to_string(q)}};
    add(updated, dq, s.updated_ns);
    for (unsigned op = 0; op < ublk::kMetricOps; ++op) {
      const ublk::OpSnapshot& o = s.ops[op];
      Labels labels = dq;
      labels.emplace_back("op", ublk::metric_op_name(op));
      add(requests, labels, o.requests, start);
      add(bytes, labels, o.bytes, start);
      add(errors, labels, o.errors, start);
      MetricSample h;
      h.labels = std::move(labels);
      h.start_unix_ns = start;
      h.sum_ns = o.latency_ns.sum;
      unsigned b = 0;
      for (const std::uint64_t bound : latency.bounds_ns) {
        const unsigned end = Buckets::bucket_of(bound);  // first bucket at or above the bound
        std::uint64_t n = 0;
        for (; b < end; ++b) n += o.latency_ns.buckets[b];
        h.counts.push_back(n);
      }
      std::uint64_t rest = 0;
      for (; b < Buckets::count; ++b) rest += o.latency_ns.buckets[b];
      h.counts.push_back(rest);
      latency.samples.push_back(std::move(h));
    }
  }
  // The reactor counters, once per core: several queues of a device may
  // share one, and each publishes it; the latest publish wins.
  std::map<unsigned, const ublk::QueueSnapshot*> cores;
  for (const ublk::QueueSnapshot& s : io.queues) {
    if (s.publishes == 0) continue;
    auto [it, fresh] = cores.try_emplace(s.core, &s);
    if (!fresh && s.updated_ns > it->second->updated_ns) it->second = &s;
  }
  struct Counter {
    const char* name;
    MetricType type;
    const char* help;
    std::uint64_t ublk::ReactorSnapshot::*field;
    bool seconds;  // the field is in nanoseconds, exported in seconds
  };
  static const Counter counters[] = {
      {"coblk_reactor_busy_seconds_total", MetricType::counter, "Time the core's reactor spent running tasks.",
       &ublk::ReactorSnapshot::busy_ns, true},
      {"coblk_reactor_tasks_run_total", MetricType::counter, "Task resumptions on the core.",
       &ublk::ReactorSnapshot::tasks_run, false},
      {"coblk_reactor_sqes_submitted_total", MetricType::counter, "io_uring submission entries the kernel accepted.",
       &ublk::ReactorSnapshot::sqes_submitted, false},
      {"coblk_reactor_cqes_reaped_total", MetricType::counter, "io_uring completions consumed.",
       &ublk::ReactorSnapshot::cqes_reaped, false},
      {"coblk_reactor_sleeps_total", MetricType::counter, "Times the reactor blocked waiting for completions.",
       &ublk::ReactorSnapshot::sleeps, false},
      {"coblk_reactor_io_uring_enters_total", MetricType::counter,
       "io_uring_enter system calls on the core's ring (with --sqpoll only wake-ups of its poller and waits).",
       &ublk::ReactorSnapshot::enters, false},
      {"coblk_reactor_stalls_total", MetricType::counter, "Task runs longer than the stall threshold (10 ms).",
       &ublk::ReactorSnapshot::stalls, false},
      {"coblk_reactor_max_stall_seconds", MetricType::gauge, "The longest stall seen.",
       &ublk::ReactorSnapshot::max_stall_ns, true},
      {"coblk_reactor_messages_sent_total", MetricType::counter, "Cross-core messages sent.",
       &ublk::ReactorSnapshot::messages_sent, false},
      {"coblk_reactor_messages_received_total", MetricType::counter, "Cross-core messages handled.",
       &ublk::ReactorSnapshot::messages_received, false},
      {"coblk_reactor_missed_wakeups_total", MetricType::counter,
       "Sleeps ended by the safety limit with work waiting (a wake-up that never came); should stay 0.",
       &ublk::ReactorSnapshot::missed_wakeups, false},
  };
  for (const Counter& c : counters) {
    MetricFamily& f = x.family(c.name, c.type, c.help, c.seconds);
    for (const auto& [core, s] : cores)
      add(f, {{"device", device}, {"core", std::to_string(core)}}, s->reactor.*c.field, start);
  }
}

#if COBLK_HAVE_ZRAM
void add_zram(Families& x, const std::string& device, const ublk::ZramStats& z, std::uint64_t start) {
  add(x.family("coblk_zram_info", MetricType::gauge, "A zram device and its compression algorithm (always 1)."),
      {{"device", device}, {"algorithm", z.algorithm}}, 1);
  struct Field {
    const char* name;
    MetricType type;
    const char* help;
    std::uint64_t value;
  };
  const Field fields[] = {
      {"coblk_zram_disksize_bytes", MetricType::gauge, "Size of the zram device.", z.disksize},
      {"coblk_zram_orig_data_bytes", MetricType::gauge,
       "Uncompressed size of the data stored (kernel zram's orig_data_size).", z.mm.orig_data_size},
      {"coblk_zram_compr_data_bytes", MetricType::gauge, "Compressed size of the data stored.", z.mm.compr_data_size},
      {"coblk_zram_mem_used_bytes", MetricType::gauge, "Memory used for the data, overhead included (mem_used_total).",
       z.mm.mem_used_total},
      {"coblk_zram_mem_limit_bytes", MetricType::gauge, "Memory limit for the data; 0 when unlimited.", z.mm.mem_limit},
      {"coblk_zram_mem_used_max_bytes", MetricType::gauge, "Peak of mem_used.", z.mm.mem_used_max},
      {"coblk_zram_same_pages", MetricType::gauge, "Pages stored as one repeated word, without memory.",
       z.mm.same_pages},
      {"coblk_zram_huge_pages", MetricType::gauge, "Pages stored uncompressed (incompressible).", z.mm.huge_pages},
      {"coblk_zram_pages_compacted_total", MetricType::counter, "Pages freed by compaction.", z.mm.pages_compacted},
      {"coblk_zram_failed_reads_total", MetricType::counter, "Reads that failed.", z.io.failed_reads},
      {"coblk_zram_failed_writes_total", MetricType::counter, "Writes that failed.", z.io.failed_writes},
      {"coblk_zram_invalid_io_total", MetricType::counter, "Requests refused as invalid.", z.io.invalid_io},
      {"coblk_zram_notify_free_total", MetricType::counter, "Pages freed by discards.", z.io.notify_free},
  };
  for (const Field& f : fields) {
    add(x.family(f.name, f.type, f.help), {{"device", device}}, f.value, f.type == MetricType::counter ? start : 0);
  }
}
#endif

}  // namespace

std::vector<MetricFamily> metric_families(const std::vector<DeviceMetrics>& devices) {
  Families x;
  MetricFamily& info = x.family("coblk_device_info", MetricType::gauge,
                                "A device served by coblk: its target and data path (always 1).");
  MetricFamily& publishing = x.family("coblk_device_metrics_published", MetricType::gauge,
                                      "1 if the device's server publishes I/O metrics, 0 if not (--no-metrics, or an "
                                      "unreadable file).");
  for (const DeviceMetrics& d : devices) {
    const std::string device = device_name(d.record.dev_id);
    add(info,
        {{"device", device},
         {"target", d.record.target},
         {"data_path", d.record.data_path},
         {"queues", std::to_string(d.record.queues)}},
        1);
    add(publishing, {{"device", device}}, d.io ? 1 : 0);
  }
  for (const DeviceMetrics& d : devices) {
    if (d.io) add_io(x, device_name(d.record.dev_id), *d.io);
  }
#if COBLK_HAVE_ZRAM
  for (const DeviceMetrics& d : devices) {
    if (d.zram) {
      add_zram(x, device_name(d.record.dev_id), *d.zram,
               process_start_unix_ns(static_cast<std::uint64_t>(std::max(d.record.pid, 0))));
    }
  }
#endif
  add(x.family("coblk_exporter_devices", MetricType::gauge, "Devices recorded in the run directory."), {},
      devices.size());
  return x.take();
}

}  // namespace coblk::cmd
