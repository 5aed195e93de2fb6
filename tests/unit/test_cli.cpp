#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/cli.h"

namespace dtbench {
namespace {

enum class Color { red, green, blue };
const std::vector<std::pair<std::string, Color>> kColors = {
    {"red", Color::red}, {"green", Color::green}, {"blue", Color::blue}};

// Parses args into a fresh app with a --colors list and an --n count; returns CLI11's error or "".
std::string parse(std::vector<std::string> args, std::vector<Color>* colors, int* n) {
  CLI::App app;
  app.add_option("--colors", *colors)->delimiter(',')->transform(one_of(kColors));
  app.add_option("--n", *n)->check(at_least(1));
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes argv reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(Cli, OneOfParsesNamesIntoEnums) {
  std::vector<Color> c = {Color::red};
  int n = 1;
  EXPECT_EQ(parse({"--colors", "blue,red"}, &c, &n), "");
  EXPECT_EQ(c, (std::vector<Color>{Color::blue, Color::red}));
}

TEST(Cli, OneOfRefusesOtherNamesAndNumbers) {
  std::vector<Color> c;
  int n = 1;
  EXPECT_EQ(parse({"--colors", "red,mauve"}, &c, &n), "--colors: \"mauve\" is not one of red, green, blue");
  EXPECT_EQ(parse({"--colors", "1"}, &c, &n), "--colors: \"1\" is not one of red, green, blue");
}

TEST(Cli, AtLeastNamesTheBound) {
  std::vector<Color> c;
  int n = 1;
  EXPECT_EQ(parse({"--n", "0"}, &c, &n), "--n: must be >= 1 (got 0)");
  EXPECT_EQ(parse({"--n", "x"}, &c, &n), "--n: expected a number, got \"x\"");
  EXPECT_EQ(parse({"--n", "3"}, &c, &n), "");
  EXPECT_EQ(n, 3);
}

TEST(Cli, AboveIsStrict) {
  CLI::App app;
  double mb = 0;
  app.add_option("--mb", mb)->check(above(0));
  std::vector<std::string> zero = {"0", "--mb"}, half = {"0.5", "--mb"};
  try {
    app.parse(zero);
    ADD_FAILURE() << "0 accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_EQ(std::string(e.what()), "--mb: must be > 0 (got 0)");
  }
  app.parse(half);
  EXPECT_EQ(mb, 0.5);
}

TEST(Cli, NamesOfListsTheDefaults) {
  EXPECT_EQ(names_of(kColors, {Color::green, Color::red}), "green,red");
}

}  // namespace
}  // namespace dtbench
