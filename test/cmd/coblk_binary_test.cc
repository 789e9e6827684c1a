// The built `coblk` executable: exit statuses and one-line errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "coblk/cmd/device_record.h"
#include "test/cmd/command_outcome.h"
#if COBLK_HAVE_ZRAM
#include "coblk/ublk/zram_stats.h"
#endif

BOOST_AUTO_TEST_SUITE(cmd_coblk_binary_test)

namespace {

using Outcome = coblk::test::CommandOutcome;

// Runs coblk with `args` through the shell, the control path pointed at
// `control` (absent by default, as on a machine without ublk_drv).
Outcome run(const std::string& args, const std::string& control = "/nonexistent/ublk-control") {
  return coblk::test::run_command("COBLK_CONTROL_PATH=" + control + " COBLK_RUN_DIR=/tmp/coblk-test-run-" +
                                      std::to_string(::getpid()) + " " + COBLK_BINARY + " " + args,
                                  "coblk-test");
}

// The error is exactly one line and mentions `needle`.
void expect_one_line_error(const Outcome& o, const std::string& needle, int status) {
  BOOST_TEST(o.status == status);
  BOOST_TEST(!o.err.empty());
  BOOST_TEST(o.err.find('\n') == o.err.size() - 1, "not one line: " << o.err);
  BOOST_TEST(o.err.find(needle) != std::string::npos, "stderr was: " << o.err);
}

}  // namespace

BOOST_AUTO_TEST_CASE(help_prints_every_command_and_succeeds) {
  const Outcome o = run("--help");
  BOOST_TEST(o.status == 0);
  for (const char* c : {"add", "del", "list", "features", "recover", "stats", "metrics", "top"}) {
    BOOST_TEST(o.out.find(c) != std::string::npos);
  }
  BOOST_TEST(o.err.empty());
}

BOOST_AUTO_TEST_CASE(version_prints_the_project_version_and_succeeds) {
  for (const char* flag : {"--version", "-V", "version"}) {
    const Outcome o = run(flag);
    BOOST_TEST(o.status == 0, flag);
    BOOST_TEST(o.out == "coblk " COBLK_PROJECT_VERSION "\n", flag << ": " << o.out);  // CMake's project version
    BOOST_TEST(o.err.empty(), flag);
  }
}

BOOST_AUTO_TEST_CASE(every_command_has_help) {
  for (const char* c : {"add", "del", "list", "features", "recover", "stats", "metrics", "top"}) {
    const Outcome o = run(std::string(c) + " --help");
    BOOST_TEST(o.status == 0, c);
    BOOST_TEST(o.out.find("Usage: coblk " + std::string(c)) != std::string::npos, c);
  }
}

BOOST_AUTO_TEST_CASE(an_unknown_command_is_a_usage_error) {
  expect_one_line_error(run("frobnicate"), "unknown command 'frobnicate'", 2);
  expect_one_line_error(run(""), "missing command", 2);
}

BOOST_AUTO_TEST_CASE(bad_add_arguments_give_one_line_and_status_two) {
  expect_one_line_error(run("add -t ram --size lots"), "coblk add: --size: 'lots' is not a size", 2);
  expect_one_line_error(run("add -t ram --size 1000"), "not a multiple of the 512-byte block size", 2);
  expect_one_line_error(run("add -t tape"), "unknown target 'tape'", 2);
  expect_one_line_error(run("add -t loop -f /nonexistent/disk.img"), "'/nonexistent/disk.img' does not exist", 2);
  expect_one_line_error(run("add -t null --frob"), "unrecognised option '--frob'", 2);
}

BOOST_AUTO_TEST_CASE(a_missing_control_device_says_how_to_load_the_module) {
  // modprobe where this kernel has the module, the VM harness where it has
  // not (control_errors_test checks which is chosen when).
  for (const char* c : {"features", "list", "add -t null", "del -n 0", "recover -n 0"}) {
    const Outcome o = run(c);
    expect_one_line_error(o, "does not exist: the ublk driver is not loaded; ", 1);
    BOOST_TEST((o.err.find("modprobe ublk_drv") != std::string::npos ||
                o.err.find("test/vm/run-vm --shell") != std::string::npos),
               c << ": " << o.err);
  }
}

