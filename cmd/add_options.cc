#include "coblk/cmd/add_options.h"

#if COBLK_HAVE_ZRAM
#include "coblk/compress/codec.h"
#include "coblk/ublk/zram_target.h"
#endif

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include <boost/program_options.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "coblk/cmd/cpu_list.h"
#include "coblk/cmd/loop_backing.h"
#include "coblk/cmd/size_parse.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/nbd_connection.h"

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// Device ids are minor numbers of the ublk char region (MINORBITS = 20).
constexpr int64_t kMaxDevId = (1 << 20) - 1;
constexpr uint32_t kPageSize = 4096;

// Parses a whole decimal number in [lo, hi]; error text names the option.
bool parse_bounded(const std::string& text, const char* option, int64_t lo, int64_t hi, int64_t& out,
                   std::string& error) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (ec == std::errc() && ptr == end && out >= lo && out <= hi) return true;
  error = std::string(option) + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
          ", not '" + text + "'";
  return false;
}

po::options_description add_description() {
  po::options_description desc(
      "Usage: coblk add -t TARGET [options]\n"
      "Creates /dev/ublkbN served by this process (daemonized unless --foreground).\n"
      "Options");
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("type,t", po::value<std::string>()->value_name("TARGET"), "backend: null | ram | loop | zram | nbd (required)")
    ("number,n", po::value<std::string>()->value_name("ID"), "device id N of /dev/ublkbN (default: the kernel picks)")
    ("queues,q", po::value<std::string>()->value_name("QUEUES"), "hardware queues, 1..online CPUs; each gets its own core (default 1)")
    ("depth,d", po::value<std::string>()->value_name("DEPTH"), "requests per queue, 1..4096 (default 128)")
    ("poll-us", po::value<std::string>()->value_name("US"), "idle polling of each queue's core before it sleeps, 0..1000000 microseconds (default 50; 0: sleep at once)")
    ("sqpoll", po::value<std::string>()->value_name("[=CPU[,CPU...]]")->implicit_value(std::string(), ""), "kernel-side submission polling: each queue's ring gets a polling thread, pinned with =CPU (one CPU for all queues, or one per queue); costs a busy CPU, pays only with a spare core")
    ("size,s", po::value<std::string>()->value_name("SIZE"), "device size, e.g. 8G (K/M/G/T/P suffixes); defaults: null 250G, ram 1G, zram 1G, loop the file's size (nbd: always the export's)")
    ("block-size,b", po::value<std::string>()->value_name("BYTES"), "logical block size 512|1024|2048|4096 (default 512; zram 4096)")
    ("file,f", po::value<std::string>()->value_name("FILE"), "loop: backing file or block device")
    ("direct-io", "loop: open FILE with O_DIRECT")
    ("iopoll", "loop with --direct-io on a block device with poll queues (e.g. NVMe), or with --passthrough: reads and writes go to a polled io_uring per core, whose completions the core polls for instead of sleeping")
    ("passthrough", "loop on an NVMe namespace's char device /dev/ngXnY: NVMe read, write and flush commands by io_uring URING_CMD, around the block layer (block size: the namespace's LBA size; no discard)")
    ("no-group-commit", "loop: one fdatasync per FLUSH or FUA write, not one shared by those that arrive together")
    ("no-registered-files", "register neither the io_uring fds nor /dev/ublkcN and loop's file as fixed files (for A/B measurement)")
    ("copy", "data path: the kernel copies into per-tag server buffers (default)")
    ("user-copy", "data path: the server copies with pread/pwrite on /dev/ublkcN")
    ("zero-copy", "data path: request pages become io_uring fixed buffers (loop and nbd)")
    ("algorithm", po::value<std::string>()->value_name("ALG"), "zram: lz4 | lz4:ACCEL | zstd | zstd:LEVEL (default lz4)")
    ("mem-limit", po::value<std::string>()->value_name("SIZE"), "zram: most memory for compressed data (default: no limit)")
    ("compress-cores", po::value<std::string>()->value_name("N"), "zram: compress asynchronously on N cores (the queues' own first, then others): a write completes once its pages are staged (default 0: compress inline)")
    ("entropy-routing", "zram with --recompress: route each page by its entropy: low to --algorithm, mid to the --recompress codec, high stored raw (and, with --backing, written back at once)")
    ("entropy-low", po::value<std::string>()->value_name("BITS"), "zram --entropy-routing: pages below this entropy (bits per byte) use --algorithm (default 1.0)")
    ("entropy-high", po::value<std::string>()->value_name("BITS"), "zram --entropy-routing: pages from this entropy up are stored raw (default 7.0)")
    ("recompress", po::value<std::string>()->value_name("ALG"), "zram: recompress raw and idle pages with this second codec, e.g. zstd:19 (default: off)")
    ("backing", po::value<std::string>()->value_name("PATH"), "zram: file or block device (e.g. /dev/zram0), or an NBD export nbd:unix:PATH | nbd:tcp:HOST:PORT (with --export), that raw and cold pages are written back to")
    ("writeback-high", po::value<std::string>()->value_name("PCT"), "zram --backing: start writing back at this % of --mem-limit (default 90)")
    ("writeback-low", po::value<std::string>()->value_name("PCT"), "zram --backing: ... until stored data is under this % (default 70)")
    ("writeback-age", po::value<std::string>()->value_name("SECONDS"), "zram --backing: also write back pages idle this long (default: off)")
    ("writeback-limit", po::value<std::string>()->value_name("SIZE"), "zram --backing: most bytes ever written back (default: no limit)")
    ("readmit-reads", po::value<std::string>()->value_name("N"), "zram --backing: bring a written-back page back to RAM at its Nth read from the tier within --writeback-age (or 64 s), below --writeback-high: 0 never, 1 or 2 (default 2)")
    ("connect", po::value<std::string>()->value_name("ADDR"), "nbd: the server, unix:PATH or tcp:HOST:PORT (required)")
    ("export", po::value<std::string>()->value_name("NAME"), "nbd, zram --backing nbd:...: the export's name (default: the server's default export)")
    ("reconnect-timeout", po::value<std::string>()->value_name("TIME"), "nbd, zram --backing nbd:...: how long requests wait for a lost connection to come back, e.g. 30s or 500ms (default 30s; 0: fail at once)")
    ("request-timeout", po::value<std::string>()->value_name("TIME"), "nbd, zram --backing nbd:...: a request without a reply this long drops its connection, which is then replaced as a lost one (default 30s; 0: no limit)")
    ("recovery", "keep the device (and, for ram and zram, its data) when the server dies; a keeper process restarts it")
    ("no-restart", "with --recovery: leave a device whose server died quiesced, for `coblk recover`")
    ("max-restarts", po::value<std::string>()->value_name("N"), "with --recovery: give up after N restarts within 60 s (default 5)")
    ("unprivileged", "create an unprivileged device (kernel feature UNPRIVILEGED_DEV)")
    ("name", po::value<std::string>()->value_name("NAME"), "a name unique among this host's coblk devices (letters, digits, '_', '-'; at most 64), kept in its record")
    ("no-metrics", "record no per-request I/O metrics (no latency timestamps; `coblk metrics` skips the device)")
    ("foreground", "serve in this process instead of daemonizing");
  // clang-format on
  return desc;
}

