#include <doctest/doctest.h>

#include "identity/oauth.h"

using namespace g2m;

namespace {
HttpResponse answer(long status, std::string body, std::optional<std::string> retry = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry);
  return r;
}
HttpResponse transport(TransportError e) {
  HttpResponse r;
  r.error = e;
  r.error_message = "curl said no";
  return r;
}
AuthFailure failure_of(const AuthOutcome<DeviceCode>& o) {
  return std::get<AuthFailure>(o);
}
AuthFailure failure_of(const AuthOutcome<TokenResponse>& o) {
  return std::get<AuthFailure>(o);
}

// base64url of {"name":"Adele Vance","preferred_username":"adele@contoso.com"}
const char* kIdToken =
    "eyJhbGciOiJub25lIn0."
    "eyJuYW1lIjoiQWRlbGUgVmFuY2UiLCJwcmVmZXJyZWRfdXNlcm5hbWUiOiJhZGVsZUBjb250b3NvLmNvbSJ9.sig";
}  // namespace

TEST_CASE("oauth: a Microsoft v2 device-code answer is parsed") {
  auto o = parse_device_code_response(answer(200, R"({"device_code":"DC","user_code":"E4AAFX9VN",
    "verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,
    "message":"To sign in, use a web browser"})"));
  const auto& c = std::get<DeviceCode>(o);
  CHECK(c.device_code.reveal() == "DC");
  CHECK(c.user_code == "E4AAFX9VN");
  CHECK(c.verification_uri == "https://microsoft.com/devicelogin");
  CHECK_FALSE(c.verification_uri_complete.has_value());
  CHECK(c.expires_in == Seconds(900));
  CHECK(c.interval == Seconds(5));
  CHECK(c.message == "To sign in, use a web browser");
}

TEST_CASE("oauth: v1 answers with verification_url and numbers as strings are accepted") {
  auto o = parse_device_code_response(answer(200, R"({"device_code":"DC","user_code":"C45FGVYJR",
    "verification_url":"https://microsoft.com/devicelogin","expires_in":"900","interval":"7"})"));
  const auto& c = std::get<DeviceCode>(o);
  CHECK(c.verification_uri == "https://microsoft.com/devicelogin");
  CHECK(c.expires_in == Seconds(900));
  CHECK(c.interval == Seconds(7));
  // No message from the platform: one is built from the code and URL.
  CHECK(c.message.find("C45FGVYJR") != std::string::npos);
}

TEST_CASE("oauth: a missing interval means 5 seconds (RFC 8628 §3.2)") {
  auto o = parse_device_code_response(answer(
      200,
      R"({"device_code":"DC","user_code":"U","verification_uri":"https://x","expires_in":600})"));
  CHECK(std::get<DeviceCode>(o).interval == Seconds(5));
}

TEST_CASE("oauth: an error returned with HTTP 200 is still an error") {
  auto o = parse_device_code_response(answer(200, R"({"error":"invalid_client",
    "error_description":"AADSTS7000218: The request body must contain client_secret.\r\nTrace ID: x",
    "error_codes":[7000218]})"));
  const auto& f = failure_of(o);
  CHECK(f.kind == AuthFailure::Kind::oauth);
  CHECK(f.error == "invalid_client");
  CHECK(f.description == "AADSTS7000218: The request body must contain client_secret.");
  CHECK(f.aadsts == 7000218);
}

TEST_CASE("oauth: network, timeout and TLS failures are transient with their own names") {
  CHECK(failure_of(parse_token_response(transport(TransportError::network))).error ==
        "network_error");
  CHECK(failure_of(parse_token_response(transport(TransportError::timeout))).error == "timeout");
  const auto& tls = failure_of(parse_token_response(transport(TransportError::tls)));
  CHECK(tls.error == "tls_error");
  CHECK(tls.kind == AuthFailure::Kind::transient);
}

TEST_CASE("oauth: 5xx and 429 are transient, with Retry-After") {
  const auto& f = failure_of(parse_token_response(answer(429, "slow", "30")));
  CHECK(f.kind == AuthFailure::Kind::transient);
  CHECK(f.error == "http_429");
  CHECK(f.retry_after == Seconds(30));
  CHECK(failure_of(parse_token_response(answer(503, "<html>"))).kind ==
        AuthFailure::Kind::transient);
  const auto& busy = failure_of(parse_token_response(
      answer(503, R"({"error":"temporarily_unavailable","error_description":"busy"})")));
  CHECK(busy.kind == AuthFailure::Kind::transient);
  CHECK(busy.error == "temporarily_unavailable");
}

TEST_CASE("oauth: temporarily_unavailable with HTTP 400 is transient") {
  const auto& f =
      failure_of(parse_token_response(answer(400, R"({"error":"temporarily_unavailable"})")));
  CHECK(f.kind == AuthFailure::Kind::transient);
}

TEST_CASE("oauth: a 200 whose body is not JSON is transient; a 4xx without JSON is terminal") {
  const auto& a = failure_of(parse_token_response(answer(200, "<html>proxy</html>")));
  CHECK(a.kind == AuthFailure::Kind::transient);
  CHECK(a.error == "invalid_response");
  const auto& b = failure_of(parse_token_response(answer(404, "not found")));
  CHECK(b.kind == AuthFailure::Kind::terminal);
  CHECK(b.error == "http_404");
}

TEST_CASE("oauth: a token answer is parsed, scopes split, numbers as strings accepted") {
  auto o =
      parse_token_response(answer(200, R"({"token_type":"Bearer","scope":"User.Read profile openid",
    "expires_in":"3599","access_token":"AT","refresh_token":"RT","id_token":"ID"})"));
  const auto& t = std::get<TokenResponse>(o);
  CHECK(t.access_token.reveal() == "AT");
  CHECK(t.refresh_token.reveal() == "RT");
  CHECK(t.id_token.reveal() == "ID");
  CHECK(t.expires_in == Seconds(3599));
  CHECK(t.scopes == std::vector<std::string>{"User.Read", "profile", "openid"});
}

TEST_CASE("oauth: authorization_pending with HTTP 200 (GitHub) is not a success") {
  const auto& f =
      failure_of(parse_token_response(answer(200, R"({"error":"authorization_pending"})")));
  CHECK(f.error == "authorization_pending");
}

TEST_CASE("oauth: slow_down carries the server's new interval") {
  const auto& f =
      failure_of(parse_token_response(answer(400, R"({"error":"slow_down","interval":"15"})")));
  CHECK(f.interval == Seconds(15));
}

TEST_CASE("oauth: the user comes from the id_token's name and preferred_username") {
  auto user = user_from_id_token(kIdToken);
  REQUIRE(user.has_value());
  CHECK(user->name == "Adele Vance");
  CHECK(user->username == "adele@contoso.com");
  CHECK_FALSE(user_from_id_token("not-a-jwt").has_value());
  CHECK_FALSE(user_from_id_token("a.!!!.c").has_value());
}

TEST_CASE("oauth: openid profile offline_access are always added to the scopes, once") {
  CHECK(requested_scopes({"User.Read"}) ==
        std::vector<std::string>{"User.Read", "openid", "profile", "offline_access"});
  CHECK(requested_scopes({"openid", "User.Read"}) ==
        std::vector<std::string>{"openid", "User.Read", "profile", "offline_access"});
  CHECK(join_scopes({"a", "b"}) == "a b");
}

TEST_CASE("oauth: failure descriptions never contain the request's secrets") {
  const auto& f = failure_of(parse_token_response(answer(500, "")));
  CHECK(f.description.find("device") == std::string::npos);
}
