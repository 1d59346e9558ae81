#include "base/metrics.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "base/check.h"

namespace hoot::base {

Histogram::Histogram(std::vector<uint64_t> upper_bounds, double scale)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0), scale_(scale) {
  for (size_t i = 1; i < upper_bounds_.size(); ++i) {
    HOOT_CHECK(upper_bounds_[i - 1] < upper_bounds_[i]);
  }
}

void Histogram::Merge(const Histogram& other) {
  HOOT_CHECK(other.upper_bounds_ == upper_bounds_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  sum_ += other.sum_;
  count_ += other.count_;
}

std::vector<uint64_t> OneTwoFiveBounds(uint64_t from, uint64_t to) {
  std::vector<uint64_t> bounds;
  for (uint64_t decade = from; decade <= to; decade *= 10) {
    for (uint64_t step : {1, 2, 5}) {
      if (decade * step <= to) bounds.push_back(decade * step);
    }
    if (decade > to / 10) break;
  }
  return bounds;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': escaped += "\\\\"; break;
      case '"': escaped += "\\\""; break;
      case '\n': escaped += "\\n"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

namespace {

std::string_view TypeName(MetricFamilies::Type type) {
  switch (type) {
    case MetricFamilies::Type::kCounter: return "counter";
    case MetricFamilies::Type::kGauge: return "gauge";
    case MetricFamilies::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

// A sample value as Go's strconv formats floats ("+Inf", whole numbers without a point).
std::string FormatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrFormat("%.0f", value);
  }
  return absl::StrFormat("%.9g", value);
}

// {a="x",b="y"} with `extra` (already rendered, such as le="0.5") last; empty for no labels.
std::string LabelSet(std::initializer_list<Label> labels, std::string_view extra = {}) {
  std::string out;
  for (const Label& label : labels) {
    out += out.empty() ? "{" : ",";
    out += label.name;
    out += "=\"";
    out += EscapeLabelValue(label.value);
    out += "\"";
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

MetricFamilies::Family& MetricFamilies::FamilyFor(std::string_view name, std::string_view help,
                                                  Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
    order_.emplace_back(name);
  }
  HOOT_CHECK(it->second.type == type);  // One name, one type.
  return it->second;
}

namespace {

// One sample line: NAME{LABELS} VALUE
void AppendSample(std::string& samples, std::string_view name, std::string_view suffix,
                  std::string_view labels, std::string_view value) {
  samples += name;
  samples += suffix;
  samples += labels;
  samples += ' ';
  samples += value;
  samples += '\n';
}

}  // namespace

void MetricFamilies::AddSample(Type type, std::string_view name, std::string_view help,
                               std::initializer_list<Label> labels, std::string_view value) {
  AppendSample(FamilyFor(name, help, type).samples, name, "", LabelSet(labels), value);
}

void MetricFamilies::Counter(std::string_view name, std::string_view help,
                             std::initializer_list<Label> labels, double value) {
  AddSample(Type::kCounter, name, help, labels, FormatValue(value));
}

void MetricFamilies::Gauge(std::string_view name, std::string_view help,
                           std::initializer_list<Label> labels, double value) {
  AddSample(Type::kGauge, name, help, labels, FormatValue(value));
}

void MetricFamilies::Histogram(std::string_view name, std::string_view help,
                               std::initializer_list<Label> labels,
                               const base::Histogram& histogram) {
  std::string& samples = FamilyFor(name, help, Type::kHistogram).samples;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < histogram.counts().size(); ++i) {
    cumulative += histogram.counts()[i];
    double bound = i < histogram.upper_bounds().size()
                       ? static_cast<double>(histogram.upper_bounds()[i]) * histogram.scale()
                       : INFINITY;
    AppendSample(samples, name, "_bucket", LabelSet(labels, "le=\"" + FormatValue(bound) + "\""),
                 std::to_string(cumulative));
  }
  AppendSample(samples, name, "_sum", LabelSet(labels),
               FormatValue(static_cast<double>(histogram.sum()) * histogram.scale()));
  AppendSample(samples, name, "_count", LabelSet(labels), std::to_string(histogram.count()));
}

void MetricFamilies::Merge(MetricFamilies&& other) {
  for (const std::string& name : other.order_) {
    Family& theirs = other.families_.find(name)->second;
    Family& ours = FamilyFor(name, theirs.help, theirs.type);
    ours.samples += theirs.samples;
  }
}

std::string MetricFamilies::Render() const {
  std::string out;
  for (const std::string& name : order_) {
    const Family& family = families_.find(name)->second;
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " ";
    out += TypeName(family.type);
    out += "\n" + family.samples;
  }
  return out;
}

}  // namespace hoot::base
