#include "mqtt/topics.h"

namespace g2m {

namespace topics {

namespace {
std::string join(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + 1 + b.size());
  out.append(a).append("/").append(b);
  return out;
}
}  // namespace

std::string bridge_state(std::string_view base) {
  return join(base, "bridge/state");
}

std::string bridge_info(std::string_view base) {
  return join(base, "bridge/info");
}

std::string bridge_request(std::string_view base, std::string_view action) {
  return join(join(base, "bridge/request"), action);
}

std::string bridge_request_filter(std::string_view base) {
  return bridge_request(base, "#");
}

std::string bridge_response(std::string_view base, std::string_view action) {
  return join(join(base, "bridge/response"), action);
}

std::string bridge_response_prefix(std::string_view base) {
  return bridge_response(base, "");
}

std::optional<std::string> request_action(std::string_view base, std::string_view topic) {
  const std::string prefix = bridge_request(base, "");
  if (topic.substr(0, prefix.size()) != prefix) return std::nullopt;
  return std::string(topic.substr(prefix.size()));
}

std::string auth_state(std::string_view base, std::string_view account) {
  return AccountTopics(base, account).auth_state();
}

std::string auth_code(std::string_view base, std::string_view account) {
  return AccountTopics(base, account).auth_code();
}

std::string auth_qr(std::string_view base, std::string_view account) {
  return AccountTopics(base, account).auth_qr();
}

std::string events(std::string_view base, std::string_view account) {
  return AccountTopics(base, account).events();
}

std::string graph(std::string_view base, std::string_view account, std::string_view resource) {
  return AccountTopics(base, account).graph(resource);
}

std::string homeassistant_status(std::string_view prefix) {
  return join(prefix, "status");
}

bool is_under(std::string_view topic, std::string_view prefix) {
  if (topic.substr(0, prefix.size()) != prefix) return false;
  return topic.size() == prefix.size() || topic[prefix.size()] == '/';
}

}  // namespace topics

AccountTopics::AccountTopics(std::string_view base, std::string_view account)
    : prefix_(topics::join(base, account) + "/") {}

std::string AccountTopics::graph(std::string_view resource) const {
  return prefix_ + "graph/" + std::string(resource);
}

}  // namespace g2m
