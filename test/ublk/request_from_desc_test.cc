// ublk::request_from_desc: what Queue::handle makes of a descriptor.
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdint>

#include "coblk/ublk/request_from_desc.h"

BOOST_AUTO_TEST_SUITE(ublk_request_from_desc_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

ublk::abi::ublksrv_io_desc desc(uint32_t op_flags, uint64_t start_sector, uint32_t nr_sectors) {
  ublk::abi::ublksrv_io_desc d{};
  d.op_flags = op_flags;
  d.start_sector = start_sector;
  d.nr_sectors = nr_sectors;
  return d;
}

constexpr uint32_t kMaxIo = 512 * 1024;

}  // namespace

BOOST_AUTO_TEST_CASE(a_descriptor_becomes_a_request_in_bytes_on_its_queue_and_tag) {
  ublk::Request r;
  const uint32_t op_flags = ublk::abi::IO_OP_WRITE | ublk::abi::IO_F_FUA;
  BOOST_TEST(ublk::request_from_desc(desc(op_flags, 16, 8), 3, 17, kMaxIo, r) == 0);
  BOOST_TEST(r.op == ublk::abi::IO_OP_WRITE);
  BOOST_TEST(r.flags == op_flags);
  BOOST_TEST(r.offset == 16U * 512);
  BOOST_TEST(r.length == 8U * 512);
  BOOST_TEST(r.queue == 3);
  BOOST_TEST(r.tag == 17);
  BOOST_TEST(r.data == nullptr);  // the data path's business
  BOOST_TEST(r.fixed_buffer == -1);
}

BOOST_AUTO_TEST_CASE(a_read_or_write_longer_than_the_tag_buffer_is_refused) {
  ublk::Request r;
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_READ, 0, kMaxIo / 512), 0, 0, kMaxIo, r) == 0);
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_READ, 0, kMaxIo / 512 + 1), 0, 0, kMaxIo, r) == -EIO);
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_WRITE, 0, kMaxIo / 512 + 1), 0, 0, kMaxIo, r) == -EIO);
  // A discard moves no data through the tag buffer.
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_DISCARD, 0, 1 << 20), 0, 0, kMaxIo, r) == 0);
  BOOST_TEST(r.length == (1U << 20) * 512);
}

// Found by test/fuzz (fuzz_ublk_desc): the byte offset and length were the
// sector numbers shifted, so ranges beyond 2^64 bytes (or lengths beyond
// 2^32) wrapped into small, valid-looking ones that targets then served.
BOOST_AUTO_TEST_CASE(a_sector_range_that_bytes_cannot_express_is_refused_not_wrapped) {
  ublk::Request r;
  for (const auto& d : {desc(ublk::abi::IO_OP_READ, uint64_t{1} << 55, 8),           // offset wraps to 0
                        desc(ublk::abi::IO_OP_DISCARD, (uint64_t{1} << 55) - 1, 2),  // the end wraps
                        desc(ublk::abi::IO_OP_DISCARD, 0, (1U << 23) + 8),           // the length wraps to 4096
                        desc(ublk::abi::IO_OP_READ, 0, UINT32_MAX)}) {
    BOOST_TEST_CONTEXT("start " << d.start_sector << ", " << d.nr_sectors << " sectors") {
      BOOST_TEST(ublk::request_from_desc(d, 0, 0, UINT32_MAX, r) == -EIO);
    }
  }
  // A FLUSH carries no range: the kernel passes the flush request's initial
  // sector, (sector_t)-1, and that must not fail it (the VM's mkfs and
  // fsync caught a version of this function that refused it).
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_FLUSH, UINT64_MAX, 0), 0, 0, kMaxIo, r) == 0);
  BOOST_TEST(r.offset == 0u);
  BOOST_TEST(r.length == 0u);
  // The largest expressible ones are fine: offset + length must fit 64 bits.
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_DISCARD, 0, (1U << 23) - 1), 0, 0, kMaxIo, r) == 0);
  BOOST_TEST(r.length == UINT32_MAX - 511);
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_DISCARD, (uint64_t{1} << 55) - 2, 1), 0, 0, kMaxIo, r) == 0);
  BOOST_TEST(r.offset == UINT64_MAX - 1023);
  BOOST_TEST(ublk::request_from_desc(desc(ublk::abi::IO_OP_FLUSH, (uint64_t{1} << 55) - 1, 0), 0, 0, kMaxIo, r) == 0);
}

BOOST_AUTO_TEST_CASE(a_read_or_write_that_moved_other_than_its_length_fails_with_eio) {
  for (const uint8_t op : {ublk::abi::IO_OP_READ, ublk::abi::IO_OP_WRITE}) {
    ublk::Request r;
    r.op = op;
    r.length = 8192;
    BOOST_TEST(ublk::result_for_kernel(r, 8192) == 8192);
    BOOST_TEST(ublk::result_for_kernel(r, -ENOSPC) == -ENOSPC);
    // 0 would requeue a write for ever; a short count would pass a partly
    // filled buffer; more would copy past the tag buffer.
    BOOST_TEST(ublk::result_for_kernel(r, 0) == -EIO);
    BOOST_TEST(ublk::result_for_kernel(r, 4096) == -EIO);
    BOOST_TEST(ublk::result_for_kernel(r, 8193) == -EIO);
  }
}

BOOST_AUTO_TEST_CASE(a_flush_discard_or_write_zeroes_result_passes_unchanged) {
  for (const uint8_t op : {ublk::abi::IO_OP_FLUSH, ublk::abi::IO_OP_DISCARD, ublk::abi::IO_OP_WRITE_ZEROES}) {
    ublk::Request r;
    r.op = op;
    r.length = op == ublk::abi::IO_OP_FLUSH ? 0 : 4096;
    BOOST_TEST(ublk::result_for_kernel(r, 0) == 0);
    BOOST_TEST(ublk::result_for_kernel(r, -EIO) == -EIO);
  }
}

BOOST_AUTO_TEST_SUITE_END()  // ublk_request_from_desc_test
