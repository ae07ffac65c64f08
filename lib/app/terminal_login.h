#pragma once

#include <string>

#include "config/config.h"

namespace g2m {

// `graph2mqtt login ACCOUNT [--browser]` (graph2mqtt(1)): a sign-in from a terminal, without a
// broker, on the same SignInDriver the agent uses. Device code: prints the platform's message and
// waits. Browser (with `browser`, sign_in_method browser, or auto once the tenant's policy
// refused the device code): prints the sign-in address and reads the address the browser ended
// at from standard input. Stores the tokens where the agent finds them. Returns the exit
// status: 0 signed in, 1 declined/expired/interrupted/failed or tokens already present without
// `force`, 2 unknown account.
int terminal_login(const Config& config, const std::string& account, bool force, bool browser);

}  // namespace g2m
