#include <doctest/doctest.h>

#include "common/time_format.h"
#include "fake_clock.h"
#include "identity/oauth.h"
#include "json/json.h"

using namespace g2m;

namespace {

// When the answers arrive (an HTTP-date Retry-After counts from it).
const SystemTime kNow = std::chrono::sys_days{std::chrono::year{2026} / 12 / 3};
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
    "message":"To sign in, use a web browser"})"),
                                      kNow);
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
    "verification_url":"https://microsoft.com/devicelogin","expires_in":"900","interval":"7"})"),
                                      kNow);
  const auto& c = std::get<DeviceCode>(o);
  CHECK(c.verification_uri == "https://microsoft.com/devicelogin");
  CHECK(c.expires_in == Seconds(900));
  CHECK(c.interval == Seconds(7));
  // No message from the platform: one is built from the code and URL.
  CHECK(c.message.find("C45FGVYJR") != std::string::npos);
}

TEST_CASE("oauth: a missing interval means 5 seconds (RFC 8628 §3.2)") {
  auto o = parse_device_code_response(
      answer(
          200,
          R"({"device_code":"DC","user_code":"U","verification_uri":"https://x","expires_in":600})"),
      kNow);
  CHECK(std::get<DeviceCode>(o).interval == Seconds(5));
}

TEST_CASE("oauth: an error returned with HTTP 200 is still an error") {
  auto o = parse_device_code_response(answer(200, R"({"error":"invalid_client",
    "error_description":"AADSTS7000218: The request body must contain client_secret.\r\nTrace ID: x",
    "error_codes":[7000218]})"),
                                      kNow);
  const auto& f = failure_of(o);
  CHECK(f.kind == AuthFailure::Kind::oauth);
  CHECK(f.error == "invalid_client");
  CHECK(f.description == "AADSTS7000218: The request body must contain client_secret.");
  CHECK(f.aadsts == 7000218);
}

TEST_CASE("oauth: network, timeout and TLS failures are transient with their own names") {
  CHECK(failure_of(parse_token_response(transport(TransportError::network), kNow)).error ==
        "network_error");
  CHECK(failure_of(parse_token_response(transport(TransportError::timeout), kNow)).error ==
        "timeout");
  const auto& tls = failure_of(parse_token_response(transport(TransportError::tls), kNow));
  CHECK(tls.error == "tls_error");
  CHECK(tls.kind == AuthFailure::Kind::transient);
}

TEST_CASE("oauth: 5xx and 429 are transient, with Retry-After") {
  const auto& f = failure_of(parse_token_response(answer(429, "slow", "30"), kNow));
  CHECK(f.kind == AuthFailure::Kind::transient);
  CHECK(f.error == "http_429");
  CHECK(f.retry_after == Seconds(30));
  CHECK(failure_of(parse_token_response(answer(503, "<html>"), kNow)).kind ==
        AuthFailure::Kind::transient);
  const auto& busy = failure_of(parse_token_response(
      answer(503, R"({"error":"temporarily_unavailable","error_description":"busy"})"), kNow));
  CHECK(busy.kind == AuthFailure::Kind::transient);
  CHECK(busy.error == "temporarily_unavailable");
}

TEST_CASE("oauth: temporarily_unavailable with HTTP 400 is transient") {
  const auto& f =
      failure_of(parse_token_response(answer(400, R"({"error":"temporarily_unavailable"})"), kNow));
  CHECK(f.kind == AuthFailure::Kind::transient);
}

TEST_CASE("oauth: a 200 whose body is not JSON is transient, a 4xx without JSON is terminal") {
  const auto& a = failure_of(parse_token_response(answer(200, "<html>proxy</html>"), kNow));
  CHECK(a.kind == AuthFailure::Kind::transient);
  CHECK(a.error == "invalid_response");
  const auto& b = failure_of(parse_token_response(answer(404, "not found"), kNow));
  CHECK(b.kind == AuthFailure::Kind::terminal);
  CHECK(b.error == "http_404");
}

