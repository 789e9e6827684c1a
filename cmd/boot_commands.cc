// coblk up, coblk down: the devices of the config file (cmd/boot_config.h), with their swap or file system.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "coblk/cmd/boot_config.h"
#include "coblk/cmd/commands.h"
#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/device_content.h"
#include "coblk/cmd/device_in_use.h"
#include "coblk/cmd/device_ops.h"
#include "coblk/cmd/serve_device.h"
#include "coblk/ublk/control.h"
#include "coblk/ublk/features.h"
#include "coblk/ublk/io_metrics_file.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawnp passes it on

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// Runs `argv` (found on PATH), its output captured; error: the command and
// the last line it printed.
Result<void> run_program(const std::vector<std::string>& argv) {
  std::string shown;
  for (const std::string& a : argv) shown += (shown.empty() ? "" : " ") + a;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv)
    args.push_back(
        const_cast<char*>(a.c_str()));  // NOLINT(cppcoreguidelines-pro-type-const-cast): posix_spawn's signature
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    return Error(spawned, "cannot run " + argv[0] + ": " + std::strerror(spawned));
  }
  std::string output;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  const size_t nl = output.rfind('\n');
  const std::string last = nl == std::string::npos ? output : output.substr(nl + 1);
  const std::string how =
      WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : "killed by a signal";
  return Error(EIO, shown + " failed (" + how + ")" + (last.empty() ? "" : ": " + last));
}

// True when /proc/swaps lists `device`.
bool swap_active(const std::string& device) {
  std::ifstream in("/proc/swaps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, device.size() + 1, device + " ") == 0 || line.compare(0, device.size() + 1, device + "\t") == 0)
      return true;
  }
  return false;
}

// Undoes /proc/mounts' octal escapes (a space is "\040").
std::string unescape_mount_field(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s.find_first_not_of("01234567", i + 1) >= i + 4) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Where `device` is mounted, from /proc/self/mounts.
std::vector<std::string> mount_points(const std::string& device) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source;
    std::string target;
    if (fields >> source >> target && unescape_mount_field(source) == device)
      out.push_back(unescape_mount_field(target));
  }
  return out;
}

// mkdir -p `path` (mode 0755).
Result<void> make_directories(const std::string& path) {
  for (size_t at = 1; at != std::string::npos;) {
    at = path.find('/', at + 1);
    const std::string part = path.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      return Error::from_errno(errno, "cannot create mount point " + part);
  }
  return {};
}

// Puts `device` to the use `d` configures, unless it already is.
// Returns what it did, for the user.
Result<std::string> activate(const BootDevice& d, const std::string& device) {
  if (d.is_swap()) {
    if (swap_active(device)) return std::string("swap, already on");
    // mkswap destroys whatever the device holds: only a blank device, or
    // one that is a swap area already (whose contents mean nothing once it
    // is off), is made swap.
    Result<DeviceContent> content = probe_device_content(device);
    if (!content) return std::move(content).error();
    if (!content->blank() && content->signature != "swap")
      return Error(EEXIST, device + " holds " +
                               (content->signature.empty() ? std::string("data") : content->signature) +
                               ", not swap: it is not made swap (wipefs -a it to give it up)");
    if (Result<void> made = run_program({"mkswap", device}); !made) return std::move(made).error();
    if (::swapon(device.c_str(), d.swap_flags) != 0) return Error::from_errno(errno, "swapon " + device);
    std::string what =
        "swap, priority " + (d.swap_priority < 0 ? std::string("default") : std::to_string(d.swap_priority));
    if ((d.swap_flags & SWAP_FLAG_DISCARD) != 0) what += ", discard";
    return what;
  }
  for (const std::string& at : mount_points(device)) {
    if (at == d.mount_point) return "mounted at " + at + ", already";
  }
  // mkfs only where nothing would be lost; anything else is mounted as it
  // is, and a mount of what is not a d.fs_type file system fails.
  Result<DeviceContent> content = probe_device_content(device);
  if (!content) return std::move(content).error();
  const bool blank = content->blank();
  if (blank) {
    if (Result<void> made = run_program({"mkfs." + d.fs_type, device}); !made) return std::move(made).error();
  }
  if (Result<void> dir = make_directories(d.mount_point); !dir) return std::move(dir).error();
  std::vector<std::string> mount{"mount", "-t", d.fs_type};
  if (!d.mount_options.empty()) mount.insert(mount.end(), {"-o", d.mount_options});
  mount.insert(mount.end(), {device, d.mount_point});
  if (Result<void> mounted = run_program(mount); !mounted) return std::move(mounted).error();
  return std::string(blank ? "" : "existing ") + d.fs_type + " mounted at " + d.mount_point;
}

// Takes `device` out of use: swapoff, or unmount wherever it is mounted.
Result<void> deactivate(const std::string& device) {
  if (swap_active(device) && ::swapoff(device.c_str()) != 0) return Error::from_errno(errno, "swapoff " + device);
  for (const std::string& at : mount_points(device)) {
    if (::umount2(at.c_str(), 0) != 0) return Error::from_errno(errno, "cannot unmount " + at);
  }
  return {};
}