bool parse_target(const std::string& text, TargetKind& out) {
  if (text == "null")
    out = TargetKind::null;
  else if (text == "ram")
    out = TargetKind::ram;
  else if (text == "loop")
    out = TargetKind::loop;
  else if (text == "zram")
    out = TargetKind::zram;
  else if (text == "nbd")
    out = TargetKind::nbd;
  else
    return false;
  return true;
}

// Replaces `file` by its canonical absolute path (symbolic links resolved),
// in `file` and in the recorded arguments (option --`long_name`, or -`short_name`
// when not 0); empty string on success.
std::string make_absolute(std::string& file, std::vector<std::string>& args, const std::string& long_name = "file",
                          char short_name = 'f') {
  char* resolved = ::realpath(file.c_str(), nullptr);
  if (resolved == nullptr) return "cannot resolve backing file '" + file + "': " + std::strerror(errno);
  const std::string absolute = resolved;
  std::free(resolved);
  const std::string long_option = "--" + long_name;
  const std::string short_option = short_name == 0 ? std::string() : std::string("-") + short_name;
  const std::string long_prefix = long_option + "=";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string& a = args[i];
    if ((a == long_option || (!short_option.empty() && a == short_option)) && i + 1 < args.size()) {
      args[++i] = absolute;
    } else if (a.rfind(long_prefix, 0) == 0) {
      a = long_prefix + absolute;
    } else if (!short_option.empty() && a.size() > 2 && a.rfind(short_option, 0) == 0) {
      a = short_option + absolute;
    }
  }
  file = absolute;
  return {};
}

}  // namespace

