// The CSV writer round-trips through fast-cpp-csv-parser (the reader our tools use), quoting included.
#include <gtest/gtest.h>
#include <libfccp/csv.h>
#include <unistd.h>

#include <fstream>

#include "core/cli.h"
#include "core/error.h"
#include "core/report.h"

using namespace dtbench;

namespace {
std::string temp_path(const std::string& name) {
  return "/tmp/dtbench-unit-" + std::to_string(::getpid()) + "-" + name;
}
}  // namespace

TEST(Csv, RoundTripsThroughFccpWithQuoting) {
  std::string path = temp_path("rt.csv");
  ::unlink(path.c_str());
  std::vector<std::string> tricky = {"plain", "with,comma", "with \"quotes\"", " padded ", "#hash", ""};
  {
    CsvWriter w(path, {{"mpi", "Open MPI, v4"}, {"command", "a\nb"}}, {"a", "b", "c", "d", "e", "f"});
    w.row(tricky);
  }
  io::CSVReader<6, io::trim_chars<>, io::double_quote_escape<',', '"'>, io::throw_on_overflow,
                io::single_line_comment<'#'>>
      in(path);
  in.read_header(io::ignore_no_column, "a", "b", "c", "d", "e", "f");
  std::string a, b, c, d, e, f;
  ASSERT_TRUE(in.read_row(a, b, c, d, e, f));
  EXPECT_EQ(a, "plain");
  EXPECT_EQ(b, "with,comma");
  EXPECT_EQ(c, "with \"quotes\"");
  EXPECT_EQ(d, " padded ");
  EXPECT_EQ(e, "#hash");
  EXPECT_EQ(f, "");
  EXPECT_FALSE(in.read_row(a, b, c, d, e, f));
  std::ifstream raw(path);
  std::string first;
  std::getline(raw, first);
  EXPECT_EQ(first, "# mpi=Open MPI, v4");
  ::unlink(path.c_str());
}

TEST(Csv, NeverOverwrites) {
  std::string path = temp_path("keep.csv");
  { std::ofstream(path) << "precious\n"; }
  EXPECT_THROW(CsvWriter(path, {}, {"a"}), InputError);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious");
  ::unlink(path.c_str());
}

TEST(Csv, UnwritableDirectoryIsInputError) {
  EXPECT_THROW(ensure_writable_dir("/proc/dtbench-no", "--out"), InputError);
  try {
    ensure_writable_dir("/proc/dtbench-no", "--out");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos);
  }
}

TEST(Cli, ParsesSizes) {
  auto bytes = [](const std::string& text) {
    CLI::App app;
    uint64_t b = 0;
    app.add_option("-b,--max-bytes", b)->transform(size_bytes());
    app.parse(std::vector<std::string>{text, "-b"});
    return b;
  };
  EXPECT_EQ(bytes("8"), 8u);
  EXPECT_EQ(bytes("64K"), 65536u);
  EXPECT_EQ(bytes("16M"), 16u << 20);
  EXPECT_EQ(bytes("1G"), 1ull << 30);
  EXPECT_EQ(bytes("1.5K"), 1536u);
  for (const char* bad : {"", "abc", "12Q", "-5", "0.3", "1e30"}) {
    try {
      bytes(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const CLI::ParseError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--max-bytes: ", 0), 0u) << e.what();
    }
  }
}

TEST(Cli, CommonOptionsRejectBadValues) {
  auto parse = [](std::vector<std::string> args) {
    CommonOptions o;
    CLI::App app;
    add_common_options(app, o);
    std::vector<const char*> argv = {"dtbench-x"};
    for (auto& a : args) argv.push_back(a.c_str());
    app.parse(int(argv.size()), const_cast<char**>(argv.data()));
    finish_common_options(o);
    return o;
  };
  EXPECT_EQ(parse({"-d", "bf16"}).dtype, DType::bf16);
  EXPECT_THROW(parse({"-n", "0"}), CLI::ParseError);
  EXPECT_THROW(parse({"--backend", "gloo"}), CLI::ParseError);
  EXPECT_THROW(parse({"--timeout", "-1"}), CLI::ParseError);
  EXPECT_THROW(parse({"--iters", "ten"}), CLI::ParseError);
  EXPECT_THROW(parse({"-d", "int8"}), InputError);
  EXPECT_THROW(parse({"--test-skip-collective", "2"}), InputError);
}
