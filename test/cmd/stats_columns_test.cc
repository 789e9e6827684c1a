// `coblk stats`' columns and zramctl's output options, in process: the
// figures are made up here, no device or kernel is involved (the VM guest
// script test/vm/guest/stats-columns.sh runs the real command).
#include <sys/sysmacros.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "coblk/cmd/stats_columns.h"

BOOST_AUTO_TEST_SUITE(cmd_stats_columns_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using cmd::StatsColumn;
using cmd::StatsFigures;

namespace {

// A 64 MiB lz4 device holding 3 MiB in 1 MiB of memory, two queues.
StatsFigures device(std::uint32_t id) {
  StatsFigures d;
  d.dev_id = id;
  d.name = "/dev/ublkb" + std::to_string(id);
  d.algorithm = "lz4";
  d.disksize = 64ULL << 20;
  d.streams = 2;
  d.published = true;
  d.orig_data_size = 3ULL << 20;
  d.compr_data_size = 900ULL << 10;
  d.mem_used_total = 1ULL << 20;
  d.mem_limit = 0;
  d.mem_used_max = 1536ULL << 10;
  d.same_pages = 25;
  d.pages_compacted = 7;
  d.huge_pages = 3;
  d.notify_free = 11;
  return d;
}

StatsFigures with_tier(StatsFigures d) {
  d.has_tier = true;
  d.tier_state = "active";
  d.backing_bytes = 16ULL << 20;
  d.written_back = 8 * 4096;
  d.bd_reads = 2;
  d.bd_writes = 8;
  d.readmitted = 3;
  return d;
}

std::vector<std::string> names(const std::vector<StatsColumn>& columns) {
  std::vector<std::string> out;
  out.reserve(columns.size());
  for (const StatsColumn c : columns) out.emplace_back(cmd::stats_columns()[static_cast<unsigned>(c)].name);
  return out;
}

std::vector<StatsColumn> parsed(const std::string& list, const std::vector<StatsColumn>& defaults = {}) {
  auto r = cmd::parse_stats_columns(list, defaults);
  BOOST_TEST_REQUIRE(r.ok(), list << ": " << (r.ok() ? "" : r.error().message()));
  return *r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_column_sits_at_its_enum_value_and_has_a_name_and_help) {
  const auto all = cmd::stats_columns();
  BOOST_TEST(all.size() == static_cast<size_t>(StatsColumn::readmitted) + 1);
  for (size_t i = 0; i < all.size(); ++i) {
    BOOST_TEST(static_cast<size_t>(all[i].column) == i);
    BOOST_TEST(std::string(all[i].name).find(' ') == std::string::npos);
    BOOST_TEST(!std::string(all[i].help).empty());
  }
}

BOOST_AUTO_TEST_CASE(zramctls_column_names_are_all_there_with_its_spelling) {
  for (const char* zramctl : {"NAME", "DISKSIZE", "DATA", "COMPR", "ALGORITHM", "STREAMS", "ZERO-PAGES", "TOTAL",
                              "MEM-LIMIT", "MEM-USED", "MIGRATED", "COMP-RATIO", "MOUNTPOINT"}) {
    BOOST_TEST(cmd::parse_stats_columns(zramctl, {}).ok(), zramctl);
  }
}

BOOST_AUTO_TEST_CASE(the_defaults_are_the_zramctl_columns_and_the_tiers_only_when_a_device_has_one) {
  const std::vector<StatsFigures> plain{device(0)};
  BOOST_TEST(names(cmd::default_stats_columns(plain)) ==
                 (std::vector<std::string>{"NAME", "DISKSIZE", "DATA", "COMPR", "ALGORITHM", "ZERO-PAGES", "TOTAL",
                                           "MEM-LIMIT", "MEM-USED", "COMP-RATIO"}),
             boost::test_tools::per_element());
  const std::vector<StatsFigures> tiered{device(0), with_tier(device(1))};
  const auto columns = names(cmd::default_stats_columns(tiered));
  BOOST_TEST(columns.size() == 12U);
  BOOST_TEST(columns[10] == "WRITTEN-BACK");
  BOOST_TEST(columns[11] == "TIER");
}

BOOST_AUTO_TEST_CASE(a_column_list_is_taken_in_any_case_in_its_own_order_duplicates_kept) {
  BOOST_TEST(
      names(parsed("name,Comp-Ratio,data,NAME")) == (std::vector<std::string>{"NAME", "COMP-RATIO", "DATA", "NAME"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_list_starting_with_plus_adds_to_the_defaults) {
  const std::vector<StatsColumn> defaults{StatsColumn::name, StatsColumn::data};
  BOOST_TEST(names(parsed("+STREAMS,MOUNTPOINT", defaults)) ==
                 (std::vector<std::string>{"NAME", "DATA", "STREAMS", "MOUNTPOINT"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_unknown_column_is_named_in_one_line_with_the_valid_ones) {
  const auto r = cmd::parse_stats_columns("NAME,BOGUS,DATA", {});
  BOOST_TEST_REQUIRE(!r.ok());
  const std::string& m = r.error().message();
  BOOST_TEST(r.error().code() == EINVAL);
  BOOST_TEST(m.find("unknown column 'BOGUS'") == 0U, m);
  BOOST_TEST(m.find("valid: NAME, DISKSIZE, DATA") != std::string::npos, m);
  BOOST_TEST(m.find("BD-WRITES") != std::string::npos, m);
  BOOST_TEST(m.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_empty_list_or_an_empty_name_in_it_is_refused) {
  for (const char* list : {"", "+", "NAME,", ",NAME", "NAME,,DATA"}) {
    const auto r = cmd::parse_stats_columns(list, {});
    BOOST_TEST_REQUIRE(!r.ok(), list);
    BOOST_TEST(r.error().message().find("empty column name") == 0U, r.error().message());
  }
}

BOOST_AUTO_TEST_CASE(a_control_character_in_a_column_name_is_quoted_not_printed) {
  const auto r = cmd::parse_stats_columns("NA\nME", {});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message().find("'NA\\x0aME'") != std::string::npos, r.error().message());
}

BOOST_AUTO_TEST_CASE(sizes_are_human_by_default_and_whole_bytes_with_bytes) {
  const StatsFigures d = device(0);
  BOOST_TEST(cmd::stats_cell(StatsColumn::disksize, d, false) == "64M");
  BOOST_TEST(cmd::stats_cell(StatsColumn::disksize, d, true) == "67108864");
  BOOST_TEST(cmd::stats_cell(StatsColumn::mem_used, d, false) == "1.5M");
  BOOST_TEST(cmd::stats_cell(StatsColumn::mem_used, d, true) == "1572864");
  BOOST_TEST(cmd::stats_cell(StatsColumn::compr, d, false) == "900K");
  BOOST_TEST(cmd::stats_cell(StatsColumn::mem_limit, d, false) == "0B");  // no limit, as kernel zram shows it
  BOOST_TEST(cmd::stats_cell(StatsColumn::mem_limit, d, true) == "0");
}

BOOST_AUTO_TEST_CASE(counts_and_the_ratio_do_not_change_with_bytes) {
  const StatsFigures d = device(0);
  for (const bool bytes : {false, true}) {
    BOOST_TEST(cmd::stats_cell(StatsColumn::zero_pages, d, bytes) == "25");
    BOOST_TEST(cmd::stats_cell(StatsColumn::migrated, d, bytes) == "7");
    BOOST_TEST(cmd::stats_cell(StatsColumn::streams, d, bytes) == "2");
    BOOST_TEST(cmd::stats_cell(StatsColumn::huge_pages, d, bytes) == "3");
    BOOST_TEST(cmd::stats_cell(StatsColumn::freed_pages, d, bytes) == "11");
    BOOST_TEST(cmd::stats_cell(StatsColumn::comp_ratio, d, bytes) == "3.00");
    BOOST_TEST(cmd::stats_cell(StatsColumn::id, d, bytes) == "0");
  }
}

BOOST_AUTO_TEST_CASE(with_nothing_stored_the_ratio_is_a_dash_not_zero) {
  StatsFigures d = device(0);
  d.orig_data_size = 0;
  d.mem_used_total = 0;
  BOOST_TEST(cmd::stats_cell(StatsColumn::comp_ratio, d, false) == "-");
  BOOST_TEST(cmd::stats_cell(StatsColumn::data, d, false) == "0B");
}

BOOST_AUTO_TEST_CASE(a_device_that_published_nothing_shows_dashes_for_what_its_server_publishes) {
  StatsFigures d = device(4);
  d.published = false;
  BOOST_TEST(cmd::stats_cell(StatsColumn::name, d, false) == "/dev/ublkb4");
  BOOST_TEST(cmd::stats_cell(StatsColumn::disksize, d, false) == "64M");  // from the record
  BOOST_TEST(cmd::stats_cell(StatsColumn::algorithm, d, false) == "lz4");
  for (const StatsColumn c : {StatsColumn::data, StatsColumn::total, StatsColumn::zero_pages, StatsColumn::comp_ratio,
                              StatsColumn::mem_limit, StatsColumn::written_back, StatsColumn::tier}) {
    BOOST_TEST(cmd::stats_cell(c, d, false) == "-");
    BOOST_TEST(cmd::stats_cell(c, d, true) == "-");
  }
}

BOOST_AUTO_TEST_CASE(tier_columns_show_a_dash_without_a_tier_and_its_figures_with_one) {
  const StatsFigures plain = device(0);
  for (const StatsColumn c : {StatsColumn::written_back, StatsColumn::tier_size, StatsColumn::tier,
                              StatsColumn::bd_reads, StatsColumn::bd_writes, StatsColumn::readmitted}) {
    BOOST_TEST(cmd::stats_cell(c, plain, false) == "-");
  }
  const StatsFigures tiered = with_tier(device(0));
  BOOST_TEST(cmd::stats_cell(StatsColumn::written_back, tiered, false) == "32K");
  BOOST_TEST(cmd::stats_cell(StatsColumn::written_back, tiered, true) == "32768");
  BOOST_TEST(cmd::stats_cell(StatsColumn::tier_size, tiered, false) == "16M");
  BOOST_TEST(cmd::stats_cell(StatsColumn::tier, tiered, false) == "active");
  BOOST_TEST(cmd::stats_cell(StatsColumn::bd_writes, tiered, false) == "8");
  BOOST_TEST(cmd::stats_cell(StatsColumn::readmitted, tiered, false) == "3");
}

BOOST_AUTO_TEST_CASE(an_unmounted_device_has_a_dash_for_mountpoint_and_an_unknown_stream_count_too) {
  StatsFigures d = device(0);
  BOOST_TEST(cmd::stats_cell(StatsColumn::mountpoint, d, false) == "-");
  d.mountpoint = "[SWAP]";
  BOOST_TEST(cmd::stats_cell(StatsColumn::mountpoint, d, false) == "[SWAP]");
  d.streams = 0;
  BOOST_TEST(cmd::stats_cell(StatsColumn::streams, d, false) == "-");
}

BOOST_AUTO_TEST_CASE(the_table_aligns_each_column_to_its_widest_cell_two_spaces_apart) {
  const std::vector<StatsFigures> devices{device(0), device(12)};
  const std::vector<StatsColumn> columns{StatsColumn::name, StatsColumn::data, StatsColumn::comp_ratio};
  BOOST_TEST(cmd::render_stats(columns, devices, {}) ==
             "NAME          DATA  COMP-RATIO\n"
             "/dev/ublkb0   3M    3.00\n"
             "/dev/ublkb12  3M    3.00\n");
}

BOOST_AUTO_TEST_CASE(noheadings_leaves_out_the_heading_line_only) {
  const std::vector<StatsFigures> devices{device(0)};
  const std::vector<StatsColumn> columns{StatsColumn::name, StatsColumn::data};
  cmd::StatsFormat format;
  format.headings = false;
  BOOST_TEST(cmd::render_stats(columns, devices, format) == "/dev/ublkb0  3M\n");
}

BOOST_AUTO_TEST_CASE(raw_output_is_one_space_apart_with_bytes_if_asked) {
  const std::vector<StatsFigures> devices{device(0), device(12)};
  const std::vector<StatsColumn> columns{StatsColumn::name, StatsColumn::data, StatsColumn::algorithm};
  cmd::StatsFormat format;
  format.raw = true;
  format.bytes = true;
  BOOST_TEST(cmd::render_stats(columns, devices, format) ==
             "NAME DATA ALGORITHM\n/dev/ublkb0 3145728 lz4\n/dev/ublkb12 3145728 lz4\n");
}

BOOST_AUTO_TEST_CASE(raw_output_escapes_what_would_split_a_cell) {
  StatsFigures d = device(0);
  d.mountpoint = "/mnt/my disk\\x";
  const std::vector<StatsColumn> columns{StatsColumn::mountpoint, StatsColumn::id};
  cmd::StatsFormat format;
  format.raw = true;
  format.headings = false;
  BOOST_TEST(cmd::render_stats(columns, std::vector<StatsFigures>{d}, format) == "/mnt/my\\x20disk\\x5cx 0\n");
  // Aligned output shows the cell as it is.
  format.raw = false;
  BOOST_TEST(cmd::render_stats(columns, std::vector<StatsFigures>{d}, format) == "/mnt/my disk\\x  0\n");
}

BOOST_AUTO_TEST_CASE(format_columns_pads_no_last_cell_and_handles_short_rows) {
  BOOST_TEST(cmd::format_columns({{"A", "BB"}, {"CCC"}}, false) == "A    BB\nCCC\n");
  BOOST_TEST(cmd::format_columns({}, false).empty());
}

BOOST_AUTO_TEST_CASE(the_help_lists_every_column_with_its_line) {
  const std::string help = cmd::stats_columns_help();
  BOOST_TEST(help.find("Available columns") == 0U);
  for (const auto& c : cmd::stats_columns()) {
    BOOST_TEST(help.find(std::string("  ") + c.name + "  ") != std::string::npos, c.name);
    BOOST_TEST(help.find(c.help) != std::string::npos, c.name);
  }
}

BOOST_AUTO_TEST_CASE(mountpoint_is_swap_when_proc_swaps_lists_the_device) {
  const std::string swaps =
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
      "/dev/ublkb3                             partition\t65532\t\t0\t\t-2\n";
  BOOST_TEST(cmd::mountpoint_from("/dev/ublkb3", makedev(259, 1), swaps, "") == "[SWAP]");
  BOOST_TEST(cmd::mountpoint_from("/dev/ublkb30", makedev(259, 1), swaps, "").empty());
}

BOOST_AUTO_TEST_CASE(mountpoint_is_the_first_mount_of_the_device_number_with_escapes_undone) {
  const std::string mountinfo =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "40 22 259:2 / /mnt/with\\040space rw,relatime shared:7 - ext4 /dev/ublkb2 rw\n"
      "41 22 259:2 / /mnt/second rw,relatime shared:8 - ext4 /dev/ublkb2 rw\n";
  BOOST_TEST(cmd::mountpoint_from("/dev/ublkb2", makedev(259, 2), "Filename Type Size Used Priority\n", mountinfo) ==
             "/mnt/with space");
  BOOST_TEST(cmd::mountpoint_from("/dev/ublkb5", makedev(259, 5), "", mountinfo).empty());
  // 8:1 is not 8:10: the whole field must match.
  BOOST_TEST(cmd::mountpoint_from("/dev/sdb", makedev(8, 10), "", mountinfo).empty());
}

BOOST_AUTO_TEST_CASE(find_mountpoint_of_a_path_that_is_no_block_device_is_empty) {
  BOOST_TEST(cmd::find_mountpoint("/nonexistent/ublkb0").empty());
  BOOST_TEST(cmd::find_mountpoint("/proc/self/status").empty());
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_stats_columns_test