Result<uint32_t> direct_io_alignment(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EINVAL)
      return Error(EINVAL, "backing file '" + path +
                               "' cannot be opened with O_DIRECT (--direct-io): its file system "
                               "has no direct I/O");
    return Error::from_errno(errno, "cannot open backing file '" + path + "' with O_DIRECT");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error::from_errno(errno, "cannot stat backing file '" + path + "'");
  if (S_ISBLK(st.st_mode)) {
    int logical = 0;
    if (::ioctl(fd, BLKSSZGET, &logical) != 0 || logical <= 0)
      return Error::from_errno(errno, "cannot read the logical block size of '" + path + "'");
    return static_cast<uint32_t>(logical);
  }
#ifdef STATX_DIOALIGN
  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) != 0 &&
      sx.stx_dio_offset_align != 0) {
    return sx.stx_dio_offset_align;
  }
#endif
  // The file system does not say: find the smallest read it accepts.
  const std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(kPageSize, kPageSize), &std::free);
  if (!buf) return Error(ENOMEM, "out of memory");
  for (uint32_t size = 512; size <= kPageSize; size *= 2) {
    if (::pread(fd, buf.get(), size, 0) >= 0) return size;
    if (errno != EINVAL) return Error::from_errno(errno, "cannot read backing file '" + path + "' with O_DIRECT");
  }
  return Error(EINVAL, "backing file '" + path + "' accepts no O_DIRECT read of up to 4096 bytes (--direct-io)");
}

const char* to_string(TargetKind t) {
  switch (t) {
    case TargetKind::null:
      return "null";
    case TargetKind::ram:
      return "ram";
    case TargetKind::loop:
      return "loop";
    case TargetKind::zram:
      return "zram";
    case TargetKind::nbd:
      return "nbd";
  }
  return "?";
}

const char* to_string(DataPathKind d) {
  switch (d) {
    case DataPathKind::copy:
      return "copy";
    case DataPathKind::user_copy:
      return "user_copy";
    case DataPathKind::zero_copy:
      return "zero_copy";
  }
  return "?";
}

AddLimits current_limits() {
  AddLimits l;
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  l.cpus = n > 0 ? static_cast<unsigned>(n) : 1U;
  l.allowed_cpus = process_cpus();
  return l;
}

std::vector<AddOptionInfo> add_option_list() {
  std::vector<AddOptionInfo> out;
  const po::options_description desc = add_description();
  for (const auto& option : desc.options()) {
    AddOptionInfo info;
    info.long_name = option->long_name();
    // "-t" for an option with a short name, "--type" otherwise.
    const std::string shown = option->canonical_display_name(po::command_line_style::allow_dash_for_short);
    if (shown.size() == 2 && shown[0] == '-') info.short_name = shown[1];
    info.takes_value = option->semantic()->max_tokens() > 0;
    info.value_optional = info.takes_value && option->semantic()->min_tokens() == 0;
    out.push_back(std::move(info));
  }
  return out;
}