TEST_CASE("oauth: a token answer is parsed, scopes split, numbers as strings accepted") {
  auto o =
      parse_token_response(answer(200, R"({"token_type":"Bearer","scope":"User.Read profile openid",
    "expires_in":"3599","access_token":"AT","refresh_token":"RT","id_token":"ID"})"),
                           kNow);
  const auto& t = std::get<TokenResponse>(o);
  CHECK(t.access_token.reveal() == "AT");
  CHECK(t.refresh_token.reveal() == "RT");
  CHECK(t.id_token.reveal() == "ID");
  CHECK(t.expires_in == Seconds(3599));
  CHECK(t.scopes == std::vector<std::string>{"User.Read", "profile", "openid"});
}

TEST_CASE("oauth: authorization_pending with HTTP 200 (GitHub) is not a success") {
  const auto& f =
      failure_of(parse_token_response(answer(200, R"({"error":"authorization_pending"})"), kNow));
  CHECK(f.error == "authorization_pending");
}

TEST_CASE("oauth: slow_down carries the server's new interval") {
  const auto& f = failure_of(
      parse_token_response(answer(400, R"({"error":"slow_down","interval":"15"})"), kNow));
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
  const auto& f = failure_of(parse_token_response(answer(500, ""), kNow));
  CHECK(f.description.find("device") == std::string::npos);
}

// --- untrusted answers (docs/mqtt-api.md "Untrusted input")
// -------------------------------------------

namespace {
std::string device_answer(const std::string& fields) {
  return R"({"device_code":"DC","expires_in":900,)" + fields + "}";
}
const char* kGoodUri = R"("verification_uri":"https://microsoft.com/devicelogin")";
}  // namespace

