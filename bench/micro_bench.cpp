// Google Benchmark micro-benchmarks of the host hot paths, each reporting bytes processed so the
// GB/s column compares directly with BM_Memcpy on a buffer of the same size:
//   * pattern fill (HostBackend::fill_pattern's loop, fill_with) and the per-element closed form
//   * verify: the path of Context::check (chunked fp32 view of the typed buffer + verify_values);
//     BM_VerifyIdentity is dtbench-coll's check (identity pattern, bit-exact)
//   * verify cost per element vs the group size n (reduce_sum closed form, O(1) in n)
//   * bucket pack/unpack of per-param grads into DDP bucket buffers (BucketPlan offsets)
//   * checksums (xxHash XXH3-64, XXH64)
//   * CSV: writing perf rows (Reports/CsvWriter), parsing them back (read_perf_csv)
// Run: build/cuda/micro_bench [--benchmark_filter=REGEX] [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../kernels/pattern.h"
#include "core/backend.h"
#include "core/buffer.h"
#include "core/dtype.h"
#include "ddp/bucket_plan.h"
#include "model/model.h"
#include "core/pattern_fill.h"
#include "core/perf_csv.h"
#include "core/report.h"
#include "core/suite.h"
#include "core/verify.h"

using namespace dtbench;

namespace {

constexpr size_t kElems = size_t(1) << 22;  // 4M elements: beyond L2, like real buckets
constexpr int kRanks = 8;                   // the group size the patterns are made for

int code_of(DType dt) { return dt == DType::f32 ? 0 : dt == DType::bf16 ? 1 : 2; }

// The modulus as the suites see it: computed at run time, so the compiler cannot fold the division.
int64_t runtime_modulus(DType dt, int64_t n) {
  int64_t m = reduce_modulus(code_of(dt), n);
  benchmark::DoNotOptimize(m);
  return m;
}

// memcpy of `bytes` (the size of the fp32 and the bf16 buffers below).
void BM_Memcpy(benchmark::State& st) {
  size_t bytes = size_t(st.range(0));
  std::vector<char> a(bytes, 1), b(bytes);
  for (auto _ : st) {
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(bytes));
}
BENCHMARK(BM_Memcpy)->Arg(int64_t(kElems) * 4)->Arg(int64_t(kElems) * 2);

// HostBackend::fill_pattern (identity pattern: rank 3's sum shares of 8, or its moved values).
template <DType dt>
void BM_FillPattern(benchmark::State& st) {
  Buffer buf(MemSpace::host, dt, kElems);
  PatternSpec s;
  s.kind = st.range(0) ? PatternSpec::gather : PatternSpec::reduce;
  s.seed = 7;
  s.rank = 3;
  s.group_size = kRanks;
  for (auto _ : st) {
    fill_pattern_host(dt, buf.data(), kElems, s);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.bytes()));
  st.SetLabel(st.range(0) ? "gather" : "reduce");
}
BENCHMARK(BM_FillPattern<DType::f32>)->Arg(0)->Arg(1);
BENCHMARK(BM_FillPattern<DType::bf16>)->Arg(0)->Arg(1);

// The per-element closed form through store_elem (what fill_pattern did before, and what
// fill_with does for suite-specific closed forms).
template <DType dt>
void BM_FillClosedForm(benchmark::State& st) {
  Buffer buf(MemSpace::host, dt, kElems);
  int64_t m = runtime_modulus(dt, kRanks);
  for (auto _ : st) {
    fill_with(buf, 0, kElems, [=](size_t i) { return reduce_value(7, 3, i, m); });
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.bytes()));
}
BENCHMARK(BM_FillClosedForm<DType::f32>);
BENCHMARK(BM_FillClosedForm<DType::bf16>);

// Context::check's local part (Context::verify_buffer = verify_local without a fault) on a typed host buffer holding
// a correct all-reduce result: fp32 read in place, 16-bit types converted chunk by chunk into the
// reused scratch; then verify_values against dtbench-coll's expectation, bit-exact.
// periodic = 1: the expectation is wrapped in periodic_expected(reduce_period(...)) (table path).
template <class Expected>
LocalVerify verify_like_check(const Buffer& buf, size_t n, Expected expected) {
  return Context::verify_buffer(buf, 0, n, 0, expected, 0.0, [](size_t) { return -1; });
}