AddParse parse_add_options(const std::vector<std::string>& args, const AddLimits& limits) {
  AddParse out;
  AddOptions& o = out.options;
  o.args = args;
  const po::options_description desc = add_description();
  po::variables_map vm;
  try {
    // An empty positional description makes stray words an error, not ignored.
    const po::positional_options_description no_positionals;
    po::store(po::command_line_parser(args).options(desc).positional(no_positionals).run(), vm);
    po::notify(vm);
  } catch (const po::too_many_positional_options_error&) {
    out.error = "unexpected argument: coblk add takes only options (see coblk add --help)";
    return out;
  } catch (const po::error& e) {
    out.error = std::string(e.what()) + " (see coblk add --help)";
    return out;
  }
  if (vm.count("help")) {
    out.help = true;
    std::ostringstream s;
    s << desc << '\n';
    out.help_text = s.str();
    return out;
  }

  auto fail = [&](std::string message) {
    out.error = std::move(message);
    return out;
  };
  auto given = [&](const char* name) { return vm.count(name) != 0; };
  auto text = [&](const char* name) { return vm[name].as<std::string>(); };

  if (!given("type")) return fail("missing -t TARGET (null, ram, loop, zram or nbd)");
  if (!parse_target(text("type"), o.target))
    return fail("unknown target '" + text("type") + "' (expected null, ram, loop, zram or nbd)");

  if (given("name")) {
    o.name = text("name");
    const bool valid = !o.name.empty() && o.name.size() <= 64 &&
                       o.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                           std::string::npos;
    if (!valid) return fail("--name must be 1 to 64 letters, digits, '_' or '-', not " + quote_for_message(o.name));
  }

  int64_t v = 0;
  if (given("number")) {
    if (!parse_bounded(text("number"), "-n", -1, kMaxDevId, v, out.error)) return out;
    o.dev_id = v;
  }
  if (given("queues")) {
    if (!parse_bounded(text("queues"), "-q", 1, limits.cpus, v, out.error)) return out;
    o.queues = static_cast<unsigned>(v);
  }
  if (given("depth")) {
    if (!parse_bounded(text("depth"), "-d", 1, ublk::abi::MAX_QUEUE_DEPTH, v, out.error)) return out;
    o.depth = static_cast<unsigned>(v);
  }
  if (given("poll-us")) {
    if (!parse_bounded(text("poll-us"), "--poll-us", 0, 1000000, v, out.error)) return out;
    o.poll_us = static_cast<unsigned>(v);
  }

  if (given("sqpoll")) {
    o.sqpoll = true;
    Result<std::vector<unsigned>> cpus = parse_sqpoll_cpus(text("sqpoll"), o.queues, limits.allowed_cpus);
    if (!cpus) return fail(cpus.error().message());
    o.sqpoll_cpus = std::move(*cpus);
  }

  o.block_size = o.target == TargetKind::zram ? kPageSize : 512;
  if (given("block-size")) {
    if (!parse_bounded(text("block-size"), "--block-size", 512, 4096, v, out.error)) return out;
    if ((v & (v - 1)) != 0)
      return fail("--block-size must be 512, 1024, 2048 or 4096, not '" + text("block-size") + "'");
    o.block_size = static_cast<uint32_t>(v);
    o.block_size_given = true;
  }

  const int paths =
      static_cast<int>(given("copy")) + static_cast<int>(given("user-copy")) + static_cast<int>(given("zero-copy"));
  if (paths > 1) return fail("--copy, --user-copy and --zero-copy are mutually exclusive");
  if (given("user-copy")) o.data_path = DataPathKind::user_copy;
  if (given("zero-copy")) o.data_path = DataPathKind::zero_copy;
  if (o.data_path == DataPathKind::zero_copy && o.target != TargetKind::loop && o.target != TargetKind::nbd)
    return fail("--zero-copy needs a target that passes buffers on to the kernel: only -t loop and -t nbd");

  // Target-specific options must not be silently ignored.
  if (o.target != TargetKind::loop) {
    if (given("file")) return fail("-f is only valid with -t loop");
    if (given("direct-io")) return fail("--direct-io is only valid with -t loop");
    if (given("no-group-commit")) return fail("--no-group-commit is only valid with -t loop");
    if (given("iopoll")) return fail("--iopoll is only valid with -t loop");
    if (given("passthrough")) return fail("--passthrough is only valid with -t loop");
  }
  // A zram device's tier may be an NBD export: --export and
  // --reconnect-timeout then mean what they mean for -t nbd.
  const bool nbd_tier = o.target == TargetKind::zram && given("backing") && text("backing").rfind("nbd:", 0) == 0;
  if (o.target != TargetKind::nbd) {
    if (given("connect")) return fail("--connect is only valid with -t nbd");
    if (given("export") && !nbd_tier) return fail("--export is only valid with -t nbd or --backing nbd:...");
    if (given("reconnect-timeout") && !nbd_tier)
      return fail("--reconnect-timeout is only valid with -t nbd or --backing nbd:...");
    if (given("request-timeout") && !nbd_tier)
      return fail("--request-timeout is only valid with -t nbd or --backing nbd:...");
  } else {
    if (!given("connect")) return fail("-t nbd needs --connect unix:PATH or tcp:HOST:PORT");
    o.connect = text("connect");
    if (o.connect.rfind("unix:", 0) != 0 && o.connect.rfind("tcp:", 0) != 0)
      return fail("--connect: expected unix:PATH or tcp:HOST:PORT, not " + quote_for_message(o.connect));
    if (given("size")) return fail("--size is not valid with -t nbd: the device has the export's size");
  }
  if (o.target == TargetKind::nbd || nbd_tier) {
    if (given("export")) o.export_name = text("export");
    if (o.export_name.size() > 4096) return fail("--export: an NBD export name is at most 4096 bytes");
    for (const char* option : {"reconnect-timeout", "request-timeout"}) {
      if (!given(option)) continue;
      const std::string& t = text(option);
      std::string digits = t;
      uint64_t scale = 1000;
      if (t.size() > 2 && t.compare(t.size() - 2, 2, "ms") == 0) {
        digits = t.substr(0, t.size() - 2);
        scale = 1;
      } else if (t.size() > 1 && t.back() == 's') {
        digits = t.substr(0, t.size() - 1);
      }
      uint64_t n = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n * scale > 86400000ULL)
        return fail(std::string("--") + option + ": expected a time such as 30s, 500ms or 0 (at most a day), not " +
                    quote_for_message(t));
      (std::string(option) == "reconnect-timeout" ? o.reconnect_timeout_ms : o.request_timeout_ms) =
          static_cast<uint32_t>(n * scale);
    }
  }
  if (o.target != TargetKind::zram) {
    if (given("algorithm")) return fail("--algorithm is only valid with -t zram");
    if (given("mem-limit")) return fail("--mem-limit is only valid with -t zram");
    if (given("backing")) return fail("--backing is only valid with -t zram (a loop device's file is -f)");
    if (given("recompress")) return fail("--recompress is only valid with -t zram");
    if (given("compress-cores")) return fail("--compress-cores is only valid with -t zram");
    if (given("entropy-routing")) return fail("--entropy-routing is only valid with -t zram");
  }
  for (const char* option : {"entropy-low", "entropy-high"}) {
    if (given(option) && !given("entropy-routing"))
      return fail(std::string("--") + option + " is only valid with --entropy-routing");
  }
  if (given("entropy-routing")) {
    if (!given("recompress"))
      return fail("--entropy-routing needs --recompress ALG: the strong codec for mid-entropy pages");
    o.entropy_routing = true;
    for (const char* option : {"entropy-low", "entropy-high"}) {
      if (!given(option)) continue;
      const std::string& t = text(option);
      double bits = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), bits);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size() || !(bits >= 0 && bits <= 8))
        return fail(std::string("--") + option + " must be a number of bits per byte from 0 to 8, not " +
                    quote_for_message(t));
      (std::string(option) == "entropy-low" ? o.entropy_low : o.entropy_high) = bits;
    }
    if (!(o.entropy_low < o.entropy_high)) {
      char text_low[32], text_high[32];
      std::snprintf(text_low, sizeof text_low, "%g", o.entropy_low);
      std::snprintf(text_high, sizeof text_high, "%g", o.entropy_high);
      return fail(std::string("--entropy-low (") + text_low + ") must be below --entropy-high (" + text_high + ")");
    }
  }
  if (given("compress-cores")) {
    int64_t n = 0;
    if (!parse_bounded(text("compress-cores"), "--compress-cores", 0, 256, n, out.error)) return out;
#if COBLK_HAVE_ZRAM
    if (n > ublk::max_recoverable_compress_workers && given("recovery"))
      return fail("--compress-cores: at most " + std::to_string(ublk::max_recoverable_compress_workers) +
                  " with --recovery (its keeper holds one memory per core), got " + std::to_string(n));
#endif
    o.compress_cores = static_cast<unsigned>(n);
  }
  if (given("recompress")) {
#if COBLK_HAVE_ZRAM
    const auto spec = compress::parse_codec_spec(text("recompress"));
    if (!spec) return fail("--recompress: " + spec.error().message());
    o.recompress = spec->name();
#else
    return fail("this coblk was built without the zram target");
#endif
  }
  for (const char* option : {"writeback-high", "writeback-low", "writeback-age", "writeback-limit", "readmit-reads"}) {
    if (given(option) && !given("backing")) return fail(std::string("--") + option + " is only valid with --backing");
  }
  if (given("backing")) {
    o.backing = text("backing");
    if (o.backing.empty()) return fail("--backing needs a path");
    if (nbd_tier) {
      // nbd:unix:PATH or nbd:tcp:HOST:PORT, as -t nbd's --connect. (A file
      // whose name starts with "nbd:" is given as ./nbd:...)
      const std::string where = o.backing.substr(4);
      if (where.rfind("unix:", 0) != 0 && where.rfind("tcp:", 0) != 0)
        return fail("--backing: expected nbd:unix:PATH or nbd:tcp:HOST:PORT, not " + quote_for_message(o.backing));
    } else if (std::string e = make_absolute(o.backing, o.args, "backing", 0); !e.empty()) {
      return fail(e);
    }
    int64_t pct = 0;
    if (given("writeback-high")) {
      if (!parse_bounded(text("writeback-high"), "--writeback-high", 1, 100, pct, out.error)) return out;
      o.writeback_high = static_cast<unsigned>(pct);
    }
    if (given("writeback-low")) {
      if (!parse_bounded(text("writeback-low"), "--writeback-low", 0, 99, pct, out.error)) return out;
      o.writeback_low = static_cast<unsigned>(pct);
    }
    if (o.writeback_low >= o.writeback_high)
      return fail("--writeback-low (" + std::to_string(o.writeback_low) + ") must be below --writeback-high (" +
                  std::to_string(o.writeback_high) + ")");
    if (given("writeback-age")) {
      if (!parse_bounded(text("writeback-age"), "--writeback-age", 1, 100L * 365 * 86400, pct, out.error)) return out;
      o.writeback_age_s = static_cast<uint64_t>(pct);
    }
    if (given("writeback-limit")) {
      const ParsedSize p = parse_size(text("writeback-limit"));
      if (!p) return fail("--writeback-limit: " + p.error);
      if (p.bytes < kPageSize)
        return fail("--writeback-limit must be at least 4K, not '" + text("writeback-limit") + "'");
      o.writeback_limit = p.bytes;
    }
    if (given("readmit-reads")) {
      if (!parse_bounded(text("readmit-reads"), "--readmit-reads", 0, 2, pct, out.error)) return out;
      o.readmit_reads = static_cast<unsigned>(pct);
    }
  }

  if (given("algorithm")) {
#if COBLK_HAVE_ZRAM
    // One parser for codec names, the compress layer's, so the CLI accepts
    // exactly what the codecs do (ZSTD's negative levels included).
    const auto spec = compress::parse_codec_spec(text("algorithm"));
    if (!spec) return fail("--algorithm: " + spec.error().message());
    o.algorithm = spec->name();
#else
    return fail("this coblk was built without the zram target");
#endif
  }
  if (given("mem-limit")) {
    const ParsedSize p = parse_size(text("mem-limit"));
    if (!p) return fail("--mem-limit: " + p.error);
    o.mem_limit = p.bytes;
  }

  o.direct_io = given("direct-io");
  o.group_commit = !given("no-group-commit");
  o.iopoll = given("iopoll");
  o.passthrough = given("passthrough");
  if (o.passthrough && o.direct_io) return fail("--passthrough goes around the block layer: not with --direct-io");
  if (o.iopoll && !o.direct_io && !o.passthrough)
    return fail(
        "--iopoll needs --direct-io (or --passthrough): the kernel polls only for O_DIRECT I/O and NVMe "
        "commands");
  if (o.iopoll && o.data_path == DataPathKind::zero_copy)
    return fail("--iopoll and --zero-copy exclude each other: the request buffers live in the other ring");
  o.registered_files = !given("no-registered-files");
  o.foreground = given("foreground");
  o.recovery = given("recovery");
  if (!o.recovery && (given("no-restart") || given("max-restarts")))
    return fail("--no-restart and --max-restarts only apply with --recovery");
  o.restart = !given("no-restart");
  if (given("max-restarts")) {
    const std::string& n = text("max-restarts");
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || n[0] == '-' || errno != 0 || value < 1 || value > 1000)
      return fail("--max-restarts: expected a number 1..1000, got " + quote_for_message(n));
    o.max_restarts = static_cast<unsigned>(value);
  }
  o.unprivileged = given("unprivileged");
  o.metrics = !given("no-metrics");
  // What the kernel refuses (or silently drops) for an unprivileged device.
  if (o.unprivileged && o.data_path != DataPathKind::copy)
    return fail(
        "--unprivileged works only with the --copy data path: the kernel refuses user copy and zero copy for "
        "unprivileged devices");
  if (o.unprivileged && o.recovery)
    return fail(
        "--unprivileged and --recovery exclude each other: the kernel offers no user recovery for "
        "unprivileged devices");

  bool size_given = given("size");
  if (size_given) {
    const ParsedSize p = parse_size(text("size"));
    if (!p) return fail("--size: " + p.error);
    o.size_bytes = p.bytes;
    if (o.size_bytes == 0) return fail("--size must not be 0");
  } else {
    switch (o.target) {
      case TargetKind::null:
        o.size_bytes = 250ULL << 30;
        break;
      case TargetKind::ram:
      case TargetKind::zram:
        o.size_bytes = 1ULL << 30;
        break;
      case TargetKind::loop:
      case TargetKind::nbd:
        break;
    }
  }

  if (o.target == TargetKind::loop) {
    if (!given("file")) return fail("-t loop needs -f FILE");
    o.file = text("file");
    uint64_t file_bytes = 0;
    if (std::string e = loop_backing(o, file_bytes); !e.empty()) return fail(e);
    struct stat st {};
    if (o.iopoll && !o.passthrough && (::stat(o.file.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)))
      return fail("--iopoll needs a block device, and '" + o.file + "' is not one (polled I/O is the block layer's)");
    // The server runs in "/" (it must not keep the caller's directory busy)
    // and `coblk recover` may run anywhere: a relative path would name a
    // different file there. Resolve it now, and record the resolved form.
    if (std::string e = make_absolute(o.file, o.args); !e.empty()) return fail(e);
    if (!size_given) {
      // A file's tail shorter than a block cannot be addressed; drop it.
      o.size_bytes = file_bytes - file_bytes % o.block_size;
      if (o.size_bytes == 0)
        return fail("backing file '" + o.file + "' is smaller than one " + std::to_string(o.block_size) +
                    "-byte block");
    } else if (o.size_bytes > file_bytes) {
      return fail("--size " + text("size") + " is larger than backing file '" + o.file + "' (" +
                  format_size(file_bytes) + ")");
    }
  }

  if (o.target == TargetKind::loop && o.direct_io) {
    // With O_DIRECT every request goes to the backing file as it is; one
    // smaller than the file's alignment would fail with EINVAL, block by block.
    const Result<uint32_t> alignment =
        limits.direct_io_alignment ? limits.direct_io_alignment(o.file) : direct_io_alignment(o.file);
    if (!alignment) return fail(alignment.error().message());
    if (o.block_size < *alignment)
      return fail("--block-size " + std::to_string(o.block_size) + " is smaller than the " +
                  std::to_string(*alignment) + "-byte blocks O_DIRECT needs on '" + o.file +
                  "' (--direct-io): use --block-size " + std::to_string(*alignment) + " or more");
  }

  // An NBD export's size is known only once resolve_nbd_export asked the server.
  if (o.target == TargetKind::nbd) return out;
  if (o.size_bytes % o.block_size != 0)
    return fail("size " + std::to_string(o.size_bytes) + " is not a multiple of the " + std::to_string(o.block_size) +
                "-byte block size");
  if (o.target == TargetKind::zram && o.size_bytes % kPageSize != 0)
    return fail("zram size must be a multiple of 4096 (its page size)");
  return out;
}

