// Core dumps off: the agent's memory holds tokens (SECURITY.md).
#include <doctest/doctest.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/process_hardening.h"

using namespace g2m;

TEST_CASE("process hardening: disable_core_dumps clears the dumpable flag and RLIMIT_CORE") {
  // In a child, so the test program itself stays dumpable (sanitizers, debuggers).
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const rlimit some{4096, RLIM_INFINITY};
    ::setrlimit(RLIMIT_CORE, &some);
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) ::_exit(10);  // dumpable before
    if (!disable_core_dumps().empty()) ::_exit(11);
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) ::_exit(12);
    rlimit now{};
    if (::getrlimit(RLIMIT_CORE, &now) != 0 || now.rlim_cur != 0 || now.rlim_max != 0) ::_exit(13);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
