// coblk add, coblk del, coblk recover: commands that change devices.
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <iostream>

#include "coblk/cmd/add_options.h"
#include "coblk/cmd/commands.h"
#include "coblk/cmd/control_errors.h"
#include "coblk/cmd/device_in_use.h"
#include "coblk/cmd/device_ops.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/keeper.h"
#include "coblk/cmd/loop_backing.h"
#include "coblk/cmd/serve_device.h"
#include "coblk/ublk/control.h"

namespace po = boost::program_options;

namespace coblk::cmd {
namespace {

// The kernel features `o` needs, with the option that asks for each.
std::string missing_feature(const AddOptions& o, const ublk::ControlDevice& control) {
  if (!control.features_known()) {
    // A pre-6.5 kernel: only the plain copy path is certain to exist.
    if (o.data_path != DataPathKind::copy) return "this kernel's ublk driver is too old for --user-copy/--zero-copy";
    return {};
  }
  const uint64_t f = control.features();
  if (o.data_path == DataPathKind::user_copy && !(f & ublk::abi::F_USER_COPY))
    return "--user-copy needs the kernel feature USER_COPY (Linux 6.5+)";
  if (o.data_path == DataPathKind::zero_copy && !(f & ublk::abi::F_AUTO_BUF_REG))
    return "--zero-copy needs the kernel feature AUTO_BUF_REG (Linux 6.16+)";
  if (o.recovery && !(f & ublk::abi::F_USER_RECOVERY)) return "--recovery needs the kernel feature USER_RECOVERY";
  if (o.unprivileged && !(f & ublk::abi::F_UNPRIVILEGED_DEV))
    return "--unprivileged needs the kernel feature UNPRIVILEGED_DEV";
  return {};
}

// STOP_DEV then DEL_DEV; the record goes too. Returns 0 or -errno. With
// `wait` false, DEL_DEV does not wait until the kernel has freed the
// device (DEL_DEV_ASYNC), which it does only when the last opener of
// /dev/ublkbN is gone: a file system mounted from it would hold us until
// its unmount.
int stop_and_delete(ublk::ControlDevice& control, uint32_t id, std::string& error, bool wait = true) {
  // An unprivileged device needs its node's path on every command.
  ublk::abi::ublksrv_ctrl_dev_info info{};
  int ret = look_up_device(control, id, info);
  if (ret < 0) {
    error = command_error("look up", ret, control, id);
    return ret;
  }
  const Result<DeviceRecord> record = load_record(id);
  ret = control.stop_device(id);
  const bool stopped = ret == 0;
  // A device that was never started, or whose server died, stops with an
  // error but can still be deleted.
  if (ret < 0 && ret != -EINVAL && ret != -ENODEV && ret != -EBUSY) {
    error = command_error("stop", ret, control, id);
    return ret;
  }
  ret = control.delete_device(id, wait);
  // The device's own server may have deleted it once its queues ended.
  if (ret == -ENODEV && stopped) ret = 0;
  if (ret < 0) {
    error = command_error("delete", ret, control, id);
    return ret;
  }
  // The keeper of a ram or zram device's memory ends with the device (it
  // notices a server that stopped cleanly itself; a quiesced device's
  // keeper has no server to notice), and the memory with it.
  if (record && keeper_alive(record->keeper_pid, record->keeper_start)) ::kill(record->keeper_pid, SIGTERM);
  remove_record(id);
  return 0;
}

// The ids of the records in the run directory ("<id>.json"), ascending.
std::vector<uint32_t> recorded_device_ids() {
  std::vector<uint32_t> ids;
  DIR* d = ::opendir(run_directory().c_str());
  if (d == nullptr) return ids;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const size_t dot = name.find('.');
    uint32_t id = 0;
    std::string ignored;
    if (dot != std::string::npos && name.substr(dot) == ".json" && parse_dev_id(name.substr(0, dot), id, ignored))
      ids.push_back(id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

Result<AddOptions> prepare_new_device(const AddOptions& o) {
  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return Error(ENODEV, error);
  if (std::string missing = missing_feature(o, control); !missing.empty()) return Error(ENOTSUP, missing);
  if (o.dev_id >= 0) {
    ublk::abi::ublksrv_ctrl_dev_info info{};
    const int ret = look_up_device(control, static_cast<uint32_t>(o.dev_id), info);
    // A device we may not look at (another user's) exists all the same.
    if (ret == 0 || ret == -EPERM || ret == -EACCES)
      return Error(EEXIST, "device id " + std::to_string(o.dev_id) + " is already in use");
    if (ret != -ENODEV && ret != -ENOENT) return Error(-ret, command_error("look up", ret, control, o.dev_id));
  }
  if (!o.name.empty()) {
    if (const std::optional<DeviceRecord> named = find_named_device(o.name))
      return Error(EEXIST,
                   "the name " + quote_for_message(o.name) + " is taken by device " + std::to_string(named->dev_id));
  }
  control.close();
  // The export's size and block sizes come from the server: ask it now,
  // before anything exists, so that an unreachable server or an unknown
  // export costs one line and no device.
  AddOptions resolved = o;
  if (Result<void> r = resolve_nbd_export(resolved); !r) return std::move(r).error();
  // The server keeps its record there; refuse a directory others could
  // tamper with before anything exists.
  if (Result<void> dir = ensure_run_directory(); !dir) return std::move(dir).error();
  return resolved;
}

std::optional<DeviceRecord> find_named_device(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (Result<void> dir = check_run_directory(false); !dir) return std::nullopt;
  for (const uint32_t id : recorded_device_ids()) {
    Result<DeviceRecord> record = load_record(id);
    if (record && record->name == name) return *record;
  }
  return std::nullopt;
}

Result<void> delete_device(uint32_t id) {
  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return Error(ENODEV, error);
  if (const int ret = stop_and_delete(control, id, error); ret < 0) return Error(-ret, error);
  return {};
}

int run_add(const std::vector<std::string>& args) {
  const AddParse parsed = parse_add_options(args);
  if (!parsed) return report_error("add", parsed.error, kExitUsage);
  if (parsed.help) {
    std::cout << parsed.help_text;
    return kExitOk;
  }
  Result<AddOptions> prepared = prepare_new_device(parsed.options);
  if (!prepared) return report_error("add", prepared.error().message());
  return serve_new_device(*prepared);
}

int run_del(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk del -n ID | -a [--force]\nStops and deletes ublk devices; a device in use (mounted, swap, "
      "held) is refused.\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"),
                                                 "the device to delete")("all,a", "delete every ublk device")(
      "force", "delete devices in use too: a file system or swap on one then gets I/O errors");
  po::variables_map vm;
  if (auto done = parse_command_line("del", args, desc, vm)) return *done;
  const bool all = vm.count("all") != 0;
  if (all == (vm.count("number") != 0)) return report_error("del", "give either -n ID or -a", kExitUsage);

  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT)
    return report_error("del", dir.error().message());

  std::vector<uint32_t> ids;
  if (all) {
    ids = existing_device_ids();
  } else {
    uint32_t id = 0;
    std::string error;
    if (!parse_dev_id(vm["number"].as<std::string>(), id, error)) return report_error("del", error, kExitUsage);
    ids.push_back(id);
  }

  ublk::ControlDevice control;
  std::string error;
  if (!open_control(control, error)) return report_error("del", error);
  int status = kExitOk;
  const bool force = vm.count("force") != 0;
  for (const uint32_t id : ids) {
    // Deleting a device something holds takes it away under a file system
    // or swap, whose unwritten pages are then lost: only with --force.
    const std::string device = ublk::block_device_path(id);
    const Result<void> unused = check_not_in_use(device);
    if (!unused && !force) {
      status = report_error("del", unused.error().message() + "; device " + std::to_string(id) +
                                       " stays (unmount or swapoff first, or --force)");
      if (!all) break;
      continue;
    }
    if (!unused) {
      std::cerr << "coblk del: " << device << " is in use; deleting it anyway (--force): its users get I/O errors, "
                << "and the kernel frees the device once they have closed it\n";
    }
    if (stop_and_delete(control, id, error, unused.ok()) < 0) {
      // With -a, keep going: one stuck device must not keep the others alive.
      status = report_error("del", error);
      if (!all) break;
    }
  }
  return status;
}

int run_recover(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk recover -n ID\nStarts a new server for a device whose server died (added with "
      "--recovery).\nOptions");
  desc.add_options()("help,h", "show this help")("number,n", po::value<std::string>()->value_name("ID"),
                                                 "the device to recover");
  po::variables_map vm;
  if (auto done = parse_command_line("recover", args, desc, vm)) return *done;
  if (!vm.count("number")) return report_error("recover", "missing -n ID", kExitUsage);
  uint32_t id = 0;
  std::string error;
  if (!parse_dev_id(vm["number"].as<std::string>(), id, error)) return report_error("recover", error, kExitUsage);
  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT)
    return report_error("recover", dir.error().message());

