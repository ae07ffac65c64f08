#include "config/yaml_fields.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/duration.h"
#include "config/config.h"

namespace g2m::config_detail {

namespace {

int line_of(const YAML::Node& node, int fallback) {
  const int line = node.Mark().line;
  return line >= 0 ? line + 1 : fallback;
}

bool is_integer_text(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::optional<bool> bool_text(const std::string& s) {
  // YAML 1.2 core schema; yes/no/on/off are strings there.
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool is_scalar_value(Diagnostics& diag, const Field& field, std::string_view expected) {
  if (field.node.IsScalar()) return true;
  if (field.node.IsNull() || !field.node.IsDefined()) {
    diag.error(field.line, field.path, "needs a value");
  } else {
    diag.error(field.line, field.path,
               std::string("must be ") + std::string(expected) + ", not " + describe(field.node));
  }
  return false;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "an empty value";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  const std::string& s = node.Scalar();
  if (node.Tag() == "?") {  // a plain (unquoted) scalar: YAML would read it as typed
    if (is_integer_text(s)) return "a number";
    if (bool_text(s)) return "a boolean";
  }
  return "a string";
}

std::string nearest_key(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string_view best;
  size_t best_distance = 3;  // at most two edits away
  for (const auto k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  // A two-letter typo of a two-letter word is no longer the same word.
  if (best.empty() || best_distance >= std::max<size_t>(key.size(), 1)) return {};
  return std::string(best);
}

std::optional<MapView> MapView::open(Diagnostics& diag, const Field& field) {
  if (field.node.IsDefined() && !field.node.IsNull() && !field.node.IsMap()) {
    diag.error(field.line, field.path, "must be a map, not " + describe(field.node));
    return std::nullopt;
  }
  MapView view(field);
  if (!field.node.IsMap()) return view;
  std::set<std::string> seen;
  for (auto it = field.node.begin(); it != field.node.end(); ++it) {
    const int key_line = line_of(it->first, field.line);
    if (!it->first.IsScalar()) {
      diag.error(key_line, field.path, "a key must be a plain name, not " + describe(it->first));
      continue;
    }
    const std::string key = it->first.Scalar();
    std::string path = view.child_path(key);
    if (!seen.insert(key).second) {
      // yaml-cpp keeps both; which one wins would be a guess, so it is an error.
      diag.error(key_line, path, "duplicate key");
      continue;
    }
    view.entries_.push_back(Entry{key, Field{it->second, key_line, std::move(path)}});
  }
  return view;
}

void MapView::check_known(Diagnostics& diag, std::initializer_list<std::string_view> known) const {
  for (const auto& e : entries_) {
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    const std::string near = nearest_key(e.key, known);
    diag.error(
        e.value.line, e.value.path,
        near.empty() ? std::string("unknown key") : "unknown key (did you mean `" + near + "`?)");
  }
}

std::optional<Field> MapView::get(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

std::string MapView::child_path(std::string_view key) const {
  if (self_.path.empty()) return std::string(key);
  return self_.path + "." + std::string(key);
}

std::optional<std::string> read_string(Diagnostics& diag, const Field& field) {
  if (!is_scalar_value(diag, field, "a string")) return std::nullopt;
  return field.node.Scalar();
}

std::optional<bool> read_bool(Diagnostics& diag, const Field& field) {
  if (!is_scalar_value(diag, field, "true or false")) return std::nullopt;
  const auto value = bool_text(field.node.Scalar());
  if (!value) diag.error(field.line, field.path, "must be true or false");
  return value;
}

std::optional<long long> read_int(Diagnostics& diag, const Field& field) {
  if (!is_scalar_value(diag, field, "a whole number")) return std::nullopt;
  const std::string& s = field.node.Scalar();
  if (!is_integer_text(s) || s.size() > 18) {
    diag.error(field.line, field.path, "must be a whole number");
    return std::nullopt;
  }
  return std::stoll(s);
}

std::optional<std::chrono::seconds> read_duration(Diagnostics& diag, const Field& field) {
  if (!is_scalar_value(diag, field, "a duration")) return std::nullopt;
  const std::string& s = field.node.Scalar();
  const auto value = parse_duration(s);
  if (!value) {
    diag.error(field.line, field.path,
               "`" + s +
                   "` is not a duration (use <n>s, <n>m, <n>h or <n>d with a whole number n, or a "
                   "number of seconds)");
  }
  return value;
}

std::optional<std::size_t> read_size(Diagnostics& diag, const Field& field) {
  if (!is_scalar_value(diag, field, "a size")) return std::nullopt;
  const std::string& s = field.node.Scalar();
  const auto value = parse_size(s);
  if (!value) {
    diag.error(field.line, field.path,
               "`" + s +
                   "` is not a size (use a number of bytes, or <n>KiB or <n>MiB with a whole "
                   "number n)");
  }
  return value;
}

std::optional<std::vector<Field>> read_list(Diagnostics& diag, const Field& field) {
  std::vector<Field> items;
  if (!field.node.IsDefined() || field.node.IsNull()) return items;
  if (!field.node.IsSequence()) {
    diag.error(field.line, field.path, "must be a list, not " + describe(field.node));
    return std::nullopt;
  }
  size_t index = 0;
  for (const auto& item : field.node) {
    items.push_back(
        Field{item, line_of(item, field.line), field.path + "[" + std::to_string(index) + "]"});
    ++index;
  }
  return items;
}

}  // namespace g2m::config_detail
