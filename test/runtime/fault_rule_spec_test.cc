// Fault rule specs (runtime/fault_injection.h's parse_rule and
// arm_from_spec, which a test hands a program as COBLK_FAULTS): every field
// parses, anything else is refused with a message naming it, and a build
// without fault injection refuses to arm. Runs in every build.
#include <boost/test/unit_test.hpp>

#include <string>

#include "coblk/runtime/fault_injection.h"

BOOST_AUTO_TEST_SUITE(runtime_fault_rule_spec_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
namespace fault = runtime::fault;

BOOST_AUTO_TEST_CASE(a_site_alone_is_a_rule_with_the_default_fields) {
  fault::Rule rule;
  std::string error;
  BOOST_REQUIRE(fault::parse_rule("frame_alloc", rule, error));
  BOOST_TEST(static_cast<int>(rule.site) == static_cast<int>(fault::Site::frame_alloc));
  BOOST_TEST(rule.opcode == -1);
  BOOST_TEST(rule.skip == 0u);
  BOOST_TEST(rule.count == 1u);
  BOOST_TEST(rule.result == -5);
}

BOOST_AUTO_TEST_CASE(every_key_sets_its_field) {
  fault::Rule rule;
  std::string error;
  BOOST_REQUIRE(fault::parse_rule("io_result,opcode=46,skip=3,count=1000000,result=-22", rule, error));
  BOOST_TEST(static_cast<int>(rule.site) == static_cast<int>(fault::Site::io_result));
  BOOST_TEST(rule.opcode == 46);
  BOOST_TEST(rule.skip == 3u);
  BOOST_TEST(rule.count == 1000000u);
  BOOST_TEST(rule.result == -22);
  BOOST_REQUIRE(fault::parse_rule("store_publish,skip=1", rule, error));
  BOOST_TEST(static_cast<int>(rule.site) == static_cast<int>(fault::Site::store_publish));
  BOOST_REQUIRE(fault::parse_rule("queue_start,count=9223372036854775807", rule, error));
  BOOST_TEST(static_cast<int>(rule.site) == static_cast<int>(fault::Site::queue_start));
}

BOOST_AUTO_TEST_CASE(unknown_sites_keys_and_bad_values_are_refused_by_name) {
  fault::Rule rule;
  std::string error;
  BOOST_TEST(!fault::parse_rule("disk_on_fire", rule, error));
  BOOST_TEST(error.find("unknown fault site 'disk_on_fire'") != std::string::npos);
  BOOST_TEST(!fault::parse_rule("", rule, error));
  BOOST_TEST(error.find("unknown fault site ''") != std::string::npos);
  BOOST_TEST(!fault::parse_rule("io_result,colour=red", rule, error));
  BOOST_TEST(error.find("unknown fault rule key 'colour'") != std::string::npos);
  for (const char* bad :
       {"io_result,skip=", "io_result,skip=-1", "io_result,count=1x", "io_result,opcode=256", "io_result,opcode=-2",
        "io_result,result=", "io_result,skip", "io_result,count=9223372036854775808"}) {
    BOOST_TEST_CONTEXT(bad) {
      BOOST_TEST(!fault::parse_rule(bad, rule, error));
      BOOST_TEST(error.find("bad value") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(arming_from_a_spec_needs_a_build_with_fault_injection) {
  std::string error;
  if (!fault::available()) {
    BOOST_TEST(!fault::arm_from_spec("frame_alloc", error));
    BOOST_TEST(error.find("no fault injection") != std::string::npos);
    return;
  }
  BOOST_TEST(fault::arm_from_spec("io_result,opcode=0,count=0;frame_alloc,count=0", error));
  BOOST_TEST(!fault::arm_from_spec("io_result;wakeup,opcode=x", error));
  BOOST_TEST(error.find("bad value 'x'") != std::string::npos);
  fault::clear();
}

BOOST_AUTO_TEST_SUITE_END()