BOOST_AUTO_TEST_CASE(features_on_this_machine_fail_cleanly_when_ublk_is_absent) {
  struct stat st {};
  if (::stat("/dev/ublk-control", &st) == 0) {
    BOOST_TEST_MESSAGE("/dev/ublk-control exists here; checking features succeeds instead");
    BOOST_TEST(run("features", "/dev/ublk-control").status == 0);
    return;
  }
  expect_one_line_error(run("features", "/dev/ublk-control"),
                        "/dev/ublk-control does not exist: the ublk driver is not loaded", 1);
}

BOOST_AUTO_TEST_CASE(del_needs_exactly_one_of_an_id_or_all) {
  expect_one_line_error(run("del"), "give either -n ID or -a", 2);
  expect_one_line_error(run("del -a -n 1"), "give either -n ID or -a", 2);
  expect_one_line_error(run("del -n minus"), "-n must be a device id", 2);
}

BOOST_AUTO_TEST_CASE(stats_without_zram_devices_says_so) {
  const Outcome o = run("stats");
  BOOST_TEST(o.status == 0);
  BOOST_TEST(o.out == "no zram devices\n");
  const Outcome j = run("stats --json");
  BOOST_TEST(j.status == 0);
  BOOST_TEST(j.out.empty());
}

#if COBLK_HAVE_ZRAM
BOOST_AUTO_TEST_CASE(stats_shows_no_compression_ratio_when_nothing_is_stored) {
  const std::string run_dir = "/tmp/coblk-test-run-" + std::to_string(::getpid());
  ::setenv("COBLK_RUN_DIR", run_dir.c_str(), 1);
  coblk::cmd::DeviceRecord r;
  r.dev_id = 6;
  r.target = "zram";
  r.size_bytes = 64 << 20;
  r.compression = "lz4";
  BOOST_REQUIRE(coblk::cmd::save_record(r).ok());
  auto publisher = coblk::ublk::ZramStatsPublisher::create(coblk::cmd::stats_path(6));
  BOOST_REQUIRE(publisher.ok());
  coblk::ublk::ZramStats z;
  z.disksize = 64 << 20;
  z.algorithm = "lz4";
  // The COMP-RATIO column of device 6's row, by the header's column.
  const auto ratio_column = [] {
    const Outcome o = run("stats");
    BOOST_TEST(o.status == 0);
    std::istringstream lines(o.out);
    std::string header;
    std::string row;
    std::getline(lines, header);
    std::getline(lines, row);
    std::istringstream h(header);
    std::istringstream v(row);
    std::string name;
    std::string value;
    while (h >> name && v >> value) {
      if (name == "COMP-RATIO") return value;
    }
    return std::string("(no COMP-RATIO column in: ") + o.out + ")";
  };
  (*publisher)->publish(z);
  BOOST_TEST(ratio_column() == "-");  // a new device
  z.mm.mem_used_total = 4096;         // every page discarded, one allocator page still held
  (*publisher)->publish(z);
  BOOST_TEST(ratio_column() == "-");
  z.mm.orig_data_size = 8192;
  (*publisher)->publish(z);
  BOOST_TEST(ratio_column() == "2.00");
  publisher->reset();
  coblk::cmd::remove_record(6);
  ::rmdir(run_dir.c_str());
}

