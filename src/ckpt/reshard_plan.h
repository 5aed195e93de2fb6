#pragma once
// The resharding load: which bytes of which saved pieces make up a requested piece (hyper-rectangle
// intersection), read as few contiguous ranges as possible.
#include <optional>
#include <vector>

#include "ckpt/index_format.h"
#include "ckpt/sharded_piece.h"

namespace dtbench {

struct Box {
  TensorShape offset;
  TensorShape shape;
  int64_t numel() const { return shape_numel(shape); }
};
// The common part of two boxes of equal rank, or nothing when it has no element.
std::optional<Box> intersect(const TensorShape& a_offset, const TensorShape& a_shape,
                             const TensorShape& b_offset, const TensorShape& b_shape);

struct ByteRange {
  int64_t src_offset;  // in the file
  int64_t length;
  int64_t dst_offset;  // from the first byte of the requested piece
};
// Copies that move `box` (inside both pieces) from a saved piece stored row-major starting at file
// byte `src_base` into a requested piece stored row-major. Rows adjacent in both are coalesced, so
// the result is the fewest contiguous ranges and reads exactly box.numel() * elem_bytes bytes.
std::vector<ByteRange> copy_ranges(const Box& box, const TensorShape& src_offset,
                                   const TensorShape& src_shape, int64_t src_base,
                                   const TensorShape& dst_offset, const TensorShape& dst_shape,
                                   size_t elem_bytes);


// One saved piece's contribution to a requested piece.
struct PieceRead {
  const IndexEntry* entry;
  Box box;                        // global coordinates
  std::vector<ByteRange> ranges;  // src_offset in entry->file
};
// Which bytes of which files make up [offset, offset+shape) of `key`. Throws CheckpointingError
// when the key is absent, dtype or rank differ, or the box leaves the saved global shape.
std::vector<PieceRead> plan_read(const CheckpointIndex& index, const std::string& key, DType dtype,
                                 const TensorShape& offset, const TensorShape& shape);
std::vector<PieceRead> plan_read(const CheckpointIndex& index, const ShardedPiece& requested);

}  // namespace dtbench
