#include "mqtt/derived_topics.h"

#include <rapidjson/pointer.h>

#include "common/time_format.h"
#include "json/json.h"
#include "qr/qr_png.h"

namespace g2m {

namespace {

std::optional<std::string> nonempty_string(const rapidjson::Value& object, const char* key) {
  auto s = json::get_string(object, key);
  if (s && s->empty()) return std::nullopt;
  return s;
}

}  // namespace

std::optional<std::string> qr_address(const std::string& code_json) {
  const auto code = json::parse_object(code_json);
  if (!code) return std::nullopt;
  for (const char* key : {"sign_in_url", "verification_uri_complete", "verification_uri"}) {
    if (auto url = nonempty_string(*code, key)) return url;
  }
  return std::nullopt;
}

DerivedTopics::DerivedTopics(const Config& config, MqttSession& session)
    : config_(config), session_(session), base_(config.mqtt.base_topic) {
  for (const auto& a : config_.accounts) {
    const std::string prefix = base_ + "/" + a.name + "/";
    parents_.emplace(prefix + "auth/code", Parent{Parent::Kind::code, a.name});
    parents_.emplace(prefix + "auth/state", Parent{Parent::Kind::state, a.name});
    if (!config_.mqtt.plain_topics) continue;
    for (const auto& r : a.resources) {
      if (!r.fields.empty()) {
        parents_.emplace(prefix + "graph/" + r.name, Parent{Parent::Kind::graph, a.name, &r});
      }
    }
  }
}

void DerivedTopics::set(const std::string& topic, std::string payload,
                        std::optional<SystemTime> expires_at) {
  // auth/state is re-published for every field that changes; its sub-topics only when theirs does.
  if (const auto* now = session_.retained_value(topic); now != nullptr && *now == payload) return;
  session_.set_retained(topic, std::move(payload), expires_at);
}

void DerivedTopics::on_retained(const std::string& topic, const std::string& payload,
                                std::optional<SystemTime> expires_at) {
  const auto it = parents_.find(topic);
  if (it == parents_.end()) return;
  const Parent parent = it->second;
  switch (parent.kind) {
    case Parent::Kind::code:
      on_auth_code(parent.account, payload, expires_at);
      break;
    case Parent::Kind::state:
      on_auth_state(parent.account, payload);
      break;
    case Parent::Kind::graph:
      on_graph(parent.account, parent.resource->name, payload);
      break;
  }
}

void DerivedTopics::on_auth_code(const std::string& account, const std::string& code_json,
                                 std::optional<SystemTime> expires_at) {
  const std::string prefix = base_ + "/" + account + "/auth/";
  const auto address = code_json.empty() ? std::nullopt : qr_address(code_json);
  Shown& shown = qr_[account];
  if (!address) {
    shown = {};
    set(prefix + "qr", "");
  } else if (*address != shown.text || expires_at != shown.expires_at ||
             session_.retained_value(prefix + "qr") == nullptr) {
    // A renewed device code has the same verification URI but a new expiry: the retained image
    // must not expire with the old code.
    shown = {*address, expires_at};
    session_.set_retained(prefix + "qr", qr_png(*address), expires_at);
  }
  if (!config_.mqtt.plain_topics) return;
  const auto code = code_json.empty() ? std::nullopt : json::parse_object(code_json);
  std::string user_code, expires_text, expires_epoch;
  if (code) {
    user_code = nonempty_string(*code, "user_code").value_or("");
    expires_text = nonempty_string(*code, "expires_at").value_or("");
    if (auto at = parse_utc(expires_text)) {
      expires_epoch =
          std::to_string(std::chrono::duration_cast<Seconds>(at->time_since_epoch()).count());
    }
  }
  set(prefix + "code/user_code", user_code, expires_at);
  set(prefix + "code/expires_at", expires_text, expires_at);
  set(prefix + "code/expires_at_epoch", expires_epoch, expires_at);
}

void DerivedTopics::on_auth_state(const std::string& account, const std::string& state_json) {
  if (!config_.mqtt.plain_topics) return;
  const auto state = json::parse_object(state_json);
  set(base_ + "/" + account + "/auth/state/state",
      state ? json::get_string(*state, "state").value_or("") : "");
}

void DerivedTopics::on_graph(const std::string& account, const std::string& resource,
                             const std::string& body) {
  if (!config_.mqtt.plain_topics) return;
  const auto* a = config_.find_account(account);
  if (a == nullptr) return;
  const ResourceConfig* r = nullptr;
  for (const auto& candidate : a->resources) {
    if (candidate.name == resource) r = &candidate;
  }
  if (r == nullptr || r->fields.empty()) return;
  const std::string prefix = base_ + "/" + account + "/graph/" + resource + "/";
  const auto doc = body.empty() ? std::nullopt : json::parse(body);
  for (const auto& [name, pointer] : r->fields) {
    std::string text;  // a value the body does not have clears the sub-topic
    if (doc) {
      if (const auto* v = rapidjson::Pointer(pointer.c_str(), pointer.size()).Get(*doc)) {
        text =
            v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : json::to_string(*v);
      }
    }
    set(prefix + name, std::move(text));
  }
}

}  // namespace g2m
