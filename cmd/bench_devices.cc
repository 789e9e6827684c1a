// `coblk bench`'s device pairs (cmd/bench_devices.h).
#include "coblk/cmd/bench_devices.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "coblk/cmd/bench_fio.h"
#include "coblk/cmd/device_record.h"

namespace coblk::cmd {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<void> write_attr(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, "cannot open " + path);
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return Error::from_errno(n < 0 ? e : EIO, "cannot write '" + value + "' to " + path);
  }
  return ok();
}

Result<std::string> read_attr(const std::string& path) {
  std::ifstream in(path);
  std::string value;
  if (!in || !std::getline(in, value)) return Error(EIO, "cannot read " + path);
  return value;
}

// Waits up to 10 s for a device node that udev or devtmpfs creates.
Result<void> wait_for(const std::string& path) {
  for (int i = 0; i < 100; ++i) {
    if (exists(path)) return ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Error(ENOENT, path + " did not appear within 10 s");
}

void warn(const std::string& what) { std::cerr << "coblk bench: warning: " << what << '\n'; }

}  // namespace

Result<std::unique_ptr<BenchDevices>> BenchDevices::create(const BenchDeviceOptions& options) {
  std::unique_ptr<BenchDevices> d(new BenchDevices());
  if (options.size_bytes == 0 || options.size_bytes % (1ULL << 20) != 0) {
    return Error(EINVAL, "the size must be a positive multiple of 1 MiB");
  }
  if (Result<void> r = d->make_kernel_device(options); !r) return std::move(r).error();
  if (Result<void> r = d->make_coblk_device(options); !r) return std::move(r).error();
  return d;
}

BenchDevices::~BenchDevices() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
}