BOOST_AUTO_TEST_CASE(stats_json_is_one_valid_object_per_device_with_kernel_zram_s_keys) {
  // A zram device as its server leaves it: a record and published stats
  // (the server's own writer), in the run directory run() points coblk at.
  const std::string run_dir = "/tmp/coblk-test-run-" + std::to_string(::getpid());
  ::setenv("COBLK_RUN_DIR", run_dir.c_str(), 1);
  coblk::cmd::DeviceRecord r;
  r.dev_id = 5;
  r.target = "zram";
  r.size_bytes = 64 << 20;
  r.compression = "zstd:3 \"quoted\\\n";  // escaping is the JSON library's job
  BOOST_REQUIRE(coblk::cmd::save_record(r).ok());
  auto publisher = coblk::ublk::ZramStatsPublisher::create(coblk::cmd::stats_path(5));
  BOOST_REQUIRE(publisher.ok());
  coblk::ublk::ZramStats z;
  z.disksize = 64 << 20;
  z.mm.orig_data_size = 12345;
  z.mm.mem_used_total = 4096;
  z.tier_state = coblk::ublk::TierState::failed;
  z.writeback_budget = 77;
  z.algorithm = "zstd";
  (*publisher)->publish(z);
  const Outcome o = run("stats --json");
  BOOST_TEST(o.status == 0);
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_REQUIRE_EQUAL(std::count(o.out.begin(), o.out.end(), '\n'), 1);
  const boost::json::object j = boost::json::parse(o.out).as_object();
  BOOST_TEST(j.at("dev_id").to_number<int>() == 5);
  BOOST_TEST(j.at("name").as_string() == "/dev/ublkb5");
  BOOST_TEST(j.at("compression").as_string() == r.compression);
  BOOST_TEST(j.at("size_bytes").to_number<std::uint64_t>() == 64U << 20);
  BOOST_TEST(j.at("orig_data_size").to_number<std::uint64_t>() == 12345U);
  BOOST_TEST(j.at("mem_used_total").to_number<std::uint64_t>() == 4096U);
  BOOST_TEST(j.at("tier_state").as_string() == "failed");
  BOOST_TEST(j.at("writeback_budget_pages").to_number<std::uint64_t>() == 77U);
  // Kernel zram's mm_stat and io_stat names, in their order, as before.
  const char* keys[] = {"dev_id",
                        "name",
                        "compression",
                        "size_bytes",
                        "disksize",
                        "orig_data_size",
                        "compr_data_size",
                        "mem_used_total",
                        "mem_limit",
                        "mem_used_max",
                        "same_pages",
                        "pages_compacted",
                        "huge_pages",
                        "huge_pages_since",
                        "failed_reads",
                        "failed_writes",
                        "invalid_io",
                        "notify_free",
                        "bd_count",
                        "bd_reads",
                        "bd_writes",
                        "backing_blocks",
                        "written_back_pages",
                        "backing_read_errors",
                        "backing_write_errors",
                        "backing_checksum_errors",
                        "recompressed_pages",
                        "readmitted_pages",
                        "staged_pages",
                        "tier_state",
                        "writeback_budget_pages"};
  BOOST_REQUIRE_EQUAL(j.size(), std::size(keys));
  size_t i = 0;
  for (const auto& member : j) BOOST_TEST(member.key() == keys[i++]);
  publisher->reset();
  coblk::cmd::remove_record(5);
  ::rmdir(run_dir.c_str());
}

BOOST_AUTO_TEST_CASE(stats_prints_the_columns_asked_for_raw_in_bytes_without_headings) {
  // As above: a record and the figures the server's own writer publishes.
  const std::string run_dir = "/tmp/coblk-test-run-" + std::to_string(::getpid());
  ::setenv("COBLK_RUN_DIR", run_dir.c_str(), 1);
  coblk::cmd::DeviceRecord r;
  r.dev_id = 6;
  r.target = "zram";
  r.queues = 2;
  r.size_bytes = 64 << 20;
  r.compression = "zstd";
  BOOST_REQUIRE(coblk::cmd::save_record(r).ok());
  auto publisher = coblk::ublk::ZramStatsPublisher::create(coblk::cmd::stats_path(6));
  BOOST_REQUIRE(publisher.ok());
  coblk::ublk::ZramStats z;
  z.disksize = 64 << 20;
  z.mm.orig_data_size = 12288;
  z.mm.mem_used_total = 4096;
  z.tier_state = coblk::ublk::TierState::failed;
  z.algorithm = "zstd";
  (*publisher)->publish(z);

  const Outcome o =
      run("stats -o NAME,DISKSIZE,DATA,total,ALGORITHM,COMP-RATIO,STREAMS,TIER,ID --raw --bytes --noheadings");
  BOOST_TEST(o.status == 0);
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_TEST(o.out == "/dev/ublkb6 67108864 12288 4096 zstd 3.00 2 failed 6\n");
  // The default table: zramctl's heading, and the tier's columns since the device has a tier.
  const Outcome table = run("stats -n 6");
  BOOST_TEST(table.status == 0);
  BOOST_TEST(table.out.find("NAME         DISKSIZE  DATA  COMPR  ALGORITHM  ZERO-PAGES  TOTAL  MEM-LIMIT  MEM-USED  "
                            "COMP-RATIO  WRITTEN-BACK  TIER\n/dev/ublkb6  64M       12K   0B     zstd") == 0U,
             table.out);
  publisher->reset();
  coblk::cmd::remove_record(6);
  ::rmdir(run_dir.c_str());
}
#endif

