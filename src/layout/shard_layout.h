#pragma once
// ShardLayout: where each tensor of one FSDP bucket lives in the flat bucket buffer and which part
// of it each rank of a D-rank shard group owns (Megatron-FSDP's flat bucket layout and its
// item-shard intersection, megatron_fsdp/param_and_grad_buffer.py).
//
// Two layouts:
//  * flat      — Megatron-FSDP v2 GlobalLayout.build: tensors packed into one flat buffer whose
//                length is a multiple of chunk*D (chunk = lcm of the row sizes), so every rank's
//                shard [r*S, (r+1)*S) holds whole dim-0 rows only. A tensor may span several
//                ranks; ranks may own nothing but padding. With pad_to_shards=false the buffer is
//                left unpadded and unsharded (no_shard: every rank holds all of it).
//  * per_param — PyTorch FSDP2: every tensor is split on dim 0 on its own, ceil(rows/D) rows per
//                rank (trailing ranks get fewer or none), each rank's slice padded to ceil(rows/D)
//                rows so all-gather blocks are equal. A rank's shard is the concatenation of its
//                padded slices; the gathered buffer is rank-major, so a tensor is not contiguous
//                in it.
// For both, local_piece(item, rank) says which elements of a tensor a rank holds and where they
// sit in its shard buffer; rank r's shard starts at shard_begin(r) in the gathered buffer.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dtbench {

enum class ShardLayoutKind { flat, per_param };
const char* shard_layout_kind_name(ShardLayoutKind kind);

using TensorShape = std::vector<int64_t>;

// Elements [item_start, item_start+length) of one tensor, held at shard_pos in a rank's shard.
struct LocalPiece {
  int64_t item_start = 0;
  int64_t length = 0;
  int64_t shard_pos = 0;
};

// The part of item [item_begin, item_begin+item_numel) inside shard [shard_begin, shard_end) of the
// same flat buffer, or nothing when they do not intersect: local piece [max(a,s)-a, min(a+n,e)-a),
// at shard position max(a,s)-s (a = item_begin, n = item_numel, s = shard_begin, e = shard_end).
std::optional<LocalPiece> intersect_item_shard(int64_t item_begin, int64_t item_numel,
                                               int64_t shard_begin, int64_t shard_end);

struct ShardItem {
  TensorShape shape;
  int64_t numel = 0;
  int64_t row_size = 0;      // product of shape[1:], 1 for a 1-D tensor
  int64_t offset = 0;        // flat: start in the flat buffer; per_param: start of its slice in
                             // every rank's shard
  int64_t padded_numel = 0;  // flat: numel; per_param: D * ceil(rows/D) * row_size
};

class ShardLayout {
 public:
  // shapes in bucket order; shard_group_size = D >= 1. Throws InputError for D < 1, a 0-D shape,
  // a dimension < 1, a per_param layout with pad_to_shards=false, or sizes overflowing int64.
  ShardLayout(std::vector<TensorShape> shapes, int shard_group_size,
              ShardLayoutKind kind = ShardLayoutKind::flat, bool pad_to_shards = true);

  ShardLayoutKind kind() const { return kind_; }
  int shard_group_size() const { return group_size_; }
  bool sharded() const { return sharded_; }  // false only for flat with pad_to_shards=false
  const std::vector<ShardItem>& items() const { return items_; }
  const ShardItem& item(size_t i) const;

  // flat: packing granularity lcm(row sizes); per_param: 1 (each tensor is padded on its own).
  int64_t chunk() const { return chunk_; }
  int64_t size() const { return size_; }                    // gathered buffer, padding included
  int64_t unpadded_size() const { return unpadded_size_; }  // sum of numel
  int64_t shard_size() const { return shard_size_; }        // S = size/D (size when unsharded)
  int64_t shard_begin(int rank) const;                      // r*S (0 when unsharded)

  // What rank `rank` holds of item `i`: nothing when its shard has no element of the tensor.
  std::optional<LocalPiece> local_piece(size_t i, int rank) const;
  // Whole dim-0 rows of item `i` on `rank` (pieces never split a row).
  int64_t local_rows(size_t i, int rank) const;

 private:
  void build_flat(bool pad_to_shards);
  void build_per_param();
  void check_rank(int rank) const;

  ShardLayoutKind kind_;
  int group_size_;
  bool sharded_ = true;
  std::vector<ShardItem> items_;
  int64_t chunk_ = 1;
  int64_t size_ = 0;
  int64_t unpadded_size_ = 0;
  int64_t shard_size_ = 0;
};

std::string format_shape(const TensorShape& shape);  // "(4, 4)", "(3,)"

}  // namespace dtbench
