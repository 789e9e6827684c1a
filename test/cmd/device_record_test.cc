#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "coblk/cmd/device_record.h"
#include "coblk/cmd/loop_backing.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(cmd_device_record_test)

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
  std::string run() const { return path + "/run"; }
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
  r.keeper_pid = 4241;
  r.keeper_start = 123456789012ULL;
  r.compression = "zstd:3";
  r.args = {"-t", "zram", "--size", "8G", "odd \"quoted\"\tname\\"};
  r.warnings = {"memory not locked: no CAP_IPC_LOCK and RLIMIT_MEMLOCK is limited; do not use this device as swap"};
  return r;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The uid tests hand files to when they play another user (as root only).
constexpr uid_t kOtherUser = 65534;

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
  BOOST_TEST(back->keeper_pid == 4241);
  BOOST_TEST(back->keeper_start == 123456789012ULL);
  BOOST_TEST(back->compression == "zstd:3");
  BOOST_TEST(back->args == r.args);
  BOOST_TEST(back->warnings == r.warnings);
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
  BOOST_TEST(cmd::save_record(r).ok());
  const auto back = cmd::load_record(7);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->args == r.args);
  BOOST_TEST(back->warnings == r.warnings);
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

BOOST_AUTO_TEST_CASE(a_run_directory_that_is_a_symbolic_link_is_refused) {
  TemporaryRunDirectory dir;
  const std::string elsewhere = dir.path + "/elsewhere";
  BOOST_REQUIRE(::mkdir(elsewhere.c_str(), 0755) == 0);
  BOOST_REQUIRE(::symlink(elsewhere.c_str(), dir.run().c_str()) == 0);
  const std::string why = test::require_error(cmd::save_record(sample()), EPERM);
  BOOST_TEST(why.find("'" + dir.run() + "' is a symbolic link") != std::string::npos, why);
  BOOST_TEST(std::filesystem::is_empty(elsewhere));
  test::require_error(cmd::load_record(7), EPERM);
  // A trailing slash does not smuggle the link past the check.
  ::setenv("COBLK_RUN_DIR", (dir.run() + "/").c_str(), 1);
  test::require_error(cmd::save_record(sample()), EPERM);
  BOOST_TEST(std::filesystem::is_empty(elsewhere));
}

BOOST_AUTO_TEST_CASE(a_run_directory_writable_by_other_users_is_refused_even_when_sticky) {
  TemporaryRunDirectory dir;
  BOOST_REQUIRE(::mkdir(dir.run().c_str(), 0755) == 0);
  for (const mode_t mode : {01777, 0777, 0775, 0757}) {
    BOOST_REQUIRE(::chmod(dir.run().c_str(), mode) == 0);
    const std::string why = test::require_error(cmd::save_record(sample()), EPERM);
    BOOST_TEST(why.find("is writable by other users") != std::string::npos, why);
    test::require_error(cmd::load_record(7), EPERM);
  }
  BOOST_TEST(std::filesystem::is_empty(dir.run()));
}

BOOST_AUTO_TEST_CASE(a_run_directory_owned_by_another_user_is_refused) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("not root: cannot give a directory to another user here");
    return;
  }
  TemporaryRunDirectory dir;
  BOOST_REQUIRE(::mkdir(dir.run().c_str(), 0755) == 0);
  BOOST_REQUIRE(::chown(dir.run().c_str(), kOtherUser, kOtherUser) == 0);
  const std::string why = test::require_error(cmd::save_record(sample()), EPERM);
  BOOST_TEST(why.find("is owned by uid 65534") != std::string::npos, why);
  BOOST_TEST(std::filesystem::is_empty(dir.run()));
}

BOOST_AUTO_TEST_CASE(a_directory_on_the_way_that_others_can_write_is_refused_unless_it_is_sticky) {
  TemporaryRunDirectory dir;
  const std::string open_dir = dir.path + "/open";
  BOOST_REQUIRE(::mkdir(open_dir.c_str(), 0755) == 0);
  BOOST_REQUIRE(::chmod(open_dir.c_str(), 0777) == 0);
  ::setenv("COBLK_RUN_DIR", (open_dir + "/run").c_str(), 1);
  const std::string why = test::require_error(cmd::save_record(sample()), EPERM);
  BOOST_TEST(why.find("'" + open_dir + "' (on the way to run directory") != std::string::npos, why);
  BOOST_TEST(why.find("writable by other users and not sticky") != std::string::npos, why);
  // Sticky, like /tmp: others may add entries but never move ours.
  BOOST_REQUIRE(::chmod(open_dir.c_str(), 01777) == 0);
  BOOST_TEST(cmd::save_record(sample()).ok());
  BOOST_TEST(cmd::load_record(7).ok());
}