template <DType dt>
void BM_Verify(benchmark::State& st) {
  const int64_t group = st.range(0);
  const bool periodic = st.range(1) != 0;
  const int64_t m = runtime_modulus(dt, group);
  Buffer buf(MemSpace::host, dt, kElems);
  auto expected = [=](size_t i) { return double(round_to(dt, float(reduce_sum(7, group, i, m)))); };  // as coll
  fill_with(buf, 0, kElems, [=](size_t i) { return float(reduce_sum(7, group, i, m)); });
  for (auto _ : st) {
    LocalVerify v = periodic ? verify_like_check(buf, kElems, periodic_expected(reduce_period(7, kElems - 1, m), expected))
                             : verify_like_check(buf, kElems, expected);
    if (v.n_wrong) st.SkipWithError("verify found wrong elements in a correct buffer");
    benchmark::DoNotOptimize(v.n_wrong);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.bytes()));
  // Elements per second as the built-in column (items_per_second): a user counter on only some
  // benchmarks makes --benchmark_format=csv abort (every CSV row must have the same counters).
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(kElems));
  st.SetLabel(periodic ? "table" : "per-element");
}
// dtbench-coll's check of an all-reduce result (the identity pattern: expected totals generated per
// chunk by the vectorised hash loop, compared bit for bit) and of an all-gather result (moved values).
template <DType dt>
void BM_VerifyIdentity(benchmark::State& st) {
  const bool moved = st.range(0) != 0;
  Buffer buf(MemSpace::host, dt, kElems);
  auto totals = block_expected(
      dt, [](size_t i, size_t len, void* out) { fill_sum_totals(dt, out, len, 7, i); },
      [](size_t i, size_t len, const void* data) { return sum_totals_differ(dt, data, len, 7, i); });
  auto values = block_expected(
      dt, [](size_t i, size_t len, void* out) { fill_moved_values(dt, out, len, 7, 3, i); },
      [](size_t i, size_t len, const void* data) { return moved_values_differ(dt, data, len, 7, 3, i); });
  if (moved) values.fill(0, kElems, buf.data());
  else totals.fill(0, kElems, buf.data());
  for (auto _ : st) {
    LocalVerify v = moved ? verify_like_check(buf, kElems, values) : verify_like_check(buf, kElems, totals);
    if (v.n_wrong) st.SkipWithError("verify found wrong elements in a correct buffer");
    benchmark::DoNotOptimize(v.n_wrong);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.bytes()));
  // Elements per second as the built-in column (items_per_second): a user counter on only some
  // benchmarks makes --benchmark_format=csv abort (every CSV row must have the same counters).
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(kElems));
  st.SetLabel(moved ? "moved values" : "sum totals");
}
BENCHMARK(BM_VerifyIdentity<DType::f32>)->Arg(0)->Arg(1);
BENCHMARK(BM_VerifyIdentity<DType::bf16>)->Arg(0)->Arg(1);
BENCHMARK(BM_VerifyIdentity<DType::f16>)->Arg(0)->Arg(1);

BENCHMARK(BM_Verify<DType::f32>)->Args({kRanks, 0})->Args({kRanks, 1});
BENCHMARK(BM_Verify<DType::bf16>)->Args({kRanks, 0})->Args({kRanks, 1});
// Group sizes 1..1024: the cost per element must not grow with n (closed form, O(1) in n).
BENCHMARK(BM_Verify<DType::f32>)->Name("BM_VerifyVsRanks<fp32>")->ArgsProduct({{1, 2, 4, 8, 64, 1024}, {0, 1}});
BENCHMARK(BM_Verify<DType::bf16>)->Name("BM_VerifyVsRanks<bf16>")->ArgsProduct({{1, 2, 4, 8, 64, 1024}, {0, 1}});

// Averages: a tolerance of max(2, n) ULPs of the expected value per element.
void BM_VerifyTolerance(benchmark::State& st) {
  const bool periodic = st.range(0) != 0;
  int64_t m = runtime_modulus(DType::f32, kRanks);
  std::vector<float> obs(kElems);
  for (size_t i = 0; i < kElems; ++i) obs[i] = float(double(reduce_sum(7, kRanks, i, m)) / kRanks);
  auto expected = [=](size_t i) { return double(float(double(reduce_sum(7, kRanks, i, m)) / kRanks)); };
  for (auto _ : st) {
    auto v = periodic ? verify_values(DType::f32, obs.data(), kElems, 0,
                                      periodic_expected(reduce_period(7, kElems - 1, m), expected), double(kRanks))
                      : verify_values(DType::f32, obs.data(), kElems, 0, expected, double(kRanks));
    if (v.n_wrong) st.SkipWithError("wrong elements");
    benchmark::DoNotOptimize(v.n_wrong);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kElems) * 4);
  st.SetLabel(periodic ? "table" : "per-element");
}
BENCHMARK(BM_VerifyTolerance)->Arg(0)->Arg(1);

// --- DDP bucket pack / unpack --------------------------------------------------------------------
// PyTorch DDP (without gradient_as_bucket_view) copies every param.grad into its bucket's flat
// buffer before the all-reduce and back afterwards; the offsets come from BucketPlan (25 MiB cap).
struct PackFixture {
  ModelSpec model = make_preset("tiny", DType::f32, 4, 256);
  BucketPlan plan{model, [] {
                    BucketPlanOptions o;
                    o.bucket_mb = 25.0;
                    return o;
                  }()};
  std::vector<std::vector<float>> grads;
  std::vector<float> flat;
  size_t bytes = 0;
  PackFixture() {
    for (const TensorSpec& t : model.tensors) grads.emplace_back(size_t(t.numel()), 1.0f);
    flat.resize(size_t(plan.buffer(0).numel));
    for (const BucketedParam& p : plan.params()) bytes += size_t(p.numel()) * 4;
  }
};

