// One or more filled-in examples of every message type, for tests, fuzz seed corpora and
// benchmarks. Everything they view is static, so the examples live as long as the program.
#pragma once

#include <vector>

#include "proto/messages.h"

namespace hoot::proto {

struct ExampleMessage {
  AnyMessage message;
  uint32_t correlation_id;
};

// Covers every alternative of AnyMessage at least once, with lists empty and non-empty,
// strings at their limits, and every enum value.
const std::vector<ExampleMessage>& ExampleMessages();

}  // namespace hoot::proto
