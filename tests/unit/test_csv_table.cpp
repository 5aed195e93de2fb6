// read_csv_table (src/core/csv_table.h): columns by name, RFC 4180 quotes, ragged rows refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/csv_table.h"
#include "core/error.h"

using namespace dtbench;

namespace {
std::string write_temp(const std::string& text) {
  char name[] = "/tmp/dtbench-csv-table-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return name;
}
}  // namespace

TEST(CsvTable, ReadsColumnsQuotesAndTheEndOfRun) {
  const std::string p = write_temp(
      "# run_id=r1\n# suite=p2p\na,b,c\n1,\"x,y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",3\n# end_of_run=complete rows=2 verdict=PASS\n");
  CsvTable t = read_csv_table(p);
  EXPECT_EQ(t.meta.at("suite"), "p2p");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][t.col("b")], "x,y");
  EXPECT_EQ(t.rows[0][t.col("c")], "say \"hi\"");
  EXPECT_EQ(t.rows[1][t.col("b")], "two\nlines");
  EXPECT_TRUE(t.complete);
  EXPECT_THROW(t.col("nope"), InputError);
  std::remove(p.c_str());
}

TEST(CsvTable, RefusesRaggedRowsAndOpenQuotes) {
  const std::string ragged = write_temp("a,b\n1,2\n3\n");
  try {
    read_csv_table(ragged);
    FAIL() << "a short row was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(":3: 1 fields, the header has 2"), std::string::npos) << e.what();
  }
  const std::string open = write_temp("a,b\n1,\"2\n");
  EXPECT_THROW(read_csv_table(open), InputError);
  const std::string incomplete = write_temp("a\n1\n");
  EXPECT_FALSE(read_csv_table(incomplete).complete);
  std::remove(ragged.c_str()), std::remove(open.c_str()), std::remove(incomplete.c_str());
}
