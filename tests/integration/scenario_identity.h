// Helpers for the tests of an identity platform that fails (docs/mqtt-api.md "Errors and
// retries"): shared by test_faults.cpp and test_hardening.cpp.
#pragma once

#include <chrono>
#include <string>

#include "scenario.h"

namespace g2m::test {

// A command whose request to the identity platform fails (in transit, or with an answer that is
// not usable): an error reply a client may repeat (retry_in), and an auth_error `expected` with
// the agent's own retry_in. Returns that event. Marks its own start, so `since` marks taken
// before it still see what follows.
inline rapidjson::Document transient_auth_failure(Scenario& s, const std::string& action,
                                                  const std::string& expected) {
  const auto since = s.display.mark();
  auto reply = s.display.request(action, R"({"account":"kitchen"})");
  CHECK(json_str(reply, "status") == "error");
  CHECK(reply["retry_in"].IsInt());
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "error") == expected);
  REQUIRE(error["retry_in"].IsInt());
  return error;
}

// A sign-in whose first token answers are unusable (`fault`: a /_sim/fail request on the token
// endpoint): an auth_error invalid_response with the agent's retry_in, then, once the user
// approves, the account is signed in all the same.
inline void unusable_token_answers_are_retried(Scenario& s, const std::string& fault) {
  s.simulator.fail(fault);
  const auto since = s.display.mark();
  const auto code = s.login();
  auto error = s.wait_event("kitchen", "auth_error", since).json();
  CHECK(json_str(error, "error") == "invalid_response");
  CHECK(error["retry_in"].IsInt());
  s.simulator.approve(code);
  s.wait_state("kitchen", "signed_in", since, std::chrono::seconds(30));
}

}  // namespace g2m::test
