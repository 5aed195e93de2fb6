#pragma once
// ShardedPiece: Megatron ShardedTensor metadata (dist_checkpointing/mapping.py): which box of a global
// tensor a rank holds and whether it is the main replica (the one that gets written), and the
// save-time validation over all ranks (serialization.py validate_sharding_integrity).
#include <string>
#include <vector>

#include "ckpt/shapes.h"
#include "core/dtype.h"

namespace dtbench {

// (axis, idx, frags): along `axis` the global tensor is cut into `frags` equal pieces; this is piece idx.
struct RankOffset {
  int axis;
  int64_t index;
  int64_t fragments;
};

struct ShardedPiece {
  std::string key;
  DType dtype = DType::f32;
  TensorShape local_shape;          // the data this rank holds (prepended axes not included)
  TensorShape global_shape;         // prepend_axis_num + local_shape.size() axes
  TensorShape global_offset;        // same rank as global_shape
  TensorShape axis_fragmentations;  // regular grid (from_rank_offsets); empty for uneven pieces
  std::vector<int> replica_id{0};   // main replica <=> all zeros
  int prepend_axis_num = 0;

  // As ShardedTensor.from_rank_offsets: global_shape[axis] = frags * local[axis],
  // global_offset[axis] = idx * local[axis]; a prepended axis has local size 1. Throws
  // CheckpointingError on invalid offsets.
  static ShardedPiece from_rank_offsets(std::string key, DType dtype, TensorShape local_shape,
                                        const std::vector<RankOffset>& rank_offsets,
                                        std::vector<int> replica_id = {0}, int prepend_axis_num = 0);

  bool is_main_replica() const;
  TensorShape box_shape() const;  // local_shape in global rank: 1 per prepended axis
  int64_t numel() const { return shape_numel(local_shape); }
  int64_t bytes() const { return numel() * static_cast<int64_t>(dtype_size(dtype)); }
  // Megatron's validate_metadata_integrity plus bounds: ranks agree, the box lies inside the global
  // shape, on a regular grid offset % local == 0. Throws CheckpointingError naming the key.
  void check() const;
};

// Save-time validation (validate_sharding_integrity); pieces_by_rank[r] = what rank r saves. Throws
// CheckpointingError: different dtype or global shape for one key, or "Invalid access pattern for
// key '<k>': overlap at global index (...) ..." / "... hole at global index (...)".
void validate_sharding(const std::vector<std::vector<ShardedPiece>>& pieces_by_rank);

}  // namespace dtbench
