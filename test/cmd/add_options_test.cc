// `coblk add` option validation, driven through parse_add_options directly.
#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "coblk/cmd/add_options.h"
#include "coblk/runtime/reactor.h"

namespace coblk::cmd {
// Lets Boost.Test print a parse outcome when a check fails.
std::ostream& operator<<(std::ostream& out, const AddParse& p) {
  return out << (p.error.empty() ? "valid" : "error: " + p.error);
}
}  // namespace coblk::cmd

BOOST_AUTO_TEST_SUITE(cmd_add_options_test)

using namespace coblk::cmd;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

// Four CPUs, and backing files that take O_DIRECT in 512-byte blocks
// whatever file system /tmp is on here.
const AddLimits kFourCpus{4, [](const std::string&) -> coblk::Result<uint32_t> { return 512U; }};

AddParse parse(const std::vector<std::string>& args) { return parse_add_options(args, kFourCpus); }

// Expects a rejection whose one-line message contains `needle`.
void expect_rejected(const std::vector<std::string>& args, const std::string& needle) {
  const AddParse p = parse(args);
  BOOST_TEST(!p, "accepted: " << needle);
  BOOST_TEST(p.error.find(needle) != std::string::npos, "error was: " << p.error);
  BOOST_TEST(p.error.find('\n') == std::string::npos);
}

