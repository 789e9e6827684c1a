// The daemon's log: each stderr line becomes one syslog message naming the
// device, with a priority from its text; repeated reports are rate-limited
// with a count; a child's lines arrive too; stderr is put back at the end.
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "coblk/cmd/daemon_log.h"

BOOST_AUTO_TEST_SUITE(cmd_daemon_log_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::uint64_t kSecond = 1'000'000'000ULL;

std::vector<std::string> texts(const std::vector<cmd::LogMessage>& messages) {
  std::vector<std::string> out;
  out.reserve(messages.size());
  for (const auto& m : messages) out.push_back(m.text);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(lines_name_the_device_and_lose_the_program_name) {
  cmd::DaemonLogFilter f("add");
  f.set_device(3);
  const auto out = f.feed("coblk add: warning: memory not locked: mlockall: ENOMEM", kSecond);
  BOOST_REQUIRE_EQUAL(out.size(), 1U);
  BOOST_TEST(out[0].text == "ublkb3: warning: memory not locked: mlockall: ENOMEM");
  BOOST_TEST(out[0].priority == LOG_WARNING);
  BOOST_TEST(f.feed("", kSecond).empty());
}

BOOST_AUTO_TEST_CASE(lines_before_the_device_is_known_wait_for_its_name) {
  cmd::DaemonLogFilter f("add");
  BOOST_TEST(f.feed("coblk add: warning: oom_score_adj not set: EACCES", kSecond).empty());
  BOOST_TEST(f.tick(2 * kSecond).empty());
  f.set_device(7);
  const auto out = texts(f.tick(2 * kSecond));
  BOOST_TEST(out == std::vector<std::string>{"ublkb7: warning: oom_score_adj not set: EACCES"});
}

BOOST_AUTO_TEST_CASE(lines_of_a_device_never_named_go_out_with_the_command_after_5_s) {
  cmd::DaemonLogFilter f("recover");
  BOOST_TEST(f.feed("coblk: something happened", kSecond).empty());
  BOOST_TEST(f.tick(4 * kSecond).empty());
  BOOST_TEST(texts(f.tick(6 * kSecond)) == std::vector<std::string>{"recover: something happened"});
  cmd::DaemonLogFilter g("add");
  BOOST_TEST(g.feed("last words", kSecond).empty());
  BOOST_TEST(texts(g.flush()) == std::vector<std::string>{"add: last words"});
}

BOOST_AUTO_TEST_CASE(the_priority_follows_the_text) {
  BOOST_TEST(cmd::DaemonLogFilter::priority_of("core 1: task 'q' ran 12.000 ms without yielding") == LOG_WARNING);
  BOOST_TEST(cmd::DaemonLogFilter::priority_of("queue 0 tag 3: request failed: Input/output error") == LOG_ERR);
  BOOST_TEST(cmd::DaemonLogFilter::priority_of("serving /dev/ublkb0: target null") == LOG_INFO);
}

BOOST_AUTO_TEST_CASE(stall_reports_pass_once_per_window_then_say_how_many_were_held) {
  cmd::DaemonLogFilter f("add", 10 * kSecond);
  f.set_device(0);
  std::vector<std::string> out;
  for (int i = 0; i < 100; ++i) {
    const std::string line = "coblk: core 1: task 'serve' ran " + std::to_string(10 + i) + ".5 ms without yielding";
    for (const auto& t : texts(f.feed(line, kSecond + i * 10'000'000ULL))) out.push_back(t);
  }
  // Another kind is not held back by the stalls.
  for (const auto& t : texts(f.feed("coblk: queue 0: the target failed to start", 2 * kSecond))) out.push_back(t);
  BOOST_REQUIRE_EQUAL(out.size(), 2U);
  BOOST_TEST(out[0] == "ublkb0: core 1: task 'serve' ran 10.5 ms without yielding");
  BOOST_TEST(f.tick(10 * kSecond).empty());  // the window is still open
  const auto summary = f.tick(11 * kSecond + 1);
  BOOST_REQUIRE_EQUAL(summary.size(), 1U);
  BOOST_TEST(summary[0].text ==
             "ublkb0: 99 more like this in 10 s not logged: core 1: task 'serve' ran 109.5 ms without yielding");
  BOOST_TEST(summary[0].priority == LOG_WARNING);
  BOOST_TEST(f.tick(30 * kSecond).empty());  // said once
  // After the window, the next one passes again.
  BOOST_TEST(f.feed("coblk: core 1: task 'serve' ran 50.0 ms without yielding", 40 * kSecond).size() == 1U);
  BOOST_TEST(f.feed("coblk: core 1: task 'serve' ran 51.0 ms without yielding", 41 * kSecond).empty());
  BOOST_TEST(texts(f.flush()) ==
             std::vector<std::string>{
                 "ublkb0: 1 more like this in 10 s not logged: core 1: task 'serve' ran 51.0 ms without yielding"});
}

BOOST_AUTO_TEST_CASE(events_are_never_held_back) {
  cmd::DaemonLogFilter f("add", 10 * kSecond);
  f.set_device(1);
  for (int i = 0; i < 5; ++i) {
    const auto out =
        f.feed("keeper: automatic restart: server " + std::to_string(100 + i) + " recovered the device", kSecond + i);
    BOOST_REQUIRE_EQUAL(out.size(), 1U);
    BOOST_TEST(out[0].priority == LOG_INFO);
  }
  BOOST_TEST(f.flush().empty());
}

BOOST_AUTO_TEST_CASE(stderr_of_the_process_and_its_children_reaches_the_sink_and_is_put_back) {
  struct stat before {};
  BOOST_REQUIRE_EQUAL(::fstat(STDERR_FILENO, &before), 0);
  std::mutex mutex;
  std::vector<cmd::LogMessage> got;
  BOOST_REQUIRE(cmd::start_daemon_log("add", [&](const cmd::LogMessage& m) {
                  const std::lock_guard lock(mutex);
                  got.push_back(m);
                }).ok());
  BOOST_TEST(cmd::daemon_log_active());
  std::fprintf(stderr, "coblk add: warning: memory not locked: test\n");
  cmd::set_daemon_log_device(9);
  for (int i = 0; i < 20; ++i) std::fprintf(stderr, "coblk: core 0: task 't' ran %d.0 ms without yielding\n", 11 + i);
  const pid_t child = ::fork();
  if (child == 0) {
    std::fprintf(stderr, "coblk: queue 2: a line from a child\n");
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  cmd::stop_daemon_log();
  BOOST_TEST(!cmd::daemon_log_active());
  struct stat after {};
  BOOST_REQUIRE_EQUAL(::fstat(STDERR_FILENO, &after), 0);
  BOOST_TEST(after.st_ino == before.st_ino);
  BOOST_TEST(after.st_dev == before.st_dev);
  const std::lock_guard lock(mutex);
  BOOST_REQUIRE_EQUAL(got.size(), 4U);
  BOOST_TEST(got[0].text == "ublkb9: warning: memory not locked: test");
  BOOST_TEST(got[0].priority == LOG_WARNING);
  BOOST_TEST(got[1].text == "ublkb9: core 0: task 't' ran 11.0 ms without yielding");
  BOOST_TEST(got[2].text == "ublkb9: queue 2: a line from a child");
  BOOST_TEST(got[3].text ==
             "ublkb9: 19 more like this in 10 s not logged: core 0: task 't' ran 30.0 ms without yielding");
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_daemon_log_test
