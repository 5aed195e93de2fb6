#include "fsdp/fsdp_step.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/fp32_accum.h"

namespace dtbench {

const char* strategy_name(FsdpStrategy s) {
  switch (s) {
    case FsdpStrategy::no_shard: return "no_shard";
    case FsdpStrategy::optim: return "optim";
    case FsdpStrategy::optim_grads: return "optim_grads";
    case FsdpStrategy::optim_grads_params: return "optim_grads_params";
  }
  return "?";
}
const char* grad_reduce_name(GradReduce r) {
  return r == GradReduce::avg ? "avg" : r == GradReduce::prescale ? "prescale" : "premul";
}
const char* grad_comm_name(GradComm c) {
  return c == GradComm::native ? "native" : c == GradComm::fp32 ? "fp32" : "fp32-accum";
}
bool parse_strategy(const std::string& s, FsdpStrategy* out) {
  for (FsdpStrategy v : {FsdpStrategy::no_shard, FsdpStrategy::optim, FsdpStrategy::optim_grads,
                         FsdpStrategy::optim_grads_params})
    if (s == strategy_name(v)) return *out = v, true;
  return false;
}
bool parse_grad_reduce(const std::string& s, GradReduce* out) {
  for (GradReduce v : {GradReduce::avg, GradReduce::prescale, GradReduce::premul})
    if (s == grad_reduce_name(v)) return *out = v, true;
  return false;
}
bool parse_grad_comm(const std::string& s, GradComm* out) {
  if (s == "bf16") return *out = GradComm::native, true;  // the issue's name for a bf16 model
  for (GradComm v : {GradComm::native, GradComm::fp32, GradComm::fp32_accum})
    if (s == grad_comm_name(v)) return *out = v, true;
  return false;
}

// --- units -------------------------------------------------------------------------------------
std::vector<FsdpUnit> plan_fsdp_units(const ModelSpec& model, int shard_group_size, ShardLayoutKind kind,
                                      bool sharded) {
  if (model.tensors.empty()) throw InputError("FSDP units: model \"" + model.name + "\" has no tensors");
  std::map<int, std::vector<size_t>> by_layer;  // -1 (root) sorts first: forward order
  for (size_t i = 0; i < model.tensors.size(); ++i) by_layer[model.tensors[i].layer].push_back(i);
  std::vector<FsdpUnit> units;
  for (auto& [layer, tensors] : by_layer) {
    std::vector<TensorShape> shapes;
    for (size_t t : tensors) shapes.push_back(model.tensors[t].shape);
    FsdpUnit u{layer < 0 ? "root" : "layer" + std::to_string(layer), layer < 0, tensors,
               // no_shard keeps every param whole: the unpadded flat buffer, whatever the layout
               ShardLayout(shapes, shard_group_size, sharded ? kind : ShardLayoutKind::flat, sharded)};
    units.push_back(std::move(u));
  }
  return units;
}

UnitIndex::UnitIndex(const ShardLayout& layout) : layout_(&layout) {
  for (size_t i = 0; i < layout.items().size(); ++i) by_offset_.push_back(i);
  std::stable_sort(by_offset_.begin(), by_offset_.end(),
                   [&](size_t a, size_t b) { return layout.items()[a].offset < layout.items()[b].offset; });
}

std::optional<ElementRef> UnitIndex::at(int64_t pos) const {
  const ShardLayout& L = *layout_;
  if (pos < 0 || pos >= L.size()) return std::nullopt;
  int64_t key = pos, rank = 0;
  if (L.kind() == ShardLayoutKind::per_param) rank = pos / L.shard_size(), key = pos % L.shard_size();
  // The last item starting at or before `key`.
  auto it = std::upper_bound(by_offset_.begin(), by_offset_.end(), key,
                             [&](int64_t k, size_t i) { return k < L.items()[i].offset; });
  if (it == by_offset_.begin()) return std::nullopt;
  size_t item = *(it - 1);
  const ShardItem& si = L.items()[item];
  int64_t local = key - si.offset;
  if (L.kind() == ShardLayoutKind::flat) {
    if (local >= si.numel) return std::nullopt;
    return ElementRef{item, local};
  }
  int64_t slice = si.padded_numel / L.shard_group_size();
  if (local >= slice) return std::nullopt;
  int64_t elem = rank * slice + local;
  if (elem >= si.numel) return std::nullopt;  // a short dim 0 leaves trailing ranks padding only
  return ElementRef{item, elem};
}

IndexRun UnitIndex::run_at(int64_t pos) const {
  const ShardLayout& L = *layout_;
  IndexRun run;
  if (pos < 0 || pos >= L.size()) {  // outside: nothing, one position at a time
    run.begin = pos, run.end = pos + 1;
    return run;
  }
  const bool per_param = L.kind() == ShardLayoutKind::per_param;
  int64_t key = pos, rank = 0, base = 0, limit = L.size();
  if (per_param) rank = pos / L.shard_size(), key = pos % L.shard_size(), base = rank * L.shard_size(), limit = L.shard_size();
  auto it = std::upper_bound(by_offset_.begin(), by_offset_.end(), key,
                             [&](int64_t k, size_t i) { return k < L.items()[i].offset; });
  // Every key below the next item's offset resolves to the same item as `key` (or to none).
  const int64_t next = it == by_offset_.end() ? limit : std::min(limit, L.items()[*it].offset);
  if (it == by_offset_.begin()) {
    run.begin = base, run.end = base + next;
    return run;
  }
  const size_t item = *(it - 1);
  const ShardItem& si = L.items()[item];
  int64_t valid = si.numel, elem0 = 0;  // keys [offset, offset + valid) hold elements elem0, ...
  if (per_param) {
    const int64_t slice = si.padded_numel / L.shard_group_size();
    elem0 = rank * slice;
    valid = std::max<int64_t>(0, std::min(slice, si.numel - elem0));
  }
  const int64_t valid_end = std::min(si.offset + valid, next);
  if (key < valid_end) {
    run.has = true, run.item = item, run.elem = elem0;
    run.begin = base + si.offset, run.end = base + valid_end;
  } else {
    run.begin = base + std::max(si.offset, valid_end), run.end = base + next;
  }
  return run;
}

// --- counts ------------------------------------------------------------------------------------
std::string CollectiveCounts::str() const {
  std::ostringstream s;
  s << "AG=" << all_gather << " RS=" << reduce_scatter << " AR=" << all_reduce;
  return s.str();
}

CollectiveCounts expected_counts(FsdpStrategy s, int layer_units, bool has_root, int k, bool hsdp) {
  int U = layer_units + (has_root ? 1 : 0);
  CollectiveCounts c;
  switch (s) {
    case FsdpStrategy::no_shard: c.all_reduce = U; break;  // once, on the last microbatch
    case FsdpStrategy::optim: c.reduce_scatter = U, c.all_gather = U; break;
    case FsdpStrategy::optim_grads: c.reduce_scatter = k * U, c.all_gather = U; break;
    case FsdpStrategy::optim_grads_params:
      // every layer unit before forward and before backward; the root once, kept for the step
      c.reduce_scatter = k * U, c.all_gather = k * (2 * layer_units + (has_root ? 1 : 0));
      break;
  }
  if (hsdp && s != FsdpStrategy::no_shard) c.all_reduce += U;  // outer all-reduce, last microbatch
  return c;
}

int64_t fsdp_grad_modulus(DType dt, int W, int k) {
  int64_t limit = exact_integer_limit(dt == DType::f32 ? 0 : dt == DType::bf16 ? 1 : 2);
  int64_t denom = int64_t(k) * W * W;
  int64_t m = limit / denom;
  if (m < 2) return 0;
  m = std::min<int64_t>(m, 64);
  while (m > 2 && W % m == 0) --m;
  return m == 2 && W % 2 == 0 ? 1 : m;
}

int64_t fsdp_grad_extra(DType dt, int W, int k, int64_t m) {
  const int64_t limit = exact_integer_limit(dt == DType::f32 ? 0 : dt == DType::bf16 ? 1 : 2);
  const int64_t q = limit / (int64_t(k) * W) - int64_t(W) * m;
  return std::max<int64_t>(0, std::min<int64_t>(q, int64_t(1) << 16));
}

double params_digest(const std::vector<float>& values) {
  double d = 0;
  int w = 1;  // i % 7 + 1, without a division per element
  for (size_t i = 0; i < values.size(); ++i) {
    d += double(values[i]) * double(w);
    if (++w == 8) w = 1;
  }
  return d;
}

// --- the step ------------------------------------------------------------------------------------
struct FsdpModel::Impl {
  struct Unit {
    explicit Unit(const ShardLayout& L) : index(L) {}
    UnitIndex index;
    int64_t N = 0, S = 0;       // gathered size, shard size
    Buffer param_shard;         // optim_grads_params: the owned shard
    Buffer param_full;          // persistent full params, or ZeRO-3's temporary (root: kept)
    Buffer grad_full;           // no_shard / optim: grads accumulated over microbatches
    Buffer grad_shard;          // optim_grads*: reduced grads of the owned shard
    Buffer grad_temp;           // backward: this microbatch's full grads
    Buffer scratch;             // fp32 / fp32-accum reduction scratch, alive while in flight
    RequestPtr gather;          // in-flight unshard
    bool gathered = false;
  };
  Backend& backend;
  Comm& shard;
  Comm* replica;
  int dp_rank, dp_size;
  std::vector<Unit> u;
  StepStats stats;
  int param_temps = 0, grad_temps = 0;
  std::vector<PendingReduce> pending;  // FIFO of in-flight grad reductions
  std::vector<Buffer*> deferred_free;  // no_free fault: released at the end of the step