TEST_CASE(
    "oauth: verification URIs must be https:// (http:// only for a loopback http authority)") {
  struct Case {
    std::string uri;
    std::string complete;  // "" for none
    const char* reason;    // nullptr: accepted
  };
  const std::vector<Case> cases = {
      {"https://microsoft.com/devicelogin", "", nullptr},
      {"HTTPS://microsoft.com/devicelogin", "", nullptr},
      {"https://microsoft.com/devicelogin", "https://microsoft.com/devicelogin?otc=AB", nullptr},
      {"http://microsoft.com/devicelogin", "", "verification_uri is not an https:// URL"},
      {"https://microsoft.com/devicelogin", "http://phish.example/?otc=AB",
       "verification_uri_complete is not an https:// URL"},
      {"javascript:alert(1)", "", "verification_uri is not a URL"},
      {"data:text/html,<script>alert(1)</script>", "", "verification_uri is not a URL"},
      {"https://microsoft.com/devicelogin",
       "data:text/html;base64,PHNjcmlwdD4=", "verification_uri_complete is not a URL"},
      {"microsoft.com/devicelogin", "", "verification_uri is not a URL"},
      {"https://", "", "verification_uri is not a URL"},
      {"https://microsoft.com@phish.example/", "", "verification_uri carries a user name"},
      {"https://microsoft.com/device login", "", "verification_uri contains a space"},
      {"https://microsoft.com/\r\nX", "", "verification_uri contains a space"},
      {"https://micros\xc3\xb6"
       "ft.com/",
       "", "verification_uri contains a space"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.uri);
    CAPTURE(c.complete);
    const std::string body = json::object([&](json::Fields& f) {
      f.str("device_code", "DC").str("user_code", "ABCD").str("verification_uri", c.uri);
      if (!c.complete.empty()) f.str("verification_uri_complete", c.complete);
      f.num("expires_in", 900);
    });
    for (const char* authority : {"", "https://login.microsoftonline.com", "https://127.0.0.1:8443",
                                  "http://phish.example"}) {
      CAPTURE(authority);
      auto o = parse_device_code_response(answer(200, body), kNow, authority);
      if (!c.reason) {
        CHECK(std::holds_alternative<DeviceCode>(o));
        continue;
      }
      REQUIRE(std::holds_alternative<AuthFailure>(o));
      const auto& f = failure_of(o);
      CHECK(f.kind == AuthFailure::Kind::transient);  // retried
      CHECK(f.error == "invalid_response");
      CHECK(f.description.find(c.reason) != std::string::npos);
    }
  }
  // A loopback http:// authority (a test server) may send http:// pages, and only then.
  const std::string http_body =
      device_answer(R"("user_code":"ABCD","verification_uri":"http://127.0.0.1:8080/devicelogin")");
  for (const char* authority : {"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"}) {
    CAPTURE(authority);
    CHECK(std::holds_alternative<DeviceCode>(
        parse_device_code_response(answer(200, http_body), kNow, authority)));
  }
  for (const char* authority : {"", "https://127.0.0.1:8443", "http://10.0.0.1:8080"}) {
    CAPTURE(authority);
    CHECK(failure_of(parse_device_code_response(answer(200, http_body), kNow, authority)).error ==
          "invalid_response");
  }
  CHECK(is_loopback_http("http://127.0.0.1:8080"));
  CHECK_FALSE(is_loopback_http("https://127.0.0.1:8080"));
  CHECK_FALSE(is_loopback_http("http://127.0.0.1.phish.example"));
}

TEST_CASE("oauth: a user_code must be 1-32 printable ASCII characters") {
  for (const auto& [code, ok] : {std::pair<std::string, bool>{"E4AAFX9VN", true},
                                 {std::string(32, 'A'), true},
                                 {"A B-C_D", true},
                                 {std::string(33, 'A'), false},
                                 {"ABC\x1b[2J", false},
                                 {"ABC\r\nD", false},
                                 {"K\xc3\xbc", false},
                                 {"\x7f", false}}) {
    CAPTURE(code);
    const std::string body = json::object([&](json::Fields& f) {
      f.str("device_code", "DC").str("user_code", code);
      f.str("verification_uri", "https://microsoft.com/devicelogin").num("expires_in", 900);
    });
    auto o = parse_device_code_response(answer(200, body), kNow);
    CHECK(std::holds_alternative<DeviceCode>(o) == ok);
    if (!ok) {
      CHECK(failure_of(o).error == "invalid_response");
      CHECK(failure_of(o).kind == AuthFailure::Kind::transient);
      CHECK(failure_of(o).description.find("user_code") != std::string::npos);
    }
  }
}

TEST_CASE("oauth: control characters are removed from a device code's message") {
  auto o = parse_device_code_response(
      answer(200,
             device_answer(
                 std::string(R"("user_code":"ABCD",)") + kGoodUri +
                 R"(,"message":"Open\u001b[2J the\r\n page\u0000\u0007\u007f\u009b31m now\t.")")),
      kNow);
  const auto& c = std::get<DeviceCode>(o);
  CHECK(c.message == "Open[2J the page31m now.");
  // Nothing left but control characters: the message is built from the code and URL instead.
  auto only = parse_device_code_response(
      answer(200, device_answer(std::string(R"("user_code":"ABCD",)") + kGoodUri +
                                R"(,"message":"\u001b\r\n")")),
      kNow);
  CHECK(std::get<DeviceCode>(only).message.find("ABCD") != std::string::npos);
  CHECK(strip_control_characters("caf\xc3\xa9 \xc2\x85x") == "caf\xc3\xa9 x");  // C1 NEL gone
}

TEST_CASE("oauth: lifetimes, intervals and Retry-After are clamped") {
  auto o =
      parse_device_code_response(answer(200, device_answer(std::string(R"("user_code":"ABCD",)") +
                                                           kGoodUri + R"(,"interval":86400)")),
                                 kNow);
  auto big = parse_device_code_response(
      answer(200, R"({"device_code":"DC","user_code":"ABCD",)" + std::string(kGoodUri) +
                      R"(,"expires_in":31536000,"interval":"3600"})"),
      kNow);
  const auto& c = std::get<DeviceCode>(big);
  CHECK(c.expires_in == Seconds(3600));
  CHECK(c.interval == Seconds(60));
  CHECK(std::get<DeviceCode>(o).interval == Seconds(60));
  CHECK(std::get<DeviceCode>(o).expires_in == Seconds(900));

  auto t = parse_token_response(answer(200, R"({"access_token":"AT","expires_in":9999999})"), kNow);
  CHECK(std::get<TokenResponse>(t).expires_in == Seconds(24 * 3600));
  auto normal =
      parse_token_response(answer(200, R"({"access_token":"AT","expires_in":86400})"), kNow);
  CHECK(std::get<TokenResponse>(normal).expires_in == Seconds(86400));

  const auto& slow = failure_of(
      parse_token_response(answer(400, R"({"error":"slow_down","interval":600})"), kNow));
  CHECK(slow.interval == Seconds(60));

  CHECK(failure_of(parse_token_response(answer(429, "", "86400"), kNow)).retry_after ==
        Seconds(3600));
  CHECK(failure_of(parse_token_response(answer(429, "", "3600"), kNow)).retry_after ==
        Seconds(3600));
  CHECK(failure_of(parse_token_response(answer(503, "", "-5"), kNow)).retry_after == Seconds(0));
  const auto now = *parse_http_date("Thu, 03 Dec 2026 12:00:00 GMT");
  CHECK(parse_retry_after(std::string("Thu, 03 Dec 2026 12:00:30 GMT"), now) == Seconds(30));
  CHECK(parse_retry_after(std::string("Fri, 03 Dec 2027 12:00:00 GMT"), now) == Seconds(3600));
  CHECK(parse_retry_after(std::string("Wed, 02 Dec 2026 12:00:00 GMT"), now) == Seconds(0));
  CHECK_FALSE(parse_retry_after(std::string("soon"), now).has_value());
}

TEST_CASE("oauth: an HTTP-date Retry-After is a delay from the injected clock's time") {
  test::FakeClock clock;  // 2026-11-26 19:00:00 UTC, a week before this test was written
  const auto busy = answer(503, "", "Thu, 26 Nov 2026 19:02:00 GMT");
  CHECK(classify_failure(busy, clock.system()).retry_after == Seconds(120));
  clock.advance(Seconds(90));
  CHECK(classify_failure(busy, clock.system()).retry_after == Seconds(30));
  CHECK(failure_of(parse_token_response(busy, clock.system())).retry_after == Seconds(30));
  CHECK(failure_of(parse_device_code_response(busy, clock.system())).retry_after == Seconds(30));
  clock.advance(Seconds(60));
  CHECK(classify_failure(busy, clock.system()).retry_after == Seconds(0));  // already past
}

TEST_CASE("oauth: an access token that could break a header is invalid_response") {
  for (const char* token : {"AT\r\nX-Evil: 1", "AT\n", "A T", "AT\x7f", "AT\xc3\xa9"}) {
    CAPTURE(token);
    const std::string body =
        json::object([&](json::Fields& f) { f.str("access_token", token).num("expires_in", 60); });
    const auto& f = failure_of(parse_token_response(answer(200, body), kNow));
    CHECK(f.error == "invalid_response");
    CHECK(f.kind == AuthFailure::Kind::transient);
    CHECK(f.description.find("AT") == std::string::npos);  // no part of the token
  }
}

TEST_CASE("oauth: answers nested deeper than 256 levels are invalid_response, retried") {
  for (const std::string& body :
       {std::string(200000, '['), R"({"device_code":)" + std::string(300, '[')}) {
    const auto& d = failure_of(parse_device_code_response(answer(200, body), kNow));
    CHECK(d.error == "invalid_response");
    CHECK(d.kind == AuthFailure::Kind::transient);
    const auto& t = failure_of(parse_token_response(answer(200, body), kNow));
    CHECK(t.error == "invalid_response");
    CHECK(t.kind == AuthFailure::Kind::transient);
  }
  // 256 levels inside an otherwise good answer are fine.
  auto ok =
      parse_token_response(answer(200, R"({"access_token":"AT","x":)" + std::string(255, '[') +
                                           std::string(255, ']') + "}"),
                           kNow);
  CHECK(std::holds_alternative<TokenResponse>(ok));
}