void BM_BucketPack(benchmark::State& st) {
  PackFixture f;
  bool unpack = st.range(0) != 0;
  for (auto _ : st) {
    for (const BucketedParam& p : f.plan.params()) {
      float* slot = f.flat.data() + p.start;
      float* grad = f.grads[size_t(p.tensor)].data();
      if (unpack) std::memcpy(grad, slot, size_t(p.numel()) * 4);
      else std::memcpy(slot, grad, size_t(p.numel()) * 4);
    }
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(f.bytes));
  st.SetLabel(std::string(unpack ? "unpack " : "pack ") + std::to_string(f.model.tensors.size()) + " params, " +
              std::to_string(f.plan.num_buckets()) + " buckets");
}
BENCHMARK(BM_BucketPack)->Arg(0)->Arg(1);

// --- checksums -----------------------------------------------------------------------------------
void BM_XXH3(benchmark::State& st) {
  std::vector<char> a(kElems * 4, 3);
  for (auto _ : st) benchmark::DoNotOptimize(XXH3_64bits(a.data(), a.size()));
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(a.size()));
}
BENCHMARK(BM_XXH3);

void BM_XXH64(benchmark::State& st) {
  std::vector<char> a(kElems * 4, 3);
  for (auto _ : st) benchmark::DoNotOptimize(XXH64(a.data(), a.size(), 0));
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(a.size()));
}
BENCHMARK(BM_XXH64);

// --- CSV -----------------------------------------------------------------------------------------
std::string temp_dir() {
  char tmpl[] = "/tmp/dtbench-bench-XXXXXX";
  return ::mkdtemp(tmpl) ? tmpl : "/tmp";
}

PerfRow sample_row(size_t i) {
  PerfRow r;
  r.case_name = std::to_string(1u << (i % 24));
  r.op = "all_reduce";
  r.dtype = "bf16";
  r.redop = "sum";
  r.in_place = "0";
  r.group_size = 8;
  r.layout = "accumulate=fp32,bucket=40000000";
  r.count = 1u << (i % 24);
  r.bytes = r.count * 2;
  r.iters = 20;
  r.warmup = 5;
  r.time_med_us = 123.456 + double(i % 100);
  r.time_min_us = 120.1;
  r.time_max_us = 230.9;
  r.algbw = 12.345678;
  r.busbw = 21.6049;
  r.n_wrong = 0;
  return r;
}

// A perf row as a suite writes it (formatting + write + flush per row).
void BM_CsvWritePerfRow(benchmark::State& st) {
  std::string dir = temp_dir();
  size_t rows = 0;
  {
    Reports rep("bench", "run", 8, "host", Reports::Paths{dir, "", ""}, {{"command", "micro_bench"}});
    for (auto _ : st) rep.perf(sample_row(rows++));
    std::fflush(nullptr);
  }
  std::string path = dir + "/bench-run-perf.csv";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  long size = 0;
  if (f) {
    std::fseek(f, 0, SEEK_END);
    size = std::ftell(f);
    std::fclose(f);
  }
  st.SetBytesProcessed(size);  // total bytes written over all iterations
  std::remove(path.c_str());
  std::remove((dir + "/bench-run-checks.csv").c_str());
  ::rmdir(dir.c_str());
}
BENCHMARK(BM_CsvWritePerfRow);

// The raw CsvWriter (quoting + write), 4 short fields.
void BM_CsvRow(benchmark::State& st) {
  std::string dir = temp_dir(), path = dir + "/w.csv";
  CsvWriter w(path, {}, {"a", "b", "c", "d"});
  std::vector<std::string> row = {"all_reduce", "1048576", "12.5", "with,comma"};
  size_t bytes = 0;
  for (auto& f : row) bytes += f.size() + 1;
  for (auto _ : st) w.row(row);
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(bytes));
  std::remove(path.c_str());
  ::rmdir(dir.c_str());
}
BENCHMARK(BM_CsvRow);

// read_perf_csv (fast-cpp-csv-parser) over a 10k-row perf CSV.
void BM_CsvParsePerf(benchmark::State& st) {
  std::string dir = temp_dir();
  {
    Reports rep("bench", "run", 8, "host", Reports::Paths{dir, "", ""}, {{"command", "micro_bench"}});
    for (size_t i = 0; i < 10000; ++i) rep.perf(sample_row(i));
  }
  std::string path = dir + "/bench-run-perf.csv";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fclose(f);
  for (auto _ : st) {
    PerfFile pf = read_perf_csv(path);  // (rows must satisfy time_min <= time_med <= time_max)
    if (pf.rows.size() != 10000) st.SkipWithError("row count");
    benchmark::DoNotOptimize(pf.rows.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * size);
  std::remove(path.c_str());
  std::remove((dir + "/bench-run-checks.csv").c_str());
  ::rmdir(dir.c_str());
}
BENCHMARK(BM_CsvParsePerf);

}  // namespace

BENCHMARK_MAIN();
