// Reading the Prometheus text exposition format (0.0.4) that hootd's /metrics and ADMIN_STATS
// answer with: its samples, their labels, and sums over them. Enough for `hoot admin stats`,
// the metrics tests and bench/e2e's scraper; not a general parser (no escapes inside label
// values are needed: hoot's label values are names and numbers).
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hoot::tools {

struct Sample {
  std::string_view name;    // e.g. hoot_commit_sync_seconds_bucket
  std::string_view labels;  // The label set as written, braces included; empty if none.
  double value = 0;
};

// Every sample line of `exposition` (comments and blank lines skipped), viewing it.
inline std::vector<Sample> ParseExposition(std::string_view exposition) {
  std::vector<Sample> samples;
  size_t at = 0;
  while (at < exposition.size()) {
    size_t end = exposition.find('\n', at);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t name_end = line.find_first_of("{ ");
    size_t value_at = line.rfind(' ');
    if (name_end == std::string_view::npos || value_at < name_end) continue;
    Sample sample;
    sample.name = line.substr(0, name_end);
    sample.labels = line.substr(name_end, value_at - name_end);
    sample.value = std::strtod(std::string(line.substr(value_at + 1)).c_str(), nullptr);
    samples.push_back(sample);
  }
  return samples;
}

// The value of label `key` in a sample's label set; empty if it has none.
inline std::string_view LabelValue(std::string_view labels, std::string_view key) {
  std::string pattern = std::string(key) + "=\"";
  size_t at = labels.find(pattern);
  // A match must start a label, not end another one's name.
  while (at != std::string_view::npos && at > 0 && labels[at - 1] != '{' && labels[at - 1] != ',') {
    at = labels.find(pattern, at + 1);
  }
  if (at == std::string_view::npos) return {};
  at += pattern.size();
  size_t end = labels.find('"', at);
  return end == std::string_view::npos ? std::string_view() : labels.substr(at, end - at);
}

// The sum of the samples named `name` (the exact sample name, such as
// hoot_commit_sync_seconds_count) whose labels include every one of `labels` (each written
// name="value"); nothing if there is no such sample.
inline std::optional<double> SumOfSamples(std::string_view exposition, std::string_view name,
                                          const std::vector<std::string>& labels = {}) {
  std::optional<double> sum;
  for (const Sample& sample : ParseExposition(exposition)) {
    if (sample.name != name) continue;
    bool matches = true;
    for (const std::string& label : labels) {
      matches = matches && sample.labels.find(label) != std::string_view::npos;
    }
    if (matches) sum = sum.value_or(0) + sample.value;
  }
  return sum;
}

}  // namespace hoot::tools
