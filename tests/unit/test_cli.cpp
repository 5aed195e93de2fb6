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

// One option of `app` parsed from args; CLI11's error or "".
std::string parse_one(CLI::App& app, std::vector<std::string> args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(Cli, SizeTransformersParseSuffixesIntoNumbers) {
  CLI::App app;
  uint64_t bytes = 0;
  int64_t elems = 0;
  app.add_option("--bytes", bytes)->transform(size_bytes());
  app.add_option("--elems", elems)->transform(bucket_elements());
  EXPECT_EQ(parse_one(app, {"--bytes", "16M", "--elems", "4K"}), "");
  EXPECT_EQ(bytes, uint64_t(16) << 20);
  EXPECT_EQ(elems, 4096);
  EXPECT_EQ(parse_one(app, {"--bytes", "0"}), "");
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(parse_one(app, {"--bytes", "12Q"}), "--bytes: not a size: \"12Q\" (e.g. 8, 64K, 16M, 1G)");
  EXPECT_EQ(parse_one(app, {"--elems", "0"}), "--elems: must be at least 1 (got \"0\")");
  EXPECT_EQ(parse_one(app, {"--bytes", "2000T"}), "--bytes: size out of range: \"2000T\"");
}

TEST(Cli, SizeSpanChecksFormAndOrder) {
  CLI::App app;
  std::string span;
  app.add_option("--span", span)->transform(size_span());
  EXPECT_EQ(parse_one(app, {"--span", "1K:2M"}), "");
  EXPECT_EQ(split_span(span), (std::pair<int64_t, int64_t>{1024, 2 << 20}));
  EXPECT_EQ(parse_one(app, {"--span", "8M"}), "--span: expected MIN:MAX, got \"8M\"");
  EXPECT_EQ(parse_one(app, {"--span", "8M:1M"}), "--span: need MIN <= MAX, got \"8M:1M\"");
  EXPECT_EQ(parse_one(app, {"--span", "0:1M"}), "--span: must be at least 1 (got \"0\")");
  EXPECT_EQ(parse_one(app, {"--span", "1K:x"}), "--span: not a size: \"x\" (e.g. 8, 64K, 16M, 1G)");
}

TEST(Cli, OneOfNamesKeepsTheText) {
  CLI::App app;
  std::string io = "auto";
  app.add_option("--io", io)->check(one_of({"auto", "direct"}));
  EXPECT_EQ(parse_one(app, {"--io", "direct"}), "");
  EXPECT_EQ(io, "direct");
  EXPECT_EQ(parse_one(app, {"--io", "mmap"}), "--io: \"mmap\" is not one of auto, direct");
}

}  // namespace
}  // namespace dtbench
