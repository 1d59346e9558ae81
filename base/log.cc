#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace hoot::base {
namespace {

std::atomic<LogLevel> level_min{LogLevel::kInfo};
LogSink& Sink() {
  static LogSink sink;
  return sink;
}
thread_local int log_shard = -1;

// RFC 3339 in UTC with milliseconds: 2026-12-04T13:01:02.123Z.
std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%03dZ", text, static_cast<int>(ms % 1000));
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  if (name == "warn") {
    *level = LogLevel::kWarning;
    return true;
  }
  for (LogLevel candidate :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (name == LogLevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) { level_min.store(level, std::memory_order_relaxed); }
LogLevel GetLogLevel() { return level_min.load(std::memory_order_relaxed); }
void SetLogSink(LogSink sink) { Sink() = std::move(sink); }
void SetLogShard(int shard) { log_shard = shard; }

void Log(LogLevel level, std::string_view text) {
  if (!LogEnabled(level)) return;
  std::string line = Timestamp();
  line += ' ';
  line += LogLevelName(level);
  if (log_shard >= 0) absl::StrAppendFormat(&line, " shard=%d", log_shard);
  line += ' ';
  size_t text_at = line.size();
  line += text;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  for (size_t i = text_at; i < line.size(); ++i) {
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  }
  if (Sink()) return Sink()(level, line);
  line += '\n';
  size_t at = 0;
  while (at < line.size()) {
    ssize_t written = ::write(STDERR_FILENO, line.data() + at, line.size() - at);
    if (written <= 0) return;  // Nowhere left to report to.
    at += static_cast<size_t>(written);
  }
}

}  // namespace hoot::base