BOOST_AUTO_TEST_CASE(a_record_is_never_written_through_a_link_planted_at_a_temporary_name) {
  TemporaryRunDirectory dir;
  BOOST_REQUIRE(::mkdir(dir.run().c_str(), 0755) == 0);
  const std::string victim = dir.path + "/victim";
  { std::ofstream(victim) << "precious\n"; }
  for (const char* name : {"/7.json.tmp", "/7.json.new", "/.7.json"}) {
    BOOST_REQUIRE(::symlink(victim.c_str(), (dir.run() + name).c_str()) == 0);
  }
  BOOST_TEST(cmd::save_record(sample()).ok());
  BOOST_TEST(slurp(victim) == "precious\n");
  BOOST_TEST(cmd::load_record(7).ok());
}

BOOST_AUTO_TEST_CASE(a_record_is_readable_by_everyone_whatever_the_umask) {
  TemporaryRunDirectory dir;
  const mode_t old = ::umask(077);
  const bool saved = cmd::save_record(sample()).ok();
  ::umask(old);
  BOOST_REQUIRE(saved);
  struct stat st {};
  BOOST_REQUIRE(::stat(cmd::record_path(7).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0644U);
}

BOOST_AUTO_TEST_CASE(a_relative_run_directory_is_refused) {
  TemporaryRunDirectory dir;
  ::setenv("COBLK_RUN_DIR", "relative/run", 1);
  const std::string why = test::require_error(cmd::save_record(sample()), EINVAL);
  BOOST_TEST(why == "COBLK_RUN_DIR must be an absolute path, not 'relative/run'");
}

BOOST_AUTO_TEST_CASE(a_record_that_another_user_owns_is_not_believed) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("not root: cannot give a file to another user here");
    return;
  }
  TemporaryRunDirectory dir;
  BOOST_REQUIRE(cmd::save_record(sample()).ok());
  BOOST_REQUIRE(::chown(cmd::record_path(7).c_str(), kOtherUser, kOtherUser) == 0);
  test::require_error(cmd::load_record(7), EPERM);
}