  Impl(Backend& b, Comm& s, Comm* r, int rank, int size) : backend(b), shard(s), replica(r), dp_rank(rank), dp_size(size) {}
};

FsdpModel::FsdpModel(Backend& backend, Comm& shard, Comm* replica, int dp_rank, int dp_size,
                     std::vector<FsdpUnit> units, FsdpConfig cfg)
    : impl_(std::make_unique<Impl>(backend, shard, replica, dp_rank, dp_size)), units_(std::move(units)), cfg_(cfg) {
  if (cfg_.comm == GradComm::fp32_accum && cfg_.reduce == GradReduce::avg)
    throw ValueError("comm/reduce", "fp32-accum with avg: the fp32-accumulating reduce-scatter sums; reduce with "
                                    "prescale or premul");
  if (cfg_.grad_modulus < 1 || cfg_.grad_extra < 0) throw InputError("FsdpModel: grad modulus must be >= 1");
  DType dt = cfg_.dtype;
  int D = shard.size(), r = shard.rank();
  for (size_t i = 0; i < units_.size(); ++i) {
    const ShardLayout& L = units_[i].layout;
    if (L.shard_group_size() != D) throw InputError("FsdpModel: unit layout is for a different shard group size");
    Impl::Unit st(L);
    st.N = L.size(), st.S = L.shard_size();
    impl_->u.push_back(std::move(st));
  }
  // Persistent buffers and initial params (version 0).
  for (size_t i = 0; i < units_.size(); ++i) {
    Impl::Unit& st = impl_->u[i];
    const ShardLayout& L = units_[i].layout;
    // The wrong-offset fault fills this rank's shard from its neighbour's region.
    int src = cfg_.faults.wrong_offset ? (r + 1) % D : r;
    UnitIndex::Cursor cursor = impl_->u[i].index.cursor();
    ParamValues initial(cfg_.seed, i, 0);  // version 0
    auto value_at = [&](int64_t pos) {
      auto e = cursor.at(pos);
      return e ? initial(e->item, e->elem) : 0.0f;
    };
    if (params_sharded(cfg_.strategy)) {
      st.param_shard = backend.alloc(dt, size_t(st.S));
      int64_t base = L.shard_begin(src);
      fill_with(st.param_shard, 0, size_t(st.S), [&](size_t k) { return value_at(base + int64_t(k)); });
    } else {
      st.param_full = backend.alloc(dt, size_t(st.N));
      fill_with(st.param_full, 0, size_t(st.N), [&](size_t k) { return value_at(int64_t(k)); });
    }
    if (grads_sharded(cfg_.strategy)) st.grad_shard = backend.alloc(dt, size_t(st.S));
    else st.grad_full = backend.alloc(dt, size_t(st.N));
  }
}

FsdpModel::~FsdpModel() = default;

const Buffer& FsdpModel::grad_buffer(size_t i) const {
  const auto& st = impl_->u.at(i);
  return grads_sharded(cfg_.strategy) ? st.grad_shard : st.grad_full;
}
size_t FsdpModel::grad_first(size_t i) const {
  if (grads_sharded(cfg_.strategy) || cfg_.strategy == FsdpStrategy::no_shard) return 0;
  return size_t(units_.at(i).layout.shard_begin(impl_->shard.rank()));
}
size_t FsdpModel::grad_count(size_t i) const { return size_t(impl_->u.at(i).S); }
int64_t FsdpModel::grad_position(size_t i) const { return units_.at(i).layout.shard_begin(impl_->shard.rank()); }
const Buffer* FsdpModel::full_params(size_t i) const {
  return params_sharded(cfg_.strategy) ? nullptr : &impl_->u.at(i).param_full;
}

size_t FsdpModel::theoretical_min_bytes() const {
  size_t es = dtype_size(cfg_.dtype), persistent = 0, max_param = 0, max_grad = 0;
  for (size_t i = 0; i < units_.size(); ++i) {
    const auto& st = impl_->u[i];
    size_t N = size_t(st.N) * es, S = size_t(st.S) * es;
    persistent += params_sharded(cfg_.strategy) ? S : N;
    persistent += grads_sharded(cfg_.strategy) ? S : N;
    if (params_sharded(cfg_.strategy)) {
      if (units_[i].root) persistent += N;  // kept for the step
      else max_param = std::max(max_param, N);
    }
    size_t scratch = cfg_.comm == GradComm::fp32_accum ? N : cfg_.comm == GradComm::fp32 ? size_t(st.N) * 4 : 0;
    if (cfg_.strategy == FsdpStrategy::no_shard) scratch = 0;  // all-reduce in place
    max_grad = std::max(max_grad, N + scratch);
  }
  size_t slots = cfg_.prefetch ? 2 : 1;
  return persistent + slots * (max_param + max_grad);
}

StepStats FsdpModel::step(const ParamsObserver& observe) {
  Impl& m = *impl_;
  const FsdpConfig& c = cfg_;
  const FsdpFaults& f = c.faults;
  DType dt = c.dtype;
  MemSpace space = m.backend.mem_space();
  int D = m.shard.size(), r = m.shard.rank();
  size_t U = units_.size();
  m.stats = StepStats();
  m.param_temps = m.grad_temps = 0;

  // Baseline: what this process holds besides the model, so peak_bytes counts the model only.
  size_t model_bytes = 0;
  for (auto& st : m.u)
    model_bytes += st.param_shard.bytes() + st.param_full.bytes() + st.grad_full.bytes() + st.grad_shard.bytes();
  size_t other = memory_stats(space).current_bytes - model_bytes;
  reset_peak_memory(space);

  for (auto& st : m.u) {
    if (st.grad_full.count()) st.grad_full.fill_zero();
    if (st.grad_shard.count()) st.grad_shard.fill_zero();
  }
  const bool zero3 = params_sharded(c.strategy);
  const float factor = 1.0f / float(m.dp_size);
  const RedOp op = c.reduce == GradReduce::avg ? RedOp::avg : RedOp::sum;

  auto release = [&](Buffer& b, int& counter) {
    if (f.no_free) {  // fault: kept until the step ends
      m.deferred_free.push_back(&b);
      return;
    }
    if (!b.empty()) --counter;
    b = Buffer();
  };
  auto track = [&](int& counter, int& peak) { peak = std::max(peak, ++counter); };

  // Unshard: allocate the temporary full buffer, place the own shard, start the in-place all-gather.
  auto issue_gather = [&](size_t i) {
    auto& st = m.u[i];
    if (!zero3 || st.gathered || st.gather) return;
    if (!st.param_full.empty()) {  // no_free fault: still allocated from before
      --m.param_temps;
      m.deferred_free.erase(std::remove(m.deferred_free.begin(), m.deferred_free.end(), &st.param_full),
                            m.deferred_free.end());
    }
    st.param_full = m.backend.alloc(dt, size_t(st.N));
    if (!units_[i].root) track(m.param_temps, m.stats.max_param_temps);
    copy_elements(st.param_full, size_t(r) * size_t(st.S), st.param_shard, 0, size_t(st.S));
    CollArgs a;
    a.kind = CollKind::all_gather, a.count = size_t(st.S), a.dtype = dt;
    a.recv = st.param_full.data(), a.send = st.param_full.at(size_t(r) * size_t(st.S));
    st.gather = m.shard.start(a);
    ++m.stats.counts.all_gather;
  };
  auto ensure_gathered = [&](size_t i) {
    auto& st = m.u[i];
    if (!zero3 || st.gathered) return;
    issue_gather(i);
    st.gather->wait();
    st.gather.reset();
    st.gathered = true;
  };
  auto release_params = [&](size_t i) {
    auto& st = m.u[i];
    if (!zero3 || units_[i].root) return;
    st.gathered = false;
    release(st.param_full, m.param_temps);
  };
  // The prefetch order rule: the next unit's all-gather is issued before this compute ends.
  auto needs_gather = [&](size_t i) { return zero3 && !m.u[i].gathered && !m.u[i].gather; };

  auto compute = [&](size_t i, const char* phase, std::optional<size_t> next) {
    const Buffer* seen = &m.u[i].param_full;
    if (f.stale_slot && c.prefetch && next && zero3 && m.u[*next].gather) seen = &m.u[*next].param_full;
    if (observe) {
      observe(i, phase, *seen, version_);
      m.stats.digests.push_back(params_digest(seen->to_host_f32(0, seen->count())));
    }
    m.backend.busy_compute(c.compute_s);
    m.backend.synchronize();
  };
  auto check_order = [&](size_t i, const char* phase, std::optional<size_t> next) {
    if (c.prefetch && next && needs_gather(*next) && m.stats.prefetch_order_ok) {
      m.stats.prefetch_order_ok = false;
      m.stats.order_violation = std::string(phase) + " " + units_[*next].name + " gathered after " +
                                units_[i].name + "'s compute ended";
    }
  };
  auto drain = [&](size_t keep) {
    while (m.pending.size() > keep) {
      m.pending.front().wait();
      m.pending.erase(m.pending.begin());
    }
  };

  // Starts the reduction of `buf` (a full unit of grads) into its own region [r*S, +S) (or all of
  // it for no_shard); `then` runs when it completes.
  auto start_reduce = [&](size_t i, Buffer& buf, std::function<void()> then) {
    auto& st = m.u[i];
    size_t S = size_t(st.S);
    PendingReduce p;
    if (c.strategy == FsdpStrategy::no_shard) {
      CollArgs a;
      a.kind = CollKind::all_reduce, a.send = buf.data(), a.recv = buf.data(), a.count = buf.count(), a.dtype = dt, a.op = op;
      a.accumulate_fp32 = c.comm != GradComm::native;
      p.request = m.shard.start(a);
      ++m.stats.counts.all_reduce;
    } else if (c.comm == GradComm::fp32_accum) {
      st.scratch = m.backend.alloc(dt, buf.count());
      Fp32AccumFaults af;
      af.native_sum = f.bf16_accum;
      p = start_reduce_scatter_fp32_accum(m.shard, buf, st.scratch, buf, size_t(r) * S, af);
      ++m.stats.counts.reduce_scatter;
    } else if (c.comm == GradComm::fp32 && dt != DType::f32) {
      st.scratch = m.backend.alloc(DType::f32, buf.count());
      convert_elements(st.scratch, 0, buf, 0, buf.count());
      CollArgs a;
      a.kind = CollKind::reduce_scatter, a.send = st.scratch.data(), a.recv = st.scratch.at(size_t(r) * S);
      a.count = S, a.dtype = DType::f32, a.op = op;
      p.request = m.shard.start(a);
      Buffer* scr = &st.scratch;
      Buffer* out = &buf;
      p.finish = [=] { convert_elements(*out, size_t(r) * S, *scr, size_t(r) * S, S); };
      ++m.stats.counts.reduce_scatter;
    } else {
      CollArgs a;
      a.kind = CollKind::reduce_scatter, a.send = buf.data(), a.recv = buf.at(size_t(r) * S), a.count = S, a.dtype = dt;
      a.op = op;
      p.request = m.shard.start(a);
      ++m.stats.counts.reduce_scatter;
    }
    auto inner = std::move(p.finish);
    p.finish = [&st, inner, then] {
      if (inner) inner();
      st.scratch = Buffer();
      if (then) then();
    };
    m.pending.push_back(std::move(p));
  };

  std::vector<size_t> fwd(U), bwd(U);
  for (size_t i = 0; i < U; ++i) fwd[i] = i, bwd[i] = U - 1 - i;
  auto next_of = [](const std::vector<size_t>& order, size_t k) -> std::optional<size_t> {
    return k + 1 < order.size() ? std::optional<size_t>(order[k + 1]) : std::nullopt;
  };

  for (int mb = 0; mb < c.microbatches; ++mb) {
    bool last = mb + 1 == c.microbatches;
    // Forward: unshard, compute, free (the root stays gathered for the step).
    for (size_t k = 0; k < U; ++k) {
      size_t i = fwd[k];
      auto next = next_of(fwd, k);
      ensure_gathered(i);
      if (c.prefetch && next && !f.late_prefetch) issue_gather(*next);
      compute(i, "forward", next);
      check_order(i, "forward", next);
      if (c.prefetch && next && f.late_prefetch) issue_gather(*next);
      release_params(i);
    }
    // Backward: unshard, compute the unit's grads, free params, reduce the grads.
    for (size_t k = 0; k < U; ++k) {
      size_t i = bwd[k];
      auto next = next_of(bwd, k);
      auto& st = m.u[i];
      ensure_gathered(i);
      if (c.prefetch && next && !f.late_prefetch) issue_gather(*next);
      st.grad_temp = m.backend.alloc(dt, size_t(st.N));
      track(m.grad_temps, m.stats.max_grad_temps);
      compute(i, "backward", next);
      check_order(i, "backward", next);
      // The compute's output: DP * h per element (premul: the 1/DP factor fused in).
      bool fuse = c.reduce == GradReduce::premul && !f.missing_scale;
      const UnitIndex& idx = st.index;
      int64_t gm = c.grad_modulus, gq = c.grad_extra;
      int rank = m.dp_rank, W = m.dp_size;
      uint64_t seed = c.seed;
      UnitIndex::Cursor cursor = idx.cursor();
      size_t key_item = SIZE_MAX;  // fsdp_grad_h's per-item key, computed once per item
      uint64_t key = 0;
      fill_with(st.grad_temp, 0, size_t(st.N), [&, i](size_t pos) {
        auto e = cursor.at(int64_t(pos));
        if (!e) return 0.0f;
        if (e->item != key_item) key_item = e->item, key = fsdp_grad_key(seed, i, e->item, mb);
        float g = float(W) * float(fsdp_grad_h_keyed(key, rank, e->elem, gm, gq));
        return fuse ? g * factor : g;
      });
      if (c.prefetch && next && f.late_prefetch) issue_gather(*next);
      release_params(i);
      if (units_[i].root && zero3) {  // the kept root is freed after its backward
        st.gathered = false;
        st.param_full = Buffer();
      }

      bool prescale = c.reduce == GradReduce::prescale && !f.missing_scale;
      if (grads_sharded(c.strategy)) {
        if (prescale) scale_elements(st.grad_temp, 0, st.grad_temp.count(), factor);
        Buffer* temp = &st.grad_temp;
        Buffer* shard_buf = &st.grad_shard;
        size_t S = size_t(st.S);
        start_reduce(i, st.grad_temp, [&m, &release, temp, shard_buf, S, r] {
          accumulate_elements(*shard_buf, 0, *temp, size_t(r) * S, S);  // shard += reduced
          release(*temp, m.grad_temps);
        });
      } else {
        accumulate_elements(st.grad_full, 0, st.grad_temp, 0, st.grad_temp.count());  // main_grad += grad
        release(st.grad_temp, m.grad_temps);
        if (last || f.eager_reduce) {
          if (prescale) scale_elements(st.grad_full, 0, st.grad_full.count(), factor);
          start_reduce(i, st.grad_full, nullptr);
        }
      }
      // At most one reduction in flight besides this one (two grad buffers); none without prefetch.
      drain(c.prefetch ? 1 : 0);
    }
    drain(0);
    // HSDP: the outer all-reduce of the owned shard across replicas, once, on the last microbatch.
    if (last && m.replica && c.strategy != FsdpStrategy::no_shard) {
      for (size_t i = 0; i < U; ++i) {
        Buffer& g = const_cast<Buffer&>(grad_buffer(i));
        size_t first = grad_first(i);
        m.replica->all_reduce(g.at(first), g.at(first), size_t(m.u[i].S), dt, op);
        ++m.stats.counts.all_reduce;
      }
    }
  }

  // Optimizer step (the identity update, as a new param version) and the params' refresh.
  ++version_;
  int src = f.wrong_offset ? (r + 1) % D : r;
  for (size_t i = 0; i < U; ++i) {
    auto& st = m.u[i];
    const ShardLayout& L = units_[i].layout;
    const UnitIndex& idx = st.index;
    UnitIndex::Cursor cursor = idx.cursor();
    ParamValues updated(c.seed, i, version_);
    auto value_at = [&](int64_t pos) {
      auto e = cursor.at(pos);
      return e ? updated(e->item, e->elem) : 0.0f;
    };
    if (c.strategy == FsdpStrategy::no_shard) {
      fill_with(st.param_full, 0, size_t(st.N), [&](size_t k) { return value_at(int64_t(k)); });
    } else if (zero3) {
      int64_t base = L.shard_begin(src);
      fill_with(st.param_shard, 0, size_t(st.S), [&](size_t k) { return value_at(base + int64_t(k)); });
    } else {  // ZeRO-1/2: update the own region of the full params, all-gather the rest
      int64_t base = L.shard_begin(src);
      fill_with(st.param_full, size_t(r) * size_t(st.S), size_t(st.S),
                [&](size_t k) { return value_at(base + int64_t(k) - int64_t(r) * st.S); });
      m.shard.all_gather(st.param_full.at(size_t(r) * size_t(st.S)), st.param_full.data(), size_t(st.S), dt);
      ++m.stats.counts.all_gather;
    }
  }

  for (Buffer* b : m.deferred_free) *b = Buffer();
  m.deferred_free.clear();
  for (auto& st : m.u) st.gathered = false;
  size_t peak = memory_stats(space).peak_bytes;
  m.stats.peak_bytes = peak > other ? peak - other : 0;
  (void)D;
  return m.stats;
}

}  // namespace dtbench
