#include "config/diagnostics.h"

#include <algorithm>

namespace g2m::config_detail {

void Diagnostics::error(int line, std::string_view path, std::string_view what) {
  errors_.emplace_back(line, format(line, path, what));
}

void Diagnostics::warning(int line, std::string_view path, std::string_view what) {
  warnings_.emplace_back(line, format(line, path, what));
}

std::string Diagnostics::format(int line, std::string_view path, std::string_view what) const {
  std::string out = file_;
  out += ':';
  out += std::to_string(line);
  out += ": ";
  out += path;
  out += ": ";
  out += what;
  return out;
}

std::vector<std::string> Diagnostics::sorted(std::vector<Entry> entries) {
  // Stable: two problems on one line keep the order in which the validator found them.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.first < b.first; });
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (auto& e : entries) out.push_back(std::move(e.second));
  return out;
}

}  // namespace g2m::config_detail