Result<void> resolve_nbd_export(AddOptions& o, std::chrono::milliseconds timeout) {
  if (o.target != TargetKind::nbd) return {};
  Result<nbd::Endpoint> endpoint = nbd::parse_endpoint(o.connect);
  if (!endpoint) return std::move(endpoint).error();
  Result<nbd::ExportInfo> info = nbd::probe_export(*endpoint, o.export_name, timeout);
  if (!info) return std::move(info).error();
  const std::string name = o.export_name.empty() ? "the default export" : "export " + quote_for_message(o.export_name);
  if (info->min_block > 4096)
    return Error(EINVAL, "the NBD server needs requests of at least " + std::to_string(info->min_block) +
                             " bytes for " + name + "; a block device's blocks are at most 4096");
  if (!o.block_size_given) o.block_size = std::max<uint32_t>(512, info->min_block);
  if (o.block_size < info->min_block)
    return Error(EINVAL, "--block-size " + std::to_string(o.block_size) + " is smaller than the " +
                             std::to_string(info->min_block) + "-byte minimum block size of " + name);
  if (info->size % o.block_size != 0)
    return Error(EINVAL, "the size of " + name + ", " + std::to_string(info->size) +
                             " bytes, is not a multiple of the " + std::to_string(o.block_size) + "-byte block size");
  o.nbd_info = *info;
  o.size_bytes = info->size;
  return {};
}

}  // namespace coblk::cmd
