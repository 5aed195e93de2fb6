#include "core/fp32_accum_checks.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "core/check_kit.h"
#include "core/element_ops.h"
#include "core/error.h"
#include "core/fp32_accum.h"

namespace dtbench {

namespace {

constexpr DType kPatternDtype = DType::bf16;  // the accumulation-order pattern is exact in bf16

struct Range {
  size_t first = 0, n = 0;
};

// One run of the check set: the grad buffer, this rank's shard of every bucket, the reductions.
class Fp32AccumRun {
 public:
  Fp32AccumRun(Context& ctx, Comm& comm, const Fp32AccumCheckPlan& plan)
      : ctx_(ctx), comm_(comm), plan_(plan), W_(comm.size()), me_(comm.rank()), rank_(ctx.run.rank) {
    for (const Fp32AccumBucket& b : plan.buckets) {
      if (b.numel % size_t(W_) != 0) throw std::logic_error("fp32-accum checks: a bucket not divisible by the group");
      const size_t S = b.numel / size_t(W_);
      own_.push_back({b.offset + size_t(me_) * S, S});
      numel_ = std::max(numel_, b.offset + b.numel);
    }
    std::sort(own_.begin(), own_.end(), [](const Range& a, const Range& b) { return a.first < b.first; });
    grads_ = ctx.backend.alloc(kPatternDtype, numel_);
  }

  int W() const { return W_; }
  size_t numel() const { return numel_; }

  // Grads = this member's share of the pattern.
  void fill() {
    fill_with(grads_, 0, numel_, [&](size_t i) { return input(i); });
  }
  float input(size_t i) const { return accum_rank_value(me_, i, plan_.seed, W_); }
  double expected(size_t i) const { return double(accum_expected(W_, i, plan_.seed)); }

  // Every bucket in place with fp32 accumulation (the collective under test).
  void reduce_fp32_accum() {
    Fp32AccumFaults f;
    f.native_sum = ctx_.fault.applies("bf16-accum", rank_);
    const int target = ctx_.fault.applies("rs-wrong-offset", rank_) ? (me_ + 1) % W_ : me_;
    for (const Fp32AccumBucket& b : plan_.buckets) {
      const size_t S = b.numel / size_t(W_);
      Buffer scratch = ctx_.backend.alloc(kPatternDtype, b.numel);  // alive while the bucket is in flight
      reduce_scatter_fp32_accum(comm_, grads_, b.offset, b.numel, scratch, grads_, b.offset + size_t(target) * S, f);
    }
  }
  // Every bucket widened to fp32, reduce-scattered in fp32, the own shard rounded back once.
  void reduce_fp32_wire() {
    Buffer wide = ctx_.backend.alloc(DType::f32, numel_);
    convert_elements(wide, 0, grads_, 0, numel_);
    for (const Fp32AccumBucket& b : plan_.buckets) {
      const size_t S = b.numel / size_t(W_);
      comm_.reduce_scatter(wide.at(b.offset), wide.at(b.offset + size_t(me_) * S), S, DType::f32);
    }
    for (const Range& r : own_) convert_elements(grads_, r.first, wide, r.first, r.n);
  }
  // Every bucket with a plain reduce-scatter in bf16 (rounding after every hop).
  void reduce_plain_bf16() {
    for (const Fp32AccumBucket& b : plan_.buckets) {
      const size_t S = b.numel / size_t(W_);
      CollArgs a;
      a.kind = CollKind::reduce_scatter, a.send = grads_.at(b.offset), a.recv = grads_.at(b.offset + size_t(me_) * S);
      a.count = S, a.dtype = kPatternDtype, a.op = RedOp::sum;
      a.accumulate_fp32 = ctx_.fault.applies("fp32-in-bf16-rs", rank_);  // fault: not a plain bf16 RS
      comm_.run(a);
    }
  }

