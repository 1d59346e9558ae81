#include "base/flags.h"

#include <gtest/gtest.h>

namespace hoot::base {
namespace {

constexpr FlagSpec kSpecs[] = {
    {"--server", FlagKind::kValue}, {"--json", FlagKind::kSwitch}, {"--help", FlagKind::kSwitch}};

std::optional<std::string> Parse(std::vector<std::string> args, ParsedFlags* parsed) {
  return ParseFlags(args, kSpecs, parsed);
}

TEST(Flags, ValuesEitherWaySwitchesAndOperandsInOrder) {
  ParsedFlags parsed;
  ASSERT_EQ(Parse({"send", "--server", "a:1", "general", "--json", "--server=b:2", "hi"}, &parsed),
            std::nullopt);
  EXPECT_EQ(parsed.operands, (std::vector<std::string>{"send", "general", "hi"}));
  EXPECT_EQ(parsed.Get("--server"), "b:2") << "the last value wins";
  EXPECT_TRUE(parsed.Has("--json"));
  EXPECT_EQ(parsed.Get("--json"), "");
  EXPECT_EQ(parsed.Get("--help"), std::nullopt);
  ASSERT_EQ(parsed.in_order.size(), 3u);
  EXPECT_EQ(parsed.in_order[0], (std::pair<std::string, std::string>{"--server", "a:1"}));
}

TEST(Flags, DashDashEndsTheFlagsAndDashIsAnOperand) {
  ParsedFlags parsed;
  ASSERT_EQ(Parse({"-h", "-", "--", "--json", "-x"}, &parsed), std::nullopt);
  EXPECT_TRUE(parsed.Has("--help")) << "-h is --help";
  EXPECT_FALSE(parsed.Has("--json"));
  EXPECT_EQ(parsed.operands, (std::vector<std::string>{"-", "--json", "-x"}));
}

TEST(Flags, SaysWhatIsWrong) {
  ParsedFlags parsed;
  EXPECT_EQ(Parse({"--nope"}, &parsed), "unknown flag --nope");
  EXPECT_EQ(Parse({"--json=1"}, &parsed), "--json takes no value");
  EXPECT_EQ(Parse({"--server"}, &parsed), "--server needs a value");
  ParsedFlags empty_value;
  EXPECT_EQ(Parse({"--server="}, &empty_value), std::nullopt);
  EXPECT_EQ(empty_value.Get("--server"), "");
}

}  // namespace
}  // namespace hoot::base
