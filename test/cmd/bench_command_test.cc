// `coblk bench` on bad input, through the built executable: each case is
// one line on stderr and a non-zero exit, before any device is made, and
// no report file is left behind.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

BOOST_AUTO_TEST_SUITE(cmd_bench_command_test)

namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string scratch() { return "/tmp/coblk-bench-test-" + std::to_string(::getpid()); }

// Runs `coblk bench ARGS` with the reports going to the scratch directory
// unless ARGS say otherwise, and the control device at `control`.
Outcome bench(const std::string& args, const std::string& control = "/nonexistent/ublk-control") {
  const std::string dir = scratch();
  ::mkdir(dir.c_str(), 0755);
  std::string outputs;
  if (args.find("--json") == std::string::npos) outputs += " --json " + dir + "/r.json";
  if (args.find("--html") == std::string::npos) outputs += " --html " + dir + "/r.html";
  const std::string cmd = "COBLK_CONTROL_PATH=" + control + " " + COBLK_BINARY + " bench" + outputs + " " + args +
                          " >" + dir + "/out 2>" + dir + "/err </dev/null";
  const int raw = std::system(cmd.c_str());  // NOLINT(cert-env33-c): the program under test
  Outcome o;
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = slurp(dir + "/out");
  o.err = slurp(dir + "/err");
  return o;
}

bool one_line(const std::string& s) { return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1; }

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Checks the outcome: `status`, one stderr line containing `words`, no report.
void expect_refusal(const Outcome& o, int status, const std::string& words) {
  BOOST_TEST_INFO("stderr: " << o.err);
  BOOST_TEST(o.status == status);
  BOOST_TEST(one_line(o.err));
  BOOST_TEST(o.err.rfind("coblk bench: ", 0) == 0U);
  BOOST_TEST(o.err.find(words) != std::string::npos);
  BOOST_TEST(!exists(scratch() + "/r.json"));
  BOOST_TEST(!exists(scratch() + "/r.html"));
}

struct CleanScratch {
  CleanScratch() = default;
  ~CleanScratch() { std::system(("rm -rf " + scratch()).c_str()); }  // NOLINT(cert-env33-c): a fixed path
  CleanScratch(const CleanScratch&) = delete;
  CleanScratch& operator=(const CleanScratch&) = delete;
};

BOOST_FIXTURE_TEST_SUITE(bench_command, CleanScratch)

BOOST_AUTO_TEST_CASE(an_unknown_workload_is_a_usage_error_naming_it) {
  expect_refusal(bench("-w randread_4k_qd32,randread_8k"), 2, "unknown workload 'randread_8k'");
}

BOOST_AUTO_TEST_CASE(an_unknown_target_is_a_usage_error_naming_it) {
  expect_refusal(bench("-t null,nbd"), 2, "unknown target 'nbd'");
}

BOOST_AUTO_TEST_CASE(zero_rounds_is_a_usage_error) { expect_refusal(bench("--rounds 0"), 2, "--rounds must be"); }

BOOST_AUTO_TEST_CASE(a_zero_runtime_is_a_usage_error) { expect_refusal(bench("--runtime 0"), 2, "--runtime must be"); }

BOOST_AUTO_TEST_CASE(a_size_that_is_not_whole_mebibytes_is_a_usage_error) {
  expect_refusal(bench("--size 1500K"), 2, "--size must be");
  expect_refusal(bench("--size lots"), 2, "--size");
}

BOOST_AUTO_TEST_CASE(an_unwritable_output_path_is_refused_before_anything_runs) {
  const Outcome o = bench("--json /nonexistent-dir/r.json");
  BOOST_TEST(o.status == 1);
  BOOST_TEST(one_line(o.err));
  BOOST_TEST(o.err.find("cannot write /nonexistent-dir/r.json") != std::string::npos, o.err);
  // A directory cannot take a report either.
  expect_refusal(bench("--html /tmp"), 1, "cannot write /tmp");
}

BOOST_AUTO_TEST_CASE(missing_fio_is_named) {
  expect_refusal(bench("--fio /nonexistent/fio"), 1, "/nonexistent/fio is not installed");
}

BOOST_AUTO_TEST_CASE(a_kernel_without_the_ublk_driver_is_named) {
  expect_refusal(bench("--fio /bin/true"), 1, "ublk driver is not loaded");
}

BOOST_AUTO_TEST_CASE(help_lists_the_options_and_succeeds) {
  const Outcome o = bench("--help");
  BOOST_TEST(o.status == 0);
  for (const char* word :
       {"--targets", "--workloads", "--rounds", "--runtime", "--json", "--html", "randread_4k_qd1"}) {
    BOOST_TEST(o.out.find(word) != std::string::npos, word);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace

BOOST_AUTO_TEST_SUITE_END()  // cmd_bench_command_test
