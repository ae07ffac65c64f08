// Microsoft Graph v1.0: /me, /me/presence and /me/calendarView, behind bearer tokens.
#include <algorithm>

#include "simulator.h"
#include "util.h"

namespace g2m::sim {
namespace {

constexpr const char* kMetadata = "https://graph.microsoft.com/v1.0/$metadata";

std::pair<std::string, std::string> split_name(const std::string& name) {
  const auto space = name.rfind(' ');
  if (space == std::string::npos) return {name, ""};
  return {name.substr(0, space), name.substr(space + 1)};
}

}  // namespace

void Simulator::handle_graph(const Request& req, Response& res, bool https) {
  // Graph answers every request with a request-id and echoes client-request-id (or reuses
  // request-id when the caller sent none).
  const auto request_id = random_guid();
  auto client_request_id = req.get_header_value("client-request-id");
  if (client_request_id.empty()) client_request_id = request_id;
  res.set_header("request-id", request_id);
  res.set_header("client-request-id", client_request_id);
  res.set_header(
      "x-ms-ags-diagnostic",
      R"({"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"g2m-simulator"}})");

  std::optional<Failure> failure;
  {
    std::lock_guard lock(mutex_);
    ++counters_.graph;
    ++counters_.graph_paths[req.path];
    failure = take_failure_locked(Endpoint::graph, req.path);
  }
  if (failure && apply_failure(*failure, req, res, true)) return;

  const auto authorization = req.get_header_value("Authorization");
  const bool bearer = authorization.size() > 7 && to_lower(authorization.substr(0, 7)) == "bearer ";
  std::optional<User> user;
  {
    std::lock_guard lock(mutex_);
    if (bearer) {
      const auto it = access_tokens_.find(authorization.substr(7));
      if (it != access_tokens_.end() && Clock::now() < it->second.expires_at)
        user = it->second.user;
    }
    if (!user) ++counters_.unauthorized_graph;
  }
  if (!user) {
    res.set_header(
        "WWW-Authenticate",
        R"(Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000")");
    send_graph_error(
        req, res, 401, "InvalidAuthenticationToken",
        bearer ? "Access token has expired or is not yet valid." : "Access token is empty.");
    return;
  }

  // Graph paths are case-insensitive.
  const auto path = to_lower(req.path);
  if (path == "/v1.0/me") {
    graph_me(req, res, *user);
  } else if (path == "/v1.0/me/presence") {
    graph_presence(res, *user);
  } else if (path == "/v1.0/me/calendarview") {
    graph_calendar_view(req, res, *user, https);
  } else {
    const auto slash = req.path.rfind('/');
    send_graph_error(
        req, res, 404, "ResourceNotFound",
        "Resource not found for the segment '" + req.path.substr(slash + 1, 100) + "'.");
  }
}

void Simulator::graph_me(const Request& req, Response& res, const User& user) {
  const auto [given, surname] = split_name(user.name);
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"id", user_oid(user)}, {"displayName", user.name}, {"givenName", given},
      {"surname", surname},   {"mail", user.username},    {"userPrincipalName", user.username}};
  // $select is honoured: only the named properties (case-insensitive), in Graph's order.
  std::vector<std::string> selected;
  if (req.has_param("$select")) {
    std::string item;
    for (const char c : req.get_param_value("$select") + ",") {
      if (c == ',') {
        if (!item.empty()) selected.push_back(to_lower(item));
        item.clear();
      } else if (c != ' ') {
        item += c;
      }
    }
  }
  const auto wanted = [&](const std::string& name) {
    return selected.empty() ||
           std::find(selected.begin(), selected.end(), to_lower(name)) != selected.end();
  };
  std::string context = std::string(kMetadata) + "#users/$entity";
  if (!selected.empty()) {
    std::string list;
    for (const auto& [name, _] : fields) {
      if (!wanted(name)) continue;
      if (!list.empty()) list += ',';
      list += name;
    }
    context = std::string(kMetadata) + "#users(" + list + ")/$entity";
  }
  Json json;
  json.begin_object().field("@odata.context", context);
  if (selected.empty()) json.key("businessPhones").begin_array().end_array();
  for (const auto& [name, value] : fields) {
    if (wanted(name)) json.field(name, value);
  }
  send_json(res, 200, json.end_object().text());
}

