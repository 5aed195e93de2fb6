#pragma once
// ShardedIndex: the checkpoint side of the layout (Megatron-Core's megatron/core/dist_checkpointing).
// Pure host code, no MPI: the ckpt suite gathers metadata with MPI and hands it to these functions.
//
//  * ShardedPiece      — Megatron ShardedTensor metadata (mapping.py): which box of a global tensor a
//                        rank holds and whether it is the main replica (the one that gets written).
//  * validate_sharding — save-time check over all ranks (serialization.py validate_sharding_integrity):
//                        per key one dtype and global shape, every element covered by exactly one
//                        main replica ("Invalid access pattern" otherwise), regular grids and uneven
//                        splits alike.
//  * distribute_shards_to_ranks — fully-parallel save (strategies/fully_parallel.py, exchange_utils.py):
//                        who writes each replicated shard.
//  * intersect / copy_ranges / plan_read — resharding load: which bytes of which saved
//                        piece make up a requested piece, read as few contiguous ranges as possible.
//  * CheckpointIndex   — the global index file rank 0 commits last (format below).
//  * apply_strict_handling — validation.py StrictHandling: missing/unexpected keys.
//  * ckpt_value        — closed-form element values, exact in each dtype.
//  * plan_writer_files — the torch_dist writer's binning of a rank's items into at most `writers` files
//                        __<rank>_<k>.
//
// Index file format (text, one record per line, fields separated by single spaces, '\n' ends lines):
//   dtbench-ckpt-index 1                      magic and format version
//   world_size <W>                            ranks at save time (>= 1)
//   step <S>                                  training step of the checkpoint (>= 0)
//   pieces <N>                                number of piece lines that follow
//   <key> <dtype> <global_shape> <global_offset> <local_shape> <file> <byte_offset> <byte_length> <xxh64>
//   ... N piece lines ...
//   end                                       absent when the writer died mid-file
// key: no whitespace, not empty. dtype: fp32|bf16|fp16. Shapes and offsets: "[4,5,80]", "[]" for a
// 0-d tensor; local_shape is the piece's extent in global rank (prepended axes have size 1).
// file: __<rank>_<k> with rank < world_size. The piece occupies bytes [byte_offset,
// byte_offset+byte_length) of the file, row-major, byte_length = numel(local_shape) * dtype size.
// xxh64: 16 lowercase hex digits, XXH64 (seed 0) of those bytes.
// A parsed index is also checked as a whole: no duplicate (key, global_offset), one dtype and global
// shape per key, and the pieces of each key tile its global shape exactly once. Empty pieces (a zero
// extent, e.g. the split [5]*6+[0,0] of Megatron's test_uneven_1d_sharding) hold no bytes and may
// share an offset.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace dtbench {

using TensorShape = std::vector<int64_t>;

// A checkpoint's sharding or keys are wrong (Megatron's CheckpointingException).
struct CheckpointingError : RuntimeError {
  using RuntimeError::RuntimeError;
};

int64_t shape_numel(const TensorShape& shape);  // product of the extents; 1 for a 0-d shape
std::string shape_str(const TensorShape& shape);  // "(4, 5, 80)"

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

// --- fully-parallel save (exchange_utils.py distribute_shards_to_ranks) --------------------------
struct ShardId {
  std::string key;
  TensorShape global_offset;
  bool operator<(const ShardId& o) const;
  bool operator==(const ShardId& o) const;
};
ShardId shard_id(const ShardedPiece& piece);

// Greedy assignment, deterministic on every rank: shards sorted by (cross-group flag, number of
// holders, -bytes, shard id), each given to its least-loaded holder (ties -> lower rank).
std::map<ShardId, int> distribute_shards_to_ranks(
    const std::map<ShardId, std::vector<int>>& shard_to_ranks,
    const std::map<ShardId, int64_t>& shard_to_bytes, int num_ranks,
    const std::set<ShardId>& cross_group_loads = {});

struct ShardDistribution {
  std::map<ShardId, int> main_rank_for_shard;
  std::set<ShardId> shards_in_group;                     // shards this group takes care of
  std::map<ShardId, std::vector<int>> ranks_for_shard;  // holders, ascending
};
// pieces_by_rank indexed by rank within the parallelization group. Save: shards with a main replica
// in the group. for_load: every shard held in the group; those without a main replica here are
// cross-group loads and go last (Megatron's ignore_groups=True).
ShardDistribution determine_main_replica_distribution(
    const std::vector<std::vector<ShardedPiece>>& pieces_by_rank, bool for_load = false);
// Marks this rank's pieces: replica_id {0} where it was chosen to write, {1} otherwise.
void apply_distribution(std::vector<ShardedPiece>& pieces, int rank_in_group,
                        const ShardDistribution& distribution);

// --- hyper-rectangles and byte ranges (resharding load) ------------------------------------------
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