  // The own shards against want(i); culprit(i, observed) names the rank behind a wrong element.
  template <class Want, class Culprit>
  bool check_own(const std::string& check, const std::string& detail, Want want, Culprit culprit) {
    CheckAccumulator acc(check);
    for (const Range& r : own_) acc.add(ctx_, grads_, r.first, r.n, r.first, want, 0, culprit);
    return acc.report(ctx_, plan_.case_name, detail);
  }
  // Every element outside the own shards still holds this rank's input (nothing written there).
  bool check_rest_untouched(const std::string& check, const std::string& detail) {
    CheckAccumulator acc(check);
    auto want = [&](size_t i) { return double(input(i)); };
    auto writer = [this](size_t, double) { return rank_; };  // only this rank writes its buffer
    size_t at = 0;
    for (const Range& r : own_) {
      acc.add(ctx_, grads_, at, r.first - at, at, want, 0, writer);
      at = r.first + r.n;
    }
    acc.add(ctx_, grads_, at, numel_ - at, at, want, 0, writer);
    return acc.report(ctx_, plan_.case_name, detail);
  }
  // Own-shard elements that differ from RNE(exact sum), on this rank.
  double count_own_differing() const {
    double n = 0;
    for (const Range& r : own_) {
      const std::vector<float> got = grads_.to_host_f32(r.first, r.n);
      for (size_t k = 0; k < r.n; ++k) n += double(got[k]) != expected(r.first + k);
    }
    return n;
  }
  // A count summed over this rank's group.
  double sum_over_group(double v) {
    Buffer b = ctx_.backend.alloc(DType::f32, 1);
    fill_with(b, 0, 1, [&](size_t) { return float(v); });
    comm_.all_reduce(b.data(), b.data(), 1, DType::f32, RedOp::sum);
    return double(b.to_host_f32(0, 1)[0]);
  }
  Buffer& grads() { return grads_; }
  int me() const { return me_; }

