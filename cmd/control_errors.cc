#include "coblk/cmd/control_errors.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>

#include <sys/utsname.h>

namespace coblk::cmd {

std::string ublk_driver_advice(const std::string& modules_dir) {
  std::ifstream dep(modules_dir + "/modules.dep");
  std::string line;
  while (std::getline(dep, line)) {
    // A line is "path/to/module.ko[.xz|.zst]: dependencies".
    const std::string_view module = std::string_view(line).substr(0, line.find(':'));
    const std::size_t slash = module.rfind('/');
    if (module.substr(slash == std::string_view::npos ? 0 : slash + 1).starts_with("ublk_drv.ko")) {
      return "load it with 'modprobe ublk_drv' as root";
    }
  }
  return "this kernel has no ublk_drv module to load (none in " + modules_dir +
         "/modules.dep): use a kernel with ublk (CONFIG_BLK_DEV_UBLK), or the project's VM harness: "
         "test/vm/run-vm --shell (docs/vm-harness.md)";
}

bool open_control(ublk::ControlDevice& control, std::string& error) {
  const char* path = std::getenv("COBLK_CONTROL_PATH");
  if (path == nullptr || *path == '\0') path = ublk::kControlPath;
  const int err = control.open(path);
  if (err == 0) return true;
  const std::string p = path;
  switch (-err) {
    case ENOENT: {
      utsname uts{};
      const std::string release = ::uname(&uts) == 0 ? uts.release : "";
      error = p + " does not exist: the ublk driver is not loaded; " + ublk_driver_advice("/lib/modules/" + release);
      break;
    }
    case EACCES:
    case EPERM:
      error = "permission denied opening " + p +
              ": run as root, or grant access to it (a udev rule) for unprivileged ublk devices";
      break;
    case ENOSYS:
      error = "io_uring is not available in this kernel (or is disabled by kernel.io_uring_disabled)";
      break;
    default:
      error = "cannot use " + p + ": " + std::strerror(-err);
  }
  return false;
}

std::string command_error(const char* what, int err, const ublk::ControlDevice& control, int64_t dev_id) {
  const std::string dev = dev_id >= 0 ? "device " + std::to_string(dev_id) : "a new device";
  switch (-err) {
    case EPERM:
    case EACCES:
      if ((control.features() & ublk::abi::F_UNPRIVILEGED_DEV) != 0)
        return std::string(what) + " " + dev +
               ": operation not permitted: run as root, or use --unprivileged (the kernel supports unprivileged "
               "devices)";
      return std::string(what) + " " + dev + ": operation not permitted: ublk devices need root (CAP_SYS_ADMIN)";
    case EEXIST:
      return "device id " + std::to_string(dev_id) + " is already in use";
    case ENODEV:
    case ENOENT:
      return "no ublk device " + std::to_string(dev_id);
    case EBUSY:
      return std::string(what) + " " + dev + ": device is busy";
    default:
      return std::string(what) + " " + dev + " failed: " + std::strerror(-err);
  }
}

int look_up_device(ublk::ControlDevice& control, uint32_t dev_id, ublk::abi::ublksrv_ctrl_dev_info& info) {
  control.set_unprivileged(false);
  const int ret = control.get_device_info(dev_id, info);
  if (ret == 0) control.set_unprivileged((info.flags & ublk::abi::F_UNPRIVILEGED_DEV) != 0);
  return ret;
}

}  // namespace coblk::cmd