// --- global index --------------------------------------------------------------------------------
struct IndexEntry {
  std::string key;
  DType dtype = DType::f32;
  TensorShape global_shape;
  TensorShape global_offset;
  TensorShape local_shape;  // extent in global rank (prepended axes have size 1)
  std::string file;         // __<rank>_<k>
  int64_t byte_offset = 0;
  int64_t byte_length = 0;
  uint64_t checksum = 0;  // xxh64 of the piece's bytes
};

std::string shard_file_name(int rank, int k);  // "__<rank>_<k>"
uint64_t xxh64_checksum(const void* data, size_t bytes);
IndexEntry make_index_entry(const ShardedPiece& piece, std::string file, int64_t byte_offset,
                            uint64_t checksum);

class CheckpointIndex {
 public:
  static constexpr int kFormatVersion = 1;

  // Sorts entries by (key, global_offset) and checks them (see the format notes above); throws
  // CheckpointingError naming the entry and key.
  CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries);

  std::string serialize() const;
  // Throws InputError "<source>:<line>: <problem>" for malformed text, "<source>: <problem>" for
  // an index that parses but is inconsistent (naming the lines involved).
  static CheckpointIndex parse(const std::string& text, const std::string& source);
  static CheckpointIndex read(const std::string& path);  // InputError when unreadable

  int world_size() const { return world_size_; }
  int64_t step() const { return step_; }
  const std::vector<IndexEntry>& entries() const { return entries_; }
  std::vector<const IndexEntry*> lookup(const std::string& key) const;  // empty when absent
  std::set<std::string> keys() const;

 private:
  CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries,
                  std::vector<std::string> labels);
  int world_size_;
  int64_t step_;
  std::vector<IndexEntry> entries_;  // sorted by (key, global_offset)
};

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

// --- strict key handling (dist_checkpointing/validation.py StrictHandling) -----------------------
enum class StrictHandling {
  assume_ok_unexpected,  // no check; the loader fails on an unexpected key
  log_unexpected,
  log_all,
  raise_unexpected,
  raise_all,
  return_unexpected,
  return_all,
  ignore_all,
};
const char* strict_handling_name(StrictHandling mode);
bool parse_strict_handling(const std::string& s, StrictHandling* out);

struct StrictOutcome {
  std::set<std::string> keys_to_load;  // requested here minus unexpected (all of them for assume_ok)
  std::set<std::string> missing;       // saved, requested by no rank (*_all modes only)
  std::set<std::string> unexpected;    // requested here, not saved
  std::string warning;                 // log_* modes with a mismatch: the line to log
  bool returns_mismatch = false;       // return_* modes: load hands missing/unexpected back
};
// requested_here: this rank's keys; requested_anywhere: every rank's (for missing keys).
// raise_* modes throw CheckpointingError listing "Unexpected keys" / "Missing keys".
StrictOutcome apply_strict_handling(StrictHandling mode, const std::set<std::string>& requested_here,
                                    const std::set<std::string>& requested_anywhere,
                                    const std::set<std::string>& saved);

// --- checkpoint element values -------------------------------------------------------------------
uint64_t key_hash(const std::string& key);  // XXH64, seed 0
// fp32: an integer in [-2^24, 2^24), so exact. Within a key, injective over any 2^25 consecutive
// indices; two keys agree at an index with probability 2^-25, so a misplaced read shows.
float ckpt_value(uint64_t key_hash, int64_t global_linear_index);
// Exactly representable in `dtype`. No arithmetic happens on checkpoint data, so 16-bit types use
// any finite normal bit pattern (15-bit code: sign, 7-bit (bf16) / 4-bit (fp16) exponent window,
// full mantissa) instead of the few exact small integers: injective over 2^15 consecutive indices.
float ckpt_value(DType dtype, uint64_t key_hash, int64_t global_linear_index);
// Writes the values of box [offset, offset+shape) of a tensor of global_shape into `out`, row-major.
void fill_ckpt_values(DType dtype, uint64_t key_hash, const TensorShape& global_shape,
                      const TensorShape& offset, const TensorShape& shape, void* out);

// --- writer files (per-rank file binning of dist_checkpointing.save) -----------------------------
struct WriteItem {
  int64_t bytes = 0;
  bool is_object = false;  // non-tensor state: round-robin, not counted in the balance
};
struct WriterFile {
  std::string name;           // __<rank>_<k>, k counts non-empty bins only
  std::vector<size_t> items;  // indices into the input, in write order
  int64_t bytes = 0;          // all items
};
// At most `writers` files: objects round-robin, tensors by bytes descending into the bin with the
// fewest tensor bytes (ties -> lower bin); writers == 1 keeps input order. Empty bins make no file.
std::vector<WriterFile> plan_writer_files(int rank, const std::vector<WriteItem>& items,
                                          int writers);

}  // namespace dtbench
