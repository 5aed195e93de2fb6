#pragma once
// CheckpointIndex: the global index file rank 0 commits last.
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
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "ckpt/sharded_piece.h"

namespace dtbench {

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
// One piece line of the index file (format above), '\n' included.
std::string index_entry_line(const IndexEntry& e);
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

}  // namespace dtbench
