// The main() of every Boost.Test program that coblk_add_test builds
// (test/CMakeLists.txt), compiled once per build instead of once per test.
//
// Why not BOOST_TEST_MODULE in each test file: that macro makes
// <boost/test/unit_test.hpp> define main() in the file that includes it, so
// the header has to be compiled in full, with the macro set, in every test.
// Without it the header is the same everywhere, and the build precompiles
// it once (target_precompile_headers), which saves about a second of
// compile time per test file in each of the suite's three builds.
//
// The master test suite is named after the program (argv[0]'s last
// component, `storage_tests` say), and each test file's suite after its
// CTest test, so the log lines `Entering test suite "storage_tests"` and
// `Entering test suite "storage_crash_point_test"` say what ran.
#include <boost/test/unit_test.hpp>
#include <string>

namespace {

// Boost.Test's initialization function: names the master suite; the test
// cases registered themselves (BOOST_AUTO_TEST_CASE) before main() ran.
bool name_master_suite() {
  boost::unit_test::master_test_suite_t& suite = boost::unit_test::framework::master_test_suite();
  if (suite.argc > 0 && suite.argv[0] != nullptr) {
    const std::string program = suite.argv[0];
    suite.p_name.value = program.substr(program.find_last_of('/') + 1);
  }
  return true;
}

}  // namespace

int main(int argc, char* argv[]) { return boost::unit_test::unit_test_main(&name_master_suite, argc, argv); }