  ublk::ControlDevice control;
  if (!open_control(control, error)) return report_error("recover", error);
  ublk::abi::ublksrv_ctrl_dev_info info{};
  if (const int ret = look_up_device(control, id, info); ret < 0)
    return report_error("recover", command_error("look up", ret, control, id));
  if (!(info.flags &
        (ublk::abi::F_USER_RECOVERY | ublk::abi::F_USER_RECOVERY_REISSUE | ublk::abi::F_USER_RECOVERY_FAIL_IO)))
    return report_error("recover", "device " + std::to_string(id) + " was not added with --recovery");
  if (info.state == ublk::abi::S_DEV_LIVE)
    return report_error("recover", "device " + std::to_string(id) + " is live: its server is running");
  const Result<DeviceRecord> record = load_record(id);
  if (!record && record.error().code() == ENOENT)
    return report_error("recover",
                        "no record of how device " + std::to_string(id) + " was served (" + record_path(id) + ")");
  if (!record) return report_error("recover", record.error().message());
  // An in-memory device's data outlives its server only in its keeper's
  // memfds: the keeper starts the new server, which recovers from them.
  if ((record->target == "ram" || record->target == "zram") && record->keeper_pid > 0) {
    control.close();  // no ring may cross the keeper's fork
    return recover_through_keeper(id, record->keeper_pid, record->keeper_start);
  }
  // Without a keeper (a record from before coblk kept the memory), the data
  // died with its server: a new server would read zeros where the data was.
  // Refuse, and leave the device quiesced for `coblk del`.
  if (record->target == "ram" || record->target == "zram") {
    return report_error("recover", "device " + std::to_string(id) + " is a " + record->target +
                                       " device: its data was in the memory of its server, which died, so the data "
                                       "is lost; it stays quiesced, delete it with 'coblk del -n " +
                                       std::to_string(id) + "'");
  }
  // Serve it exactly as `coblk add` was asked to, minus the fresh device.
  AddParse parsed = parse_add_options(record->args);
  if (!parsed || parsed.help)
    return report_error(
        "recover", "the recorded arguments of device " + std::to_string(id) + " no longer validate: " + parsed.error);
  if (Result<void> r = resolve_nbd_export(parsed.options); !r) return report_error("recover", r.error().message());
  // The kernel kept the device's geometry; a server for another one (a
  // loop file that changed size, an edited record) would serve the wrong
  // blocks, or past the file's end.
  ublk::abi::ublk_params params{};
  if (const int ret = control.get_params(id, params); ret < 0)
    return report_error("recover", command_error("get the parameters of", ret, control, id));
  if ((params.types & ublk::abi::PARAM_TYPE_BASIC) == 0)
    return report_error("recover", "device " + std::to_string(id) + " has no parameters in the kernel");
  if (std::string mismatch = recovery_mismatch(*record, parsed.options.size_bytes, parsed.options.block_size,
                                               params.basic.dev_sectors << 9, 1U << params.basic.logical_bs_shift);
      !mismatch.empty())
    return report_error("recover", mismatch);
  if (record->target == "loop") {
    if (std::string other = backing_mismatch(*record, backing_identity(parsed.options.file)); !other.empty())
      return report_error("recover", other);
  }
  parsed.options.dev_id = id;
  parsed.options.recovery = true;
  control.close();  // the server opens its own; no ring may cross the fork
  return serve_recovered_device(parsed.options);
}

}  // namespace coblk::cmd
