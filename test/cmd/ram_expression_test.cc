// zram-generator's zram-size arithmetic: evaluate_ram_expression.
#include <boost/test/unit_test.hpp>
#include <string>

#include "coblk/cmd/ram_expression.h"

BOOST_AUTO_TEST_SUITE(cmd_ram_expression_test)

using coblk::cmd::evaluate_ram_expression;

namespace {

double value(const std::string& text, double ram = 2048) {
  const auto v = evaluate_ram_expression(text, ram);
  BOOST_REQUIRE_MESSAGE(v, text << ": " << (v ? std::string() : v.error().message()));
  return *v;
}

// Expects a rejection whose one-line message contains `needle`.
void expect_rejected(const std::string& text, const std::string& needle) {
  const auto v = evaluate_ram_expression(text, 2048);
  BOOST_TEST(!v, "accepted: " << text);
  if (v) return;
  BOOST_TEST(v.error().message().find(needle) != std::string::npos, "error was: " << v.error().message());
  BOOST_TEST(v.error().message().find('\n') == std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(zram_generators_default_is_half_the_ram_up_to_4096_mib) {
  BOOST_TEST(value("min(ram / 2, 4096)", 1024) == 512);
  BOOST_TEST(value("min(ram / 2, 4096)", 16384) == 4096);
}

BOOST_AUTO_TEST_CASE(its_piecewise_example_gives_the_documented_sizes) {
  const std::string piecewise = "min(min(ram, 4096) + max(ram - 4096, 0) / 2, 32 * 1024)";
  BOOST_TEST(value(piecewise, 1024) == 1024);
  BOOST_TEST(value(piecewise, 8192) == 6144);
  BOOST_TEST(value(piecewise, 65536) == 32768);
}

BOOST_AUTO_TEST_CASE(operators_follow_the_usual_precedence) {
  BOOST_TEST(value("1 + 2 * 3") == 7);
  BOOST_TEST(value("(1 + 2) * 3") == 9);
  BOOST_TEST(value("10 - 4 - 3") == 3);
  BOOST_TEST(value("64 / 4 / 2") == 8);
  BOOST_TEST(value("10 % 4") == 2);
  BOOST_TEST(value("2 ^ 3 ^ 2") == 512);  // right-associative
  BOOST_TEST(value("-2 ^ 2") == -4);      // power before unary minus
  BOOST_TEST(value("--3") == 3);
  BOOST_TEST(value("0.25 * ram", 4000) == 1000);
  BOOST_TEST(value(" ram ", 123) == 123);
}

BOOST_AUTO_TEST_CASE(functions_round_and_clamp_as_named) {
  BOOST_TEST(value("floor(2.7)") == 2);
  BOOST_TEST(value("ceil(2.1)") == 3);
  BOOST_TEST(value("round(2.5)") == 3);
  BOOST_TEST(value("round(-2.5)") == -3);
  BOOST_TEST(value("int(-2.7)") == -2);
  BOOST_TEST(value("abs(-5)") == 5);
  BOOST_TEST(value("log(1000)") == 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(value("log(2, 1024)") == 10, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(value("max(1, 7, 3)") == 7);
  BOOST_TEST(value("min(5)") == 5);
  BOOST_TEST(value("e") == 2.718281828459045, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(value("pi") == 3.141592653589793, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(malformed_expressions_are_one_line_naming_the_column) {
  expect_rejected("", "missing a value at column 1");
  expect_rejected("ram /", "missing a value");
  expect_rejected("min(ram, 4", "missing ')'");
  expect_rejected("(1 + 2", "missing ')' at column 7");
  expect_rejected("1 + 2)", "unexpected ')' at column 6");
  expect_rejected("4G", "the value is in MiB");
  expect_rejected("ram / 2k", "the value is in MiB");
  expect_rejected("mem / 2", "unknown name 'mem'");
  expect_rejected("sin(ram)", "unknown function 'sin()'");
  expect_rejected("abs(1, 2)", "abs() takes 1 argument, not 2");
  expect_rejected("min()", "min() needs at least one argument");
  expect_rejected("ram / 0", "division by zero");
  expect_rejected("ram % (1 - 1)", "division by zero");
  expect_rejected("10 ^ 400", "not a finite number");
  expect_rejected("1 $ 2", "unexpected '$'");
  expect_rejected(".", "malformed number");
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_not_a_stack_overflow) {
  // Built with append, not operator+: g++ 12 at -O2 reports a false
  // -Warray-bounds in the inlined concatenation of such strings.
  std::string parentheses(100000, '(');
  parentheses.append("1").append(100000, ')');
  expect_rejected(parentheses, "nested too deeply");
  std::string minuses(100000, '-');
  minuses.append("1");
  expect_rejected(minuses, "nested too deeply");
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_ram_expression_test
