#include "common/process_hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace g2m {

std::string disable_core_dumps() {
  std::string problems;
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    problems = std::string("cannot set RLIMIT_CORE to 0: ") + std::strerror(errno);
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    if (!problems.empty()) problems += "; ";
    problems += std::string("cannot clear the dumpable flag: ") + std::strerror(errno);
  }
  return problems;
}

}  // namespace g2m
