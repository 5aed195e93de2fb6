#pragma once
// The verify kit for a check that spans several ranges or pieces of buffers: each piece is verified
// in place (Context::verify_buffer: chunked, no copy of the range), the "flip" fault lands where it
// would in one copy of the check's first non-empty range on this rank, a culprit function may look
// at the first wrong element's observed value, and the check is reported once (collective).
#include <string>
#include <utility>

#include "core/suite.h"

namespace dtbench {

class CheckAccumulator {
 public:
  explicit CheckAccumulator(std::string check) : name_(std::move(check)) {}
  const std::string& name() const { return name_; }
  const LocalVerify& local() const { return v_; }

  // Starts a range of n elements at buffer index `first`: the first non-empty one takes the flip
  // fault (its index clamped to the range). Pieces of the range follow.
  void begin(Context& ctx, const Buffer& buf, size_t first, size_t n) {
    flip_at_ = -1;
    dtype_ = buf.dtype();  // the dtype column even when every range of this rank is empty
    if (n == 0) return;
    if (flip_placed_) return;
    flip_placed_ = true;
    const int64_t f = flip_target(ctx.fault, ctx.run.rank, name_, n);
    if (f >= 0) flip_at_ = int64_t(first) + f;
  }
  // Verifies buffer elements [first, first+n) of the begun range: element first+k against
  // expected(index_base + k) with tol ULPs; culprit(index_base + k, observed) names the rank behind
  // the first wrong element (-1: none).
  template <class Expected, class Culprit>
  void piece(const Buffer& buf, size_t first, size_t n, size_t index_base, Expected expected, double tol,
             Culprit culprit) {
    if (n == 0) return;
    const bool here = flip_at_ >= int64_t(first) && flip_at_ < int64_t(first + n);
    LocalVerify part = Context::verify_buffer(buf, first, n, index_base, expected, tol, [](size_t) { return -1; },
                                              here ? flip_at_ - int64_t(first) : -1);
    if (part.n_wrong) part.culprit = culprit(size_t(part.first_index), part.observed);
    combine_verify(v_, part);
  }
  // A range that is one piece.
  template <class Expected, class Culprit>
  void add(Context& ctx, const Buffer& buf, size_t first, size_t n, size_t index_base, Expected expected, double tol,
           Culprit culprit) {
    begin(ctx, buf, first, n);
    piece(buf, first, n, index_base, expected, tol, culprit);
  }
  // Reports the accumulated verdict (collective over the world: every rank calls it).
  bool report(Context& ctx, const std::string& case_name, const std::string& detail) {
    return ctx.report_check(CheckInfo{name_, case_name, dtype_name(dtype_), detail}, v_);
  }

 private:
  std::string name_;
  DType dtype_ = DType::f32;
  LocalVerify v_;
  bool flip_placed_ = false;
  int64_t flip_at_ = -1;  // buffer index of the flipped element in the current range
};

// Verifies [0, n) of buf as consecutive tagged pieces, all one check: for_pieces(cb) calls
// cb(begin, end, tag) for each, and the piece's elements are checked against expected(i, tag), its
// first wrong element named by culprit(i, observed, tag) (a DistOpt buffer: tag = whether the piece
// is this rank's own shard). Chunked, with no copy of the whole buffer; the "flip" fault lands where
// it would in one copy of [0, n). Reports the check (collective).
template <class Pieces, class Expected, class Culprit>
bool check_pieces(Context& ctx, const CheckInfo& info, const Buffer& buf, size_t n, Pieces for_pieces,
                  Expected expected, double tol, Culprit culprit) {
  CheckAccumulator acc(info.check);
  acc.begin(ctx, buf, 0, n);
  for_pieces([&](size_t lo, size_t hi, auto tag) {
    if (hi <= lo) return;
    acc.piece(
        buf, lo, hi - lo, lo, [&](size_t i) { return expected(i, tag); }, tol,
        [&](size_t i, double observed) { return culprit(i, observed, tag); });
  });
  return ctx.report_check(info, acc.local());
}

}  // namespace dtbench
