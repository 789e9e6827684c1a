#define BOOST_TEST_MODULE cmd_device_record
#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "coblk/cmd/device_record.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// Points the run directory at a fresh temporary directory for one test.
struct TemporaryRunDirectory {
  std::string path;
  TemporaryRunDirectory() {
    char tmpl[] = "/tmp/coblk-record-XXXXXX";
    path = ::mkdtemp(tmpl);
    ::setenv("COBLK_RUN_DIR", (path + "/run").c_str(), 1);
  }
  ~TemporaryRunDirectory() {
    ::unsetenv("COBLK_RUN_DIR");
    std::filesystem::remove_all(path);
  }
};

cmd::DeviceRecord sample() {
  cmd::DeviceRecord r;
  r.dev_id = 7;
  r.target = "zram";
  r.data_path = "user_copy";
  r.size_bytes = 8ULL << 30;
  r.block_size = 4096;
  r.queues = 2;
  r.depth = 128;
  r.pid = 4242;
  r.compression = "zstd:3";
  r.args = {"-t", "zram", "--size", "8G", "odd \"quoted\"\tname\\"};
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_record_survives_a_round_trip_through_json) {
  const auto r = sample();
  const auto back = cmd::record_from_json(cmd::to_json(r));
  BOOST_REQUIRE(back);
  BOOST_TEST(back->dev_id == 7U);
  BOOST_TEST(back->target == "zram");
  BOOST_TEST(back->data_path == "user_copy");
  BOOST_TEST(back->size_bytes == 8ULL << 30);
  BOOST_TEST(back->block_size == 4096U);
  BOOST_TEST(back->queues == 2U);
  BOOST_TEST(back->depth == 128U);
  BOOST_TEST(back->pid == 4242);
  BOOST_TEST(back->compression == "zstd:3");
  BOOST_TEST(back->args == r.args);
}

// Found by test/fuzz (fuzz_device_record): a size above INT64_MAX was read
// back as 0, an args list [""] as [], and an argument holding the byte 0x1f
// as two arguments.
BOOST_AUTO_TEST_CASE(a_record_survives_a_round_trip_whatever_its_numbers_and_args) {
  for (const std::vector<std::string>& args : std::initializer_list<std::vector<std::string>>{{},
                                                                                              {""},
                                                                                              {"", ""},
                                                                                              {"a\x1f"
                                                                                               "b"},
                                                                                              {"\x1f"},
                                                                                              {"\x01\x7f\xff", "\n"}}) {
    cmd::DeviceRecord r = sample();
    r.dev_id = UINT32_MAX;
    r.size_bytes = UINT64_MAX;
    r.block_size = UINT32_MAX;
    r.pid = INT32_MIN;
    r.args = args;
    const auto back = cmd::record_from_json(cmd::to_json(r));
    BOOST_REQUIRE(back);
    BOOST_TEST(back->dev_id == UINT32_MAX);
    BOOST_TEST(back->size_bytes == UINT64_MAX);
    BOOST_TEST(back->block_size == UINT32_MAX);
    BOOST_TEST(back->pid == INT32_MIN);
    BOOST_TEST(back->args == args, args.size() << " args");
  }
}

BOOST_AUTO_TEST_CASE(a_number_out_of_its_fields_range_is_not_wrapped) {
  // An id that does not fit 32 bits is no record: it would name another file.
  BOOST_TEST(!cmd::record_from_json(R"({"dev_id": 4294967303})"));
  BOOST_TEST(!cmd::record_from_json(R"({"dev_id": -1})"));
  const auto r = cmd::record_from_json(R"({"dev_id": 1, "queues": -1, "size_bytes": 18446744073709551616})");
  BOOST_REQUIRE(r);
  BOOST_TEST(r->queues == 0U);
  BOOST_TEST(r->size_bytes == 0U);
}

BOOST_AUTO_TEST_CASE(malformed_json_is_rejected_not_half_read) {
  for (const char* bad :
       {"", "{", "{\"dev_id\":}", "[1]", "{\"dev_id\":1,}", "{\"dev_id\":1} x", "{\"target\":\"ram\"}"}) {
    BOOST_TEST(!cmd::record_from_json(bad), "accepted " << bad);
  }
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_ignored_so_newer_servers_stay_readable) {
  const auto r = cmd::record_from_json(R"({"dev_id": 3, "target": "ram", "future": [1, 2], "x": true})");
  BOOST_REQUIRE(r);
  BOOST_TEST(r->dev_id == 3U);
  BOOST_TEST(r->target == "ram");
}

BOOST_AUTO_TEST_CASE(a_saved_record_loads_back_and_removal_deletes_it) {
  TemporaryRunDirectory dir;
  const auto r = sample();
  BOOST_TEST(cmd::save_record(r) == 0);
  const auto back = cmd::load_record(7);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->args == r.args);
  BOOST_TEST(!cmd::load_record(8));
  cmd::remove_record(7);
  BOOST_TEST(!cmd::load_record(7));
}

BOOST_AUTO_TEST_CASE(flat_json_keeps_numbers_as_text) {
  const auto j = cmd::parse_flat_json(R"({"orig_data_size": 4096, "ratio": 2.5, "same_pages": 0})");
  BOOST_REQUIRE(j);
  BOOST_TEST(j->at("orig_data_size") == "4096");
  BOOST_TEST(j->at("ratio") == "2.5");
}
