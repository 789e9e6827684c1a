// The built `coblk` executable: exit statuses and one-line errors.
#define BOOST_TEST_MODULE cmd_coblk_binary
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <string>

namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    std::fclose(f);
  }
  return s;
}

// Runs coblk with `args` through the shell, the control path pointed at
// `control` (absent by default, as on a machine without ublk_drv).
Outcome run(const std::string& args, const std::string& control = "/nonexistent/ublk-control") {
  const std::string out_file = "/tmp/coblk-test-out-" + std::to_string(::getpid());
  const std::string err_file = "/tmp/coblk-test-err-" + std::to_string(::getpid());
  const std::string cmd = "COBLK_CONTROL_PATH=" + control + " COBLK_RUN_DIR=/tmp/coblk-test-run-" +
                          std::to_string(::getpid()) + " " + COBLK_BINARY + " " + args + " >" + out_file + " 2>" +
                          err_file + " </dev/null";
  const int raw = std::system(cmd.c_str());
  Outcome o;
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = slurp(out_file);
  o.err = slurp(err_file);
  std::remove(out_file.c_str());
  std::remove(err_file.c_str());
  return o;
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
  for (const char* c : {"add", "del", "list", "features", "recover", "stats"}) {
    BOOST_TEST(o.out.find(c) != std::string::npos);
  }
  BOOST_TEST(o.err.empty());
}

BOOST_AUTO_TEST_CASE(version_prints_the_project_version_and_succeeds) {
  for (const char* flag : {"--version", "-V", "version"}) {
    const Outcome o = run(flag);
    BOOST_TEST(o.status == 0, flag);
    BOOST_TEST(o.out.rfind("coblk ", 0) == 0u, flag << ": " << o.out);
    BOOST_TEST(o.out.find('.') != std::string::npos, flag << ": " << o.out);
    BOOST_TEST(o.err.empty(), flag);
  }
}

BOOST_AUTO_TEST_CASE(every_command_has_help) {
  for (const char* c : {"add", "del", "list", "features", "recover", "stats"}) {
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
  for (const char* c : {"features", "list", "add -t null", "del -n 0", "recover -n 0"}) {
    const Outcome o = run(c);
    expect_one_line_error(o, "modprobe ublk_drv", 1);
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
