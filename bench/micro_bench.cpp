// Google Benchmark micro-benchmarks of host hot paths, each next to memcpy on the same buffer size
// so the GB/s columns compare directly: pattern fill and verify (fp32, bf16), CSV row writing.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "../kernels/pattern.h"
#include "dtype.h"
#include "report.h"
#include "verify.h"

using namespace dtbench;

namespace {

constexpr size_t kElems = 1 << 22;  // 4M elements: beyond the caches, like real buckets

void BM_Memcpy(benchmark::State& st) {
  std::vector<float> a(kElems, 1.0f), b(kElems);
  for (auto _ : st) {
    std::memcpy(b.data(), a.data(), kElems * 4);
    benchmark::DoNotOptimize(b.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kElems) * 4);
}
BENCHMARK(BM_Memcpy);

template <DType dt>
void BM_FillReducePattern(benchmark::State& st) {
  std::vector<uint8_t> buf(kElems * dtype_size(dt));
  int64_t m = reduce_modulus(dt == DType::f32 ? 0 : 1, 8);
  for (auto _ : st) {
    for (size_t i = 0; i < kElems; ++i) store_elem(dt, buf.data(), i, reduce_value(7, 3, i, m));
    benchmark::DoNotOptimize(buf.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.size()));
}
BENCHMARK(BM_FillReducePattern<DType::f32>);
BENCHMARK(BM_FillReducePattern<DType::bf16>);

template <DType dt>
void BM_VerifyReduceSum(benchmark::State& st) {
  int64_t m = reduce_modulus(dt == DType::f32 ? 0 : 1, 8);
  std::vector<float> observed(kElems);
  for (size_t i = 0; i < kElems; ++i) observed[i] = float(reduce_sum(7, 8, i, m));
  for (auto _ : st) {
    auto v = verify_values(dt, observed.data(), kElems, 0, [&](size_t i) { return double(reduce_sum(7, 8, i, m)); });
    benchmark::DoNotOptimize(v.n_wrong);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kElems) * int64_t(dtype_size(dt)));
}
BENCHMARK(BM_VerifyReduceSum<DType::f32>);
BENCHMARK(BM_VerifyReduceSum<DType::bf16>);

void BM_CsvRow(benchmark::State& st) {
  std::string path = "/tmp/dtbench-bench-" + std::to_string(::getpid()) + ".csv";
  ::unlink(path.c_str());
  CsvWriter w(path, {}, {"a", "b", "c", "d"});
  std::vector<std::string> row = {"all_reduce", "1048576", "12.5", "with,comma"};
  size_t bytes = 0;
  for (auto& f : row) bytes += f.size() + 1;
  for (auto _ : st) w.row(row);
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(bytes));
  ::unlink(path.c_str());
}
BENCHMARK(BM_CsvRow);

}  // namespace

BENCHMARK_MAIN();