BOOST_AUTO_TEST_CASE(an_ordinary_user_keeps_state_in_a_directory_of_their_own) {
  if (::geteuid() != 0) {
    BOOST_TEST(cmd::run_directory() != "/run/coblk");
    return;
  }
  BOOST_TEST(cmd::run_directory() == "/run/coblk");
  // A child becomes another user and reports what it would use.
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::unsetenv("COBLK_RUN_DIR");
    ::unsetenv("XDG_RUNTIME_DIR");
    if (::setresgid(kOtherUser, kOtherUser, kOtherUser) != 0 || ::setresuid(kOtherUser, kOtherUser, kOtherUser) != 0)
      ::_exit(2);
    std::string seen = cmd::run_directory() + "\n";
    ::setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
    seen += cmd::run_directory() + "\n";
    ::_exit(::write(fds[1], seen.data(), seen.size()) == static_cast<ssize_t>(seen.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  char buf[256] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof(buf) - 1);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_REQUIRE(WEXITSTATUS(status) == 0);
  BOOST_TEST(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "/tmp/coblk-65534\n/run/user/65534/coblk\n");
}

BOOST_AUTO_TEST_CASE(recovery_is_refused_when_the_record_or_its_arguments_differ_from_the_kernels_geometry) {
  cmd::DeviceRecord r = sample();
  r.target = "loop";
  r.size_bytes = 32ULL << 20;
  r.block_size = 512;
  BOOST_TEST(cmd::recovery_mismatch(r, 32ULL << 20, 512, 32ULL << 20, 512).empty());
  // The backing file grew since: the arguments (no --size) now say 64M.
  BOOST_TEST(cmd::recovery_mismatch(r, 64ULL << 20, 512, 32ULL << 20, 512) ==
             "device 7 is 32M of 512-byte blocks in the kernel, but its recorded arguments now give 64M of 512-byte "
             "blocks (has the backing file changed size?): refusing to serve it with another geometry");
  // A record that disagrees with the kernel is not believed either.
  r.block_size = 4096;
  BOOST_TEST(cmd::recovery_mismatch(r, 32ULL << 20, 4096, 32ULL << 20, 512) ==
             "device 7 is 32M of 512-byte blocks in the kernel, but its record says 32M of 4096-byte blocks: refusing "
             "to serve it with another geometry");
  r = sample();
  BOOST_TEST(cmd::recovery_mismatch(r, 8ULL << 30, 512, 8ULL << 30, 4096).find("now give 8G of 512-byte blocks: ") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(recovery_refuses_a_backing_path_that_now_names_another_file) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("coblk-backing-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "disk.img").string();
  std::ofstream(path) << "the data the device was added with";
  cmd::DeviceRecord r = sample();
  r.target = "loop";
  r.backing = path;
  r.backing_id = cmd::backing_identity(path);
  BOOST_TEST(r.backing_id.rfind("file ", 0) == 0u);
  BOOST_TEST(cmd::record_from_json(cmd::to_json(r))->backing_id == r.backing_id);
  // The same file, renamed away and back, is still the same file.
  std::filesystem::rename(path, (dir / "moved").string());
  std::filesystem::rename((dir / "moved").string(), path);
  BOOST_TEST(cmd::backing_mismatch(r, cmd::backing_identity(path)).empty());
  // Another file of the same size put in its place (a restore, a rotation)
  // is refused: its bytes are not the device's. The original is kept open
  // meanwhile, as a server would, so its inode cannot be reused.
  const std::string other = (dir / "other.img").string();
  std::ofstream(other) << "another file's data, same length!!";
  {
    std::ifstream keep(path);
    std::filesystem::rename(other, path);
    const std::string now = cmd::backing_identity(path);
    BOOST_TEST(now != r.backing_id);
    BOOST_TEST(cmd::backing_mismatch(r, now) ==
               "the backing file '" + path + "' of device 7 is not the one it was added with (then " + r.backing_id +
                   ", now " + now + "): refusing to serve another file's data");
  }
  // A record of an older coblk has no identity, and a path that cannot be
  // stat'ed now fails when it is opened: neither is refused here.
  cmd::DeviceRecord older = r;
  older.backing_id.clear();
  BOOST_TEST(cmd::backing_mismatch(older, cmd::backing_identity(path)).empty());
  BOOST_TEST(cmd::backing_identity((dir / "missing").string()).empty());
  BOOST_TEST(cmd::backing_mismatch(r, "").empty());
  // A device node names the device behind it, whatever node is used.
  BOOST_TEST(cmd::backing_identity("/dev/null") == "char 1:3");
  // A record of an older coblk that knew less of the same device (an
  // NVMe node's number, before its wwid was recorded) still matches; the
  // same number with another namespace does not.
  cmd::DeviceRecord nvme = r;
  nvme.backing_id = "char 240:0";
  BOOST_TEST(cmd::backing_mismatch(nvme, "char 240:0 wwid eui.0011223344556677").empty());
  BOOST_TEST(!cmd::backing_mismatch(nvme, "char 240:01").empty());
  nvme.backing_id = "char 240:0 wwid eui.0011223344556677";
  BOOST_TEST(!cmd::backing_mismatch(nvme, "char 240:0 wwid eui.8899aabbccddeeff").empty());
  BOOST_TEST(!cmd::backing_mismatch(nvme, "char 240:0").empty());
  // A record of this coblk whose wwid was unknown is not an older record:
  // another namespace with a wwid is refused.
  nvme.backing_id = "char 240:0 wwid unknown";
  BOOST_TEST(!cmd::backing_mismatch(nvme, "char 240:0 wwid eui.8899aabbccddeeff").empty());
  // The rule is for NVMe nodes only: a disk's record is compared whole.
  nvme.backing_id = "block 8:0";
  BOOST_TEST(!cmd::backing_mismatch(nvme, "block 8:0 diskseq 9").empty());
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(the_identity_of_an_open_backing_file_is_the_file_held_not_the_path) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("coblk-held-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "disk.img").string();
  std::ofstream(path) << "the data the server serves";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_TEST_REQUIRE(fd >= 0);
  const std::string held = cmd::backing_identity_of_fd(fd);
  BOOST_TEST(held == cmd::backing_identity(path));
  // Another file takes the path after the server opened the original:
  // the path now answers for it, the fd still for what is served.
  const std::string other = (dir / "other.img").string();
  std::ofstream(other) << "another file's data, same len";
  std::filesystem::rename(other, path);
  BOOST_TEST(cmd::backing_identity(path) != held);
  BOOST_TEST(cmd::backing_identity_of_fd(fd) == held);
  ::close(fd);
  BOOST_TEST(cmd::backing_identity_of_fd(-1).empty());
  // A device node by fd and by path agree.
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  BOOST_TEST(cmd::backing_identity_of_fd(null_fd) == "char 1:3");
  ::close(null_fd);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_record_says_whether_its_device_is_unprivileged) {
  cmd::DeviceRecord r = sample();
  BOOST_TEST(!cmd::record_from_json(cmd::to_json(r))->unprivileged);
  r.unprivileged = true;
  BOOST_TEST(cmd::to_json(r).find("\"unprivileged\":true") != std::string::npos);
  BOOST_TEST(cmd::record_from_json(cmd::to_json(r))->unprivileged);
  // Records of older servers have no such key: privileged.
  BOOST_TEST(!cmd::record_from_json(R"({"dev_id": 3, "target": "ram"})")->unprivileged);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_device_record_test
