// Options for a server started inside the test process (core::Server::Start), so that a test
// can wrap its storage or read its state.
#pragma once

#include <string>

#include "core/server_options.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {

// 127.0.0.1 on a port the kernel picks, a fresh data directory named after `name`, shards not
// pinned (the tests share the machine's cores), 4 MiB journal files and segments.
inline core::ServerOptions InProcessOptions(const std::string& name, unsigned shards = 1) {
  core::ServerOptions options;
  options.port = 0;
  options.data_directory = FreshDirectory(name);
  options.shards = shards;
  options.pin_shards = false;
  options.journal_file_bytes = 4u << 20;
  options.segment_bytes = 4u << 20;
  return options;
}

}  // namespace hoot::testing
