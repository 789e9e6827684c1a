// The config file of `coblk up`: load_boot_config on good and bad files.
#include <stdlib.h>
#include <sys/swap.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "coblk/cmd/boot_config.h"

BOOST_AUTO_TEST_SUITE(cmd_boot_config_test)

using namespace coblk::cmd;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// A fresh config directory, removed at the end of the test.
struct ConfigDir {
  std::string path;
  ConfigDir() {
    char tmpl[] = "/tmp/coblk-conf-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~ConfigDir() { std::filesystem::remove_all(path); }
  ConfigDir(const ConfigDir&) = delete;
  ConfigDir& operator=(const ConfigDir&) = delete;
  // Writes `text` to `name` (relative; "coblk.conf.d/..." makes the directory).
  std::string write(const std::string& name, const std::string& text) const {
    const std::filesystem::path file = std::filesystem::path(path) / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file.string();
  }
};

// 2 GiB of RAM and four CPUs.
BootEnvironment env(double ram_mib = 2048) {
  return {ram_mib, AddLimits{4, [](const std::string&) -> coblk::Result<uint32_t> { return 512U; }, {0, 1, 2, 3}}};
}

BootConfig load(const ConfigDir& dir, double ram_mib = 2048) {
  auto c = load_boot_config(dir.path, env(ram_mib));
  BOOST_REQUIRE_MESSAGE(c, (c ? std::string() : c.error().message()));
  return std::move(c).value();
}

// Expects load_boot_config to fail with exactly `line` (the config directory's
// path written as "DIR").
void expect_error(const ConfigDir& dir, const std::string& expected) {
  auto c = load_boot_config(dir.path, env());
  BOOST_REQUIRE_MESSAGE(!c, "accepted; expected " << expected);
  std::string message = c.error().message();
  if (const size_t at = message.find(dir.path); at != std::string::npos) message.replace(at, dir.path.size(), "DIR");
  BOOST_TEST(message == expected);
}

bool has_args(const BootDevice& d, const std::vector<std::string>& wanted) {
  return std::search(d.add_args.begin(), d.add_args.end(), wanted.begin(), wanted.end()) != d.add_args.end();
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_empty_section_is_zram_generators_default_swap) {
  ConfigDir dir;
  dir.write("coblk.conf", "[zram0]\n");
  const BootConfig c = load(dir, 2048);
  BOOST_REQUIRE(c.devices.size() == 1U);
  const BootDevice& d = c.devices[0];
  BOOST_TEST(d.name == "zram0");
  BOOST_TEST(d.is_swap());
  BOOST_TEST(d.skipped.empty());
  BOOST_TEST((d.options.target == TargetKind::zram));
  BOOST_TEST(d.options.size_bytes == 1024ULL << 20);  // min(ram / 2, 4096) MiB
  BOOST_TEST(d.options.name == "zram0");
  BOOST_TEST(d.swap_priority == 100);
  BOOST_TEST(d.swap_flags == (SWAP_FLAG_PREFER | 100 | SWAP_FLAG_DISCARD));
  BOOST_TEST(d.line == 1U);
}

BOOST_AUTO_TEST_CASE(zram_size_is_an_expression_of_ram_in_mib_rounded_to_pages) {
  ConfigDir dir;
  dir.write("coblk.conf", "[swap]\nzram-size = ram / 3\nzram-resident-limit = 100.5\n");
  const BootDevice d = load(dir, 1000).devices.at(0);
  // 333.33 MiB, rounded down to 4 KiB.
  BOOST_TEST(d.options.size_bytes == static_cast<uint64_t>(1000.0 / 3 * 1048576) / 4096 * 4096);
  BOOST_TEST(d.options.mem_limit == static_cast<uint64_t>(100.5 * 1048576) / 4096 * 4096);
}

BOOST_AUTO_TEST_CASE(keys_are_coblk_add_options_and_zram_generators_names) {
  ConfigDir dir;
  dir.write("coblk.conf",
            "# comment\n"
            "[fast]\n"
            "queues = 2   # two cores\n"
            "depth = 64\n"
            "compression-algorithm = zstd:3\n"
            "mem-limit = 64M\n"
            "size = 256M\n"
            "swap-priority = -1\n"
            "options = discard=pages\n"
            "no-metrics = yes\n"
            "recovery = no\n");
  const BootDevice d = load(dir).devices.at(0);
  BOOST_TEST(d.options.queues == 2U);
  BOOST_TEST(d.options.depth == 64U);
  BOOST_TEST(d.options.algorithm == "zstd:3");
  BOOST_TEST(d.options.mem_limit == 64ULL << 20);
  BOOST_TEST(d.options.size_bytes == 256ULL << 20);
  BOOST_TEST(!d.options.metrics);
  BOOST_TEST(!d.options.recovery);
  BOOST_TEST(d.swap_priority == -1);
  BOOST_TEST(d.swap_flags == (SWAP_FLAG_DISCARD | 0x40000));  // no PREFER: the kernel's priority
  BOOST_TEST(has_args(d, {"--queues", "2"}));
  BOOST_TEST(has_args(d, {"--algorithm", "zstd:3"}));
  BOOST_TEST(has_args(d, {"--no-metrics"}));
  BOOST_TEST(!has_args(d, {"--recovery"}));
  BOOST_TEST(has_args(d, {"--name", "fast"}));
}

BOOST_AUTO_TEST_CASE(sqpoll_takes_yes_no_or_cpu_numbers) {
  ConfigDir dir;
  dir.write("coblk.conf",
            "[on]\nsqpoll = yes\n"
            "[off]\nsqpoll = no\n"
            "[pinned]\nsqpoll = 1\n"
            "[each]\nqueues = 2\nsqpoll = 0,1\n");
  const BootConfig c = load(dir);
  BOOST_REQUIRE(c.devices.size() == 4U);
  auto device = [&](const std::string& name) -> const BootDevice& {
    for (const BootDevice& d : c.devices) {
      if (d.name == name) return d;
    }
    throw std::runtime_error("no device " + name);
  };
  BOOST_TEST(has_args(device("on"), {"--sqpoll"}));
  BOOST_TEST(device("on").options.sqpoll);
  BOOST_TEST(device("on").options.sqpoll_cpus.empty());
  BOOST_TEST(!device("off").options.sqpoll);
  // Digits are CPUs here, not yes and no.
  BOOST_TEST(has_args(device("pinned"), {"--sqpoll=1"}));
  BOOST_TEST(device("pinned").options.sqpoll_cpus == std::vector<unsigned>({1}), boost::test_tools::per_element());
  BOOST_TEST(device("each").options.sqpoll_cpus == std::vector<unsigned>({0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_mount_point_makes_a_file_system_with_discard) {
  ConfigDir dir;
  dir.write("coblk.conf",
            "[scratch]\ntype = ram\nsize = 64M\nmount-point = /var/tmp/x\n"
            "[data]\nzram-size = 32\nfs-type = ext4\nmount-point = /srv/d\noptions = noatime,discard\n"
            "[plain]\nzram-size = 32\nfs-type = xfs\nmount-point = /srv/p\noptions =\n");
  const BootConfig c = load(dir);
  BOOST_REQUIRE(c.devices.size() == 3U);
  BOOST_TEST(c.devices[0].fs_type == "ext2");  // zram-generator's default with a mount point
  BOOST_TEST(c.devices[0].mount_options == "discard");
  BOOST_TEST((c.devices[0].options.target == TargetKind::ram));
  BOOST_TEST(c.devices[1].fs_type == "ext4");
  BOOST_TEST(c.devices[1].mount_options == "noatime,discard");
  BOOST_TEST(c.devices[2].mount_options.empty());
  BOOST_TEST(!c.devices[2].is_swap());
}

BOOST_AUTO_TEST_CASE(later_files_override_earlier_ones_key_by_key) {
  ConfigDir dir;
  dir.write("coblk.conf", "[swap]\nzram-size = 64\nswap-priority = 5\n[other]\n");
  dir.write("coblk.conf.d/20-b.conf", "[swap]\nswap-priority = 9\n");
  dir.write("coblk.conf.d/10-a.conf", "[swap]\nswap-priority = 7\nqueues = 2\n[third]\nzram-size = 8\n");
  dir.write("coblk.conf.d/ignored.txt", "[nope]\nfrob = 1\n");
  const BootConfig c = load(dir);
  BOOST_REQUIRE(c.files.size() == 3U);
  BOOST_TEST(c.files[1].find("10-a.conf") != std::string::npos);
  BOOST_REQUIRE(c.devices.size() == 3U);
  BOOST_TEST(c.devices[0].name == "swap");
  BOOST_TEST(c.devices[0].swap_priority == 9);
  BOOST_TEST(c.devices[0].options.queues == 2U);
  BOOST_TEST(c.devices[0].options.size_bytes == 64ULL << 20);
  BOOST_TEST(c.devices[1].name == "other");
  BOOST_TEST(c.devices[2].name == "third");
}

BOOST_AUTO_TEST_CASE(devices_of_size_zero_or_above_the_host_memory_limit_are_skipped) {
  ConfigDir dir;
  dir.write("coblk.conf",
            "[none]\nzram-size = 0\n[big]\nhost-memory-limit = 1024\n[small]\nhost-memory-limit = none\n");
  const BootConfig c = load(dir, 2048);
  BOOST_TEST(c.devices.at(0).skipped == "zram-size is 0");
  BOOST_TEST(c.devices.at(1).skipped.find("above host-memory-limit") != std::string::npos);
  BOOST_TEST(c.devices.at(2).skipped.empty());
}

BOOST_AUTO_TEST_CASE(no_config_at_all_is_no_devices) {
  ConfigDir dir;
  const BootConfig c = load(dir);
  BOOST_TEST(c.devices.empty());
  BOOST_TEST(c.files.empty());
}

BOOST_AUTO_TEST_CASE(without_checking_a_missing_backing_file_does_not_stop_down) {
  ConfigDir dir;
  dir.write("coblk.conf", "[t]\nwriteback-device = /nonexistent/tier\n");
  BOOST_TEST(!load_boot_config(dir.path, env(), true));
  const auto c = load_boot_config(dir.path, env(), false);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->devices.at(0).name == "t");
}

BOOST_AUTO_TEST_CASE(bad_keys_and_values_name_the_file_the_line_and_the_key) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[s]\n\nfrob = 1\n", "DIR/coblk.conf:3: frob: unknown key"},
      {"[s]\nqueues = 99\n", "DIR/coblk.conf:2: queues: queues must be a whole number from 1 to 4, not '99'"},
      {"[s]\nzram-size = 16\ncompression-algorithm = lzma\n", "DIR/coblk.conf:3: compression-algorithm: "},
      {"[s]\nzram-size = 4G\n",
       "DIR/coblk.conf:2: zram-size: '4G': a unit after a number (the value is in MiB: write 4096, not 4G) at "
       "column 2"},
      {"[s]\nzram-size = -ram\n", "DIR/coblk.conf:2: zram-size: '-ram' is negative (-2048.000000 MiB)"},
      {"[s]\nswap-priority = 40000\n",
       "DIR/coblk.conf:2: swap-priority: expected a number from -1 to 32767, not '40000'"},
      {"[s]\noptions = nofail\n",
       "DIR/coblk.conf:2: options: 'nofail' is not a swap option (discard, discard=once, discard=pages)"},
      {"[s]\nmount-point = tmp\nfs-type = ext4\n",
       "DIR/coblk.conf:2: mount-point: expected an absolute path, not 'tmp'"},
      {"[s]\nfs-type = ext4\n", "DIR/coblk.conf:2: fs-type: a file system needs a mount-point"},
      {"[s]\nmount-point = /m\nfs-type = swap\n",
       "DIR/coblk.conf:2: mount-point: swap has no mount point (set fs-type to a file system)"},
      {"zram-size = 8\n", "DIR/coblk.conf:1: zram-size: a key outside any [NAME] section"},
      {"[s]\njust words\n", "DIR/coblk.conf:2: 'just words': expected KEY = VALUE or [NAME]"},
      {"[a b]\n",
       "DIR/coblk.conf:1: [a b]: a section's name is the device's name: 1 to 64 letters, digits, '_' "
       "or '-'"},
      {"[s]\nsize = 8M\nzram-size = 8\n", "DIR/coblk.conf:3: zram-size: give either zram-size or size, not both"},
      {"[s]\ntype = ram\nzram-size = 8\n", "DIR/coblk.conf:3: zram-size: only valid with type = zram"},
      {"[s]\nrecovery = maybe\n",
       "DIR/coblk.conf:2: recovery: expected yes or no (true/false, on/off, 1/0), not 'maybe'"},
      {"[s]\nname = x\n", "DIR/coblk.conf:2: name: the section's name [s] is the device's name"},
      {"[s]\nforeground = yes\n",
       "DIR/coblk.conf:2: foreground: not a device setting (coblk up serves every device as a daemon)"},
      {"[s]\ntype = tape\n", "DIR/coblk.conf:2: type: unknown target 'tape' (expected null, ram, loop, zram or nbd)"},
      {"[s]\ntype = loop\n", "DIR/coblk.conf:2: type: type loop needs -f FILE"},
      {"[s]\nzram-size = 8\nmem-limit = lots\n",
       "DIR/coblk.conf:3: mem-limit: 'lots' is not a size (expected a whole number of bytes with an optional K, M, "
       "G, T or P suffix, e.g. 8G)"},
      {"[s]\nhost-memory-limit = big\n",
       "DIR/coblk.conf:2: host-memory-limit: expected a size in MiB or 'none', not "
       "'big'"},
  };
  for (const auto& [text, expected] : cases) {
    ConfigDir dir;
    dir.write("coblk.conf", text);
    auto c = load_boot_config(dir.path, env());
    BOOST_TEST_CONTEXT(text) {
      BOOST_REQUIRE(!c);
      std::string message = c.error().message();
      message.replace(message.find(dir.path), dir.path.size(), "DIR");
      // The codec's own message follows the key; only the start is fixed.
      BOOST_TEST(message.substr(0, expected.size()) == expected);
      if (expected.back() != ' ') BOOST_TEST(message == expected);
      BOOST_TEST(message.find('\n') == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_error_in_a_conf_d_file_names_that_file) {
  ConfigDir dir;
  dir.write("coblk.conf", "[s]\nzram-size = 8\n");
  dir.write("coblk.conf.d/50-x.conf", "\n[s]\nswap-priority = high\n");
  expect_error(dir, "DIR/coblk.conf.d/50-x.conf:3: swap-priority: expected a number from -1 to 32767, not 'high'");
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_boot_config_test
