// coblk: creates and manages ublk block devices served by coblk's runtime.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "coblk/cmd/commands.h"
#include "coblk/runtime/fault_injection.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"add", coblk::cmd::run_add, "create a device: add -t null|ram|loop|zram [options]"},
    {"del", coblk::cmd::run_del, "stop and delete devices: del -n ID | -a"},
    {"list", coblk::cmd::run_list, "list devices: list [-n ID]"},
    {"features", coblk::cmd::run_features, "print the kernel's ublk features"},
    {"recover", coblk::cmd::run_recover, "restart the server of a device whose server died: recover -n ID"},
    {"stats", coblk::cmd::run_stats, "zram statistics, zramctl's columns: stats [-n ID] [-o COLUMNS] [--json]"},
    {"writeback", coblk::cmd::run_writeback, "write zram pages to the backing tier: writeback -n ID --type T"},
    {"idle", coblk::cmd::run_idle, "mark zram pages idle: idle -n ID [--age S]"},
    {"recompress", coblk::cmd::run_recompress, "recompress zram pages: recompress -n ID [--type T]"},
    {"metrics", coblk::cmd::run_metrics, "Prometheus exporter of every device: metrics [--listen HOST:PORT]"},
    {"up", coblk::cmd::run_up, "create the devices of /etc/coblk/coblk.conf, with swap or mounts: up [NAME]"},
    {"down", coblk::cmd::run_down, "take them out of use and delete them: down [NAME]"},
    {"top", coblk::cmd::run_top, "live view of every device: top [--interval S] [--once]"},
    {"bench", coblk::cmd::run_bench, "fio on coblk against the kernel's devices, JSON + HTML: bench [-t null,ram]"},
};

void print_usage(std::ostream& out) {
  out << "Usage: coblk COMMAND [options]\n"
         "Userspace block devices (ublk) served by a thread-per-core io_uring runtime.\n\n"
         "Commands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(12 - std::strlen(c.name), ' ') << c.summary << '\n';
  }
  out << "\nRun 'coblk COMMAND --help' for a command's options; 'coblk --version' for the version.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "coblk: missing command (add, del, list, features, recover, stats, writeback, idle, recompress, "
                 "metrics, top, up, down; see "
                 "coblk --help)\n";
    return coblk::cmd::kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return coblk::cmd::kExitOk;
  }
  if (name == "--version" || name == "-V" || name == "version") {
    std::cout << "coblk " << COBLK_VERSION << '\n';
    return coblk::cmd::kExitOk;
  }
  // Tests of a fault-injection build make a command's runtime fail on cue
  // (test/vm/fault-guest): rules in runtime/fault_injection.h's spec
  // format. The daemon a command forks inherits them. Any other build
  // refuses the variable rather than run without the faults asked for.
  if (const char* faults = std::getenv("COBLK_FAULTS"); faults != nullptr && *faults != '\0') {
    std::string error;
    if (!runtime::fault::arm_from_spec(faults, error)) {
      std::cerr << "coblk: COBLK_FAULTS: " << error << '\n';
      return coblk::cmd::kExitUsage;
    }
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (name == c.name) {
      try {
        return c.run(args);
      } catch (const std::exception& e) {
        // Never a crash: anything unexpected is still one line and a status.
        return coblk::cmd::report_error(c.name, e.what());
      }
    }
  }
  std::cerr << "coblk: unknown command '" << name
            << "' (add, del, list, features, recover, stats, writeback, idle, recompress, metrics, top, up, down; see "
               "coblk --help)\n";
  return coblk::cmd::kExitUsage;
}
