#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.h"

namespace g2m::config_detail {

// One value of the document with where it came from: the line of its key (or of the list
// item) and its key path, e.g. accounts.kitchen.scopes[2].
struct Field {
  YAML::Node node;
  int line = 1;
  std::string path;
};

// A YAML mapping whose keys are checked. An empty value (`mqtt:` with nothing under it) counts
// as an empty map, so that what it lacks is reported as missing keys.
class MapView {
 public:
  // Reports a wrong type, duplicate keys and non-scalar keys; nullopt when it is not a map.
  static std::optional<MapView> open(Diagnostics& diag, const Field& field);

  // Reports every key not in `known` as unknown, suggesting the nearest known key.
  void check_known(Diagnostics& diag, std::initializer_list<std::string_view> known) const;

  std::optional<Field> get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key).has_value(); }

  // Every entry in file order, for maps keyed by names (accounts, resources).
  struct Entry {
    std::string key;
    Field value;
  };
  const std::vector<Entry>& entries() const { return entries_; }

  int line() const { return self_.line; }
  const std::string& path() const { return self_.path; }
  std::string child_path(std::string_view key) const;

 private:
  explicit MapView(Field self) : self_(std::move(self)) {}

  Field self_;
  std::vector<Entry> entries_;
};

// Typed readers: each reports a wrong type or a malformed value and then returns nullopt.
std::optional<std::string> read_string(Diagnostics& diag, const Field& field);
std::optional<bool> read_bool(Diagnostics& diag, const Field& field);
std::optional<long long> read_int(Diagnostics& diag, const Field& field);
std::optional<std::chrono::seconds> read_duration(Diagnostics& diag, const Field& field);
std::optional<std::size_t> read_size(Diagnostics& diag, const Field& field);
// The items as fields named path[i]; an empty value counts as an empty list.
std::optional<std::vector<Field>> read_list(Diagnostics& diag, const Field& field);

// "a map", "a list", "a number", "a string", ... for type errors; never the value itself.
std::string describe(const YAML::Node& node);

// The nearest of `known` when it is close enough to be the intended word, else empty.
std::string nearest_key(std::string_view key, std::initializer_list<std::string_view> known);

}  // namespace g2m::config_detail
