#include "config/config.h"

#include <unistd.h>

#include <openssl/evp.h>
#include <rapidjson/pointer.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "config/diagnostics.h"
#include "config/url.h"
#include "config/yaml_fields.h"
#include "graph/path_template.h"

namespace g2m {

using config_detail::Diagnostics;
using config_detail::Field;
using config_detail::MapView;

namespace {

constexpr int kRootLine = 1;
constexpr std::chrono::seconds kMinEvery{5};
constexpr std::chrono::seconds kMaxEvery{365 * 86400};
constexpr std::chrono::seconds kMaxTimeout{86400};
constexpr int kMaxPages = 50;
constexpr long long kMaxPendingSignIns = 100000;

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The whole file, or the OS's reason why it cannot be read.
struct FileText {
  std::optional<std::string> text;
  std::string reason;
};

FileText read_whole_file(const std::filesystem::path& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return {std::nullopt, std::strerror(errno)};
  std::string text;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  // fopen() succeeds on a directory; the read is what fails (EISDIR).
  if (std::ferror(f.get())) return {std::nullopt, std::strerror(errno)};
  return {std::move(text), {}};
}

void drop_trailing_newline(std::string& s) {
  if (s.size() >= 2 && s.compare(s.size() - 2, 2, "\r\n") == 0) {
    s.resize(s.size() - 2);
  } else if (!s.empty() && s.back() == '\n') {
    s.pop_back();
  }
}

bool matches_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '_' || c == '-'; });
}

bool is_guid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : std::isxdigit(static_cast<unsigned char>(s[i])) == 0) return false;
  }
  return true;
}

bool is_tenant(const std::string& s) {
  std::string lower = s;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "common" || lower == "organizations" || lower == "consumers" || is_guid(s)) {
    return true;
  }
  // A domain: labels of letters, digits and `-`, with at least one dot (contoso.com). A bare
  // name (contoso) or a half GUID (1234-abcd) is refused by Microsoft with AADSTS900023.
  if (s.empty() || std::isalnum(static_cast<unsigned char>(s[0])) == 0) return false;
  if (s.find('.') == std::string::npos || s.back() == '.' || s.find("..") != std::string::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '.' || c == '-'; });
}

// The GUID config/config.yaml ships as a placeholder for the app registration's client id.
constexpr const char* kPlaceholderGuid = "00000000-0000-0000-0000-000000000000";