 private:
  Context& ctx_;
  Comm& comm_;
  const Fp32AccumCheckPlan& plan_;
  const int W_, me_, rank_;
  size_t numel_ = 0;
  std::vector<Range> own_;
  Buffer grads_;
};

// The member that skipped the 2^-k pre-scale adds (1 - 2^-k) times its value to the sum: the world
// rank of the one member whose skipped scale explains `observed` at element i; -1 if several do,
// and `owner` (whose local sum is then wrong) if none does.
int prescale_culprit(const Comm& comm, int W, uint64_t seed, size_t i, double observed, float scale, int owner) {
  double exact = 0;
  for (int j = 0; j < W; ++j) exact += double(accum_rank_value(j, i, seed, W));
  int fits = 0, culprit = -1;
  for (int j = 0; j < W; ++j) {
    const double v = double(accum_rank_value(j, i, seed, W));
    if (double(round_to(kPatternDtype, float(exact * scale + v * (1.0 - scale)))) == observed)
      ++fits, culprit = comm.members()[size_t(j)];
  }
  if (fits > 1) return -1;
  return fits == 0 ? owner : culprit;
}

}  // namespace

void run_fp32_accum_checks(Context& ctx, Comm& comm, const Fp32AccumCheckPlan& plan) {
  Fp32AccumRun run(ctx, comm, plan);
  const int W = run.W(), rank = ctx.run.rank;
  auto expected = [&](size_t i) { return run.expected(i); };
  auto owner = [rank](size_t, double) { return rank; };  // the owner of a shard does its local sum

  run.fill();
  run.reduce_fp32_accum();
  run.check_own("fp32_accum_rs.exact", "all-to-all + fp32 sum + one RNE == RNE(exact sum), own shard of every bucket",
                expected, owner);
  // With one member the own shard is the whole buffer: nothing is left to stay untouched, so no row
  // (W is the same on every rank: the group sizes of a layout are equal).
  if (W > 1)
    run.check_rest_untouched("fp32_accum_rs.in_place",
                             "in place: result at rank*S of each bucket, every other element keeps the local grad");

  if (plan.fp32_wire) {
    run.fill();
    run.reduce_fp32_wire();
    run.check_own("fp32_comm_rs.exact", "fp32 on the wire, one RNE == RNE(exact sum)", expected, owner);
  }

  // A plain bf16 RS of the same grads: per-hop rounding shows from W = 3 on.
  run.fill();
  run.reduce_plain_bf16();
  const double differing = run.count_own_differing();
  if (W >= 3) {
    const double in_group = run.sum_over_group(differing);
    ctx.check_condition({"fp32_accum_rs.bf16_differs", plan.case_name, "bf16",
                         "plain bf16 RS rounds per hop: differs from RNE(exact) for W >= 3 (count over the group)"},
                        in_group > 0 || run.numel() == 0, format_double(in_group, 10) + " elements differ", "> 0");
  } else {
    run.check_own("fp32_accum_rs.bf16_identical", "W <= 2: one add, plain bf16 RS == RNE(exact) element for element",
                  expected, owner);
  }
  PerfRow row;
  row.case_name = plan.case_name, row.op = "reduce_scatter", row.dtype = "bf16", row.group_size = W;
  row.metric = "bf16_rs_elements_differing_from_rne_exact", row.unit = "elements";
  row.value = ctx.sum_over_ranks(differing);
  ctx.perf(row);

  // 2^-k pre-scale before the fp32-accumulating RS: exact (a power of two).
  if (plan.prescale_log2 > 0) {
    const int k = plan.prescale_log2;
    const float scale = std::ldexp(1.0f, -k);
    run.fill();
    if (!ctx.fault.applies("missing-scale", rank)) scale_elements(run.grads(), 0, run.numel(), scale);
    run.reduce_fp32_accum();
    run.check_own(
        "fp32_accum_rs.prescale",
        "grads *= 2^-" + std::to_string(k) + " then fp32-accum RS == RNE(exact) * 2^-" + std::to_string(k),
        [&](size_t i) { return run.expected(i) * double(scale); },
        [&](size_t i, double observed) { return prescale_culprit(comm, W, plan.seed, i, observed, scale, rank); });
  }

  // Bad scratch: refused on every rank before any collective is entered.
  {
    const size_t S = 16, n = size_t(W) * S;
    const int me = run.me();
    Buffer in = ctx.backend.alloc(kPatternDtype, n), bad = ctx.backend.alloc(kPatternDtype, n + size_t(W));
    fill_with(in, 0, n, [&](size_t i) { return accum_rank_value(me, i, plan.seed, W); });
    Fp32AccumFaults f;
    f.skip_scratch_check = ctx.fault.applies("accept-bad-scratch", rank);
    const uint64_t before = comm.calls();
    bool refused = false;
    try {
      reduce_scatter_fp32_accum(comm, in, bad, in, size_t(me) * S, f);
    } catch (const InputError&) {
      refused = true;
    }
    ctx.check_condition({"fp32_accum_rs.bad_scratch_refused", plan.case_name, "bf16", "scratch of N+W elements"},
                        refused && comm.calls() == before, refused ? "refused after communicating" : "accepted",
                        "refused before any collective");
  }
  ctx.progress("fp32-accumulation RS over " + plan.group + " (W=" + std::to_string(W) + ", " +
               std::to_string(run.numel()) + " grad elements in " + std::to_string(plan.buckets.size()) +
               " buckets): checked");
}

void refuse_unrevealable_fp32_accum_fault(const FaultSpec& fault, int W, const std::string& group) {
  const std::string& fault_kind = fault.kind;
  // These two change what every member must do alike: one rank skipping the scratch check enters
  // the all-to-all that the others refuse (a hang), one rank widening its "plain" RS to fp32 sends
  // another datatype than its peers.
  if ((fault_kind == "accept-bad-scratch" || fault_kind == "fp32-in-bf16-rs") && fault.rank >= 0)
    throw InputError("--inject-fault " + fault_kind + ",rank=" + std::to_string(fault.rank) +
                     ": on one rank it makes the group's collectives differ (a hang, not a FAIL); use it on every "
                     "rank (drop rank=)");
  if ((fault_kind == "bf16-accum" || fault_kind == "fp32-in-bf16-rs") && W <= 2)
    throw InputError("--inject-fault " + fault_kind + ": with " + std::to_string(W) + " " + group +
                     " ranks a bf16 sum is one rounding, the same as fp32 accumulation, so it cannot show (needs " +
                     group + " >= 3)");
  if (fault_kind == "rs-wrong-offset" && W < 2)
    throw InputError("--inject-fault rs-wrong-offset: a " + group + " group of one rank has no other offset to write "
                     "(needs " + group + " >= 2)");
}

}  // namespace dtbench
