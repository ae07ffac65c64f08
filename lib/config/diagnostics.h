#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace g2m::config_detail {

// Collects "file:line: key.path: what" errors and warnings while a config is validated, so
// that every problem of a file is reported at once, sorted by line.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(int line, std::string_view path, std::string_view what);
  void warning(int line, std::string_view path, std::string_view what);

  bool has_errors() const { return !errors_.empty(); }
  std::vector<std::string> errors() const { return sorted(errors_); }
  std::vector<std::string> warnings() const { return sorted(warnings_); }

 private:
  using Entry = std::pair<int, std::string>;
  static std::vector<std::string> sorted(std::vector<Entry> entries);
  std::string format(int line, std::string_view path, std::string_view what) const;

  std::string file_;
  std::vector<Entry> errors_;
  std::vector<Entry> warnings_;
};

}  // namespace g2m::config_detail
