// Device::create refuses, before it asks the kernel anything, what the
// kernel would refuse or silently drop (no ublk driver needed).
#include <boost/test/unit_test.hpp>

#include "coblk/ublk/device.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(ublk_device_config_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(an_unprivileged_device_is_refused_the_user_copy_and_zero_copy_paths_before_the_kernel_is_asked) {
  for (const ublk::DataPath path : {ublk::DataPath::user_copy, ublk::DataPath::zero_copy}) {
    ublk::DeviceConfig config;
    config.unprivileged = true;
    config.data_path = path;
    BOOST_TEST(test::require_error(ublk::Device::create(config), EINVAL) ==
               "an unprivileged device can only use the copy data path: the kernel refuses user copy and zero copy "
               "for it");
  }
}

BOOST_AUTO_TEST_CASE(an_unprivileged_device_is_refused_recovery_which_the_kernel_would_drop) {
  ublk::DeviceConfig config;
  config.unprivileged = true;
  config.recovery = true;
  BOOST_TEST(test::require_error(ublk::Device::create(config), EINVAL) ==
             "the kernel offers no user recovery for unprivileged devices");
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_device_config_test