// The last part of a scope (https://graph.microsoft.com/Presence.Read -> presence.read).
std::string scope_name(const std::string& scope) {
  const auto slash = scope.rfind('/');
  std::string name = slash == std::string::npos ? scope : scope.substr(slash + 1);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// The delegated Graph permissions that let a resource path be read (any one of them), and the
// one to suggest; nullopt for paths this check does not know.
struct Permission {
  const char* suggest;
  std::vector<std::string> any_of;
};
std::optional<Permission> permission_for(const std::string& path) {
  std::string p = path.substr(0, path.find('?'));
  for (auto& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto has = [&](const char* part) { return p.find(part) != std::string::npos; };
  if (has("/presence")) {
    return Permission{
        "Presence.Read",
        {"presence.read", "presence.read.all", "presence.readwrite", "presence.readwrite.all"}};
  }
  if (has("/calendar") || has("/events")) {
    return Permission{"Calendars.Read",
                      {"calendars.read", "calendars.readbasic", "calendars.read.shared",
                       "calendars.readwrite", "calendars.readwrite.shared"}};
  }
  return std::nullopt;
}

bool has_space(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

// nullopt when `topic` is usable as a topic prefix, else what is wrong with it.
std::optional<std::string> topic_prefix_problem(const std::string& topic) {
  if (topic.empty()) return "must not be empty";
  if (topic.find_first_of("+#") != std::string::npos)
    return "must not contain the wildcards + or #";
  if (topic.front() == '$') return "must not start with $ (reserved for the broker)";
  if (topic.front() == '/' || topic.back() == '/') return "must not start or end with /";
  if (topic.find("//") != std::string::npos) return "must not contain an empty level (//)";
  return std::nullopt;
}

std::string default_client_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "graph2mqtt";
  return std::string("graph2mqtt-") + host;
}

struct MqttScheme {
  const char* name;
  int port;
  bool tls;
};
constexpr MqttScheme kMqttSchemes[] = {{"mqtt", 1883, false}, {"tcp", 1883, false},
                                       {"mqtts", 8883, true}, {"ssl", 8883, true},
                                       {"ws", 80, false},     {"wss", 443, true}};

class Validator {
 public:
  Validator(Diagnostics& diag, Config& cfg, std::filesystem::path base_dir)
      : diag_(diag), cfg_(cfg), base_dir_(std::move(base_dir)) {}

  void run(const YAML::Node& root) {
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
      diag_.error(kRootLine, "(top level)", "must be a map, not " + config_detail::describe(root));
      return;
    }
    const auto top = MapView::open(diag_, Field{root, kRootLine, ""});
    if (!top) return;
    top->check_known(diag_, {"mqtt", "identity", "storage", "log", "homeassistant", "accounts"});
    identity(top->get("identity"));  // first: the provider decides what accounts may hold
    mqtt(top->get("mqtt"));
    storage(top->get("storage"));
    log(top->get("log"));
    homeassistant(top->get("homeassistant"));
    accounts(top->get("accounts"));
    oidc_api_needed();
  }

 private:
  bool oidc() const { return cfg_.identity.provider == Provider::oidc; }

  std::optional<std::string> read_nonempty(const Field& f) {
    auto s = config_detail::read_string(diag_, f);
    if (s && s->empty()) {
      diag_.error(f.line, f.path, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::filesystem::path> read_path(const Field& f) {
    const auto s = read_nonempty(f);
    if (!s) return std::nullopt;
    if (s->front() == '~') {
      diag_.error(f.line, f.path,
                  "`~` is not expanded here (no shell reads this file): write the whole path, "
                  "e.g. /home/pi/... or /etc/graph2mqtt/...");
      return std::nullopt;
    }
    std::filesystem::path p(*s);
    if (p.is_relative()) p = base_dir_ / p;
    return p.lexically_normal();
  }

  // A file the config names must be readable now, not at the first connection.
  std::optional<std::string> read_named_file(const Field& f,
                                             std::filesystem::path* where = nullptr) {
    const auto p = read_path(f);
    if (!p) return std::nullopt;
    if (where) *where = *p;
    auto file = read_whole_file(*p);
    if (!file.text) diag_.error(f.line, f.path, "cannot read " + p->string() + ": " + file.reason);
    return std::move(file.text);
  }

  std::optional<Secret> read_secret_file(const Field& f) {
    std::filesystem::path p;
    auto text = read_named_file(f, &p);
    if (!text) return std::nullopt;
    drop_trailing_newline(*text);
    if (text->empty()) {
      diag_.error(f.line, f.path, p.string() + " is empty");
      return std::nullopt;
    }
    return Secret(std::move(*text));
  }

  // https://, or http:// on a loopback host (a simulator in tests).
  std::optional<std::string> read_https_url(const Field& f, bool strip_slash) {
    auto text = read_nonempty(f);
    if (!text) return std::nullopt;
    const auto url = config_detail::parse_url(*text);
    if (!url || (url->scheme != "https" && url->scheme != "http")) {
      diag_.error(f.line, f.path, "must be an https:// URL");
      return std::nullopt;
    }
    if (url->userinfo) {
      diag_.error(f.line, f.path, "must not hold a user name or password");
      return std::nullopt;
    }
    if (url->port_text && !config_detail::parse_port(*url->port_text)) {
      diag_.error(f.line, f.path, "the port must be a number from 1 to 65535");
      return std::nullopt;
    }
    if (url->scheme == "http") {
      if (!config_detail::is_loopback_host(url->host)) {
        diag_.error(f.line, f.path,
                    "must be an https:// URL (http:// is accepted only on a loopback host)");
        return std::nullopt;
      }
      diag_.warning(f.line, f.path,
                    "plain http:// without TLS, accepted only because the host is loopback");
    }
    if (strip_slash) {
      while (text->size() > 1 && text->back() == '/') text->pop_back();
    }
    return text;
  }

  // `digest` gains the SHA-256 of the file's contents: a reload notices a certificate renewed
  // under the same path.
  void check_readable(const Field& f, std::optional<std::filesystem::path>& out,
                      std::string& digest) {
    std::filesystem::path p;
    if (auto text = read_named_file(f, &p)) {
      out = p;
      std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
      unsigned int length = 0;
      EVP_Digest(text->data(), text->size(), md.data(), &length, EVP_sha256(), nullptr);
      static const char* const kHex = "0123456789abcdef";
      digest += f.path + "=";
      for (unsigned int i = 0; i < length; ++i) {
        digest += kHex[md[i] >> 4];
        digest += kHex[md[i] & 0xf];
      }
      digest += ";";
    }
  }

  void identity(const std::optional<Field>& field) {
    if (!field) return;
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    m->check_known(diag_, {"provider", "authority", "graph", "protocol", "ca", "timeout", "proxy",
                           "max_pending_sign_ins", "issuer", "device_authorization_endpoint",
                           "token_endpoint", "api"});
    auto& out = cfg_.identity;
    if (auto f = m->get("provider")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        if (*s == "microsoft") {
          out.provider = Provider::microsoft;
        } else if (*s == "oidc") {
          out.provider = Provider::oidc;
        } else {
          diag_.error(f->line, f->path, "must be microsoft or oidc");
        }
      }
    }
    const char* not_oidc = "does not apply to provider oidc";
    if (auto f = m->get("authority")) {
      if (auto s = read_https_url(*f, true)) out.authority = *s;
      if (oidc()) diag_.warning(f->line, f->path, std::string(not_oidc) + " (use identity.issuer)");
    }
    if (auto f = m->get("graph")) {
      if (auto s = read_https_url(*f, true)) out.graph = *s;
      if (oidc()) diag_.warning(f->line, f->path, std::string(not_oidc) + " (use identity.api)");
    }
    if (auto f = m->get("protocol")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        if (*s == "v2") {
          out.protocol = Protocol::v2;
        } else if (*s == "v1") {
          out.protocol = Protocol::v1;
        } else {
          diag_.error(f->line, f->path, "must be v2 or v1");
        }
      }
      if (oidc()) diag_.warning(f->line, f->path, not_oidc);
    }
    if (auto f = m->get("ca")) check_readable(*f, out.ca, out.files_digest);
    if (auto f = m->get("timeout")) {
      if (auto d = config_detail::read_duration(diag_, *f)) {
        if (*d < std::chrono::seconds(1) || *d > kMaxTimeout) {
          diag_.error(f->line, f->path, "must be between 1s and 1d");
        } else {
          out.timeout = *d;
        }
      }
    }
    if (auto f = m->get("proxy")) proxy(*f);
    if (auto f = m->get("max_pending_sign_ins")) {
      if (auto n = config_detail::read_int(diag_, *f)) {
        if (*n < 1 || *n > kMaxPendingSignIns) {
          diag_.error(f->line, f->path, "must be between 1 and 100000");
        } else {
          out.max_pending_sign_ins = static_cast<int>(*n);
        }
      }
    }

    const std::pair<const char*, std::optional<std::string>*> oidc_urls[] = {
        {"issuer", &out.issuer},
        {"device_authorization_endpoint", &out.device_authorization_endpoint},
        {"token_endpoint", &out.token_endpoint},
        {"api", &out.api}};
    for (const auto& [key, target] : oidc_urls) {
      const auto f = m->get(key);
      if (!f) continue;
      if (!oidc()) {
        diag_.error(f->line, f->path, "applies only to provider oidc");
        continue;
      }
      // Endpoints are used as written; bases get paths appended, so lose a trailing slash.
      const bool is_base = std::strcmp(key, "issuer") == 0 || std::strcmp(key, "api") == 0;
      *target = read_https_url(*f, is_base);
    }
    if (oidc() && !m->has("issuer") &&
        !(m->has("device_authorization_endpoint") && m->has("token_endpoint"))) {
      diag_.error(m->line(), m->child_path("issuer"),
                  "required with provider oidc (unless both device_authorization_endpoint and "
                  "token_endpoint are given)");
    }
    identity_line_ = m->line();
  }

  void proxy(const Field& f) {
    const auto text = read_nonempty(f);
    if (!text) return;
    // Never echo the URL: a proxy password may be in it.
    const auto url = config_detail::parse_url(*text);
    static const char* const schemes[] = {"http",    "https",  "socks4",
                                          "socks4a", "socks5", "socks5h"};
    if (!url || std::none_of(std::begin(schemes), std::end(schemes),
                             [&](const char* s) { return url->scheme == s; })) {
      diag_.error(f.line, f.path,
                  "must be a URL like http://proxy:3128 (schemes http, https, socks4, socks4a, "
                  "socks5, socks5h)");
      return;
    }
    if (url->port_text && !config_detail::parse_port(*url->port_text)) {
      diag_.error(f.line, f.path, "the port must be a number from 1 to 65535");
      return;
    }
    cfg_.identity.proxy = *text;
  }

  void mqtt(const std::optional<Field>& field) {
    if (!field) {
      diag_.error(kRootLine, "mqtt", "required");
      return;
    }
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    m->check_known(
        diag_, {"server", "base_topic", "client_id", "username", "password", "password_file", "ca",
                "cert", "key", "version", "keepalive", "plain_topics", "max_message_size"});
    auto& out = cfg_.mqtt;
    bool server_ok = false;
    if (auto f = m->get("server")) {
      server_ok = server(*f);
    } else {
      diag_.error(m->line(), m->child_path("server"), "required");
    }
    if (auto f = m->get("base_topic")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        if (auto problem = topic_prefix_problem(*s)) {
          diag_.error(f->line, f->path, *problem);
        } else {
          out.base_topic = *s;
        }
      }
    }
    if (auto f = m->get("client_id")) {
      if (auto s = read_nonempty(*f)) out.client_id = *s;
    } else {
      out.client_id = default_client_id();
    }
    if (auto f = m->get("username")) {
      if (auto s = read_nonempty(*f)) out.username = *s;
    }
    const auto password = m->get("password");
    const auto password_file = m->get("password_file");
    if (password) {
      if (auto s = config_detail::read_string(diag_, *password)) out.password = share(Secret(*s));
    }
    if (password_file) {
      if (password) {
        diag_.error(password_file->line, password_file->path,
                    "cannot be used together with mqtt.password (set one of them)");
      } else {
        out.password = share(read_secret_file(*password_file));
      }
    }
    const auto ca = m->get("ca");
    const auto cert = m->get("cert");
    const auto key = m->get("key");
    if (ca) check_readable(*ca, out.ca, out.files_digest);
    if (cert) check_readable(*cert, out.cert, out.files_digest);
    if (key) check_readable(*key, out.key, out.files_digest);
    if (cert && !key) diag_.error(cert->line, cert->path, "needs mqtt.key as well");
    if (key && !cert) diag_.error(key->line, key->path, "needs mqtt.cert as well");
    if (server_ok && !out.tls) {
      for (const auto& f : {ca, cert, key}) {
        if (f) {
          diag_.warning(f->line, f->path,
                        "ignored: mqtt.server does not use TLS (use mqtts://, ssl:// or wss://)");
        }
      }
    }
    if (auto f = m->get("version")) {
      if (auto v = config_detail::read_int(diag_, *f)) {
        if (*v != 4 && *v != 5) {
          diag_.error(f->line, f->path, "must be 5 or 4 (MQTT 3.1.1)");
        } else {
          out.version = static_cast<int>(*v);
        }
      }
    }
    if (auto f = m->get("keepalive")) {
      if (auto d = config_detail::read_duration(diag_, *f)) {
        if (*d < std::chrono::seconds(1) || *d > std::chrono::seconds(65535)) {
          diag_.error(f->line, f->path, "must be between 1s and 65535s");
        } else {
          out.keepalive = *d;
        }
      }
    }
    if (auto f = m->get("plain_topics")) {
      if (auto b = config_detail::read_bool(diag_, *f)) out.plain_topics = *b;
    }
    if (auto f = m->get("max_message_size")) {
      if (auto n = config_detail::read_size(diag_, *f)) {
        // 256 MiB: MQTT's largest packet is 268,435,455 bytes.
        if (*n < 1024 || *n > 256 * 1024 * 1024) {
          diag_.error(f->line, f->path, "must be between 1KiB and 256MiB");
        } else {
          out.max_message_size = *n;
        }
      }
    }
  }

  bool server(const Field& f) {
    const auto text = read_nonempty(f);
    if (!text) return false;
    // Never echo the URL: a password may be in it.
    const auto url = config_detail::parse_url(*text);
    if (!url) {
      diag_.error(f.line, f.path, "must be a URL like mqtt://localhost:1883");
      return false;
    }
    const auto scheme = std::find_if(std::begin(kMqttSchemes), std::end(kMqttSchemes),
                                     [&](const MqttScheme& s) { return url->scheme == s.name; });
    if (scheme == std::end(kMqttSchemes)) {
      diag_.error(
          f.line, f.path,
          "unsupported scheme `" + url->scheme + "` (use mqtt, tcp, mqtts, ssl, ws or wss)");
      return false;
    }
    if (url->userinfo) {
      diag_.error(f.line, f.path,
                  "must not hold a user name or password (use mqtt.username and "
                  "mqtt.password_file)");
      return false;
    }
    int port = scheme->port;
    if (url->port_text) {
      const auto p = config_detail::parse_port(*url->port_text);
      if (!p) {
        diag_.error(f.line, f.path, "the port must be a number from 1 to 65535");
        return false;
      }
      port = *p;
    }
    const bool websocket = url->scheme == "ws" || url->scheme == "wss";
    if (!url->rest.empty() && !websocket) {
      diag_.error(f.line, f.path, "must not have a path (only ws:// and wss:// take one)");
      return false;
    }
    auto& out = cfg_.mqtt;
    out.server = *text;
    out.scheme = url->scheme;
    out.host = url->host;
    out.port = port;
    out.tls = scheme->tls;
    return true;
  }

  void storage(const std::optional<Field>& field) {
    if (!field) return;
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    m->check_known(diag_, {"dir"});
    if (auto f = m->get("dir")) {
      if (auto p = read_path(*f)) cfg_.storage_dir = *p;
    }
  }

  void log(const std::optional<Field>& field) {
    if (!field) return;
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    m->check_known(diag_, {"level"});
    if (auto f = m->get("level")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        static const std::pair<const char*, LogLevel> levels[] = {{"error", LogLevel::error},
                                                                  {"warn", LogLevel::warn},
                                                                  {"info", LogLevel::info},
                                                                  {"debug", LogLevel::debug}};
        const auto it = std::find_if(std::begin(levels), std::end(levels),
                                     [&](const auto& l) { return *s == l.first; });
        if (it == std::end(levels)) {
          diag_.error(f->line, f->path, "must be error, warn, info or debug");
        } else {
          cfg_.log_level = it->second;
        }
      }
    }
  }

  void homeassistant(const std::optional<Field>& field) {
    if (!field) return;
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    m->check_known(diag_, {"enabled", "prefix"});
    if (auto f = m->get("enabled")) {
      if (auto b = config_detail::read_bool(diag_, *f)) cfg_.homeassistant_enabled = *b;
    }
    if (auto f = m->get("prefix")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        if (auto problem = topic_prefix_problem(*s)) {
          diag_.error(f->line, f->path, *problem);
        } else {
          cfg_.homeassistant_prefix = *s;
        }
      }
    }
  }

  void accounts(const std::optional<Field>& field) {
    if (!field) {
      diag_.error(kRootLine, "accounts", "required (at least one account)");
      return;
    }
    const auto m = MapView::open(diag_, *field);
    if (!m) return;
    if (m->entries().empty()) {
      diag_.error(m->line(), m->path(), "at least one account is required");
      return;
    }
    for (const auto& entry : m->entries()) account(entry.key, entry.value);
  }

  void account(const std::string& name, const Field& field) {
    if (!matches_name(name)) {
      diag_.error(field.line, field.path,
                  "an account name must be 1 to 64 letters, digits, `_` or `-`");
    } else if (name == "bridge") {
      diag_.error(field.line, field.path, "`bridge` is reserved for the agent's own topics");
    }
    const auto m = MapView::open(diag_, field);
    if (!m) return;
    m->check_known(
        diag_, {"tenant", "client_id", "scopes", "resource", "sign_in", "sign_in_method",
                "redirect_uri", "renew_code", "graph_allow", "resources", "client_secret_file"});
    AccountConfig out;
    out.name = name;
    const char* not_oidc = "does not apply to provider oidc";
    const bool v1 = !oidc() && cfg_.identity.protocol == Protocol::v1;

    if (auto f = m->get("tenant")) {
      if (auto s = read_nonempty(*f)) {
        if (!is_tenant(*s)) {
          diag_.error(f->line, f->path,
                      "must be common, organizations, consumers, a tenant id or a domain name "
                      "(a tenant id is a GUID, a domain has a dot, like contoso.onmicrosoft.com; "
                      "Microsoft refuses `" +
                          *s + "` with AADSTS900023)");
        } else {
          out.tenant = *s;
        }
      }
      if (oidc()) diag_.warning(f->line, f->path, not_oidc);
    }
    if (auto f = m->get("client_id")) {
      if (auto s = read_nonempty(*f)) {
        if (!oidc() && *s == kPlaceholderGuid) {
          diag_.error(f->line, f->path,
                      "is the example's placeholder: replace with your app's client id (the "
                      "Application (client) ID of your app registration in Microsoft Entra)");
        } else if (!oidc() && !is_guid(*s)) {
          diag_.error(f->line, f->path,
                      "must be a GUID like 00000000-0000-0000-0000-000000000000 (the app "
                      "registration's application ID)");
        } else {
          out.client_id = *s;
        }
      }
    } else {
      diag_.error(m->line(), m->child_path("client_id"), "required");
    }
    if (auto f = m->get("scopes")) {
      if (auto items = config_detail::read_list(diag_, *f)) {
        for (const auto& item : *items) {
          const auto s = read_nonempty(item);
          if (!s) continue;
          if (has_space(*s)) {
            diag_.error(item.line, item.path, "must not contain spaces (one scope per item)");
          } else {
            out.scopes.push_back(*s);
          }
        }
      }
      if (v1) diag_.warning(f->line, f->path, "ignored under protocol v1 (it uses resource)");
    } else if (!oidc()) {
      out.scopes = {"User.Read"};
    }
    if (auto f = m->get("resource")) {
      if (auto s = read_nonempty(*f)) {
        if (has_space(*s)) {
          diag_.error(f->line, f->path, "must not contain spaces");
        } else {
          out.resource = *s;
        }
      }
      if (oidc()) {
        diag_.warning(f->line, f->path, not_oidc);
      } else if (!v1) {
        diag_.warning(f->line, f->path, "ignored under protocol v2 (it applies to v1 only)");
      }
    } else if (!oidc()) {
      if (const auto url = config_detail::parse_url(cfg_.identity.graph)) {
        out.resource = url->scheme + "://" + url->authority;
      }
    }
    if (auto f = m->get("sign_in")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        if (*s == "command") {
          out.sign_in = SignIn::command;
        } else if (*s == "auto") {
          out.sign_in = SignIn::auto_;
        } else {
          diag_.error(f->line, f->path, "must be command or auto");
        }
      }
    }
    sign_in_method(*m, out, v1);
    if (auto f = m->get("renew_code")) {
      if (auto b = config_detail::read_bool(diag_, *f)) out.renew_code = *b;
    }
    if (auto f = m->get("graph_allow")) {
      if (auto items = config_detail::read_list(diag_, *f)) {
        for (const auto& item : *items) {
          const auto s = read_nonempty(item);
          if (!s) continue;
          if (s->front() != '/') {
            diag_.error(item.line, item.path, "must start with /");
          } else {
            out.graph_allow.push_back(*s);
          }
        }
      }
    }
    if (auto f = m->get("client_secret_file")) {
      if (oidc()) {
        out.client_secret = share(read_secret_file(*f));
      } else {
        diag_.error(f->line, f->path, "applies only to provider oidc");
      }
    }
    if (auto f = m->get("resources")) resources(*f, out);
    needs_api_ = needs_api_ || !out.resources.empty() || !out.graph_allow.empty();
    cfg_.accounts.push_back(std::move(out));
  }

  // sign_in_method and redirect_uri (config/config.yaml, §6 "Browser sign-in").
  void sign_in_method(const MapView& m, AccountConfig& out, bool v1) {
    std::optional<int> method_line;
    if (auto f = m.get("sign_in_method")) {
      if (auto s = config_detail::read_string(diag_, *f)) {
        method_line = f->line;
        if (*s == "device_code") {
          out.sign_in_method = SignInMethodSetting::device_code;
        } else if (*s == "browser") {
          out.sign_in_method = SignInMethodSetting::browser;
          if (v1) {
            diag_.error(f->line, f->path,
                        "browser is not available under protocol v1 (only the device code is)");
          }
        } else if (*s == "auto") {
          out.sign_in_method = SignInMethodSetting::auto_;
        } else {
          diag_.error(f->line, f->path, "must be device_code, browser or auto");
        }
      }
    }
    if (auto f = m.get("redirect_uri")) {
      if (auto s = read_nonempty(*f)) {
        if (!is_redirect_uri(*s)) {
          diag_.error(f->line, f->path,
                      "must be an https:// URI or http://localhost[:port][/path]");
        } else {
          out.redirect_uri = *s;
        }
      }
      if (v1) diag_.warning(f->line, f->path, "ignored under protocol v1 (no browser sign-in)");
    } else if (!oidc()) {
      out.redirect_uri = cfg_.identity.authority + "/common/oauth2/nativeclient";
    } else if (out.sign_in_method == SignInMethodSetting::browser) {
      diag_.error(method_line.value_or(m.line()), m.child_path("redirect_uri"),
                  "required with provider oidc for sign_in_method browser");
    } else if (out.sign_in_method == SignInMethodSetting::auto_) {
      diag_.warning(m.line(), m.child_path("redirect_uri"),
                    "not set: under provider oidc the browser sign-in is unavailable, so "
                    "sign_in_method auto uses the device code only");
    }
  }

  static bool is_redirect_uri(const std::string& text) {
    const auto url = config_detail::parse_url(text);
    if (!url || text.find_first_of(" \t\r\n#") != std::string::npos) return false;
    if (url->scheme == "https") return !url->host.empty();
    return url->scheme == "http" && url->host == "localhost";
  }

  void resources(const Field& field, AccountConfig& out) {
    const auto m = MapView::open(diag_, field);
    if (!m) return;
    for (const auto& entry : m->entries()) {
      const Field& f = entry.value;
      if (!matches_name(entry.key)) {
        diag_.error(f.line, f.path, "a resource name must be 1 to 64 letters, digits, `_` or `-`");
      }
      const auto r = MapView::open(diag_, f);
      if (!r) continue;
      r->check_known(diag_, {"path", "every", "max_pages", "fields", "ha_state"});
      ResourceConfig res;
      res.name = entry.key;
      bool ok = true;
      if (auto p = r->get("path")) {
        if (auto s = read_nonempty(*p)) {
          if (s->front() != '/') {
            diag_.error(p->line, p->path, "must start with /");
            ok = false;
          } else if (s->rfind("/v1.0/", 0) == 0 || s->rfind("/beta/", 0) == 0) {
            diag_.error(p->line, p->path,
                        "must not start with the API version: identity.graph already ends with "
                        "it (write " +
                            s->substr(s->find('/', 1)) + ")");
            ok = false;
          } else if (auto problem = check_path_template(*s)) {
            diag_.error(p->line, p->path, *problem);
            ok = false;
          } else {
            res.path = *s;
            warn_missing_permission(*p, *s, out);
          }
        } else {
          ok = false;
        }
      } else {
        diag_.error(r->line(), r->child_path("path"), "required");
        ok = false;
      }
      if (auto e = r->get("every")) {
        if (auto d = config_detail::read_duration(diag_, *e)) {
          if (*d < kMinEvery) {
            diag_.error(e->line, e->path, "must be at least 5s");
          } else if (*d > kMaxEvery) {
            diag_.error(e->line, e->path, "must be at most 365d");
          } else {
            res.every = *d;
          }
        }
      }
      if (auto p = r->get("max_pages")) {
        if (auto n = config_detail::read_int(diag_, *p)) {
          if (*n < 1 || *n > kMaxPages) {
            diag_.error(p->line, p->path, "must be between 1 and 50");
          } else {
            res.max_pages = static_cast<int>(*n);
          }
        }
      }
      if (auto fl = r->get("fields")) fields(*fl, res);
      if (auto hs = r->get("ha_state")) res.ha_state = read_nonempty(*hs);
      if (ok) out.resources.push_back(std::move(res));
    }
  }

  void fields(const Field& field, ResourceConfig& res) {
    const auto m = MapView::open(diag_, field);
    if (!m) return;
    for (const auto& entry : m->entries()) {
      const Field& f = entry.value;
      if (!matches_name(entry.key)) {
        diag_.error(f.line, f.path, "a field name must be 1 to 64 letters, digits, `_` or `-`");
        continue;
      }
      const auto pointer = config_detail::read_string(diag_, f);
      if (!pointer) continue;
      // RFC 6901: empty (the whole body) or `/`-separated tokens, `~` only as `~0` or `~1`.
      if ((!pointer->empty() && pointer->front() != '/') ||
          !rapidjson::Pointer(pointer->c_str(), pointer->size()).IsValid()) {
        diag_.error(f.line, f.path, "must be a JSON pointer (RFC 6901) such as /value/0/subject");
        continue;
      }
      res.fields.emplace_back(entry.key, *pointer);
    }
  }

  // A resource whose Graph permission is not among the scopes gets 403 at every fetch.
  void warn_missing_permission(const Field& path_field, const std::string& path,
                               const AccountConfig& out) {
    if (oidc() || cfg_.identity.protocol == Protocol::v1) return;
    const auto needed = permission_for(path);
    if (!needed) return;
    for (const auto& scope : out.scopes) {
      const auto name = scope_name(scope);
      if (std::find(needed->any_of.begin(), needed->any_of.end(), name) != needed->any_of.end()) {
        return;
      }
    }
    diag_.warning(path_field.line, path_field.path,
                  path + " needs the Graph permission " + needed->suggest + ", which accounts." +
                      out.name + ".scopes does not list: Graph refuses it (403) until it is added");
  }

  void oidc_api_needed() {
    if (!oidc() || cfg_.identity.api || !needs_api_ || !identity_line_) return;
    diag_.error(*identity_line_, "identity.api",
                "required with provider oidc when an account has resources or graph_allow");
  }

  Diagnostics& diag_;
  Config& cfg_;
  std::filesystem::path base_dir_;
  std::optional<int> identity_line_;
  bool needs_api_ = false;
};

}  // namespace

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

const AccountConfig* Config::find_account(const std::string& name) const {
  for (const auto& a : accounts) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Config parse_config(const std::string& text, const std::filesystem::path& file) {
  const std::string name = file.string();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    const int line = e.mark.line >= 0 ? e.mark.line + 1 : kRootLine;
    throw ConfigError({name + ":" + std::to_string(line) + ": " + e.msg});
  }
  std::error_code ec;
  std::filesystem::path base_dir = std::filesystem::absolute(file, ec).parent_path();
  if (ec) base_dir = file.parent_path();

  Diagnostics diag(name);
  Config cfg;
  cfg.file = file;
  Validator(diag, cfg, base_dir).run(root);
  if (diag.has_errors()) throw ConfigError(diag.errors());
  cfg.warnings = diag.warnings();
  return cfg;
}

Config load_config(const std::filesystem::path& file) {
  auto content = read_whole_file(file);
  if (!content.text) {
    throw ConfigError({file.string() + ": cannot read the config file: " + content.reason});
  }
  return parse_config(*content.text, file);
}

}  // namespace g2m
