#include "core/fp32_accum.h"

#include <string>
#include <vector>

#include "core/error.h"

namespace dtbench {
namespace {

// Element codecs, so the dtype switch happens once per call instead of once per element.
struct F32 {
  using Elem = float;
  static float load(Elem v) { return v; }
  static Elem store(float v) { return v; }
};
struct BF16 {
  using Elem = uint16_t;
  static float load(Elem v) { return bf16_to_f32(v); }
  static Elem store(float v) { return f32_to_bf16(v); }
};
struct F16 {
  using Elem = uint16_t;
  static float load(Elem v) { return f16_to_f32(v); }
  static Elem store(float v) { return f32_to_f16(v); }
};

// Walks S in blocks that stay in L1 with a fp32 accumulator, reading each chunk sequentially:
// W strided streams per element would thrash the cache for large S.
constexpr size_t kBlock = 1024;

template <class Codec, bool kRoundEachAdd>
void sum_chunks(const void* gathered, int W, size_t S, void* out, int first_rank) {
  using Elem = typename Codec::Elem;
  const Elem* in = static_cast<const Elem*>(gathered);
  Elem* dst = static_cast<Elem*>(out);
  float acc[kBlock];
  for (size_t begin = 0; begin < S; begin += kBlock) {
    size_t n = S - begin < kBlock ? S - begin : kBlock;
    for (int step = 0; step < W; ++step) {
      const Elem* chunk = in + size_t((first_rank + step) % W) * S + begin;
      if (step == 0) {
        for (size_t i = 0; i < n; ++i) acc[i] = Codec::load(chunk[i]);
      } else if (kRoundEachAdd) {  // what a ring reduce-scatter in dt does at every hop
        for (size_t i = 0; i < n; ++i) acc[i] = Codec::load(Codec::store(acc[i] + Codec::load(chunk[i])));
      } else {
        for (size_t i = 0; i < n; ++i) acc[i] += Codec::load(chunk[i]);
      }
    }
    for (size_t i = 0; i < n; ++i) dst[begin + i] = Codec::store(acc[i]);
  }
}

template <bool kRoundEachAdd>
void sum_chunks_as(DType dt, const void* gathered, int W, size_t S, void* out, int first_rank) {
  if (W < 1) throw InputError("sum_chunks: group size must be >= 1, got " + std::to_string(W));
  if (first_rank < 0 || first_rank >= W)
    throw InputError("sum_chunks: first rank " + std::to_string(first_rank) + " outside a group of " + std::to_string(W));
  switch (dt) {
    case DType::f32: return sum_chunks<F32, kRoundEachAdd>(gathered, W, S, out, first_rank);
    case DType::bf16: return sum_chunks<BF16, kRoundEachAdd>(gathered, W, S, out, first_rank);
    case DType::f16: return sum_chunks<F16, kRoundEachAdd>(gathered, W, S, out, first_rank);
  }
}

}  // namespace

void sum_chunks_fp32(DType dt, const void* gathered, int W, size_t S, void* out) {
  sum_chunks_as<false>(dt, gathered, W, S, out, 0);
}

void sum_chunks_native(DType dt, const void* gathered, int W, size_t S, void* out, int first_rank) {
  sum_chunks_as<true>(dt, gathered, W, S, out, first_rank);
}

void check_scratch(size_t scratch_elems, size_t input_elems, int W) {
  if (W < 1) throw InputError("reduce-scatter fp32 accumulation: group size must be >= 1, got " + std::to_string(W));
  if (input_elems % size_t(W) != 0)
    throw InputError("reduce-scatter fp32 accumulation: input of " + std::to_string(input_elems) +
                     " elements is not divisible by the group size " + std::to_string(W));
  if (scratch_elems != input_elems)
    throw InputError("reduce-scatter fp32 accumulation: scratch buffer has " + std::to_string(scratch_elems) +
                     " elements, the input " + std::to_string(input_elems) + "; they must be equal");
}

// Device buffers are staged through the host (Buffer::host_bytes): correct on both backends.

PendingReduce start_reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, Buffer& scratch, Buffer& out,
                                              size_t out_first, const Fp32AccumFaults& faults) {
  return start_reduce_scatter_fp32_accum(comm, input, 0, input.count(), scratch, out, out_first, faults);
}

PendingReduce start_reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, size_t in_first, size_t in_count,
                                              Buffer& scratch, Buffer& out, size_t out_first,
                                              const Fp32AccumFaults& faults) {
  const int W = comm.size();
  // Refused before any communication: one rank's bad call must not desync the group.
  if (in_first + in_count > input.count())
    throw InputError("reduce-scatter fp32 accumulation: input range past the end of its buffer");
  if (!faults.skip_scratch_check) check_scratch(scratch.count(), in_count, W);
  else if (scratch.count() < in_count) throw InputError("reduce-scatter fp32 accumulation: scratch too small");
  if (scratch.dtype() != input.dtype())
    throw InputError(std::string("reduce-scatter fp32 accumulation: scratch is ") + dtype_name(scratch.dtype()) +
                     ", the input " + dtype_name(input.dtype()) + "; they must be equal");
  const size_t S = in_count / size_t(W);
  if (out.dtype() != input.dtype() || out_first + S > out.count())
    throw InputError("reduce-scatter fp32 accumulation: output range does not hold one shard of the input's dtype");
  CollArgs a;
  a.kind = CollKind::all_to_all, a.send = input.at(in_first), a.recv = scratch.data(), a.count = S, a.dtype = input.dtype();
  PendingReduce p;
  p.request = comm.start(a);
  Buffer* scr = &scratch;
  Buffer* dst = &out;
  const DType dt = input.dtype();
  const int first = (comm.rank() + 1) % W;  // a ring ends at the owner
  const bool native = faults.native_sum;
  p.finish = [=] {
    auto sum = [&](const void* gathered, void* result) {
      if (native) sum_chunks_native(dt, gathered, W, S, result, first);
      else sum_chunks_fp32(dt, gathered, W, S, result);
    };
    if (scr->space() == MemSpace::host && dst->space() == MemSpace::host) {
      sum(scr->data(), dst->at(out_first));
      return;
    }
    std::vector<unsigned char> g = scr->host_bytes(0, scr->count()), r(S * dtype_size(dt));
    sum(g.data(), r.data());
    dst->copy_from_host(r.data(), out_first, S);
  };
  return p;
}

void reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, Buffer& scratch, Buffer& out, size_t out_first,
                               const Fp32AccumFaults& faults) {
  start_reduce_scatter_fp32_accum(comm, input, scratch, out, out_first, faults).wait();
}

void reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, size_t in_first, size_t in_count, Buffer& scratch,
                               Buffer& out, size_t out_first, const Fp32AccumFaults& faults) {
  start_reduce_scatter_fp32_accum(comm, input, in_first, in_count, scratch, out, out_first, faults).wait();
}

}  // namespace dtbench
