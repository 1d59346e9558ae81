// hoot-load: the load generator for ../shared/WORKLOADS.md. `hoot-load --help` is its manual;
// tools/load/ has the engine.
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "base/version.h"
#include "tools/load/driver.h"
#include "tools/load/report.h"
#include "tools/load/workload.h"
#include "tools/stop_signal.h"

int main(int argc, char** argv) {
  using hoot::load::ParsedCommandLine;
  std::vector<std::string> args(argv + 1, argv + argc);
  ParsedCommandLine parsed = hoot::load::ParseLoadCommandLine(args);
  switch (parsed.outcome) {
    case ParsedCommandLine::Outcome::kHelp: std::cout << hoot::load::LoadUsage(); return 0;
    case ParsedCommandLine::Outcome::kVersion:
      std::cout << hoot::base::VersionLine("hoot-load") << "\n";
      return 0;
    case ParsedCommandLine::Outcome::kUsageError:
      std::cerr << "hoot-load: " << parsed.error << "\n(hoot-load --help for usage)\n";
      return 2;
    case ParsedCommandLine::Outcome::kRun: break;
  }
  // The first SIGINT or SIGTERM ends the measurement early; the drain, the checks and the
  // report still follow.
  std::atomic<bool>* stop = hoot::tools::StopOnSignals();

  const hoot::load::LoadConfig& config = parsed.config;
  hoot::load::RunResult result = hoot::load::RunLoad(config, &std::cerr, stop);
  int exit_code = hoot::load::ExitCode(result);
  if (!result.setup_error.ok()) {
    std::cerr << "hoot-load: set-up failed: " << result.setup_error.message() << "\n";
  }
  std::cout << (config.json ? hoot::load::FormatReportJson(result)
                            : hoot::load::FormatReport(result));
  std::cout.flush();
  if (!config.plot_path.empty() && result.setup_error.ok()) {
    std::ofstream plot(config.plot_path, std::ios::binary | std::ios::trunc);
    plot << hoot::load::FormatPlot(result);
    plot.close();
    if (!plot) {
      std::cerr << "hoot-load: cannot write the plot to " << config.plot_path << ": "
                << std::strerror(errno) << "\n";
      if (exit_code == 0) exit_code = 3;
    }
  }
  return exit_code;
}