BOOST_AUTO_TEST_CASE(stats_table_options_refuse_bad_input_in_one_line_with_status_two) {
  expect_one_line_error(run("stats -o NAME,BOGUS"), "unknown column 'BOGUS' (valid: NAME, DISKSIZE,", 2);
  expect_one_line_error(run("stats -o ''"), "empty column name", 2);
  expect_one_line_error(run("stats -o NAME,,DATA"), "empty column name in 'NAME,,DATA'", 2);
  expect_one_line_error(run("stats -o NAME --output-all"), "mutually exclusive", 2);
  expect_one_line_error(run("stats --json --bytes"), "--bytes is a table option, not valid with --json", 2);
  expect_one_line_error(run("stats -o"), "stats --help", 2);
}

BOOST_AUTO_TEST_CASE(stats_for_scripts_prints_nothing_without_zram_devices) {
  for (const char* args : {"stats --raw", "stats --noheadings", "stats -o NAME --raw --noheadings"}) {
    const Outcome o = run(args);
    BOOST_TEST(o.status == 0, args);
    BOOST_TEST(o.out.empty(), args << ": " << o.out);
  }
}

// --- coblk metrics: bad input is one line and a non-zero status; good
// input serves until SIGTERM.

namespace {

// A TCP socket listening on 127.0.0.1:<port> (0: any); its fd.
int listen_on_loopback(unsigned short port = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  BOOST_REQUIRE(::listen(fd, 1) == 0);
  return fd;
}

unsigned short port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

}  // namespace

BOOST_AUTO_TEST_CASE(metrics_refuses_malformed_listen_addresses) {
  for (const char* a : {"127.0.0.1", "127.0.0.1:", ":9477", "127.0.0.1:65536", "127.0.0.1:http", "1.2.3:9477",
                        "::1:9477", "[::1]9477", "example.com:9477"}) {
    expect_one_line_error(run(std::string("metrics --listen '") + a + "'"), "--listen", 2);
  }
  expect_one_line_error(run("metrics --print --summary"), "exclude each other", 2);
}

BOOST_AUTO_TEST_CASE(metrics_refuses_other_than_loopback_unless_told) {
  expect_one_line_error(run("metrics --listen 0.0.0.0:0"), "add --listen-any", 2);
  expect_one_line_error(run("metrics --listen [::]:0"), "add --listen-any", 2);
}

BOOST_AUTO_TEST_CASE(metrics_on_a_busy_port_is_one_line_and_status_one) {
  const int taken = listen_on_loopback();
  const std::string where = "127.0.0.1:" + std::to_string(port_of(taken));
  expect_one_line_error(run("metrics --listen " + where), "cannot listen on " + where + ": the port is in use", 1);
  ::close(taken);
}