void Simulator::graph_presence(Response& res, const User& user) {
  Presence presence;
  {
    std::lock_guard lock(mutex_);
    const auto it = config_.user_presence.find(to_lower(user.username));
    presence = it != config_.user_presence.end() ? it->second : config_.presence;
  }
  const auto oid = user_oid(user);
  Json json;
  json.begin_object()
      .field("@odata.context", std::string(kMetadata) + "#users('" + oid + "')/presence/$entity")
      .field("id", oid)
      .field("availability", presence.availability)
      .field("activity", presence.activity)
      .end_object();
  send_json(res, 200, json.text());
}

void Simulator::graph_calendar_view(const Request& req, Response& res, const User& user,
                                    bool https) {
  const auto start_text = req.get_param_value("startDateTime");
  const auto end_text = req.get_param_value("endDateTime");
  if (start_text.empty() || end_text.empty()) {
    // Both parameters are required (user-list-calendarview).
    send_graph_error(req, res, 400, "ErrorInvalidParameter",
                     "This request requires a time window specified by the query string "
                     "parameters StartDateTime and EndDateTime.");
    return;
  }
  const auto start = parse_iso8601(start_text);
  const auto end = parse_iso8601(end_text);
  if (!start || !end) {
    send_graph_error(req, res, 400, "ErrorInvalidParameter",
                     "The value of the parameter '" +
                         std::string(start ? "EndDateTime" : "StartDateTime") + "' is invalid.");
    return;
  }
  int page_size = 10;
  int events = 3;
  {
    std::lock_guard lock(mutex_);
    page_size = config_.page_size;
    events = config_.events;
  }
  int offset = 0;
  if (req.has_param("$skiptoken")) {
    const auto token = req.get_param_value("$skiptoken");
    // The skiptoken is opaque to clients; here it is "s" and an offset.
    char* stop = nullptr;
    const long value =
        token.size() > 1 && token[0] == 's' ? std::strtol(token.c_str() + 1, &stop, 10) : -1;
    if (value < 0 || stop == nullptr || *stop != '\0') {
      send_graph_error(req, res, 400, "BadRequest", "The skip token is invalid.");
      return;
    }
    offset = static_cast<int>(std::min<long>(value, events));
  }
  const auto oid = user_oid(user);
  const auto last = std::min(events, offset + page_size);
  Json json;
  json.begin_object().field("@odata.context",
                            std::string(kMetadata) + "#users('" + oid + "')/calendarView");
  json.key("value").begin_array();
  for (int i = offset; i < last; ++i) {
    // Events are deterministic so that repeated fetches give equal bodies.
    const auto begin = *start + static_cast<std::int64_t>(i) * 3600;
    const auto id = "AAMkAGI2-sim-event-" + std::to_string(i);
    json.begin_object()
        .field("@odata.etag", "W/\"sim-" + std::to_string(i) + "\"")
        .field("id", id)
        .field("subject", "Simulated meeting " + std::to_string(i + 1))
        .field_bool("isAllDay", false)
        .field_bool("isCancelled", false)
        .field("showAs", "busy");
    json.key("start")
        .begin_object()
        .field("dateTime", graph_datetime(begin))
        .field("timeZone", "UTC")
        .end_object();
    json.key("end")
        .begin_object()
        .field("dateTime", graph_datetime(begin + 1800))
        .field("timeZone", "UTC")
        .end_object();
    json.key("location")
        .begin_object()
        .field("displayName", "Room " + std::to_string(i + 1))
        .end_object();
    json.key("organizer")
        .begin_object()
        .key("emailAddress")
        .begin_object()
        .field("name", user.name)
        .field("address", user.username)
        .end_object()
        .end_object();
    json.end_object();
  }
  json.end_array();
  if (last < events) {
    // nextLink is absolute on the listener the request came in on.
    json.field("@odata.nextLink",
               base_url(req, https) + req.path + "?startDateTime=" + url_encode(start_text) +
                   "&endDateTime=" + url_encode(end_text) + "&$skiptoken=s" + std::to_string(last));
  }
  send_json(res, 200, json.end_object().text());
}

}  // namespace g2m::sim
