#include "ckpt/reshard_plan.h"

#include <algorithm>

namespace dtbench {

// --- boxes and byte ranges -----------------------------------------------------------------------
std::optional<Box> intersect(const TensorShape& a_offset, const TensorShape& a_shape,
                             const TensorShape& b_offset, const TensorShape& b_shape) {
  const size_t ndim = a_offset.size();
  if (a_shape.size() != ndim || b_offset.size() != ndim || b_shape.size() != ndim)
    throw RuntimeError("intersect: boxes of different rank (" + shape_str(a_shape) + " vs " +
                       shape_str(b_shape) + ")");
  Box box{TensorShape(ndim), TensorShape(ndim)};
  for (size_t a = 0; a < ndim; ++a) {
    const int64_t lo = std::max(a_offset[a], b_offset[a]);
    const int64_t hi = std::min(a_offset[a] + a_shape[a], b_offset[a] + b_shape[a]);
    if (hi <= lo) return std::nullopt;
    box.offset[a] = lo;
    box.shape[a] = hi - lo;
  }
  return box;
}

std::vector<ByteRange> copy_ranges(const Box& box, const TensorShape& src_offset,
                                   const TensorShape& src_shape, int64_t src_base,
                                   const TensorShape& dst_offset, const TensorShape& dst_shape,
                                   size_t elem_bytes) {
  if (!box_inside(box.offset, box.shape, src_offset, src_shape) ||
      !box_inside(box.offset, box.shape, dst_offset, dst_shape))
    throw RuntimeError("copy_ranges: box at " + shape_str(box.offset) + " of shape " +
                       shape_str(box.shape) + " is not inside both pieces");
  std::vector<ByteRange> ranges;
  if (box.numel() == 0) return ranges;
  const size_t ndim = box.shape.size();
  // Axes after `inner` span both pieces completely, so axes inner.. form one contiguous block.
  size_t inner = ndim ? ndim - 1 : 0;
  while (inner > 0 && box.shape[inner] == src_shape[inner] && box.shape[inner] == dst_shape[inner])
    --inner;
  int64_t block = 1;
  for (size_t a = inner; a < ndim; ++a) block *= box.shape[a];
  const TensorShape src_stride = strides_of(src_shape), dst_stride = strides_of(dst_shape);
  const int64_t eb = static_cast<int64_t>(elem_bytes);

  TensorShape idx(ndim, 0);  // position inside the box; only axes < inner move
  for (int64_t done = 0; done < box.numel(); done += block) {
    int64_t src = 0, dst = 0;
    for (size_t a = 0; a < ndim; ++a) {
      src += (box.offset[a] - src_offset[a] + idx[a]) * src_stride[a];
      dst += (box.offset[a] - dst_offset[a] + idx[a]) * dst_stride[a];
    }
    const ByteRange next{src_base + src * eb, block * eb, dst * eb};
    ByteRange* last = ranges.empty() ? nullptr : &ranges.back();
    if (last && last->src_offset + last->length == next.src_offset &&
        last->dst_offset + last->length == next.dst_offset)
      last->length += next.length;
    else
      ranges.push_back(next);
    for (size_t a = inner; a-- > 0;) {
      if (++idx[a] < box.shape[a]) break;
      idx[a] = 0;
    }
  }
  return ranges;
}

std::vector<PieceRead> plan_read(const CheckpointIndex& index, const std::string& key, DType dtype,
                                 const TensorShape& offset, const TensorShape& shape) {
  const std::vector<const IndexEntry*> saved = index.lookup(key);
  if (saved.empty()) throw CheckpointingError("key '" + key + "' is not in the checkpoint");
  const IndexEntry& any = *saved.front();
  if (dtype != any.dtype)
    throw CheckpointingError("key '" + key + "': requested " + dtype_name(dtype) +
                             " but the checkpoint holds " + dtype_name(any.dtype));
  if (!box_inside(offset, shape, TensorShape(any.global_shape.size(), 0), any.global_shape))
    throw CheckpointingError("key '" + key + "': requested piece at " + shape_str(offset) +
                             " of shape " + shape_str(shape) + " does not fit the saved global shape " +
                             shape_str(any.global_shape));
  std::vector<PieceRead> reads;
  int64_t covered = 0;
  for (const IndexEntry* e : saved) {
    std::optional<Box> box = intersect(e->global_offset, e->local_shape, offset, shape);
    if (!box) continue;
    covered += box->numel();
    std::vector<ByteRange> ranges = copy_ranges(*box, e->global_offset, e->local_shape,
                                                e->byte_offset, offset, shape, dtype_size(dtype));
    reads.push_back({e, std::move(*box), std::move(ranges)});
  }
  if (covered != shape_numel(shape))  // cannot happen for an index that passed its checks
    throw CheckpointingError("key '" + key + "': saved pieces cover " + std::to_string(covered) +
                             " of " + std::to_string(shape_numel(shape)) + " requested elements");
  return reads;
}

std::vector<PieceRead> plan_read(const CheckpointIndex& index, const ShardedPiece& requested) {
  return plan_read(index, requested.key, requested.dtype, requested.global_offset,
                   requested.box_shape());
}

}  // namespace dtbench
