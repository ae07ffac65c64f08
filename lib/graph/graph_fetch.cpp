#include "graph/graph_fetch.h"

#include <algorithm>
#include <charconv>
#include <memory>

#include "common/time_format.h"
#include "json/json.h"

namespace g2m {

std::string url_origin(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  const auto path_start = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, path_start);
}

namespace {

std::optional<Seconds> retry_after_of(const HttpResponse& r) {
  if (!r.retry_after) return std::nullopt;
  long long secs = 0;
  const auto& h = *r.retry_after;
  const auto [ptr, ec] = std::from_chars(h.data(), h.data() + h.size(), secs);
  // An hour at most (CONTRACT §6 Untrusted input): a server cannot park a resource for longer.
  constexpr Seconds kMax{3600};
  if (ec == std::errc() && ptr == h.data() + h.size()) {
    return Seconds(std::clamp(secs, 0LL, static_cast<long long>(kMax.count())));
  }
  if (auto when = parse_http_date(h)) {
    return std::clamp(std::chrono::duration_cast<Seconds>(*when - std::chrono::system_clock::now()),
                      Seconds(0), kMax);
  }
  return std::nullopt;
}

struct Fetch : std::enable_shared_from_this<Fetch> {
  Http& http;
  std::string base;
  std::string origin;
  int max_pages = 1;
  GraphAuth auth;
  std::function<void(GraphResult)> done;
  bool refreshed = false;
  int pages = 0;
  std::optional<rapidjson::Document> merged;

  Fetch(Http& h, std::string b, int m, GraphAuth a, std::function<void(GraphResult)> d)
      : http(h),
        base(std::move(b)),
        origin(url_origin(base)),
        max_pages(m),
        auth(std::move(a)),
        done(std::move(d)) {}

  void finish(GraphResult result) {
    auto callback = std::move(done);
    if (callback) callback(std::move(result));
  }

  void get(const std::string& url) {
    const auto bearer = auth.bearer ? auth.bearer() : std::nullopt;
    if (!bearer) {
      GraphResult r;
      r.code = "not_signed_in";
      r.message = "the account is not signed in";
      finish(std::move(r));
      return;
    }
    // A CR, LF or any other control character would end the header and start another one.
    if (bearer->empty() || std::any_of(bearer->begin(), bearer->end(), [](char c) {
          return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
        })) {
      GraphResult r;
      r.code = "invalid_token";
      r.message = "the access token contains a space or a control character; not sent";
      finish(std::move(r));
      return;
    }
    HttpRequest request;
    request.url = url;
    request.headers.push_back("Authorization: Bearer " + *bearer);
    auto self = shared_from_this();
    http.send(std::move(request),
              [self, url](HttpResponse response) { self->on_response(url, std::move(response)); });
  }

  void on_response(const std::string& url, HttpResponse response) {
    GraphResult r;
    if (!response.ok()) {
      r.code = response.error == TransportError::timeout ? "timeout"
               : response.error == TransportError::tls   ? "tls_error"
                                                         : "network_error";
      r.message = response.error_message;
      finish(std::move(r));
      return;
    }
    r.status = response.status;
    r.retry_after = retry_after_of(response);
    if (response.status == 401 && !refreshed && auth.refresh) {
      refreshed = true;
      auto self = shared_from_this();
      auth.refresh([self, url](bool ok) {
        if (ok) {
          self->get(url);
        } else {
          GraphResult fail;
          fail.status = 401;
          fail.code = "InvalidAuthenticationToken";
          fail.message = "the access token was refused and could not be refreshed";
          self->finish(std::move(fail));
        }
      });
      return;
    }
    auto doc = json::parse(response.body);
    r.body_is_json = doc.has_value();
    if (response.status < 200 || response.status >= 300) {
      r.body = response.body;
      r.code = "http_" + std::to_string(response.status);
      r.message = "Graph answered HTTP " + std::to_string(response.status);
      if (doc && doc->IsObject()) {
        const auto err = doc->FindMember("error");
        if (err != doc->MemberEnd() && err->value.IsObject()) {
          if (auto code = json::get_string(err->value, "code")) r.code = *code;
          if (auto msg = json::get_string(err->value, "message")) r.message = *msg;
        }
      }
      finish(std::move(r));
      return;
    }
    if (!doc) {
      r.code = "invalid_json";
      r.message = "Graph's answer is not JSON";
      finish(std::move(r));
      return;
    }
    ++pages;
    if (max_pages <= 1) {
      r.body = std::move(response.body);  // the bytes published are the ones received
      finish(std::move(r));
      return;
    }
    std::optional<std::string> next;
    if (doc->IsObject()) next = json::get_string(*doc, "@odata.nextLink");
    if (max_pages > 1 && !doc->IsObject()) {
      // Paging merges `value` arrays of objects: a page that is not one cannot be merged.
      r.body.clear();
      r.body_is_json = false;
      r.code = "invalid_json";
      r.message = "a page of Graph's answer is not a JSON object";
      finish(std::move(r));
      return;
    }
    if (!merged) {
      merged = std::move(doc);
    } else {
      const auto src = doc->FindMember("value");
      auto dst = merged->FindMember("value");
      if (src != doc->MemberEnd() && src->value.IsArray() && dst != merged->MemberEnd() &&
          dst->value.IsArray()) {
        for (auto& item : src->value.GetArray()) {
          dst->value.PushBack(rapidjson::Value(item, merged->GetAllocator()),
                              merged->GetAllocator());
        }
      }
    }
    if (next && pages < max_pages) {
      if (url_origin(*next) != origin) {
        GraphResult bad;
        bad.status = response.status;
        bad.code = "foreign_next_link";
        bad.message = "@odata.nextLink points to another origin; not followed";
        finish(std::move(bad));
        return;
      }
      get(*next);
      return;
    }
    if (merged->IsObject()) merged->RemoveMember("@odata.nextLink");
    r.body = json::to_string(*merged);
    if (r.body.empty()) {
      r.code = "invalid_json";
      r.message = "Graph's pages hold a number JSON cannot carry";
      r.body_is_json = false;
      finish(std::move(r));
      return;
    }
    r.body_is_json = true;
    finish(std::move(r));
  }
};

}  // namespace

void graph_fetch(Http& http, const std::string& base, const std::string& path, int max_pages,
                 GraphAuth auth, std::function<void(GraphResult)> done) {
  auto fetch = std::make_shared<Fetch>(http, base, max_pages, std::move(auth), std::move(done));
  fetch->get(base + path);
}

}  // namespace g2m
