#include "tools/load/plot.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "absl/strings/str_format.h"

namespace hoot::load {
namespace {

constexpr int kMinDecades = 3;
constexpr int kMaxDecades = 6;
constexpr double kLeft = 70, kRight = 20, kTop = 44, kBottom = 50;  // margins, pixels
// Distinguishable for the common forms of colour blindness (Okabe-Ito), then repeated.
constexpr const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control bytes are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

// Decades of 1 / (1 - p): 0 at 0%, 1 at 90%, 2 at 99%, ... Infinite at 100%.
double Decades(double percentile) {
  if (percentile >= 100) return INFINITY;
  return std::log10(100.0 / (100.0 - std::max(percentile, 0.0)));
}

std::string PercentileLabel(int decades) {
  if (decades == 0) return "0%";
  if (decades == 1) return "90%";
  return "99" + (decades > 2 ? "." + std::string(decades - 2, '9') : "") + "%";
}

// A 1, 2 or 5 times a power of ten giving at most about 8 ticks up to `top`.
double TickStep(double top) {
  const double rough = top / 8;
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  for (double multiple : {1.0, 2.0, 5.0}) {
    if (multiple * magnitude >= rough) return multiple * magnitude;
  }
  return 10 * magnitude;
}

}  // namespace

std::string LatencyPercentilePlotSvg(const std::vector<PlotSeries>& series,
                                     const PlotOptions& options) {
  const double width = std::max(options.width, 200);
  const double height = std::max(options.height, 150);
  const double plot_width = width - kLeft - kRight;
  const double plot_height = height - kTop - kBottom;

  double reached = 0;
  double highest_ms = 0;
  for (const PlotSeries& one : series) {
    for (const auto& [percentile, value_ns] : one.points) {
      if (percentile < 100) reached = std::max(reached, Decades(percentile));
      highest_ms = std::max(highest_ms, static_cast<double>(value_ns) / 1e6);
    }
  }
  // Rounded so that 99.9% (2.9999...) still means three decades.
  const int decades =
      std::clamp(static_cast<int>(std::ceil(reached - 1e-9)), kMinDecades, kMaxDecades);
  const double y_step = TickStep(highest_ms > 0 ? highest_ms : 1.0);
  const double y_top = std::max(1.0, std::ceil(highest_ms / y_step - 1e-9)) * y_step;

  auto x_of = [&](double percentile) {
    return kLeft +
           plot_width * std::min(Decades(percentile), static_cast<double>(decades)) / decades;
  };
  auto y_of = [&](double ms) { return kTop + plot_height * (1 - ms / y_top); };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n",
      width, height, width, height, width / 2, XmlEscape(options.title));

  for (int decade = 0; decade <= decades; ++decade) {
    const double x = kLeft + plot_width * decade / decades;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"middle\">%s</text>\n",
                          x, kTop, x, kTop + plot_height, x, kTop + plot_height + 18,
                          PercentileLabel(decade));
  }
  const int y_ticks = static_cast<int>(std::lround(y_top / y_step));
  for (int tick = 0; tick <= y_ticks; ++tick) {
    const double y = y_of(tick * y_step);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"end\">%g</text>\n",
                          kLeft, y, kLeft + plot_width, y, kLeft - 6, y + 4, tick * y_step);
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
      "stroke=\"black\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">Percentile</text>\n"
      "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">"
      "Latency (ms)</text>\n",
      kLeft, kTop, plot_width, plot_height, kLeft + plot_width / 2, height - 10,
      kTop + plot_height / 2, kTop + plot_height / 2);

  for (size_t i = 0; i < series.size(); ++i) {
    const char* colour = kColours[i % std::size(kColours)];
    std::string points;
    for (const auto& [percentile, value_ns] : series[i].points) {
      if (!points.empty()) points += ' ';
      points +=
          absl::StrFormat("%.1f,%.1f", x_of(percentile), y_of(static_cast<double>(value_ns) / 1e6));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                          "points=\"%s\"/>\n",
                          colour, points);
    // The legend sits top left, where percentile curves are low.
    const double legend_y = kTop + 16 + 18 * static_cast<double>(i);
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"4\" "
                          "fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          kLeft + 12, legend_y - 6, colour, kLeft + 32, legend_y,
                          XmlEscape(series[i].name));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace hoot::load
