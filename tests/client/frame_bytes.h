// Frames made by the proto encoder, for feeding a ClientSession without a server.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "proto/codec.h"

namespace hoot::testing {

template <class M>
std::string Frame(const M& message, uint32_t correlation_id) {
  std::string bytes;
  EXPECT_TRUE(proto::EncodeTo(message, correlation_id, &bytes));
  return bytes;
}

}  // namespace hoot::testing