// A temporary backing file of `bytes` bytes.
struct BackingFile {
  std::string path;
  explicit BackingFile(uint64_t bytes) {
    char tmpl[] = "/tmp/coblk-backing-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    path = tmpl;
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
  }
  ~BackingFile() { ::unlink(path.c_str()); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_minimal_null_device_gets_ublksrv_like_defaults) {
  const AddParse p = parse({"-t", "null"});
  BOOST_REQUIRE(p);
  BOOST_TEST((p.options.target == TargetKind::null));
  BOOST_TEST(p.options.dev_id == -1);
  BOOST_TEST(p.options.queues == 1U);
  BOOST_TEST(p.options.depth == 128U);
  BOOST_TEST(p.options.size_bytes == 250ULL << 30);
  BOOST_TEST((p.options.data_path == DataPathKind::copy));
  BOOST_TEST(!p.options.foreground);
}

BOOST_AUTO_TEST_CASE(every_option_is_taken_in_long_and_short_form) {
  const AddParse p =
      parse({"-t", "ram", "-n", "5", "-q", "2", "-d", "64", "--size", "8G", "--user-copy", "--foreground"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.dev_id == 5);
  BOOST_TEST(p.options.queues == 2U);
  BOOST_TEST(p.options.depth == 64U);
  BOOST_TEST(p.options.size_bytes == 8ULL << 30);
  BOOST_TEST((p.options.data_path == DataPathKind::user_copy));
  BOOST_TEST(p.options.foreground);
  const AddParse q = parse({"--type", "ram", "--number", "5", "--queues", "2", "--depth", "64", "-s", "1M"});
  BOOST_REQUIRE(q);
  BOOST_TEST(q.options.size_bytes == 1ULL << 20);
}

BOOST_AUTO_TEST_CASE(help_is_reported_with_the_usage_text) {
  const AddParse p = parse({"--help"});
  BOOST_TEST(p.help);
  BOOST_TEST(p.help_text.find("--zero-copy") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_unknown_target_is_rejected) { expect_rejected({"-t", "iscsi"}, "unknown target 'iscsi'"); }

BOOST_AUTO_TEST_CASE(a_missing_target_is_rejected) { expect_rejected({"--size", "1G"}, "missing -t"); }

BOOST_AUTO_TEST_CASE(an_unknown_option_is_rejected) { expect_rejected({"-t", "null", "--bogus"}, "--bogus"); }

BOOST_AUTO_TEST_CASE(a_stray_positional_argument_is_rejected) {
  expect_rejected({"-t", "null", "extra"}, "unexpected argument");
}

BOOST_AUTO_TEST_CASE(a_size_that_is_not_a_number_is_rejected) {
  expect_rejected({"-t", "ram", "--size", "big"}, "'big' is not a size");
  expect_rejected({"-t", "ram", "--size", "1.5G"}, "is not a size");
}

BOOST_AUTO_TEST_CASE(a_size_that_is_not_a_multiple_of_the_block_size_is_rejected) {
  expect_rejected({"-t", "ram", "--size", "1000"}, "not a multiple of the 512-byte block size");
  expect_rejected({"-t", "ram", "--size", "6K", "-b", "4096"}, "4096-byte block size");
  expect_rejected({"-t", "zram", "--size", "1536"}, "4096-byte block size");
  BOOST_TEST(parse({"-t", "ram", "--size", "6K", "-b", "1024"}));
}

BOOST_AUTO_TEST_CASE(a_zero_size_is_rejected) { expect_rejected({"-t", "ram", "--size", "0"}, "must not be 0"); }

BOOST_AUTO_TEST_CASE(block_sizes_are_powers_of_two_from_512_to_4096) {
  expect_rejected({"-t", "ram", "-b", "3000"}, "--block-size must be");
  expect_rejected({"-t", "ram", "-b", "8192"}, "--block-size must be");
  expect_rejected({"-t", "ram", "-b", "256"}, "--block-size must be");
}

BOOST_AUTO_TEST_CASE(queue_counts_range_from_one_to_the_online_cpus) {
  expect_rejected({"-t", "null", "-q", "0"}, "-q must be a whole number from 1 to 4");
  expect_rejected({"-t", "null", "-q", "5"}, "from 1 to 4");
  expect_rejected({"-t", "null", "-q", "two"}, "not 'two'");
  BOOST_TEST(parse({"-t", "null", "-q", "4"}));
}

BOOST_AUTO_TEST_CASE(depths_range_from_one_to_the_kernels_maximum) {
  expect_rejected({"-t", "null", "-d", "0"}, "-d must be a whole number from 1 to 4096");
  expect_rejected({"-t", "null", "-d", "4097"}, "from 1 to 4096");
  expect_rejected({"-t", "null", "-d", "-3"}, "not '-3'");
  BOOST_TEST(parse({"-t", "null", "-d", "4096"}));
}

BOOST_AUTO_TEST_CASE(poll_us_defaults_to_the_runtimes_idle_polling_and_ranges_up_to_a_second) {
  BOOST_TEST(parse({"-t", "null"}).options.poll_us == coblk::runtime::ReactorConfig{}.idle_poll_us);
  BOOST_TEST(parse({"-t", "null", "--poll-us", "0"}).options.poll_us == 0U);
  BOOST_TEST(parse({"-t", "null", "--poll-us", "200"}).options.poll_us == 200U);
  expect_rejected({"-t", "null", "--poll-us", "1000001"}, "--poll-us must be a whole number from 0 to 1000000");
  expect_rejected({"-t", "null", "--poll-us", "-1"}, "not '-1'");
}

// --sqpoll against a process that may run on CPUs 0, 1 and 3 of four.
AddParse parse_sqpoll(std::vector<std::string> args) {
  const AddLimits limits{4, [](const std::string&) -> coblk::Result<uint32_t> { return 512U; }, {0, 1, 3}};
  args.insert(args.begin(), {"-t", "null"});
  return parse_add_options(args, limits);
}

BOOST_AUTO_TEST_CASE(sqpoll_alone_polls_without_pinning_and_is_off_by_default) {
  BOOST_TEST(!parse({"-t", "null"}).options.sqpoll);
  const AddParse p = parse_sqpoll({"--sqpoll"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.sqpoll);
  BOOST_TEST(p.options.sqpoll_cpus.empty());
}

BOOST_AUTO_TEST_CASE(sqpoll_takes_one_cpu_for_every_queue_or_one_per_queue) {
  const AddParse one = parse_sqpoll({"-q", "2", "--sqpoll=3"});
  BOOST_REQUIRE(one);
  BOOST_TEST(one.options.sqpoll);
  BOOST_TEST(one.options.sqpoll_cpus == std::vector<unsigned>({3}), boost::test_tools::per_element());
  const AddParse each = parse_sqpoll({"-q", "2", "--sqpoll=3,1"});
  BOOST_REQUIRE(each);
  BOOST_TEST(each.options.sqpoll_cpus == std::vector<unsigned>({3, 1}), boost::test_tools::per_element());
}

// Each bad value is one line, and nothing is created (parse only).
void expect_sqpoll_rejected(const std::vector<std::string>& args, const std::string& needle) {
  const AddParse p = parse_sqpoll(args);
  BOOST_TEST(!p, "accepted: " << needle);
  BOOST_TEST(p.error.find(needle) != std::string::npos, "error was: " << p.error);
  BOOST_TEST(p.error.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_sqpoll_cpu_that_is_not_a_number_is_refused) {
  expect_sqpoll_rejected({"--sqpoll=one"},
                         "--sqpoll: expected a CPU number or a comma-separated list of them, not 'one'");
  expect_sqpoll_rejected({"--sqpoll=-1"}, "not '-1'");
  expect_sqpoll_rejected({"--sqpoll=1.5"}, "not '1.5'");
  expect_sqpoll_rejected({"--sqpoll=0-1"}, "not '0-1'");
  expect_sqpoll_rejected({"--sqpoll=0,,1"}, "not ''");
  // Boost.Program_options' own line.
  expect_sqpoll_rejected({"--sqpoll="},
                         "the argument for option '--sqpoll' should follow immediately after the equal sign");
}

BOOST_AUTO_TEST_CASE(an_sqpoll_cpu_not_online_or_not_allowed_is_refused) {
  expect_sqpoll_rejected({"--sqpoll=2"},
                         "--sqpoll: CPU 2 is not online or not allowed to this process (allowed: 0,1,3)");
  expect_sqpoll_rejected({"--sqpoll=4096"}, "CPU 4096 is not online");
  expect_sqpoll_rejected({"-q", "2", "--sqpoll=0,2"}, "CPU 2 is not online");
}

BOOST_AUTO_TEST_CASE(an_sqpoll_cpu_list_must_have_one_cpu_or_one_per_queue) {
  expect_sqpoll_rejected({"-q", "3", "--sqpoll=0,1"},
                         "--sqpoll: 2 CPUs for 3 queues: give one CPU for all of them, or one per queue");
  expect_sqpoll_rejected({"--sqpoll=0,1"}, "2 CPUs for 1 queues");
}

BOOST_AUTO_TEST_CASE(an_sqpoll_cpu_may_also_follow_as_a_separate_word) {
  const AddParse p = parse_sqpoll({"--sqpoll", "1"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.sqpoll_cpus == std::vector<unsigned>({1}), boost::test_tools::per_element());
  // An option after it is not taken for its value.
  const AddParse q = parse_sqpoll({"--sqpoll", "-q", "2"});
  BOOST_REQUIRE(q);
  BOOST_TEST(q.options.sqpoll_cpus.empty());
  BOOST_TEST(q.options.queues == 2U);
  expect_sqpoll_rejected({"--sqpoll", "x"}, "not 'x'");
}

BOOST_AUTO_TEST_CASE(the_machines_limits_list_the_cpus_this_process_may_use) {
  const AddLimits l = current_limits();
  BOOST_TEST(!l.allowed_cpus.empty());
  BOOST_TEST(l.allowed_cpus.size() <= l.cpus);
}

BOOST_AUTO_TEST_CASE(device_ids_must_be_in_the_kernels_minor_range) {
  expect_rejected({"-t", "null", "-n", "1048576"}, "-n must be");
  expect_rejected({"-t", "null", "-n", "x"}, "-n must be");
  BOOST_TEST(parse({"-t", "null", "-n", "-1"}).options.dev_id == -1);
}

BOOST_AUTO_TEST_CASE(the_data_path_options_exclude_each_other) {
  expect_rejected({"-t", "loop", "--copy", "--zero-copy"}, "mutually exclusive");
  expect_rejected({"-t", "ram", "--zero-copy"}, "only -t loop");
}

BOOST_AUTO_TEST_CASE(loop_needs_an_existing_backing_file) {
  expect_rejected({"-t", "loop"}, "needs -f FILE");
  expect_rejected({"-t", "loop", "-f", "/nonexistent/coblk/disk.img"}, "'/nonexistent/coblk/disk.img' does not exist");
  expect_rejected({"-t", "loop", "-f", "/tmp"}, "neither a regular file nor a block device");
}

BOOST_AUTO_TEST_CASE(loop_takes_its_size_from_the_file_rounded_down_to_a_block) {
  BackingFile file((4ULL << 20) + 100);
  const AddParse p = parse({"-t", "loop", "-f", file.path, "--direct-io", "--zero-copy"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.size_bytes == 4ULL << 20);
  BOOST_TEST(p.options.direct_io);
  BOOST_TEST((p.options.data_path == DataPathKind::zero_copy));
  BOOST_TEST(p.options.group_commit);  // on unless --no-group-commit
  BOOST_TEST(!parse({"-t", "loop", "-f", file.path, "--no-group-commit"}).options.group_commit);
  BOOST_TEST(p.options.registered_files);
  BOOST_TEST(!parse({"-t", "loop", "-f", file.path, "--no-registered-files"}).options.registered_files);
  expect_rejected({"-t", "loop", "-f", file.path, "--size", "8M"}, "larger than backing file");
  BOOST_TEST(parse({"-t", "loop", "-f", file.path, "--size", "1M"}).options.size_bytes == 1ULL << 20);
  BackingFile tiny(100);
  expect_rejected({"-t", "loop", "-f", tiny.path}, "smaller than one 512-byte block");
}

BOOST_AUTO_TEST_CASE(iopoll_is_refused_without_direct_io_with_zero_copy_and_on_a_regular_file) {
  BackingFile file(1ULL << 20);
  expect_rejected({"-t", "null", "--iopoll"}, "--iopoll is only valid with -t loop");
  expect_rejected({"-t", "loop", "-f", file.path, "--iopoll"}, "--iopoll needs --direct-io");
  expect_rejected({"-t", "loop", "-f", file.path, "--direct-io", "--iopoll", "--zero-copy"},
                  "--iopoll and --zero-copy exclude each other");
  expect_rejected({"-t", "loop", "-f", file.path, "--direct-io", "--iopoll"},
                  "--iopoll needs a block device, and '" + file.path + "' is not one");
  BOOST_TEST(!parse({"-t", "loop", "-f", file.path, "--direct-io"}).options.iopoll);
}

BOOST_AUTO_TEST_CASE(passthrough_is_refused_with_direct_io_and_on_anything_but_an_nvme_char_device) {
  BackingFile file(1ULL << 20);
  expect_rejected({"-t", "ram", "--passthrough"}, "--passthrough is only valid with -t loop");
  expect_rejected({"-t", "loop", "-f", file.path, "--passthrough", "--direct-io"},
                  "--passthrough goes around the block layer");
  // --iopoll (polled NVMe commands) and --zero-copy (commands on the
  // request's registered pages) go with --passthrough: the file is then
  // refused for what it is, not for the combination.
  expect_rejected({"-t", "loop", "-f", file.path, "--passthrough", "--iopoll"},
                  "is not an NVMe namespace's generic char device");
  expect_rejected({"-t", "loop", "-f", file.path, "--passthrough", "--zero-copy"},
                  "is not an NVMe namespace's generic char device");
  expect_rejected({"-t", "loop", "-f", file.path, "--passthrough", "--iopoll", "--zero-copy"},
                  "--iopoll and --zero-copy exclude each other");
  expect_rejected({"-t", "loop", "-f", file.path, "--passthrough"}, "is not an NVMe namespace's generic char device");
  expect_rejected({"-t", "loop", "-f", "/dev/null", "--passthrough"}, "'/dev/null' is not an NVMe namespace's");
}

BOOST_AUTO_TEST_CASE(target_specific_options_are_refused_on_other_targets) {
  expect_rejected({"-t", "ram", "-f", "/tmp/x"}, "-f is only valid with -t loop");
  expect_rejected({"-t", "ram", "--direct-io"}, "--direct-io is only valid");
  expect_rejected({"-t", "null", "--no-group-commit"}, "--no-group-commit is only valid with -t loop");
  expect_rejected({"-t", "loop", "--algorithm", "lz4"}, "--algorithm is only valid with -t zram");
  expect_rejected({"-t", "null", "--mem-limit", "1G"}, "--mem-limit is only valid");
}

BOOST_AUTO_TEST_CASE(zram_takes_an_algorithm_with_an_optional_level) {
  const AddParse p = parse({"-t", "zram", "--algorithm", "zstd:7", "--mem-limit", "512M"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.algorithm == "zstd:7");
  BOOST_TEST(p.options.mem_limit == 512ULL << 20);
  BOOST_TEST(p.options.block_size == 4096U);
  const AddParse q = parse({"-t", "zram"});
  BOOST_TEST(q.options.algorithm == "lz4");
  BOOST_TEST(parse({"-t", "zram", "--algorithm", "zstd"}).options.algorithm == "zstd");
  BOOST_TEST(parse({"-t", "zram", "--algorithm", "lz4:8"}).options.algorithm == "lz4:8");
  BOOST_TEST(parse({"-t", "zram", "--algorithm", "zstd:-5"}).options.algorithm == "zstd:-5");
}

BOOST_AUTO_TEST_CASE(bad_algorithms_and_levels_are_rejected) {
  expect_rejected({"-t", "zram", "--algorithm", "gzip"}, "--algorithm: bad codec 'gzip'");
  expect_rejected({"-t", "zram", "--algorithm", "zstd:23"}, "ZSTD level must be an integer in");
  expect_rejected({"-t", "zram", "--algorithm", "zstd:"}, "ZSTD level");
  expect_rejected({"-t", "zram", "--algorithm", "lz4:0"}, "LZ4 acceleration");
  expect_rejected({"-t", "zram", "--mem-limit", "lots"}, "--mem-limit: 'lots' is not a size");
}

BOOST_AUTO_TEST_CASE(the_original_arguments_are_kept_for_recovery) {
  const std::vector<std::string> args{"-t", "null", "--size", "1G", "--recovery"};
  const AddParse p = parse(args);
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.args == args);
  BOOST_TEST(p.options.recovery);
}

BOOST_AUTO_TEST_CASE(a_relative_backing_path_is_resolved_to_an_absolute_one_in_the_options_and_the_recorded_arguments) {
  BackingFile file(1ULL << 20);
  const std::filesystem::path absolute = file.path;
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(absolute.parent_path());
  const std::string relative = absolute.filename().string();
  const AddParse spaced = parse({"-t", "loop", "-f", relative});
  const AddParse joined = parse({"-t", "loop", "--file=" + relative});
  const AddParse attached = parse({"-t", "loop", "-f" + relative});
  std::filesystem::current_path(cwd);
  BOOST_REQUIRE(spaced);
  BOOST_TEST(spaced.options.file == absolute.string());
  BOOST_TEST((spaced.options.args == std::vector<std::string>{"-t", "loop", "-f", absolute.string()}));
  BOOST_REQUIRE(joined);
  BOOST_TEST((joined.options.args == std::vector<std::string>{"-t", "loop", "--file=" + absolute.string()}));
  BOOST_REQUIRE(attached);
  BOOST_TEST((attached.options.args == std::vector<std::string>{"-t", "loop", "-f" + absolute.string()}));
}

BOOST_AUTO_TEST_CASE(recovery_of_in_memory_devices_restarts_by_default_and_takes_a_restart_limit) {
  const AddParse zram = parse({"-t", "zram", "--recovery"});
  BOOST_REQUIRE(zram);
  BOOST_TEST(zram.options.recovery);
  BOOST_TEST(zram.options.restart);
  BOOST_TEST(zram.options.max_restarts == 5u);
  const AddParse ram = parse({"-t", "ram", "--recovery", "--no-restart", "--max-restarts", "2"});
  BOOST_REQUIRE(ram);
  BOOST_TEST(!ram.options.restart);
  BOOST_TEST(ram.options.max_restarts == 2u);
}

BOOST_AUTO_TEST_CASE(restart_options_without_recovery_or_with_a_bad_count_are_refused) {
  expect_rejected({"-t", "ram", "--no-restart"}, "--no-restart and --max-restarts only apply with --recovery");
  expect_rejected({"-t", "ram", "--max-restarts", "3"}, "only apply with --recovery");
  expect_rejected({"-t", "ram", "--recovery", "--max-restarts", "0"}, "--max-restarts: expected a number 1..1000");
  expect_rejected({"-t", "ram", "--recovery", "--max-restarts", "-1"}, "expected a number 1..1000, got '-1'");
  expect_rejected({"-t", "ram", "--recovery", "--max-restarts", "5x"}, "got '5x'");
}

BOOST_AUTO_TEST_CASE(direct_io_refuses_a_block_size_below_the_backing_files_alignment) {
  BackingFile file(1ULL << 20);
  const AddLimits four_k{4, [](const std::string&) -> coblk::Result<uint32_t> { return 4096U; }};
  const AddParse small = parse_add_options({"-t", "loop", "-f", file.path, "--direct-io"}, four_k);
  BOOST_TEST(!small);
  BOOST_TEST(small.error == "--block-size 512 is smaller than the 4096-byte blocks O_DIRECT needs on '" + file.path +
                                "' (--direct-io): use --block-size 4096 or more");
  BOOST_TEST(!parse_add_options({"-t", "loop", "-f", file.path, "--direct-io", "-b", "2048"}, four_k));
  BOOST_TEST(parse_add_options({"-t", "loop", "-f", file.path, "--direct-io", "-b", "4096"}, four_k));
  // Without O_DIRECT the page cache takes any block size.
  BOOST_TEST(parse_add_options({"-t", "loop", "-f", file.path}, four_k));
}

BOOST_AUTO_TEST_CASE(direct_io_on_a_file_that_cannot_do_it_is_refused_in_one_line) {
  BackingFile file(1ULL << 20);
  const AddLimits no_direct_io{4, [](const std::string& path) -> coblk::Result<uint32_t> {
                                 return coblk::Error(EINVAL, "backing file '" + path + "' has no direct I/O");
                               }};
  const AddParse p = parse_add_options({"-t", "loop", "-f", file.path, "--direct-io"}, no_direct_io);
  BOOST_TEST(p.error == "backing file '" + file.path + "' has no direct I/O");
}

BOOST_AUTO_TEST_CASE(the_direct_io_alignment_of_a_real_file_is_a_block_size_coblk_offers) {
  BackingFile file(1ULL << 20);
  const auto alignment = direct_io_alignment(file.path);
  BOOST_REQUIRE_MESSAGE(alignment, (alignment ? "" : alignment.error().message()));
  BOOST_TEST((*alignment == 512U || *alignment == 1024U || *alignment == 2048U || *alignment == 4096U), *alignment);
  const auto missing = direct_io_alignment("/nonexistent/coblk.img");
  BOOST_TEST(!missing);
}

BOOST_AUTO_TEST_CASE(unprivileged_devices_refuse_what_the_kernel_refuses_them) {
  expect_rejected({"-t", "ram", "--unprivileged", "--user-copy"},
                  "--unprivileged works only with the --copy data path");
  BackingFile file(1ULL << 20);
  expect_rejected({"-t", "loop", "-f", file.path, "--unprivileged", "--zero-copy"},
                  "--unprivileged works only with the --copy data path");
  expect_rejected({"-t", "null", "--unprivileged", "--recovery"}, "--unprivileged and --recovery exclude each other");
  BOOST_TEST(parse({"-t", "ram", "--unprivileged"}).options.unprivileged);
}

BOOST_AUTO_TEST_CASE(nbd_takes_connect_export_and_reconnect_timeout) {
  const AddParse p = parse(
      {"-t", "nbd", "--connect", "unix:/run/nbd.sock", "--export", "disk", "--reconnect-timeout", "500ms", "-q", "2"});
  BOOST_TEST_REQUIRE(static_cast<bool>(p), p.error);
  BOOST_TEST(p.options.connect == "unix:/run/nbd.sock");
  BOOST_TEST(p.options.export_name == "disk");
  BOOST_TEST(p.options.reconnect_timeout_ms == 500u);
  BOOST_TEST(p.options.queues == 2u);
  BOOST_TEST(p.options.size_bytes == 0u);  // known only once the server is asked
  const AddParse defaults = parse({"-t", "nbd", "--connect", "tcp:localhost:10809"});
  BOOST_TEST_REQUIRE(static_cast<bool>(defaults), defaults.error);
  BOOST_TEST(defaults.options.export_name.empty());
  BOOST_TEST(defaults.options.reconnect_timeout_ms == 30000u);
  BOOST_TEST(parse({"-t", "nbd", "--connect", "tcp:h:1", "--reconnect-timeout", "7s"}).options.reconnect_timeout_ms ==
             7000u);
  BOOST_TEST(parse({"-t", "nbd", "--connect", "tcp:h:1", "--reconnect-timeout", "0"}).options.reconnect_timeout_ms ==
             0u);
}

BOOST_AUTO_TEST_CASE(nbd_options_are_checked_before_any_connection) {
  expect_rejected({"-t", "nbd"}, "-t nbd needs --connect");
  expect_rejected({"-t", "nbd", "--connect", "nbd://host"}, "expected unix:PATH or tcp:HOST:PORT");
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--size", "1G"}, "--size is not valid with -t nbd");
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--reconnect-timeout", "soon"}, "--reconnect-timeout");
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--reconnect-timeout", "-1s"}, "--reconnect-timeout");
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--export", std::string(4097, 'e')}, "at most 4096");
  expect_rejected({"-t", "ram", "--connect", "unix:/x"}, "--connect is only valid with -t nbd");
  expect_rejected({"-t", "loop", "--export", "x"}, "--export is only valid with -t nbd");
  expect_rejected({"-t", "null", "--reconnect-timeout", "1s"}, "--reconnect-timeout is only valid with -t nbd");
}

BOOST_AUTO_TEST_CASE(nbd_takes_zero_copy_but_not_with_the_other_data_paths) {
  const AddParse p = parse({"-t", "nbd", "--connect", "unix:/x", "--zero-copy"});
  BOOST_TEST_REQUIRE(static_cast<bool>(p), p.error);
  BOOST_TEST((p.options.data_path == DataPathKind::zero_copy));
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--zero-copy", "--user-copy"}, "mutually exclusive");
  expect_rejected({"-t", "nbd", "--connect", "unix:/x", "--zero-copy", "--unprivileged"}, "zero copy");
}

BOOST_AUTO_TEST_CASE(resolving_an_unreachable_nbd_server_is_one_line_and_leaves_the_options_alone) {
  AddParse p = parse({"-t", "nbd", "--connect", "unix:/nonexistent/coblk-test.sock"});
  BOOST_TEST_REQUIRE(static_cast<bool>(p), p.error);
  const coblk::Result<void> r = resolve_nbd_export(p.options, std::chrono::seconds(2));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message().find("cannot connect to NBD server 'unix:/nonexistent/coblk-test.sock'") !=
             std::string::npos);
  BOOST_TEST(r.error().message().find('\n') == std::string::npos);
  BOOST_TEST(p.options.size_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(compress_cores_are_taken_for_zram_with_or_without_recovery_and_refused_elsewhere) {
  const AddParse p = parse({"-t", "zram", "--compress-cores", "2"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.compress_cores == 2U);
  const AddParse r = parse({"-t", "zram", "--compress-cores", "2", "--recovery"});
  BOOST_REQUIRE(r);
  BOOST_TEST(r.options.compress_cores == 2U);
  expect_rejected({"-t", "ram", "--compress-cores", "1"}, "--compress-cores is only valid with -t zram");
  expect_rejected({"-t", "zram", "--compress-cores", "65", "--recovery"},
                  "--compress-cores: at most 64 with --recovery (its keeper holds one memory per core), got 65");
  expect_rejected({"-t", "zram", "--compress-cores", "257"}, "--compress-cores must be a whole number from 0 to 256");
  expect_rejected({"-t", "zram", "--compress-cores", "-1"}, "--compress-cores must be a whole number from 0 to 256");
}

BOOST_AUTO_TEST_CASE(entropy_routing_needs_a_strong_codec_and_thresholds_in_order) {
  const AddParse p = parse(
      {"-t", "zram", "--recompress", "zstd:3", "--entropy-routing", "--entropy-low", "2", "--entropy-high", "6.5"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.entropy_routing);
  BOOST_TEST(p.options.entropy_low == 2.0);
  BOOST_TEST(p.options.entropy_high == 6.5);
  const AddParse defaults = parse({"-t", "zram", "--recompress", "zstd", "--entropy-routing"});
  BOOST_REQUIRE(defaults);
  BOOST_TEST(defaults.options.entropy_low == 1.0);
  BOOST_TEST(defaults.options.entropy_high == 7.0);
  expect_rejected({"-t", "zram", "--entropy-routing"}, "--entropy-routing needs --recompress ALG");
  expect_rejected({"-t", "zram", "--recompress", "zstd", "--entropy-low", "2"}, "only valid with --entropy-routing");
  expect_rejected({"-t", "zram", "--recompress", "zstd", "--entropy-routing", "--entropy-high", "9"},
                  "--entropy-high must be a number of bits per byte from 0 to 8, not '9'");
  expect_rejected({"-t", "zram", "--recompress", "zstd", "--entropy-routing", "--entropy-low", "x"},
                  "--entropy-low must be a number");
  expect_rejected(
      {"-t", "zram", "--recompress", "zstd", "--entropy-routing", "--entropy-low", "7", "--entropy-high", "3"},
      "--entropy-low (7) must be below --entropy-high (3)");
  expect_rejected({"-t", "ram", "--entropy-routing"}, "--entropy-routing is only valid with -t zram");
}

BOOST_AUTO_TEST_CASE(an_nbd_backing_takes_the_connect_syntax_and_its_export_and_reconnect_timeout) {
  const AddParse p =
      parse({"-t", "zram", "--backing", "nbd:tcp:tier:10809", "--export", "swap", "--reconnect-timeout", "500ms"});
  BOOST_REQUIRE(p);
  BOOST_TEST(p.options.backing == "nbd:tcp:tier:10809");  // not made an absolute path
  BOOST_TEST(p.options.export_name == "swap");
  BOOST_TEST(p.options.reconnect_timeout_ms == 500u);
  expect_rejected({"-t", "zram", "--backing", "nbd:udp:tier:1"}, "expected nbd:unix:PATH or nbd:tcp:HOST:PORT");
  expect_rejected({"-t", "zram", "--export", "swap"}, "--export is only valid with -t nbd or --backing nbd:");
  expect_rejected({"-t", "zram", "--backing", "/tmp/x", "--reconnect-timeout", "1s"},
                  "--reconnect-timeout is only valid with -t nbd or --backing nbd:");
  expect_rejected({"-t", "zram", "--backing", "nbd:unix:/s", "--reconnect-timeout", "soon"}, "--reconnect-timeout:");
}

BOOST_AUTO_TEST_CASE(readmit_reads_is_0_1_or_2_with_a_backing_tier_and_defaults_to_2) {
  const BackingFile file(1 << 20);  // --backing resolves its path: it must exist
  const char* x = file.path.c_str();
  BOOST_TEST(parse({"-t", "zram", "--backing", x}).options.readmit_reads == 2u);
  const AddParse never = parse({"-t", "zram", "--backing", x, "--readmit-reads", "0"});
  BOOST_TEST(never.error.empty(), never.error);
  BOOST_TEST(never.options.readmit_reads == 0u);
  BOOST_TEST(parse({"-t", "zram", "--backing", x, "--readmit-reads", "1"}).options.readmit_reads == 1u);
  expect_rejected({"-t", "zram", "--backing", x, "--readmit-reads", "3"},
                  "--readmit-reads must be a whole number from 0 to 2, not '3'");
  expect_rejected({"-t", "zram", "--backing", x, "--readmit-reads", "-1"}, "--readmit-reads must be");
  expect_rejected({"-t", "zram", "--backing", x, "--readmit-reads", "often"}, "--readmit-reads must be");
  expect_rejected({"-t", "zram", "--readmit-reads", "1"}, "--readmit-reads is only valid with --backing");
}

BOOST_AUTO_TEST_CASE(request_timeout_is_a_time_for_nbd_devices_and_nbd_tiers_only) {
  const AddParse nbd = parse({"-t", "nbd", "--connect", "unix:/s", "--request-timeout", "2s"});
  BOOST_REQUIRE(nbd);
  BOOST_TEST(nbd.options.request_timeout_ms == 2000u);
  const AddParse tier = parse({"-t", "zram", "--backing", "nbd:unix:/s", "--request-timeout", "0"});
  BOOST_REQUIRE(tier);
  BOOST_TEST(tier.options.request_timeout_ms == 0u);
  BOOST_TEST(parse({"-t", "nbd", "--connect", "unix:/s"}).options.request_timeout_ms == 30000u);
  expect_rejected({"-t", "zram", "--request-timeout", "1s"},
                  "--request-timeout is only valid with -t nbd or --backing nbd:");
  expect_rejected({"-t", "nbd", "--connect", "unix:/s", "--request-timeout", "-1s"},
                  "--request-timeout: expected a time such as 30s");
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_add_options_test
