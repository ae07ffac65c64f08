#pragma once

#include <string>

#include "config/config.h"

namespace g2m {

// `graph2mqtt login ACCOUNT` (CONTRACT §5): a device-code sign-in from a terminal, without a
// broker. Prints the platform's message, waits, stores the tokens where the agent finds them.
// Returns the exit status: 0 signed in, 1 declined/expired/interrupted/failed or tokens already
// present without `force`, 2 unknown account.
int terminal_login(const Config& config, const std::string& account, bool force);

}  // namespace g2m
