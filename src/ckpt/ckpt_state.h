#pragma once
// CkptState: which sharded pieces of a small transformer (params plus optional Adam state) one rank
// holds under a DP/TP/PP(/FSDP) layout, as ShardedPiece metadata (Megatron's ShardedTensor),
// and the closed-form values every element has at a given training step. Pure host code, no MPI:
// any rank can compute any rank's pieces, and any loaded element can be checked in O(1).
//
// Tensors (H = hidden, F = 4H, V = 4H), Megatron conventions:
//   embedding.word_embeddings.weight  [V, H]         TP on axis 0, first PP stage
//   layers.<name>                     [L, ...]       one prepended layer axis (PP holds L/PP layers):
//     self_attention.linear_qkv.weight [3H, H] TP axis 0;  .bias [3H] TP axis 0
//     self_attention.linear_proj.weight [H, H] TP axis 1; input_layernorm.weight [H] TP-replicated
//     mlp.linear_fc1.weight [F, H] TP axis 0;             mlp.linear_fc2.weight [H, F] TP axis 1
//   final_layernorm.weight            [H]            TP-replicated, last PP stage
// Replicas: TP-sharded (0, 0, dp), TP-replicated (0, tp, dp) -> only dp = 0 (and tp = 0) writes.
// --fsdp: params are further split over DP along their first local axis (uneven, ranks may be
// empty), so every piece is a main replica of its own box. Adam (--optimizer adam): keys
// optimizer.{fp32_param,exp_avg,exp_avg_sq}.<param key>, fp32, always DP-split like DistOpt.
// split1d: an extra 1-D key "split1d" of sum(split) elements, rank r holds split[r] elements
// (the uneven and empty 1-D splits of Megatron's test_uneven_1d_sharding).
#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/sharded_index.h"

namespace dtbench {

struct CkptLayout {
  int tp = 1, pp = 1;
  bool fsdp = false;
  bool adam = false;
  int layers = 2;
  int64_t hidden = 32;
  DType dtype = DType::f32;
  std::vector<int64_t> split1d;  // one entry per rank, empty = no split1d key

  // Throws ValueError naming the fields (tp, pp, layers, hidden, split1d) when the sizes do not fit
  // `world`.
  void check(int world) const;
  int dp(int world) const { return world / (tp * pp); }
  std::string describe(int world) const;  // "TP2xPP1xDP2 fsdp adam"
};

// Rows [begin, end) of `rows` that part `index` of `parts` gets: ceil-sized chunks, so the last
// parts may be short or empty (FSDP/DistOpt style).
void uneven_rows(int64_t rows, int parts, int index, int64_t* begin, int64_t* end);

// The pieces rank `rank` of `world` holds, in a fixed order (main replicas and others).
std::vector<ShardedPiece> build_rank_state(const CkptLayout& layout, int world, int rank);

// The hash the values of `key` at training step `step` are drawn from (ckpt_value's key_hash).
uint64_t step_key_hash(const std::string& key, int64_t step);
// Fills a piece's box with its values at `step`, row-major, piece.bytes() bytes.
void fill_piece(const ShardedPiece& piece, int64_t step, void* out);

// One line per piece, for exchanging metadata between ranks (no whitespace inside fields).
std::string serialize_pieces(const std::vector<ShardedPiece>& pieces);
std::vector<ShardedPiece> parse_pieces(const std::string& text);  // throws RuntimeError

// Ranks (indices into pieces_by_rank) holding a main replica of `key` that overlaps another main
// replica: the culprits of an "Invalid access pattern" overlap. Empty when there is no overlap.
std::vector<int> overlapping_main_ranks(const std::vector<std::vector<ShardedPiece>>& pieces_by_rank);

}  // namespace dtbench
