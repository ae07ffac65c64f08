#pragma once

#include <cstdint>

#include "common/logger.h"
#include "http/http.h"
#include "identity/endpoints.h"
#include "identity/identity_options.h"
#include "loop/event_loop.h"

namespace g2m {

// What one account's identity code works with: what it reads of the account's configuration,
// and the agent's loop, HTTP client, endpoint resolver and log. The sign-in driver takes it as
// it is; the token keeper adds the store.
struct IdentityContext {
  IdentityOptions account;
  EventLoop& loop;
  Http& http;
  EndpointResolver& endpoints;
  Logger& log;
  std::uint64_t seed = 0;
};

}  // namespace g2m
