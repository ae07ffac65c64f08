#pragma once

#include <string>

namespace g2m {

// Keeps the tokens in this process's memory out of core dumps and away from other processes of
// the same user: RLIMIT_CORE 0 (no core file) and PR_SET_DUMPABLE 0 (no core, no ptrace attach,
// /proc/<pid>/mem and friends owned by root). Called first thing in main(). Returns "" or a
// sentence saying what could not be done (the caller logs it; it is not fatal).
std::string disable_core_dumps();

}  // namespace g2m
