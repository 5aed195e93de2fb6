#include "ckpt/ckpt_state.h"

#include <algorithm>
#include <sstream>

namespace dtbench {

void CkptLayout::check(int world) const {
  if (tp < 1) throw ValueError("tp", "must be >= 1, got " + std::to_string(tp));
  if (pp < 1) throw ValueError("pp", "must be >= 1, got " + std::to_string(pp));
  if (world % (tp * pp) != 0)
    throw ValueError("tp/pp", "TP " + std::to_string(tp) + " x PP " + std::to_string(pp) +
                                  " does not divide the world size " + std::to_string(world));
  if (layers < 1 || layers % pp != 0)
    throw ValueError("layers/pp", std::to_string(layers) + " layers: must be >= 1 and divisible by PP " +
                                      std::to_string(pp));
  if (hidden < 1 || hidden % tp != 0)
    throw ValueError("hidden/tp", "hidden " + std::to_string(hidden) + ": must be >= 1 and divisible by TP " +
                                      std::to_string(tp));
  if (!split1d.empty() && split1d.size() != size_t(world))
    throw ValueError("split1d", "needs one entry per rank (" + std::to_string(world) + "), got " +
                                    std::to_string(split1d.size()));
  for (int64_t n : split1d)
    if (n < 0) throw ValueError("split1d", "negative entry " + std::to_string(n));
}

std::string CkptLayout::describe(int world) const {
  std::ostringstream s;
  s << "TP" << tp << "xPP" << pp << "xDP" << dp(world) << (fsdp ? " fsdp" : "") << (adam ? " adam" : "");
  if (!split1d.empty()) {
    s << " split1d=";
    for (size_t i = 0; i < split1d.size(); ++i) s << (i ? ":" : "") << split1d[i];
  }
  return s.str();
}

void uneven_rows(int64_t rows, int parts, int index, int64_t* begin, int64_t* end) {
  const int64_t chunk = (rows + parts - 1) / parts;
  *begin = std::min(rows, chunk * index);
  *end = std::min(rows, *begin + chunk);
}

namespace {

struct TensorDef {
  std::string key;
  TensorShape shape;  // global, without the layer axis
  int tp_axis;        // -1: replicated over TP
  bool layered;       // prepended layer axis
};

std::vector<TensorDef> model_tensors(const CkptLayout& l) {
  const int64_t h = l.hidden, f = 4 * h, v = 4 * h;
  return {
      {"embedding.word_embeddings.weight", {v, h}, 0, false},
      {"layers.self_attention.linear_qkv.weight", {3 * h, h}, 0, true},
      {"layers.self_attention.linear_qkv.bias", {3 * h}, 0, true},
      {"layers.self_attention.linear_proj.weight", {h, h}, 1, true},
      {"layers.input_layernorm.weight", {h}, -1, true},
      {"layers.mlp.linear_fc1.weight", {f, h}, 0, true},
      {"layers.mlp.linear_fc2.weight", {h, f}, 1, true},
      {"final_layernorm.weight", {h}, -1, false},
  };
}

// A piece covering `box` (global coordinates incl. the prepended axes) of a tensor.
ShardedPiece make_piece(const std::string& key, DType dt, const TensorShape& global_shape, int prepend,
                        const TensorShape& offset, const TensorShape& box, std::vector<int> replica) {
  ShardedPiece p;
  p.key = key;
  p.dtype = dt;
  p.global_shape = global_shape;
  p.global_offset = offset;
  p.local_shape.assign(box.begin() + prepend, box.end());
  p.prepend_axis_num = prepend;
  p.replica_id = std::move(replica);
  p.check();
  return p;
}

}  // namespace

std::vector<ShardedPiece> build_rank_state(const CkptLayout& l, int world, int rank) {
  const int dp = l.dp(world);
  const int tp_r = rank % l.tp, dp_r = (rank / l.tp) % dp, pp_r = rank / (l.tp * dp);
  const int layers_per_stage = l.layers / l.pp;
  std::vector<ShardedPiece> out;
  for (const TensorDef& t : model_tensors(l)) {
    std::vector<int> layer_ids;
    if (t.layered) {
      for (int i = 0; i < layers_per_stage; ++i) layer_ids.push_back(pp_r * layers_per_stage + i);
    } else if ((t.key.rfind("embedding", 0) == 0 && pp_r == 0) || (t.key.rfind("final", 0) == 0 && pp_r == l.pp - 1)) {
      layer_ids.push_back(-1);
    }
    for (int layer : layer_ids) {
      const int prepend = t.layered ? 1 : 0;
      TensorShape gshape = t.shape, offset(t.shape.size(), 0), box = t.shape;
      if (t.tp_axis >= 0) {
        box[size_t(t.tp_axis)] /= l.tp;
        offset[size_t(t.tp_axis)] = box[size_t(t.tp_axis)] * tp_r;
      }
      if (t.layered) {
        gshape.insert(gshape.begin(), l.layers);
        offset.insert(offset.begin(), layer);
        box.insert(box.begin(), 1);
      }
      // The DP split along the first local axis.
      TensorShape dp_offset = offset, dp_box = box;
      int64_t b, e;
      uneven_rows(box[size_t(prepend)], dp, dp_r, &b, &e);
      dp_offset[size_t(prepend)] += b;
      dp_box[size_t(prepend)] = e - b;
      std::vector<int> replica = t.tp_axis >= 0 ? std::vector<int>{0, 0, dp_r} : std::vector<int>{0, tp_r, dp_r};
      if (l.fsdp) {
        replica = {0, t.tp_axis >= 0 ? 0 : tp_r, 0};
        out.push_back(make_piece(t.key, l.dtype, gshape, prepend, dp_offset, dp_box, replica));
      } else {
        out.push_back(make_piece(t.key, l.dtype, gshape, prepend, offset, box, replica));
      }
      if (l.adam) {
        std::vector<int> orep = {0, t.tp_axis >= 0 ? 0 : tp_r, 0};
        for (const char* s : {"fp32_param", "exp_avg", "exp_avg_sq"})
          out.push_back(make_piece(std::string("optimizer.") + s + "." + t.key, DType::f32, gshape, prepend,
                                   dp_offset, dp_box, orep));
      }
    }
  }
  if (!l.split1d.empty()) {
    int64_t total = 0, start = 0;
    for (size_t r = 0; r < l.split1d.size(); ++r) {
      if (int(r) < rank) start += l.split1d[r];
      total += l.split1d[r];
    }
    out.push_back(make_piece("split1d", l.dtype, {total}, 0, {start}, {l.split1d[size_t(rank)]}, {0}));
  }
  return out;
}

uint64_t step_key_hash(const std::string& key, int64_t step) {
  return key_hash(key) ^ (uint64_t(step) * 0x9E3779B97F4A7C15ull);
}

void fill_piece(const ShardedPiece& piece, int64_t step, void* out) {
  fill_ckpt_values(piece.dtype, step_key_hash(piece.key, step), piece.global_shape, piece.global_offset,
                   piece.box_shape(), out);
}

namespace {
std::string dims(const TensorShape& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}
TensorShape parse_dims_or_throw(const std::string& s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') throw RuntimeError("bad dims '" + s + "'");
  TensorShape out;
  std::stringstream ss(s.substr(1, s.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}
}  // namespace

std::string serialize_pieces(const std::vector<ShardedPiece>& pieces) {
  std::ostringstream s;
  for (const ShardedPiece& p : pieces) {
    s << p.key << ' ' << dtype_name(p.dtype) << ' ' << dims(p.global_shape) << ' ' << dims(p.global_offset) << ' '
      << dims(p.local_shape) << ' ' << p.prepend_axis_num << ' ';
    TensorShape rep(p.replica_id.begin(), p.replica_id.end());
    s << dims(rep) << '\n';
  }
  return s.str();
}

std::vector<ShardedPiece> parse_pieces(const std::string& text) {
  std::vector<ShardedPiece> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string key, dt, gs, go, ls, rep;
    int prepend = 0;
    if (!(f >> key >> dt >> gs >> go >> ls >> prepend >> rep)) throw RuntimeError("bad piece line '" + line + "'");
    ShardedPiece p;
    p.key = key;
    if (!parse_dtype(dt, &p.dtype)) throw RuntimeError("bad dtype in piece line '" + line + "'");
    p.global_shape = parse_dims_or_throw(gs);
    p.global_offset = parse_dims_or_throw(go);
    p.local_shape = parse_dims_or_throw(ls);
    p.prepend_axis_num = prepend;
    TensorShape r = parse_dims_or_throw(rep);
    p.replica_id.assign(r.begin(), r.end());
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<int> overlapping_main_ranks(const std::vector<std::vector<ShardedPiece>>& pieces_by_rank) {
  struct Holder {
    int rank;
    const ShardedPiece* piece;
  };
  std::map<std::string, std::vector<Holder>> by_key;
  for (size_t r = 0; r < pieces_by_rank.size(); ++r)
    for (const ShardedPiece& p : pieces_by_rank[r])
      if (p.is_main_replica() && p.numel() > 0) by_key[p.key].push_back({int(r), &p});
  std::set<int> culprits;
  for (const auto& kv : by_key) {
    const std::vector<Holder>& hs = kv.second;
    for (size_t i = 0; i < hs.size(); ++i)
      for (size_t j = i + 1; j < hs.size(); ++j)
        if (hs[i].piece->global_shape == hs[j].piece->global_shape &&
            intersect(hs[i].piece->global_offset, hs[i].piece->box_shape(), hs[j].piece->global_offset,
                      hs[j].piece->box_shape())) {
          culprits.insert(hs[i].rank);
          culprits.insert(hs[j].rank);
        }
  }
  return {culprits.begin(), culprits.end()};
}

}  // namespace dtbench
