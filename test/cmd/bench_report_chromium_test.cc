// `coblk bench`'s HTML report opened in a real browser: headless chromium
// parses it (offline, from a file:// URL) and dumps its DOM, in which every
// plot and its data elements must be where the page put them, and every
// number must equal the JSON report's. Skipped (exit 77) without chromium;
// setup.sh installs it.
#define BOOST_TEST_MODULE cmd_bench_report_chromium
#define BOOST_TEST_NO_MAIN
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "coblk/cmd/bench_fio.h"
#include "coblk/cmd/bench_html.h"
#include "coblk/cmd/bench_report.h"
#include "test/cmd/bench_report_checks.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A scratch directory of this test, removed at the end.
struct Scratch {
  std::string dir;
  Scratch() {
    char path[] = "/tmp/coblk-bench-chromium.XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(path) != nullptr);
    dir = path;
  }
  ~Scratch() { std::system(("rm -rf '" + dir + "'").c_str()); }  // NOLINT(cert-env33-c): a fixed, quoted path
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// Chromium's DOM of `html_path`, after it parsed the page; chromium's
// profile goes in `scratch` and nothing reaches the network (a file:// URL
// of a page without external references).
std::string chromium_dom(const Scratch& scratch, const std::string& html_path) {
  const std::string out = scratch.dir + "/dom.html";
  const std::string cmd =
      "timeout 120 chromium --headless --disable-gpu --no-sandbox --no-first-run "
      "--user-data-dir='" +
      scratch.dir + "/profile' --dump-dom 'file://" + html_path + "' >'" + out + "' 2>'" + scratch.dir +
      "/chromium.err'";
  const int rc = std::system(cmd.c_str());  // NOLINT(cert-env33-c): the browser under test
  if (rc != 0) std::cerr << slurp(scratch.dir + "/chromium.err");
  BOOST_TEST_REQUIRE(rc == 0);
  return slurp(out);
}

BOOST_AUTO_TEST_CASE(chromium_parses_the_report_with_every_plot_and_the_numbers_of_the_json) {
  const Scratch scratch;
  const coblk::cmd::BenchReport report = coblk::cmd::test::synthetic_report();
  const std::string html = coblk::cmd::render_bench_html(report);
  const std::string json_text = coblk::cmd::report_json_text(report);
  {
    std::ofstream(scratch.dir + "/report.html") << html;
    std::ofstream(scratch.dir + "/report.json") << json_text;
  }
  const std::string dom = chromium_dom(scratch, scratch.dir + "/report.html");
  BOOST_TEST_REQUIRE(!dom.empty());
  // The numbers are read back from the JSON file, as a reader would.
  const boost::json::value json = boost::json::parse(slurp(scratch.dir + "/report.json"));
  coblk::cmd::test::check_html_matches_json(dom, json);

  // The parser kept the page's structure: as many elements of each kind as
  // were written (its error recovery moves or drops misplaced ones), the
  // four plots inside the body, the summary cells inside their table.
  for (const char* tag : {"<svg ", "<rect ", "<circle ", "<line ", "<text ", "<table ", "<tr", "<td", "<h2>"}) {
    BOOST_TEST_INFO(tag);
    BOOST_TEST(coblk::cmd::test::count_of(dom, tag) == coblk::cmd::test::count_of(html, tag));
  }
  const std::size_t body = dom.find("<body>");
  BOOST_TEST_REQUIRE(body != std::string::npos);
  BOOST_TEST(dom.find("<svg id=\"plot-iops\"") > body);
  const std::size_t table = dom.find("<table id=\"summary\">");
  const std::size_t table_end = dom.find("</table>", table);
  BOOST_TEST_REQUIRE(table != std::string::npos);
  for (std::size_t i = 0; i < report.series.size(); ++i) {
    const std::size_t cell = dom.find("id=\"s" + std::to_string(i) + "-ratio\"");
    BOOST_TEST((cell > table && cell < table_end));
  }
  // Escaped text came through as text.
  BOOST_TEST(dom.find("test&lt;host&gt; &amp; \"quoted\" 'name'") != std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
  if (coblk::cmd::find_program("chromium").empty()) {
    std::cout << "SKIP: chromium is not installed (setup.sh installs it)\n";
    return 77;
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
