#include "ckpt/sharded_piece.h"

#include <algorithm>
#include <map>

namespace dtbench {

// --- ShardedPiece --------------------------------------------------------------------------------
ShardedPiece ShardedPiece::from_rank_offsets(std::string key, DType dtype, TensorShape local_shape,
                                             const std::vector<RankOffset>& rank_offsets,
                                             std::vector<int> replica_id, int prepend_axis_num) {
  if (prepend_axis_num < 0)
    throw CheckpointingError("key '" + key + "': prepend_axis_num must be >= 0, got " +
                             std::to_string(prepend_axis_num));
  const size_t ndim = local_shape.size() + static_cast<size_t>(prepend_axis_num);
  ShardedPiece piece;
  piece.global_shape.assign(static_cast<size_t>(prepend_axis_num), 1);
  piece.global_shape.insert(piece.global_shape.end(), local_shape.begin(), local_shape.end());
  piece.global_offset.assign(ndim, 0);
  piece.axis_fragmentations.assign(ndim, 1);
  std::vector<bool> seen(ndim, false);
  for (const RankOffset& ro : rank_offsets) {
    const bool bad = ro.axis < 0 || static_cast<size_t>(ro.axis) >= ndim || ro.index < 0 ||
                     ro.fragments < 1 || ro.index >= ro.fragments || seen[ro.axis];
    if (bad)
      throw CheckpointingError("Invalid rank offset (axis " + std::to_string(ro.axis) + ", idx " +
                               std::to_string(ro.index) + ", frags " +
                               std::to_string(ro.fragments) + ") for key '" + key + "' with " +
                               std::to_string(ndim) + " axes (0 <= idx < frags, each axis once)");
    seen[ro.axis] = true;
    const int64_t local = ro.axis < prepend_axis_num ? 1 : local_shape[ro.axis - prepend_axis_num];
    piece.global_shape[ro.axis] = ro.fragments * local;
    piece.global_offset[ro.axis] = ro.index * local;
    piece.axis_fragmentations[ro.axis] = ro.fragments;
  }
  piece.key = std::move(key);
  piece.dtype = dtype;
  piece.local_shape = std::move(local_shape);
  piece.replica_id = std::move(replica_id);
  piece.prepend_axis_num = prepend_axis_num;
  piece.check();
  return piece;
}

bool ShardedPiece::is_main_replica() const {
  return std::all_of(replica_id.begin(), replica_id.end(), [](int r) { return r == 0; });
}

TensorShape ShardedPiece::box_shape() const {
  TensorShape shape(static_cast<size_t>(std::max(prepend_axis_num, 0)), 1);
  shape.insert(shape.end(), local_shape.begin(), local_shape.end());
  return shape;
}

void ShardedPiece::check() const {
  auto fail = [&](const std::string& problem) {
    throw CheckpointingError("ShardedPiece '" + key + "' (global shape " + shape_str(global_shape) +
                             ", offset " + shape_str(global_offset) + ", local shape " +
                             shape_str(local_shape) + "): " + problem);
  };
  if (key.empty()) fail("empty key");
  if (prepend_axis_num < 0) fail("prepend_axis_num < 0");
  if (global_offset.size() != global_shape.size())
    fail("global offset and global shape have different numbers of axes");
  if (local_shape.size() + static_cast<size_t>(prepend_axis_num) != global_shape.size())
    fail("local shape plus " + std::to_string(prepend_axis_num) +
         " prepended axes must have as many axes as the global shape");
  if (!axis_fragmentations.empty() && axis_fragmentations.size() != global_shape.size())
    fail("axis_fragmentations must have one entry per global axis");
  if (replica_id.empty()) fail("empty replica_id");
  for (int r : replica_id)
    if (r < 0) fail("negative replica_id " + replica_str(replica_id));
  const TensorShape box = box_shape();
  for (size_t a = 0; a < global_shape.size(); ++a) {
    if (box[a] < 0 || global_offset[a] < 0 || box[a] > global_shape[a] - global_offset[a])
      fail("the piece leaves the global shape on axis " + std::to_string(a));
    const int64_t sh = box[a];
    if (!axis_fragmentations.empty() && a >= static_cast<size_t>(prepend_axis_num) && sh != 0 &&
        global_offset[a] % sh != 0)
      fail("on a regular grid the global offset (" + std::to_string(global_offset[a]) +
           ") must be divisible by the local shape (" + std::to_string(sh) + ")");
  }
}

void validate_sharding(const std::vector<std::vector<ShardedPiece>>& pieces_by_rank) {
  struct KeyPieces {
    const ShardedPiece* first;
    int first_rank;
    std::vector<CoverBox> main_replicas;
  };
  std::map<std::string, KeyPieces> by_key;
  for (size_t r = 0; r < pieces_by_rank.size(); ++r) {
    for (const ShardedPiece& piece : pieces_by_rank[r]) {
      piece.check();
      auto [it, inserted] = by_key.try_emplace(piece.key, KeyPieces{&piece, int(r), {}});
      const ShardedPiece& first = *it->second.first;
      const std::string where = "rank " + std::to_string(r) + " has ";
      const std::string first_where = " but rank " + std::to_string(it->second.first_rank) + " has ";
      if (!inserted && piece.dtype != first.dtype)
        throw CheckpointingError("Invalid sharding for key '" + piece.key + "': " + where +
                                 dtype_name(piece.dtype) + first_where + dtype_name(first.dtype));
      if (!inserted && piece.global_shape != first.global_shape)
        throw CheckpointingError("Invalid sharding for key '" + piece.key + "': " + where +
                                 "global shape " + shape_str(piece.global_shape) + first_where +
                                 shape_str(first.global_shape));
      if (piece.is_main_replica())
        it->second.main_replicas.push_back(
            {piece.global_offset, piece.box_shape(), "main replica on rank " + std::to_string(r)});
    }
  }
  for (const auto& [key, pieces] : by_key)
    check_exact_cover(key, pieces.first->global_shape, "main replica", pieces.main_replicas);
}

}  // namespace dtbench