Result<void> BenchDevices::ensure_module(const BenchDeviceOptions& options, const std::string& name,
                                         const std::vector<std::string>& params, bool remove_after) {
  if (exists("/sys/module/" + name)) return ok();
  std::vector<std::string> argv = {options.modprobe, name};
  argv.insert(argv.end(), params.begin(), params.end());
  if (Result<std::string> r = run_capture(argv); !r) {
    return Error(ENOENT, "the kernel module " + name + " (for the " + options.target +
                             " target's reference) cannot be loaded: " + r.error().message());
  }
  if (remove_after) {
    undo_.emplace_back([name] {
      // Unloading may briefly fail while the last device's release finishes.
      for (int i = 0; i < 20; ++i) {
        if (run_capture({"rmmod", name})) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      warn("could not unload " + name);
    });
  }
  return ok();
}

Result<void> BenchDevices::make_kernel_device(const BenchDeviceOptions& o) {
  const unsigned long long mib = o.size_bytes >> 20;
  if (o.target == "null") {
    kind_ = "null_blk";
    // nr_devices=0: the module's own device is not needed, ours comes from configfs.
    if (Result<void> r = ensure_module(o, "null_blk", {"nr_devices=0"}, true); !r) return r;
    // configfs is mounted at boot by systemd; a minimal system (the VM
    // harness's busybox init, before the module existed) may not have it.
    if (!exists("/sys/kernel/config/nullb") && exists("/sys/kernel/config") &&
        ::mount("configfs", "/sys/kernel/config", "configfs", 0, nullptr) == 0) {
      undo_.emplace_back([] { ::umount("/sys/kernel/config"); });
    }
    if (!exists("/sys/kernel/config/nullb")) {
      return Error(ENOENT,
                   "/sys/kernel/config/nullb does not exist: mount configfs (mount -t configfs none "
                   "/sys/kernel/config) so coblk bench can make its null_blk device");
    }
    const std::string dir = "/sys/kernel/config/nullb/coblk-bench-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0755) != 0) return Error::from_errno(errno, "cannot create " + dir);
    undo_.emplace_back([dir] {
      (void)write_attr(dir + "/power", "0");
      if (::rmdir(dir.c_str()) != 0) warn("could not remove " + dir);
    });
    // queue_mode 2 is blk-mq, as ublk; no memory: like coblk's null target.
    for (const auto& [attr, value] : {std::pair<const char*, std::string>{"size", std::to_string(mib)},
                                      {"queue_mode", "2"},
                                      {"submit_queues", std::to_string(o.queues)},
                                      {"power", "1"}}) {
      if (Result<void> r = write_attr(dir + "/" + attr, value); !r) return r;
    }
    Result<std::string> index = read_attr(dir + "/index");
    if (!index) return std::move(index).error();
    // Kernels since 6.0 name the disk after its configfs directory, older
    // ones nullbN.
    const std::string name = dir.substr(dir.rfind('/') + 1);
    baseline_ = "/dev/nullb" + *index;
    for (int i = 0; i < 100; ++i) {
      if (exists("/dev/" + name)) {
        baseline_ = "/dev/" + name;
        return ok();
      }
      if (exists(baseline_) && exists("/sys/block/nullb" + *index)) return ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error(ENOENT, "the null_blk device (/dev/" + name + " or " + baseline_ + ") did not appear within 10 s");
  }
  if (o.target == "ram") {
    kind_ = "brd";
    if (exists("/sys/module/brd")) {
      return Error(EBUSY,
                   "the brd module is already loaded: coblk bench loads it itself with one disk of the size "
                   "asked for and would overwrite /dev/ram0; unload it first (rmmod brd)");
    }
    if (Result<void> r = ensure_module(o, "brd", {"rd_nr=1", "rd_size=" + std::to_string(mib * 1024)}, true); !r) {
      return r;
    }
    baseline_ = "/dev/ram0";
    return wait_for(baseline_);
  }
  if (o.target == "zram") {
    kind_ = "zram";
    if (Result<void> r = ensure_module(o, "zram", {}, true); !r) return r;
    Result<std::string> id = read_attr("/sys/class/zram-control/hot_add");
    if (!id) return std::move(id).error();
    const std::string block = "/sys/block/zram" + *id;
    undo_.emplace_back([block, id = *id] {
      (void)write_attr(block + "/reset", "1");
      if (!write_attr("/sys/class/zram-control/hot_remove", id)) warn("could not remove zram" + id);
    });
    if (Result<void> r = write_attr(block + "/comp_algorithm", "lz4"); !r) return r;
    if (Result<void> r = write_attr(block + "/disksize", std::to_string(o.size_bytes)); !r) return r;
    baseline_ = "/dev/zram" + *id;
    return wait_for(baseline_);
  }
  if (o.target == "loop") {
    kind_ = "loop";
    if (!exists("/dev/loop-control")) {
      if (Result<void> r = ensure_module(o, "loop", {}, true); !r) return r;
      if (Result<void> r = wait_for("/dev/loop-control"); !r) return r;
    }
    const std::string stem = o.dir + "/coblk-bench-" + std::to_string(::getpid());
    loop_file_ = stem + "-coblk.img";
    const std::string kernel_file = stem + "-kernel.img";
    for (const std::string& file : {loop_file_, kernel_file}) {
      const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return Error::from_errno(errno, "cannot create " + file);
      undo_.emplace_back([file] { ::unlink(file.c_str()); });
      const int rc = ::ftruncate(fd, static_cast<off_t>(o.size_bytes));
      const int e = errno;
      ::close(fd);
      if (rc != 0) return Error::from_errno(e, "cannot size " + file);
    }
    const int control = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0) return Error::from_errno(errno, "cannot open /dev/loop-control");
    const int index = ::ioctl(control, LOOP_CTL_GET_FREE);
    const int e = errno;
    ::close(control);
    if (index < 0) return Error::from_errno(e, "no free loop device (LOOP_CTL_GET_FREE)");
    baseline_ = "/dev/loop" + std::to_string(index);
    if (Result<void> r = wait_for(baseline_); !r) return r;
    const int dev = ::open(baseline_.c_str(), O_RDWR | O_CLOEXEC);
    if (dev < 0) return Error::from_errno(errno, "cannot open " + baseline_);
    const int file = ::open(kernel_file.c_str(), O_RDWR | O_CLOEXEC);
    if (file < 0) {
      const int fe = errno;
      ::close(dev);
      return Error::from_errno(fe, "cannot open " + kernel_file);
    }
    // Buffered, like coblk's loop target on the same kind of file.
    loop_config config{};
    config.fd = static_cast<__u32>(file);
    int rc = ::ioctl(dev, LOOP_CONFIGURE, &config);
    if (rc != 0 && errno == EINVAL) rc = ::ioctl(dev, LOOP_SET_FD, file);  // kernels before 5.8
    const int ce = errno;
    ::close(file);
    ::close(dev);
    if (rc != 0) return Error::from_errno(ce, "cannot attach " + kernel_file + " to " + baseline_);
    undo_.emplace_back([path = baseline_] {
      const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0 || ::ioctl(fd, LOOP_CLR_FD) != 0) warn("could not detach " + path);
      if (fd >= 0) ::close(fd);
    });
    return ok();
  }
  return Error(EINVAL, "unknown target " + quote_for_message(o.target) + " (null, ram, zram or loop)");
}

Result<void> BenchDevices::make_coblk_device(const BenchDeviceOptions& o) {
  std::vector<std::string> argv = {o.coblk, "add", "-t", o.target, "-q", std::to_string(o.queues)};
  if (o.target == "loop") {
    argv.insert(argv.end(), {"-f", loop_file_});
  } else {
    argv.insert(argv.end(), {"--size", std::to_string(o.size_bytes >> 20) + "M"});
  }
  if (o.target == "zram") argv.insert(argv.end(), {"--algorithm", "lz4"});
  Result<std::string> out = run_capture(argv);
  if (!out) return Error(out.error().code(), "coblk add -t " + o.target + " failed: " + out.error().message());
  std::istringstream in(*out);
  in >> ours_;
  const std::string prefix = "/dev/ublkb";
  if (ours_.compare(0, prefix.size(), prefix) != 0 || ours_.size() == prefix.size()) {
    return Error(EIO, "coblk add printed " + quote_for_message(*out) + ", not a /dev/ublkbN device");
  }
  const std::string id = ours_.substr(prefix.size());
  if (Result<DeviceRecord> record = load_record(static_cast<uint32_t>(std::stoul(id))); record) {
    server_pid_ = record->pid;
  }
  undo_.emplace_back([coblk = o.coblk, id, dev = ours_] {
    if (Result<std::string> r = run_capture({coblk, "del", "-n", id}); !r) {
      warn("could not delete " + dev + ": " + r.error().message());
    }
  });
  return ok();
}

}  // namespace coblk::cmd