// Serializes `coblk up` and `coblk down`, so that two of them at once never
// make two devices of one name. Held until the process ends.
Result<void> lock_run_directory() {
  if (Result<void> dir = ensure_run_directory(); !dir) return dir;
  const std::string path = run_directory() + "/up.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Error::from_errno(errno, "cannot open " + path);
  // A process-associated (POSIX) lock, not flock(2): the device servers
  // this process forks must not inherit it, or it would outlive `up`.
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  while (::fcntl(fd, F_SETLKW, &whole) != 0) {
    if (errno != EINTR) return Error::from_errno(errno, "cannot lock " + path);
  }
  return {};  // the descriptor stays open: the lock lasts as long as this process
}

// Whether device `id` is live (true), exists but is not (false, its state
// in `state`), or is gone (Error ENODEV). Error of the control device when
// it cannot be asked: then nothing can be said of the device.
Result<bool> device_live(uint32_t id, std::string& state) {
  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return Error(EIO, error);
  ublk::abi::ublksrv_ctrl_dev_info info{};
  const int ret = look_up_device(control, id, info);
  if (ret == -ENODEV || ret == -ENOENT) return Error(ENODEV, "no device " + std::to_string(id));
  if (ret < 0) return Error(-ret, command_error("look up", ret, control, id));
  state = ublk::device_state_name(info.state);
  return info.state == ublk::abi::S_DEV_LIVE;
}

// Brings up one device: finds it by name or creates it, then activates it.
// A device this call created is deleted again if it cannot be activated.
Result<std::string> up_one(const BootDevice& d) {
  if (std::optional<DeviceRecord> existing = find_named_device(d.name)) {
    std::string state;
    const Result<bool> live = device_live(existing->dev_id, state);
    const std::string device = ublk::block_device_path(existing->dev_id);
    if (live && *live) {
      Result<std::string> done = activate(d, device);
      if (!done) return std::move(done).error();
      return device + " (already up): " + *done;
    }
    if (live)
      return Error(EBUSY, "device " + std::to_string(existing->dev_id) + " named " + d.name + " is " + state +
                              ": recover it (coblk recover -n " + std::to_string(existing->dev_id) +
                              ") or delete it (coblk down " + d.name + ")");
    if (live.error().code() != ENODEV) return live.error();
    // The record outlived its device (a server killed with SIGKILL): make a new one.
    remove_record(existing->dev_id);
  }
  Result<AddOptions> prepared = prepare_new_device(d.options);
  if (!prepared) return std::move(prepared).error();
  Result<std::string> device = start_device(*prepared);
  if (!device) return std::move(device).error();
  Result<std::string> done = activate(d, *device);
  if (!done) {
    const std::string id = device->substr(std::strlen("/dev/ublkb"));
    std::string message = done.error().message();
    if (Result<void> deleted = delete_device(static_cast<uint32_t>(std::stoul(id))); deleted) {
      message += "; " + *device + " was deleted again";
    } else {
      message += "; " + *device + " stays, and could not be deleted: " + deleted.error().message();
    }
    return Error(done.error().code(), message);
  }
  return *device + ": " + *done;
}

struct BootArgs {
  std::string config_dir;
  std::string name;  // "" = every configured device
  bool foreground = false;
};

// Parses `coblk up|down [--config-dir DIR] [NAME]`; an exit status when done.
std::optional<int> parse_boot_args(const char* command, const std::vector<std::string>& args, bool up, BootArgs& out) {
  po::options_description desc(std::string("Usage: coblk ") + command + " [--config-dir DIR] [NAME]\n" +
                               (up ? "Creates the devices of the config file (or only [NAME]) and puts each to use: "
                                     "swapon, or mkfs and mount; a device already up is left as it is.\n"
                                   : "Takes the devices of the config file (or the device named NAME) out of use "
                                     "(swapoff, umount) and deletes them; one that is not up is fine.\n") +
                               "Options");
  desc.add_options()("help,h", "show this help")(
      "config-dir", po::value<std::string>()->value_name("DIR"),
      "read DIR/coblk.conf and DIR/coblk.conf.d/*.conf (default $COBLK_CONFIG_DIR, else /etc/coblk)");
  if (up) {
    desc.add_options()("foreground",
                       "serve device NAME in this process and do not put it to use (for coblk@.service: READY=1 "
                       "goes to systemd once it is live; the unit's `coblk up NAME` then runs swapon or mount)");
  }
  po::options_description all;
  all.add(desc).add_options()("name", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return report_error(command, std::string(e.what()) + " (see coblk " + command + " --help)", kExitUsage);
  }
  if (vm.count("help")) {
    std::cout << desc << '\n';
    return kExitOk;
  }
  out.config_dir = vm.count("config-dir") ? vm["config-dir"].as<std::string>() : default_config_dir();
  if (vm.count("name")) out.name = vm["name"].as<std::string>();
  out.foreground = vm.count("foreground") != 0;
  if (out.foreground && out.name.empty())
    return report_error(command, "--foreground serves one device: give its NAME", kExitUsage);
  return std::nullopt;
}

}  // namespace

