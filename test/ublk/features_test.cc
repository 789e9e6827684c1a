#include <boost/test/unit_test.hpp>

#include "coblk/ublk/abi.h"
#include "coblk/ublk/features.h"

BOOST_AUTO_TEST_SUITE(ublk_features_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(every_known_feature_is_one_distinct_bit_in_order) {
  uint64_t seen = 0;
  uint64_t previous = 0;
  for (const auto& f : ublk::known_features()) {
    BOOST_TEST((f.bit & (f.bit - 1)) == 0U);
    BOOST_TEST((seen & f.bit) == 0U);
    BOOST_TEST(f.bit > previous);
    BOOST_TEST(!f.name.empty());
    seen |= f.bit;
    previous = f.bit;
  }
  BOOST_TEST(seen == (ublk::abi::F_SHMEM_ZC << 1) - 1);
}

BOOST_AUTO_TEST_CASE(a_mask_is_described_by_names_and_unknown_bits_by_number) {
  using namespace ublk::abi;  // NOLINT(google-build-using-namespace): a program file, not a library
  BOOST_TEST(ublk::describe_features(0) == "none");
  BOOST_TEST(ublk::describe_features(F_USER_COPY | F_CMD_IOCTL_ENCODE) == "CMD_IOCTL_ENCODE|USER_COPY");
  BOOST_TEST(ublk::describe_features(F_ZONED | (1ULL << 40)) == "ZONED|bit40");
}

BOOST_AUTO_TEST_CASE(device_states_have_names) {
  BOOST_TEST(ublk::device_state_name(ublk::abi::S_DEV_LIVE) == "live");
  BOOST_TEST(ublk::device_state_name(ublk::abi::S_DEV_QUIESCED) == "quiesced");
  BOOST_TEST(ublk::device_state_name(77) == "unknown");
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_features_test
