// The keeper's process identity: a recorded keeper is recognised by its pid
// and its start time together, so that a signal meant for a dead keeper
// never reaches a process that reused its pid.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include "coblk/cmd/keeper.h"

BOOST_AUTO_TEST_SUITE(cmd_keeper_test)

using namespace coblk::cmd;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(a_running_process_is_recognised_by_its_pid_and_start_time) {
  const std::uint64_t start = process_start_time(::getpid());
  BOOST_TEST(start > 0u);
  BOOST_TEST(keeper_alive(::getpid(), start));
}

BOOST_AUTO_TEST_CASE(a_process_that_reused_the_pid_is_not_the_keeper) {
  const std::uint64_t start = process_start_time(::getpid());
  BOOST_TEST(!keeper_alive(::getpid(), start + 1));
  BOOST_TEST(!keeper_alive(::getpid(), 0));
  BOOST_TEST(!keeper_alive(0, start));
}

BOOST_AUTO_TEST_CASE(a_keeper_that_exited_or_is_a_zombie_is_gone) {
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  const std::uint64_t start = process_start_time(child);
  BOOST_TEST(keeper_alive(child, start));
  ::kill(child, SIGKILL);
  // Not yet reaped: a zombie, which holds no memory any more.
  for (int i = 0; i < 200 && keeper_alive(child, start); ++i) ::usleep(10000);
  BOOST_TEST(!keeper_alive(child, start));
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_TEST(!keeper_alive(child, start));
  BOOST_TEST(process_start_time(child) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_keeper_test