BOOST_AUTO_TEST_CASE(metrics_on_a_privileged_port_is_one_line_and_status_one) {
  // Ports below net.ipv4.ip_unprivileged_port_start need privilege; root
  // has it, so as root the exporter runs as nobody (setpriv, util-linux).
  unsigned start = 1024;
  std::ifstream("/proc/sys/net/ipv4/ip_unprivileged_port_start") >> start;
  if (start <= 1) {
    BOOST_TEST_MESSAGE("every port is unprivileged on this machine; nothing to check");
    return;
  }
  const unsigned port = start - 1;  // the highest privileged port
  std::string prefix;
  if (::geteuid() == 0) {
    if (std::system("setpriv --reuid=65534 --regid=65534 --clear-groups " COBLK_BINARY " --version >/dev/null 2>&1") !=
        0) {
      BOOST_TEST_MESSAGE("cannot run the binary as nobody (setpriv, or a directory nobody may not enter); skipped");
      return;
    }
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const std::string where = "127.0.0.1:" + std::to_string(port);
  const Outcome o = coblk::test::run_command(prefix + COBLK_BINARY + " metrics --listen " + where, "coblk-test-priv");
  expect_one_line_error(o, "cannot listen on " + where + ": permission denied", 1);
}

BOOST_AUTO_TEST_CASE(metrics_serves_on_a_free_port_until_sigterm) {
  int out[2];
  BOOST_REQUIRE(::pipe(out) == 0);
  const std::string run_dir = "/tmp/coblk-test-run-" + std::to_string(::getpid());
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::setenv("COBLK_RUN_DIR", run_dir.c_str(), 1);
    ::execl(COBLK_BINARY, COBLK_BINARY, "metrics", "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  // "coblk metrics: serving http://127.0.0.1:PORT/metrics"
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  const size_t colon = line.rfind(':');
  BOOST_TEST_REQUIRE(line.rfind("coblk metrics: serving http://127.0.0.1:", 0) == 0U, line);
  const auto port = static_cast<unsigned short>(std::stoul(line.substr(colon + 1)));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  BOOST_REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) > 0);
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  BOOST_TEST(response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0U, response);
  BOOST_TEST(response.find("coblk_exporter_devices 0\n") != std::string::npos, response);
  ::kill(child, SIGTERM);
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
}

// A config directory for `coblk up` / `coblk down` holding `text` as coblk.conf.
struct UpConfig {
  std::string dir = "/tmp/coblk-test-conf-" + std::to_string(::getpid());
  explicit UpConfig(const std::string& text) {
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/coblk.conf") << text;
  }
  ~UpConfig() {
    std::remove((dir + "/coblk.conf").c_str());
    ::rmdir(dir.c_str());
  }
  UpConfig(const UpConfig&) = delete;
  UpConfig& operator=(const UpConfig&) = delete;
};

BOOST_AUTO_TEST_CASE(up_refuses_bad_usage_and_bad_configs_in_one_line) {
  expect_one_line_error(run("up --foreground"), "--foreground serves one device: give its NAME", 2);
  expect_one_line_error(run("up a b"), "coblk up: ", 2);
  expect_one_line_error(run("down --frob"), "coblk down: ", 2);
  {
    const UpConfig c("[swap]\n\nfrob = 1\n");
    expect_one_line_error(run("up --config-dir " + c.dir), "coblk up: " + c.dir + "/coblk.conf:3: frob: unknown key",
                          2);
    expect_one_line_error(run("down --config-dir " + c.dir), c.dir + "/coblk.conf:3: frob: unknown key", 2);
  }
  {
    const UpConfig c("[swap]\nzram-size = 16\n");
    expect_one_line_error(run("up --config-dir " + c.dir + " other"), "no [other] in " + c.dir + "/coblk.conf", 1);
    // Without the ublk driver: the device's own line, status 1.
    expect_one_line_error(run("up --config-dir " + c.dir), "coblk up: swap: /nonexistent/ublk-control", 1);
  }
  expect_one_line_error(run("add -t null --name 'a b'"), "--name must be 1 to 64 letters", 2);
}

BOOST_AUTO_TEST_CASE(up_and_down_with_nothing_to_do_succeed) {
  const UpConfig empty("# nothing yet\n");
  const Outcome up = run("up --config-dir " + empty.dir);
  BOOST_TEST(up.status == 0);
  BOOST_TEST(up.out.find("no devices configured in " + empty.dir) == 0U, up.out);
  BOOST_TEST(up.err.empty(), up.err);
  const Outcome down = run("down --config-dir " + empty.dir + " swap");
  BOOST_TEST(down.status == 0);
  BOOST_TEST(down.err.empty(), down.err);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_coblk_binary_test