std::string swap_without_discards(uint32_t id) {
  const std::string device = ublk::block_device_path(id);
  if (!swap_active(device)) return {};
  Result<ublk::IoMetricsSnapshot> metrics = ublk::read_io_metrics(metrics_path(id));
  if (!metrics) return {};  // --no-metrics: nothing to tell by
  uint64_t discards = 0;
  uint64_t writes = 0;
  for (const ublk::QueueSnapshot& q : metrics->queues) {
    discards += q.ops[static_cast<unsigned>(ublk::MetricOp::discard)].requests;
    writes += q.ops[static_cast<unsigned>(ublk::MetricOp::write)].requests;
  }
  if (discards != 0 || writes == 0) return {};
  return device +
         " is swap but has received no discards: freed swap slots stay in its memory (swapoff, then "
         "swapon --discard; or options = discard in coblk.conf)";
}

int run_up(const std::vector<std::string>& args) {
  BootArgs a;
  if (auto done = parse_boot_args("up", args, true, a)) return *done;
  Result<BootConfig> config = load_boot_config(a.config_dir, current_boot_environment());
  if (!config) return report_error("up", config.error().message(), kExitUsage);
  std::vector<const BootDevice*> chosen;
  for (const BootDevice& d : config->devices) {
    if (a.name.empty() || d.name == a.name) chosen.push_back(&d);
  }
  if (!a.name.empty() && chosen.empty())
    return report_error(
        "up", "no [" + a.name + "] in " + a.config_dir + "/coblk.conf or " + a.config_dir + "/coblk.conf.d/*.conf");
  if (chosen.empty()) {
    std::cout << "no devices configured in " << a.config_dir << "/coblk.conf or " << a.config_dir
              << "/coblk.conf.d/*.conf\n";
    return kExitOk;
  }
  if (a.foreground) {
    const BootDevice& d = *chosen.front();
    if (!d.skipped.empty()) return report_error("up", "[" + d.name + "] is not made: " + d.skipped);
    if (std::optional<DeviceRecord> existing = find_named_device(d.name))
      return report_error("up", d.name + " is up already, as device " + std::to_string(existing->dev_id));
    AddOptions o = d.options;
    o.foreground = true;
    Result<AddOptions> prepared = prepare_new_device(o);
    if (!prepared) return report_error("up", prepared.error().message());
    return serve_new_device(*prepared);
  }
  if (Result<void> locked = lock_run_directory(); !locked) return report_error("up", locked.error().message());
  int status = kExitOk;
  for (const BootDevice* d : chosen) {
    if (!d->skipped.empty()) {
      std::cout << d->name << ": not made: " << d->skipped << '\n';
      continue;
    }
    Result<std::string> done = up_one(*d);
    // Keep going: one device that fails must not keep the others down.
    if (!done) {
      status = report_error("up", d->name + ": " + done.error().message());
      continue;
    }
    std::cout << d->name << ": " << *done << std::endl;
  }
  return status;
}

int run_down(const std::vector<std::string>& args) {
  BootArgs a;
  if (auto done = parse_boot_args("down", args, false, a)) return *done;
  std::vector<std::string> names;
  if (!a.name.empty()) {
    names.push_back(a.name);
  } else {
    Result<BootConfig> config = load_boot_config(a.config_dir, current_boot_environment(), false);
    if (!config) return report_error("down", config.error().message(), kExitUsage);
    for (const BootDevice& d : config->devices) names.push_back(d.name);
  }
  if (Result<void> dir = check_run_directory(false); !dir) {
    if (dir.error().code() == ENOENT) return kExitOk;  // nothing was ever up
    return report_error("down", dir.error().message());
  }
  if (Result<void> locked = lock_run_directory(); !locked) return report_error("down", locked.error().message());
  int status = kExitOk;
  for (const std::string& name : names) {
    const std::optional<DeviceRecord> record = find_named_device(name);
    if (!record) {
      std::cout << name << ": not up\n";
      continue;
    }
    const std::string device = ublk::block_device_path(record->dev_id);
    // A device still in use is never deleted: swap on it would lose pages.
    Result<void> off = deactivate(device);
    // What /proc/self/mounts does not show (a mount in another mount
    // namespace, a mounted partition, dm or md on it) still holds it.
    if (off) off = check_not_in_use(device);
    if (!off) {
      std::string message = name + ": " + off.error().message();
      message += "; " + device + " stays";
      status = report_error("down", message);
      continue;
    }
    if (Result<void> deleted = delete_device(record->dev_id); !deleted) {
      if (deleted.error().code() == ENODEV) {
        // The record outlived its device (a server killed with SIGKILL).
        remove_record(record->dev_id);
        std::cout << name << ": not up (" << device << " was gone already)\n";
        continue;
      }
      status = report_error("down", name + ": " + deleted.error().message());
      continue;
    }
    std::cout << name << ": " << device << " deleted\n";
  }
  return status;
}

}  // namespace coblk::cmd
