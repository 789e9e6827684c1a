// What `coblk` advises when /dev/ublk-control is missing: modprobe where the
// running kernel has the module to load, the VM harness where it has not.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "coblk/cmd/control_errors.h"

BOOST_AUTO_TEST_SUITE(cmd_control_errors_test)

namespace {

// A modules directory of its own, holding a modules.dep with `lines` (or
// none at all when `lines` is null); removed at the end of the test case.
struct ModulesDir {
  std::filesystem::path dir;
  explicit ModulesDir(const char* lines) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "coblk-modules-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    if (lines != nullptr) std::ofstream(dir / "modules.dep") << lines;
  }
  ~ModulesDir() { std::filesystem::remove_all(dir); }
  ModulesDir(const ModulesDir&) = delete;
  ModulesDir& operator=(const ModulesDir&) = delete;
};

bool names_modprobe(const std::string& advice) { return advice.find("modprobe ublk_drv") != std::string::npos; }
bool names_vm_harness(const std::string& advice) { return advice.find("test/vm/run-vm --shell") != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_kernel_whose_modules_list_ublk_drv_is_told_to_modprobe_it) {
  const ModulesDir m(
      "kernel/drivers/block/loop.ko.xz:\n"
      "kernel/drivers/block/ublk_drv.ko.xz:\n"
      "kernel/drivers/block/zram/zram.ko.xz: kernel/lib/lz4/lz4hc_compress.ko.xz\n");
  const std::string advice = coblk::cmd::ublk_driver_advice(m.dir.string());
  BOOST_TEST(names_modprobe(advice), advice);
  BOOST_TEST(!names_vm_harness(advice), advice);
}

BOOST_AUTO_TEST_CASE(an_uncompressed_module_counts_too) {
  const ModulesDir m("kernel/drivers/block/ublk_drv.ko: \n");
  BOOST_TEST(names_modprobe(coblk::cmd::ublk_driver_advice(m.dir.string())));
}

BOOST_AUTO_TEST_CASE(a_kernel_without_the_module_is_pointed_at_the_vm_harness) {
  const ModulesDir m(
      "kernel/drivers/block/loop.ko.xz:\n"
      "kernel/drivers/block/not_ublk_drv.ko.xz:\n"
      "kernel/drivers/block/zram/zram.ko.xz: kernel/drivers/block/ublk_drv.ko.xz\n");
  const std::string advice = coblk::cmd::ublk_driver_advice(m.dir.string());
  BOOST_TEST(names_vm_harness(advice), advice);
  BOOST_TEST(!names_modprobe(advice), advice);
}

BOOST_AUTO_TEST_CASE(a_machine_without_a_modules_directory_is_pointed_at_the_vm_harness) {
  const ModulesDir m(nullptr);
  const std::string advice = coblk::cmd::ublk_driver_advice((m.dir / "no-such-release").string());
  BOOST_TEST(names_vm_harness(advice), advice);
  BOOST_TEST(advice.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_control_errors_test
