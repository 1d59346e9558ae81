// hoot's one way to report an event to the operator: one line per event, to a sink (stderr
// unless replaced), as "2026-12-04T13:01:02.123Z warning shard=1 <text>". Library code logs
// through this and never prints, so that a server, a tool or a test decides where lines go
// and which levels it wants. Line breaks inside the text become spaces.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace hoot::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning", "error".
std::string_view LogLevelName(LogLevel level);
// Parses a LogLevelName, or "warn" for warning (what operators type); false if `name` is
// none of them.
bool ParseLogLevel(std::string_view name, LogLevel* level);

// Lines below `level` are dropped (default: info). Set before threads start.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

// Receives each whole line, without its final newline. Set before threads start; null
// restores stderr (one write(2) per line, so lines of different threads never mix).
using LogSink = std::function<void(LogLevel level, std::string_view line)>;
void SetLogSink(LogSink sink);

// The shard the calling thread runs (its lines carry "shard=N"); -1 for none (the default).
void SetLogShard(int shard);

void Log(LogLevel level, std::string_view text);

template <class... Args>
void Logf(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) Log(level, absl::StrFormat(format, args...));
}

}  // namespace hoot::base
