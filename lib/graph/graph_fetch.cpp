#include "graph/graph_fetch.h"

#include <memory>

#include "http/http_failure.h"
#include "json/json.h"

namespace g2m {

std::string url_origin(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  const auto path_start = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, path_start);
}

namespace {

GraphResult too_large(long status, std::size_t max_bytes) {
  GraphResult r;
  r.status = status;
  r.code = "too_large";
  r.message = "Graph's answer is larger than the " + std::to_string(max_bytes) +
              " bytes the MQTT session can publish";
  return r;
}

struct Fetch : std::enable_shared_from_this<Fetch> {
  Http& http;
  const Clock& clock;
  std::string origin;
  int max_pages = 1;
  std::size_t max_bytes = 0;
  GraphAuth auth;
  std::function<void(GraphResult)> done;
  bool refreshed = false;
  int pages = 0;
  std::optional<rapidjson::Document> merged;
  std::size_t merged_bytes = 0;  // the merged body's size once serialised

  Fetch(Http& h, const Clock& c, const GraphGet& get, GraphAuth a,
        std::function<void(GraphResult)> d)
      : http(h),
        clock(c),
        origin(url_origin(get.base)),
        max_pages(get.max_pages),
        max_bytes(get.max_bytes),
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
    request.priority = HttpPriority::bulk;  // after polls, refreshes and code requests
    request.headers.push_back("Authorization: Bearer " + *bearer);
    auto self = shared_from_this();
    http.send(std::move(request),
              [self, url](HttpResponse response) { self->on_response(url, std::move(response)); });
  }

  void on_response(const std::string& url, HttpResponse response) {
    GraphResult r;
    if (!response.ok()) {
      r.code = transport_error_code(response.error);
      r.message = response.error_message;
      finish(std::move(r));
      return;
    }
    r.status = response.status;
    r.retry_after = parse_retry_after(response.retry_after, clock.system());
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
    const bool fits = !response.truncated && response.body.size() <= max_bytes;
    const bool ok_status = response.status >= 200 && response.status < 300;
    if (ok_status && !fits) {
      finish(too_large(response.status, max_bytes));
      return;
    }
    auto doc = json::parse(response.body);
    r.body_is_json = doc.has_value();
    if (!ok_status) {
      // Graph's error words are kept; a body too large to reply with is not.
      if (fits) r.body = response.body;
      r.code = "http_" + std::to_string(response.status);
      r.message = "Graph answered HTTP " + std::to_string(response.status);
      if (doc && doc->IsObject()) {
        const auto err = doc->FindMember("error");
        if (err != doc->MemberEnd() && err->value.IsObject()) {
          if (auto code = json::get_string(err->value, "code")) r.code = *code;
          if (auto msg = json::get_string(err->value, "message")) r.message = *msg;
        }
      }
      if (!fits) r.body_is_json = false;
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
      merged_bytes = response.body.size();  // at most: serialising drops whitespace
    } else {
      const auto src = doc->FindMember("value");
      auto dst = merged->FindMember("value");
      if (src != doc->MemberEnd() && src->value.IsArray() && dst != merged->MemberEnd() &&
          dst->value.IsArray()) {
        // What this page adds: its items, and a comma between the old ones and the new.
        const std::size_t items = json::to_string(src->value).size();
        const std::size_t added =
            items < 2 ? 0 : items - 2 + (dst->value.Empty() || src->value.Empty() ? 0 : 1);
        if (merged_bytes + added > max_bytes) {
          merged.reset();
          finish(too_large(response.status, max_bytes));
          return;
        }
        merged_bytes += added;
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
    merged.reset();
    if (r.body.size() > max_bytes) {
      finish(too_large(response.status, max_bytes));
      return;
    }
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

void graph_fetch(Http& http, const Clock& clock, GraphGet get, GraphAuth auth,
                 std::function<void(GraphResult)> done) {
  auto fetch = std::make_shared<Fetch>(http, clock, get, std::move(auth), std::move(done));
  fetch->get(get.base + get.path);
}

}  // namespace g2m
