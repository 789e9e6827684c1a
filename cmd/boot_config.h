// cmd/boot_config.h - the devices `coblk up` creates: coblk.conf and coblk.conf.d, one section per device.
#pragma once

// Read from /etc/coblk/coblk.conf, then /etc/coblk/coblk.conf.d/ *.conf.

// The format is zram-generator.conf(5)'s where a key means the same
// (`zram-size`, `compression-algorithm`, `swap-priority`, `fs-type`,
// `mount-point`, `options`, `writeback-device`, ...); every other key is a
// `coblk add` option by its long name (`type`, `queues`, `mem-limit`, ...).
// A section becomes the arguments of `coblk add`, which parse_add_options
// validates: a key means exactly what its option means. docs/cli.md has the
// whole list.

#include <string>
#include <vector>

#include "coblk/cmd/add_options.h"
#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// One configured device: a `[NAME]` section, merged over every file.
struct BootDevice {
  std::string name;                   ///< the section's name, recorded as the device's --name
  std::string file;                   ///< the file whose section header came first
  unsigned line = 0;                  ///< ... and its line
  std::vector<std::string> add_args;  ///< the `coblk add` arguments the keys become (--name included)
  AddOptions options;                 ///< parse_add_options(add_args); only when the config was checked
  std::string fs_type;                ///< "swap", or the file system made with mkfs.TYPE
  std::string mount_point;            ///< with a file system: where it is mounted
  std::string mount_options;          ///< with a file system: `options`, for mount -o ("" = none)
  int swap_priority = 100;            ///< with swap: -1..32767 (-1: the kernel's choice)
  int swap_flags = 0;                 ///< with swap: the swapon(2) flags of swap-priority and options
  std::string skipped;                ///< why the device is not made (zram-size 0, host-memory-limit); "" = it is
  /// True when the device is used as swap.
  bool is_swap() const { return fs_type == "swap"; }
};

/// What was read: the files, in the order read, and their devices in the
/// order their sections first appear.
struct BootConfig {
  std::vector<std::string> files;  ///< the files that exist and were read
  std::vector<BootDevice> devices;
};

/// The machine facts a configuration depends on, injectable for tests.
struct BootEnvironment {
  double ram_mib = 0;  ///< MemTotal of /proc/meminfo in MiB: `ram` in zram-size expressions
  AddLimits limits;    ///< what parse_add_options checks against
};
/// This machine's: /proc/meminfo and current_limits().
BootEnvironment current_boot_environment();

/// The configuration directory: $COBLK_CONFIG_DIR if set, else /etc/coblk.
std::string default_config_dir();

/// Reads DIR/coblk.conf, then DIR/coblk.conf.d/ *.conf in lexicographic
/// order of their names (a file named like an earlier one's key overrides
/// it: later files win, key by key, as in zram-generator). Missing files
/// and directories are no error. With `check`, every section is turned into
/// `coblk add` arguments and validated with parse_add_options (the backing
/// files must exist then); without, only the syntax, the keys and the
/// values `coblk down` needs are checked. Error EINVAL with one line
/// "FILE:LINE: KEY: what is wrong" for an unknown key, a bad value, a line
/// that is not `KEY = VALUE` or `[NAME]`, or a bad section name; the errno
/// of a file that exists but cannot be read.
Result<BootConfig> load_boot_config(const std::string& dir, const BootEnvironment& env, bool check = true);

}  // namespace coblk::cmd
