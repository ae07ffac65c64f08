// Fuzzes what any client of the broker can send: parse_request() on a bridge request, then, for a
// `graph` request, check_graph_path() and path_allowed_by() on the path it names.
//
// Input: three header lines, then the payload (the rest, as is).
//   line 1  the action: the topic is graph2mqtt/bridge/request/<line 1>
//   line 2  the MQTT 5 response topic after a leading '>' (so an empty one can be said); any
//           other line means the message has none
//   line 3  MQTT 5 correlation data (binary in MQTT, so anything goes); empty: none
// Inputs without three newlines are taken as a payload alone (action "graph", no properties).

#include <algorithm>
#include <string>
#include <variant>

#include "fuzz_support.h"
#include "graph/graph_fetch.h"
#include "graph/graph_path.h"
#include "mqtt/request.h"

namespace {

using g2m::fuzz::require;

const std::string kBase = "graph2mqtt";
const g2m::ReplyPolicy kPolicy{kBase, "homeassistant"};
// graph_allow entries as config accepts them: non-empty, starting with /.
const char* const kAllow[] = {"/me", "/me/", "/users", "/me/calendarView", "/sites/root/lists"};

void check_path(const std::string& path) {
  if (g2m::check_graph_path(path)) return;  // refused, with a sentence: fine
  // An accepted path is appended to the Graph base: it must never move the request elsewhere.
  for (const char* base : {"https://graph.microsoft.com/v1.0", "https://api.example.com"}) {
    require(g2m::url_origin(base + path) == g2m::url_origin(base),
            "an accepted path keeps the Graph origin");
  }
  require(path.find("//") == std::string::npos, "an accepted path has no //");
  for (const char* prefix : kAllow) {
    if (g2m::path_allowed_by(path, prefix)) {
      require(path.rfind(prefix, 0) == 0, "an allowed path starts with its prefix");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest = g2m::fuzz::as_text(data, size);
  g2m::MqttMessage m;
  std::string action = "graph";
  if (std::count(rest.begin(), rest.end(), '\n') >= 3) {
    action = std::string(g2m::fuzz::take_line(rest));
    const std::string_view rt = g2m::fuzz::take_line(rest);
    if (!rt.empty() && rt.front() == '>') m.response_topic = std::string(rt.substr(1));
    const std::string_view cd = g2m::fuzz::take_line(rest);
    if (!cd.empty()) m.correlation_data = std::string(cd);
  }
  m.topic = kBase + "/bridge/request/" + action;
  m.payload = std::string(rest);

  const auto parsed = g2m::parse_request(kPolicy, m);
  if (const auto* error = std::get_if<g2m::RequestError>(&parsed)) {
    require(!error->message.empty(), "a refusal says why");
    // The reply to a refused request must itself be JSON a client can read.
    const std::string reply = g2m::error_reply(error->message, std::nullopt, error->transaction);
    rapidjson::Document doc;
    doc.Parse(reply.data(), reply.size());
    require(!doc.HasParseError() && doc.IsObject(), "an error reply is a JSON object");
    return 0;
  }
  const auto& req = std::get<g2m::Request>(parsed);
  require(req.action == action, "the action is the topic's last level");
  require(req.body.IsObject(), "the body is an object");
  if (req.response_topic) {
    const std::string& rt = *req.response_topic;
    require(!rt.empty() && rt.find_first_of("+#") == std::string::npos && rt.front() != '$',
            "an accepted response topic is publishable");
    require(rt != "homeassistant" && rt.rfind("homeassistant/", 0) != 0,
            "a response topic never lies under the discovery prefix");
  }
  if (req.transaction) {
    // Echoed as sent: the text stands in the payload as it is.
    require(m.payload.find(*req.transaction) != std::string::npos,
            "the echoed transaction is the payload's own text");
  }
  // Typed commands: a known action gives a command or a field error, never a crash.
  const auto command = g2m::parse_command(req);
  if (const auto* error = std::get_if<g2m::CommandError>(&command)) {
    require(!error->message.empty(), "a field error says why");
    require(error->unknown_action == !g2m::known_action(req.action),
            "only an unknown action is called one");
  }
  const std::string reply = g2m::ok_reply("{}", req.transaction);
  rapidjson::Document doc;
  doc.Parse(reply.data(), reply.size());
  require(!doc.HasParseError() && doc.IsObject(), "an ok reply is a JSON object");

  const auto path = req.body.FindMember("path");
  if (path != req.body.MemberEnd() && path->value.IsString()) {
    check_path(std::string(path->value.GetString(), path->value.GetStringLength()));
  }
  return 0;
}
