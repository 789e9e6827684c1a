// ublk::abi against the kernel's own header: the build host's
// <linux/ublk_cmd.h> (Linux 6.1) must agree on everything it knows, and the
// ioctl numbers must match what _IOR/_IOWR compute.
#include <linux/ioctl.h>
#include <linux/ublk_cmd.h>

#include <boost/test/unit_test.hpp>
#include <cstddef>

#include "coblk/ublk/abi.h"

BOOST_AUTO_TEST_SUITE(ublk_abi_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace uabi = ublk::abi;

BOOST_AUTO_TEST_CASE(structures_have_the_kernels_sizes) {
  BOOST_TEST(sizeof(uabi::ublksrv_ctrl_cmd) == sizeof(::ublksrv_ctrl_cmd));
  BOOST_TEST(sizeof(uabi::ublksrv_ctrl_dev_info) == sizeof(::ublksrv_ctrl_dev_info));
  BOOST_TEST(sizeof(uabi::ublksrv_io_desc) == sizeof(::ublksrv_io_desc));
  BOOST_TEST(sizeof(uabi::ublksrv_io_cmd) == sizeof(::ublksrv_io_cmd));
  BOOST_TEST(sizeof(uabi::ublk_param_basic) == sizeof(::ublk_param_basic));
  BOOST_TEST(sizeof(uabi::ublk_param_discard) == sizeof(::ublk_param_discard));
}

BOOST_AUTO_TEST_CASE(fields_sit_at_the_kernels_offsets) {
  BOOST_TEST(offsetof(uabi::ublksrv_ctrl_cmd, data) == offsetof(::ublksrv_ctrl_cmd, data));
  // Linux 6.2 carved dev_path_len/pad/reserved out of 6.1's data[1].
  BOOST_TEST(offsetof(uabi::ublksrv_ctrl_cmd, dev_path_len) == offsetof(::ublksrv_ctrl_cmd, data) + 8);
  BOOST_TEST(offsetof(uabi::ublksrv_ctrl_dev_info, flags) == offsetof(::ublksrv_ctrl_dev_info, flags));
  // ... and owner_uid/owner_gid out of 6.1's reserved0.
  BOOST_TEST(offsetof(uabi::ublksrv_ctrl_dev_info, owner_uid) == offsetof(::ublksrv_ctrl_dev_info, reserved0));
  BOOST_TEST(offsetof(uabi::ublksrv_io_desc, start_sector) == offsetof(::ublksrv_io_desc, start_sector));
  BOOST_TEST(offsetof(uabi::ublksrv_io_cmd, addr) == offsetof(::ublksrv_io_cmd, addr));
  BOOST_TEST(offsetof(uabi::ublk_param_basic, dev_sectors) == offsetof(::ublk_param_basic, dev_sectors));
  BOOST_TEST(offsetof(uabi::ublk_param_discard, max_discard_segments) ==
             offsetof(::ublk_param_discard, max_discard_segments));
  BOOST_TEST(offsetof(uabi::ublk_params, discard) == offsetof(::ublk_params, discard));
}

BOOST_AUTO_TEST_CASE(legacy_opcodes_match_the_kernel_header) {
  BOOST_TEST(uabi::CMD_GET_DEV_INFO == UBLK_CMD_GET_DEV_INFO);
  BOOST_TEST(uabi::CMD_ADD_DEV == UBLK_CMD_ADD_DEV);
  BOOST_TEST(uabi::CMD_DEL_DEV == UBLK_CMD_DEL_DEV);
  BOOST_TEST(uabi::CMD_START_DEV == UBLK_CMD_START_DEV);
  BOOST_TEST(uabi::CMD_STOP_DEV == UBLK_CMD_STOP_DEV);
  BOOST_TEST(uabi::CMD_SET_PARAMS == UBLK_CMD_SET_PARAMS);
  BOOST_TEST(uabi::CMD_GET_PARAMS == UBLK_CMD_GET_PARAMS);
  BOOST_TEST(uabi::CMD_START_USER_RECOVERY == UBLK_CMD_START_USER_RECOVERY);
  BOOST_TEST(uabi::CMD_END_USER_RECOVERY == UBLK_CMD_END_USER_RECOVERY);
  BOOST_TEST(uabi::IO_FETCH_REQ == UBLK_IO_FETCH_REQ);
  BOOST_TEST(uabi::IO_COMMIT_AND_FETCH_REQ == UBLK_IO_COMMIT_AND_FETCH_REQ);
  BOOST_TEST(uabi::IO_NEED_GET_DATA == UBLK_IO_NEED_GET_DATA);
}

BOOST_AUTO_TEST_CASE(ioctl_encoded_opcodes_match_the_ioctl_macros) {
  BOOST_TEST(uabi::U_CMD_GET_DEV_INFO == _IOR('u', 0x02, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_ADD_DEV == _IOWR('u', 0x04, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_DEL_DEV == _IOWR('u', 0x05, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_START_DEV == _IOWR('u', 0x06, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_STOP_DEV == _IOWR('u', 0x07, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_SET_PARAMS == _IOWR('u', 0x08, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_GET_PARAMS == _IOR('u', 0x09, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_GET_DEV_INFO2 == _IOR('u', 0x12, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_GET_FEATURES == _IOR('u', 0x13, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_DEL_DEV_ASYNC == _IOR('u', 0x14, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_UPDATE_SIZE == _IOWR('u', 0x15, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_CMD_QUIESCE_DEV == _IOWR('u', 0x16, uabi::ublksrv_ctrl_cmd));
  BOOST_TEST(uabi::U_IO_FETCH_REQ == _IOWR('u', 0x20, uabi::ublksrv_io_cmd));
  BOOST_TEST(uabi::U_IO_COMMIT_AND_FETCH_REQ == _IOWR('u', 0x21, uabi::ublksrv_io_cmd));
  BOOST_TEST(uabi::U_IO_REGISTER_IO_BUF == _IOWR('u', 0x23, uabi::ublksrv_io_cmd));
  BOOST_TEST(uabi::U_IO_UNREGISTER_IO_BUF == _IOWR('u', 0x24, uabi::ublksrv_io_cmd));
  BOOST_TEST(uabi::ioc_nr(uabi::U_CMD_START_DEV) == uabi::CMD_START_DEV);
}

BOOST_AUTO_TEST_CASE(old_feature_bits_and_constants_match_the_kernel_header) {
  BOOST_TEST(uabi::F_SUPPORT_ZERO_COPY == UBLK_F_SUPPORT_ZERO_COPY);
  BOOST_TEST(uabi::F_URING_CMD_COMP_IN_TASK == UBLK_F_URING_CMD_COMP_IN_TASK);
  BOOST_TEST(uabi::F_NEED_GET_DATA == UBLK_F_NEED_GET_DATA);
  BOOST_TEST(uabi::F_USER_RECOVERY == UBLK_F_USER_RECOVERY);
  BOOST_TEST(uabi::F_USER_RECOVERY_REISSUE == UBLK_F_USER_RECOVERY_REISSUE);
  BOOST_TEST(uabi::SRV_IO_BUF_OFFSET == UBLKSRV_IO_BUF_OFFSET);
  BOOST_TEST(uabi::MAX_QUEUE_DEPTH == UBLK_MAX_QUEUE_DEPTH);
  BOOST_TEST(uabi::IO_RES_ABORT == UBLK_IO_RES_ABORT);
  BOOST_TEST(uabi::IO_OP_WRITE_ZEROES == UBLK_IO_OP_WRITE_ZEROES);
  BOOST_TEST(uabi::IO_F_FUA == UBLK_IO_F_FUA);
  BOOST_TEST(uabi::IO_F_NOUNMAP == UBLK_IO_F_NOUNMAP);
  BOOST_TEST(uabi::S_DEV_QUIESCED == UBLK_S_DEV_QUIESCED);
  BOOST_TEST(uabi::PARAM_TYPE_DISCARD == UBLK_PARAM_TYPE_DISCARD);
  BOOST_TEST(uabi::ATTR_VOLATILE_CACHE == UBLK_ATTR_VOLATILE_CACHE);
}

BOOST_AUTO_TEST_CASE(user_copy_offsets_put_queue_and_tag_in_their_bit_fields) {
  BOOST_TEST(uabi::user_copy_offset(0, 0) == uabi::SRV_IO_BUF_OFFSET);
  BOOST_TEST(uabi::user_copy_offset(0, 1) == uabi::SRV_IO_BUF_OFFSET + (1ULL << 25));
  BOOST_TEST(uabi::user_copy_offset(1, 0) == uabi::SRV_IO_BUF_OFFSET + (1ULL << 41));
  BOOST_TEST(uabi::user_copy_offset(3, 5, 4096) ==
             uabi::SRV_IO_BUF_OFFSET + (3ULL << uabi::QID_OFF) + (5ULL << uabi::TAG_OFF) + 4096);
  // The largest queue and tag stay below the integrity flag bit.
  BOOST_TEST(uabi::user_copy_offset(4095, 65535, (1U << 25) - 1) < uabi::SRV_IO_INTEGRITY_FLAG);
}

BOOST_AUTO_TEST_CASE(auto_buf_reg_packs_index_and_flags_like_the_kernel_unpacks_them) {
  uabi::ublk_auto_buf_reg reg{};
  reg.index = 0x1234;
  reg.flags = uabi::AUTO_BUF_REG_FALLBACK;
  const uint64_t addr = uabi::auto_buf_reg_to_sqe_addr(reg);
  BOOST_TEST(static_cast<uint16_t>(addr) == 0x1234);
  BOOST_TEST(static_cast<uint8_t>(addr >> 16) == uabi::AUTO_BUF_REG_FALLBACK);
  BOOST_TEST((addr >> 24) == 0U);
}

BOOST_AUTO_TEST_CASE(a_descriptor_splits_op_and_flags) {
  uabi::ublksrv_io_desc d{};
  d.op_flags = uabi::IO_OP_WRITE | uabi::IO_F_FUA;
  BOOST_TEST(uabi::get_op(d) == uabi::IO_OP_WRITE);
  BOOST_TEST(uabi::get_flags(d) == (uabi::IO_F_FUA >> 8));
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_abi_test
