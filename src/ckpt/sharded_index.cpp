#include "ckpt/sharded_index.h"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>
#include <tuple>

#include "../../kernels/ckpt_values.h"

namespace dtbench {

int64_t shape_numel(const TensorShape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape)
    if (__builtin_mul_overflow(n, extent, &n))
      throw RuntimeError("shape " + shape_str(shape) + " has more elements than int64 can count");
  return n;
}

std::string shape_str(const TensorShape& shape) {
  std::string s = "(";
  for (size_t a = 0; a < shape.size(); ++a) s += (a ? ", " : "") + std::to_string(shape[a]);
  return s + ")";
}

namespace {

std::string replica_str(const std::vector<int>& replica_id) {
  std::string s = "(";
  for (size_t i = 0; i < replica_id.size(); ++i) s += (i ? ", " : "") + std::to_string(replica_id[i]);
  return s + ")";
}

// Row-major strides (in elements) of a shape.
TensorShape strides_of(const TensorShape& shape) {
  TensorShape strides(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) strides[a - 1] = strides[a] * shape[a];
  return strides;
}

bool box_inside(const TensorShape& offset, const TensorShape& shape, const TensorShape& outer_offset,
                const TensorShape& outer_shape) {
  if (offset.size() != outer_offset.size() || shape.size() != outer_shape.size() ||
      offset.size() != shape.size())
    return false;
  for (size_t a = 0; a < offset.size(); ++a)
    if (shape[a] < 0 || offset[a] < outer_offset[a] ||
        offset[a] + shape[a] > outer_offset[a] + outer_shape[a])
      return false;
  return true;
}

// --- exact cover ---------------------------------------------------------------------------------
struct CoverBox {
  TensorShape offset;
  TensorShape shape;
  std::string owner;  // "main replica on rank 3", "line 7": names the culprit in messages
};

// Checks that non-empty boxes tile [0, global_shape) exactly once without materialising elements:
// a sweep along axis 0 over the boxes' edges, recursing into the next axis with the boxes active
// in each slab. Cost grows with the number of boxes, never with the number of elements.
class CoverCheck {
 public:
  CoverCheck(const std::string& key, const TensorShape& global_shape, const char* what)
      : key_(key), global_(global_shape), what_(what), corner_(global_shape.size(), 0) {}

  void run(const std::vector<CoverBox>& boxes) {
    if (shape_numel(global_)) {
      std::vector<const CoverBox*> live;
      for (const CoverBox& b : boxes)
        if (shape_numel(b.shape)) live.push_back(&b);
      sweep(live, 0);
    }
  }

 private:
  void sweep(std::vector<const CoverBox*> boxes, size_t axis) {
    if (axis == global_.size()) {
      if (boxes.empty()) fail_hole(axis);
      if (boxes.size() > 1)
        fail("overlap at global index " + shape_str(corner_) + ": " + boxes[0]->owner + " and " +
             boxes[1]->owner + " both cover it");
      return;
    }
    auto start = [axis](const CoverBox* b) { return b->offset[axis]; };
    auto end = [axis](const CoverBox* b) { return b->offset[axis] + b->shape[axis]; };
    std::stable_sort(boxes.begin(), boxes.end(),
                     [&](const CoverBox* x, const CoverBox* y) { return start(x) < start(y); });
    TensorShape edges{0, global_[axis]};
    for (const CoverBox* b : boxes) {
      edges.push_back(start(b));
      edges.push_back(end(b));
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

    std::vector<const CoverBox*> active;
    size_t next = 0;
    for (size_t i = 0; i + 1 < edges.size(); ++i) {
      const int64_t lo = edges[i];
      while (next < boxes.size() && start(boxes[next]) <= lo) active.push_back(boxes[next++]);
      active.erase(std::remove_if(active.begin(), active.end(),
                                  [&](const CoverBox* b) { return end(b) <= lo; }),
                   active.end());
      corner_[axis] = lo;
      if (active.empty()) fail_hole(axis + 1);
      sweep(active, axis + 1);
    }
  }

  // The slab [corner_[0..axis)) has nothing; its lowest element is the first hole.
  void fail_hole(size_t axis) {
    std::fill(corner_.begin() + axis, corner_.end(), 0);
    fail("hole at global index " + shape_str(corner_) + ": no " + what_ + " covers it");
  }

  void fail(const std::string& problem) {
    throw CheckpointingError("Invalid access pattern for key '" + key_ + "': " + problem);
  }

  const std::string& key_;
  const TensorShape& global_;
  const char* what_;
  TensorShape corner_;
};

}  // namespace

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
    CoverCheck(key, pieces.first->global_shape, "main replica").run(pieces.main_replicas);
}

// --- fully-parallel save -------------------------------------------------------------------------
bool ShardId::operator<(const ShardId& o) const {
  return std::tie(key, global_offset) < std::tie(o.key, o.global_offset);
}
bool ShardId::operator==(const ShardId& o) const {
  return key == o.key && global_offset == o.global_offset;
}

ShardId shard_id(const ShardedPiece& piece) { return {piece.key, piece.global_offset}; }

std::map<ShardId, int> distribute_shards_to_ranks(
    const std::map<ShardId, std::vector<int>>& shard_to_ranks,
    const std::map<ShardId, int64_t>& shard_to_bytes, int num_ranks,
    const std::set<ShardId>& cross_group_loads) {
  struct Candidate {
    const ShardId* id;
    const std::vector<int>* ranks;
    int64_t bytes;
    bool cross;
  };
  std::vector<Candidate> order;
  for (const auto& [id, ranks] : shard_to_ranks) {
    auto size = shard_to_bytes.find(id);
    if (size == shard_to_bytes.end() || ranks.empty())
      throw RuntimeError("distribute_shards_to_ranks: shard of key '" + id.key + "' at " +
                         shape_str(id.global_offset) + " has no size or no holder");
    for (int r : ranks)
      if (r < 0 || r >= num_ranks)
        throw RuntimeError("distribute_shards_to_ranks: holder rank " + std::to_string(r) +
                           " of key '" + id.key + "' outside [0, " + std::to_string(num_ranks) + ")");
    order.push_back({&id, &ranks, size->second, cross_group_loads.count(id) > 0});
  }
  // Shards that depend on another group go last so load and save distributions stay alike; then the
  // least replicated first (fewest choices), then the biggest; the id makes it deterministic.
  std::sort(order.begin(), order.end(), [](const Candidate& x, const Candidate& y) {
    if (x.cross != y.cross) return y.cross;
    if (x.ranks->size() != y.ranks->size()) return x.ranks->size() < y.ranks->size();
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    return *x.id < *y.id;
  });
  std::vector<int64_t> load(static_cast<size_t>(num_ranks), 0);
  std::map<ShardId, int> assignment;
  for (const Candidate& c : order) {
    int best = -1;
    for (int r : *c.ranks)
      if (best < 0 || load[r] < load[best] || (load[r] == load[best] && r < best)) best = r;
    assignment[*c.id] = best;
    load[best] += c.bytes;
  }
  return assignment;
}

ShardDistribution determine_main_replica_distribution(
    const std::vector<std::vector<ShardedPiece>>& pieces_by_rank, bool for_load) {
  std::map<ShardId, std::vector<int>> holders;
  std::map<ShardId, int64_t> bytes;
  std::set<ShardId> has_main;
  for (size_t r = 0; r < pieces_by_rank.size(); ++r) {
    for (const ShardedPiece& piece : pieces_by_rank[r]) {
      // An empty piece (a rank given 0 rows by an uneven split) has the same (key, offset) id as
      // the next rank's real piece but holds nothing: as a holder it could be chosen to write that
      // shard and leave a hole, so it takes no part in the distribution (and is never written).
      if (piece.numel() == 0) continue;
      const ShardId id = shard_id(piece);
      holders[id].push_back(int(r));
      bytes.emplace(id, piece.bytes());
      if (piece.is_main_replica()) has_main.insert(id);
    }
  }
  ShardDistribution d;
  std::set<ShardId> cross_group;
  for (auto& [id, ranks] : holders) {
    const bool main_here = has_main.count(id) > 0;
    if (!main_here && !for_load) continue;
    if (!main_here) cross_group.insert(id);
    d.shards_in_group.insert(id);
    d.ranks_for_shard.emplace(id, ranks);
  }
  d.main_rank_for_shard = distribute_shards_to_ranks(d.ranks_for_shard, bytes,
                                                     int(pieces_by_rank.size()), cross_group);
  return d;
}

void apply_distribution(std::vector<ShardedPiece>& pieces, int rank_in_group,
                        const ShardDistribution& distribution) {
  for (ShardedPiece& piece : pieces) {
    auto it = distribution.main_rank_for_shard.find(shard_id(piece));
    const bool writes = it != distribution.main_rank_for_shard.end() && it->second == rank_in_group;
    piece.replica_id = {writes ? 0 : 1};
  }
}

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

// --- index ---------------------------------------------------------------------------------------
std::string shard_file_name(int rank, int k) {
  return "__" + std::to_string(rank) + "_" + std::to_string(k);
}

uint64_t xxh64_checksum(const void* data, size_t bytes) { return XXH64(data, bytes, 0); }

IndexEntry make_index_entry(const ShardedPiece& piece, std::string file, int64_t byte_offset,
                            uint64_t checksum) {
  return {piece.key,       piece.dtype,     piece.global_shape, piece.global_offset,
          piece.box_shape(), std::move(file), byte_offset,        piece.bytes(),
          checksum};
}

namespace {

constexpr const char* kIndexMagic = "dtbench-ckpt-index";

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s[0] == '+') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "__<rank>_<k>" -> rank; false on anything else.
bool parse_file_name(const std::string& name, int64_t* rank) {
  if (name.rfind("__", 0) != 0) return false;
  const size_t sep = name.find('_', 2);
  int64_t k = 0;
  return sep != std::string::npos && parse_int(name.substr(2, sep - 2), rank) && *rank >= 0 &&
         parse_int(name.substr(sep + 1), &k) && k >= 0;
}

bool valid_key(const std::string& key) {
  return !key.empty() && std::none_of(key.begin(), key.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
  });
}

// Entry-local checks shared by the constructor and the parser (which adds the line number).
void check_entry(const IndexEntry& e, int world_size) {
  if (!valid_key(e.key)) throw CheckpointingError("key '" + e.key + "' is empty or has whitespace");
  const std::string of_key = " of key '" + e.key + "'";
  if (e.global_offset.size() != e.global_shape.size() || e.local_shape.size() != e.global_shape.size())
    throw CheckpointingError("global shape, global offset and local shape" + of_key +
                             " have different numbers of axes");
  for (size_t a = 0; a < e.global_shape.size(); ++a)
    if (e.global_shape[a] < 0 || e.local_shape[a] < 0 || e.global_offset[a] < 0 ||
        e.local_shape[a] > e.global_shape[a] - e.global_offset[a])
      throw CheckpointingError("piece at " + shape_str(e.global_offset) + " of shape " +
                               shape_str(e.local_shape) + of_key + " leaves global shape " +
                               shape_str(e.global_shape));
  // Element indices are int64 (the closed-form values and the resharding boxes use them).
  int64_t global_elements = 1;
  for (int64_t extent : e.global_shape)
    if (__builtin_mul_overflow(global_elements, extent, &global_elements))
      throw CheckpointingError("global shape " + shape_str(e.global_shape) + of_key +
                               " has more elements than int64 can count");
  int64_t rank = 0;
  if (!parse_file_name(e.file, &rank) || rank >= world_size)
    throw CheckpointingError("file name '" + e.file + "'" + of_key + " is not __<rank>_<k> with rank < " +
                             std::to_string(world_size));
  int64_t expected = 0;
  if (__builtin_mul_overflow(shape_numel(e.local_shape), int64_t(dtype_size(e.dtype)), &expected))
    throw CheckpointingError("piece of shape " + shape_str(e.local_shape) + of_key + " is too large");
  if (e.byte_offset < 0 || e.byte_length != expected)
    throw CheckpointingError("byte range offset " + std::to_string(e.byte_offset) + " length " +
                             std::to_string(e.byte_length) + of_key + ": expected offset >= 0 and " +
                             std::to_string(expected) + " bytes (" + dtype_name(e.dtype) + " " +
                             shape_str(e.local_shape) + ")");
}

std::string dims_field(const TensorShape& shape) {
  std::string s = "[";
  for (size_t a = 0; a < shape.size(); ++a) s += (a ? "," : "") + std::to_string(shape[a]);
  return s + "]";
}

bool parse_dims(const std::string& s, TensorShape* out) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  out->clear();
  const std::string inner = s.substr(1, s.size() - 2);
  if (inner.empty()) return true;
  size_t pos = 0;
  while (true) {
    const size_t comma = inner.find(',', pos);
    int64_t v = 0;
    if (!parse_int(inner.substr(pos, comma - pos), &v) || v < 0) return false;
    out->push_back(v);
    if (comma == std::string::npos) return true;
    pos = comma + 1;
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(sep, pos);
    parts.push_back(s.substr(pos, at - pos));
    if (at == std::string::npos) return parts;
    pos = at + 1;
  }
}

}  // namespace

CheckpointIndex::CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries)
    : CheckpointIndex(world_size, step, std::move(entries), {}) {}

CheckpointIndex::CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries,
                                 std::vector<std::string> labels)
    : world_size_(world_size), step_(step) {
  if (world_size < 1) throw CheckpointingError("checkpoint index: world size must be >= 1");
  if (step < 0) throw CheckpointingError("checkpoint index: step must be >= 0");
  if (labels.empty())
    for (size_t i = 0; i < entries.size(); ++i) labels.push_back("entry " + std::to_string(i));
  for (size_t i = 0; i < entries.size(); ++i) {
    try {
      check_entry(entries[i], world_size);
    } catch (const std::runtime_error& e) {
      throw CheckpointingError(labels[i] + ": " + e.what());
    }
  }
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return std::tie(entries[x].key, entries[x].global_offset) <
           std::tie(entries[y].key, entries[y].global_offset);
  });
  for (size_t g = 0; g < order.size();) {  // one group of equal keys at a time
    const IndexEntry& first = entries[order[g]];
    std::vector<CoverBox> boxes;
    size_t i = g;
    for (; i < order.size() && entries[order[i]].key == first.key; ++i) {
      const IndexEntry& e = entries[order[i]];
      const std::string& label = labels[order[i]];
      if (e.dtype != first.dtype || e.global_shape != first.global_shape)
        throw CheckpointingError(label + ": key '" + e.key + "' is " + dtype_name(e.dtype) + " " +
                                 shape_str(e.global_shape) + " but " + labels[order[g]] + " says " +
                                 dtype_name(first.dtype) + " " + shape_str(first.global_shape));
      const IndexEntry* prev = i > g ? &entries[order[i - 1]] : nullptr;
      if (prev && e.global_offset == prev->global_offset && shape_numel(e.local_shape) &&
          shape_numel(prev->local_shape))
        throw CheckpointingError(label + ": duplicate piece of key '" + e.key + "' at global offset " +
                                 shape_str(e.global_offset) + " (also " + labels[order[i - 1]] + ")");
      boxes.push_back({e.global_offset, e.local_shape, label});
    }
    CoverCheck(first.key, first.global_shape, "piece").run(boxes);
    g = i;
  }
  entries_.reserve(entries.size());
  for (size_t i : order) entries_.push_back(std::move(entries[i]));
}

std::string CheckpointIndex::serialize() const {
  std::ostringstream out;
  out << kIndexMagic << ' ' << kFormatVersion << '\n'
      << "world_size " << world_size_ << '\n'
      << "step " << step_ << '\n'
      << "pieces " << entries_.size() << '\n';
  char checksum[17];
  for (const IndexEntry& e : entries_) {
    std::snprintf(checksum, sizeof checksum, "%016llx", static_cast<unsigned long long>(e.checksum));
    out << e.key << ' ' << dtype_name(e.dtype) << ' ' << dims_field(e.global_shape) << ' '
        << dims_field(e.global_offset) << ' ' << dims_field(e.local_shape) << ' ' << e.file << ' '
        << e.byte_offset << ' ' << e.byte_length << ' ' << checksum << '\n';
  }
  out << "end\n";
  return out.str();
}

CheckpointIndex CheckpointIndex::parse(const std::string& text, const std::string& source) {
  std::vector<std::string> lines = split(text, '\n');
  if (lines.size() > 1 && lines.back().empty()) lines.pop_back();  // the final newline
  auto fail = [&](size_t line, const std::string& problem) {
    throw InputError(source + ":" + std::to_string(line + 1) + ": " + problem);
  };
  auto header = [&](size_t line, const char* name, int64_t min) {
    if (line >= lines.size()) fail(line, std::string("truncated: expected '") + name + " <n>'");
    const std::vector<std::string> f = split(lines[line], ' ');
    int64_t v = 0;
    if (f.size() != 2 || f[0] != name || !parse_int(f[1], &v) || v < min)
      fail(line, std::string("expected '") + name + " <integer >= " + std::to_string(min) +
                     ">', found '" + lines[line] + "'");
    return v;
  };

  const std::vector<std::string> magic = split(lines[0], ' ');
  if (magic.size() != 2 || magic[0] != kIndexMagic)
    fail(0, std::string("not a dtbench checkpoint index (expected '") + kIndexMagic + " " +
                std::to_string(kFormatVersion) + "')");
  int64_t version = 0;
  if (!parse_int(magic[1], &version) || version != kFormatVersion)
    fail(0, "unsupported index format version '" + magic[1] + "' (this build reads " +
                std::to_string(kFormatVersion) + ")");
  const int64_t world_size = header(1, "world_size", 1);
  if (world_size > INT32_MAX) fail(1, "world_size too large");
  const int64_t step = header(2, "step", 0);
  const int64_t count = header(3, "pieces", 0);

  std::vector<IndexEntry> entries;
  std::vector<std::string> labels;
  const size_t first = 4;
  for (int64_t n = 0; n < count; ++n) {
    const size_t line = first + size_t(n);
    if (line >= lines.size() || lines[line] == "end")
      fail(line, "truncated: expected " + std::to_string(count) + " piece lines, found " +
                     std::to_string(n));
    const std::vector<std::string> f = split(lines[line], ' ');
    if (f.size() != 9)
      fail(line, "expected 9 space-separated fields (key dtype global_shape global_offset "
                 "local_shape file byte_offset byte_length xxh64), found " +
                     std::to_string(f.size()));
    IndexEntry e;
    e.key = f[0];
    if (!parse_dtype(f[1], &e.dtype)) fail(line, "unknown dtype '" + f[1] + "'");
    if (!parse_dims(f[2], &e.global_shape)) fail(line, "bad global_shape '" + f[2] + "'");
    if (!parse_dims(f[3], &e.global_offset)) fail(line, "bad global_offset '" + f[3] + "'");
    if (!parse_dims(f[4], &e.local_shape)) fail(line, "bad local_shape '" + f[4] + "'");
    e.file = f[5];
    if (!parse_int(f[6], &e.byte_offset)) fail(line, "bad byte_offset '" + f[6] + "'");
    if (!parse_int(f[7], &e.byte_length)) fail(line, "bad byte_length '" + f[7] + "'");
    const bool hex = f[8].size() == 16 && std::all_of(f[8].begin(), f[8].end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    if (!hex) fail(line, "bad xxh64 '" + f[8] + "' (16 lowercase hex digits)");
    std::from_chars(f[8].data(), f[8].data() + 16, e.checksum, 16);
    try {
      check_entry(e, int(world_size));
    } catch (const std::runtime_error& err) {
      fail(line, err.what());
    }
    entries.push_back(std::move(e));
    labels.push_back("line " + std::to_string(line + 1));
  }
  const size_t end_line = first + size_t(count);
  if (end_line >= lines.size()) fail(end_line, "truncated: missing 'end' line");
  if (lines[end_line] != "end")
    fail(end_line, "expected 'end' after " + std::to_string(count) + " pieces, found '" +
                       lines[end_line] + "'");
  if (end_line + 1 < lines.size()) fail(end_line + 1, "unexpected content after 'end'");
  try {
    return CheckpointIndex(int(world_size), step, std::move(entries), std::move(labels));
  } catch (const CheckpointingError& err) {
    throw InputError(source + ": " + err.what());
  }
}

CheckpointIndex CheckpointIndex::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open checkpoint index '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError("cannot read checkpoint index '" + path + "'");
  return parse(text.str(), path);
}

std::vector<const IndexEntry*> CheckpointIndex::lookup(const std::string& key) const {
  auto lo = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const IndexEntry& e, const std::string& k) { return e.key < k; });
  auto hi = std::upper_bound(lo, entries_.end(), key,
                             [](const std::string& k, const IndexEntry& e) { return k < e.key; });
  std::vector<const IndexEntry*> found;
  for (auto it = lo; it != hi; ++it) found.push_back(&*it);
  return found;
}

std::set<std::string> CheckpointIndex::keys() const {
  std::set<std::string> keys;
  for (const IndexEntry& e : entries_) keys.insert(keys.end(), e.key);
  return keys;
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

// --- strict handling -----------------------------------------------------------------------------
namespace {
constexpr std::pair<StrictHandling, const char*> kStrictNames[] = {
    {StrictHandling::assume_ok_unexpected, "assume_ok_unexpected"},
    {StrictHandling::log_unexpected, "log_unexpected"},
    {StrictHandling::log_all, "log_all"},
    {StrictHandling::raise_unexpected, "raise_unexpected"},
    {StrictHandling::raise_all, "raise_all"},
    {StrictHandling::return_unexpected, "return_unexpected"},
    {StrictHandling::return_all, "return_all"},
    {StrictHandling::ignore_all, "ignore_all"},
};

std::string join_keys(const std::set<std::string>& keys) {
  std::string s;
  for (const std::string& k : keys) s += (s.empty() ? "" : ", ") + k;
  return s;
}
}  // namespace

const char* strict_handling_name(StrictHandling mode) {
  for (const auto& [m, name] : kStrictNames)
    if (m == mode) return name;
  return "?";
}

bool parse_strict_handling(const std::string& s, StrictHandling* out) {
  for (const auto& [m, name] : kStrictNames)
    if (s == name) {
      *out = m;
      return true;
    }
  return false;
}

StrictOutcome apply_strict_handling(StrictHandling mode, const std::set<std::string>& requested_here,
                                    const std::set<std::string>& requested_anywhere,
                                    const std::set<std::string>& saved) {
  StrictOutcome out;
  if (mode == StrictHandling::assume_ok_unexpected) {
    out.keys_to_load = requested_here;
    return out;
  }
  for (const std::string& k : requested_here) (saved.count(k) ? out.keys_to_load : out.unexpected).insert(k);
  // Missing keys need every rank's request (a metadata exchange), so only *_all modes look.
  const bool check_missing = mode == StrictHandling::log_all || mode == StrictHandling::raise_all ||
                             mode == StrictHandling::return_all || mode == StrictHandling::ignore_all;
  if (check_missing)
    for (const std::string& k : saved)
      if (!requested_anywhere.count(k) && !requested_here.count(k)) out.missing.insert(k);

  std::string message;
  if (!out.missing.empty())
    message += "Missing keys (in the checkpoint, requested by no rank): " + join_keys(out.missing) + ". ";
  if (!out.unexpected.empty())
    message += "Unexpected keys (requested on this rank, not in the checkpoint): " +
               join_keys(out.unexpected) + ".";
  switch (mode) {
    case StrictHandling::ignore_all:
      out.missing.clear();
      out.unexpected.clear();
      break;
    case StrictHandling::raise_unexpected:
    case StrictHandling::raise_all:
      if (!message.empty()) throw CheckpointingError(message);
      break;
    case StrictHandling::log_unexpected:
    case StrictHandling::log_all:
      out.warning = message;
      break;
    case StrictHandling::return_unexpected:
    case StrictHandling::return_all:
      out.returns_mismatch = true;
      break;
    case StrictHandling::assume_ok_unexpected:
      break;
  }
  return out;
}

// --- element values ------------------------------------------------------------------------------
uint64_t key_hash(const std::string& key) { return XXH64(key.data(), key.size(), 0); }

float ckpt_value(uint64_t key_hash, int64_t global_linear_index) {
  return ckpt_f32_from_code(ckpt_code(key_hash, uint64_t(global_linear_index), kCkptF32CodeBits));
}

float ckpt_value(DType dtype, uint64_t key_hash, int64_t global_linear_index) {
  if (dtype == DType::f32) return ckpt_value(key_hash, global_linear_index);
  const uint32_t c = ckpt_code(key_hash, uint64_t(global_linear_index), kCkptHalfCodeBits);
  return dtype == DType::bf16 ? bf16_to_f32(ckpt_bf16_from_code(c)) : f16_to_f32(ckpt_f16_from_code(c));
}

namespace {
// One row of a box: elements first_index .. first_index+n-1, stored directly in the dtype's bits.
// The code advances by `odd` per element, an add per element that vectorizes (omp simd: -O2's cost
// model alone does not). It is worth it: the optimizer step of dtbench-ckpt's training loop is this
// fill, and on the host backend it competes with the checkpoint writers for the CPU.
template <class T, class FromCode>
void fill_ckpt_row(uint64_t key_hash, int64_t first_index, int64_t n, int bits, T* out, FromCode from_code) {
  const uint32_t odd = ckpt_code_odd(key_hash), mask = (uint32_t(1) << bits) - 1u;
  uint32_t code = uint32_t(first_index) * odd + uint32_t(key_hash);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    out[j] = from_code(code & mask);
    code += odd;
  }
}
}  // namespace

void fill_ckpt_values(DType dtype, uint64_t key_hash, const TensorShape& global_shape,
                      const TensorShape& offset, const TensorShape& shape, void* out) {
  if (!box_inside(offset, shape, TensorShape(global_shape.size(), 0), global_shape))
    throw RuntimeError("fill_ckpt_values: box at " + shape_str(offset) + " of shape " +
                       shape_str(shape) + " leaves global shape " + shape_str(global_shape));
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const size_t ndim = shape.size();
  const TensorShape stride = strides_of(global_shape);
  const int64_t row = ndim ? shape[ndim - 1] : 1;
  TensorShape idx(ndim, 0);
  for (int64_t done = 0; done < total; done += row) {
    int64_t base = 0;
    for (size_t a = 0; a < ndim; ++a) base += (offset[a] + idx[a]) * stride[a];
    switch (dtype) {
      case DType::f32:
        fill_ckpt_row(key_hash, base, row, kCkptF32CodeBits, static_cast<float*>(out) + done, ckpt_f32_from_code);
        break;
      case DType::bf16:
        fill_ckpt_row(key_hash, base, row, kCkptHalfCodeBits, static_cast<uint16_t*>(out) + done, ckpt_bf16_from_code);
        break;
      case DType::f16:
        fill_ckpt_row(key_hash, base, row, kCkptHalfCodeBits, static_cast<uint16_t*>(out) + done, ckpt_f16_from_code);
        break;
    }
    for (size_t a = ndim ? ndim - 1 : 0; a-- > 0;) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

// --- writer files --------------------------------------------------------------------------------
std::vector<WriterFile> plan_writer_files(int rank, const std::vector<WriteItem>& items, int writers) {
  if (writers < 1) throw InputError("checkpoint writers must be >= 1, got " + std::to_string(writers));
  std::vector<std::vector<size_t>> bins(static_cast<size_t>(writers));
  if (writers == 1) {
    for (size_t i = 0; i < items.size(); ++i) bins[0].push_back(i);
  } else {
    std::vector<size_t> tensors;
    size_t objects = 0;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].is_object) bins[objects++ % bins.size()].push_back(i);
      else tensors.push_back(i);
    std::stable_sort(tensors.begin(), tensors.end(),
                     [&](size_t x, size_t y) { return items[x].bytes > items[y].bytes; });
    std::vector<int64_t> filled(bins.size(), 0);
    for (size_t i : tensors) {
      const size_t b = size_t(std::min_element(filled.begin(), filled.end()) - filled.begin());
      bins[b].push_back(i);
      filled[b] += items[i].bytes;
    }
  }
  std::vector<WriterFile> files;
  for (std::vector<size_t>& bin : bins) {
    if (bin.empty()) continue;
    WriterFile file{shard_file_name(rank, int(files.size())), std::move(bin), 0};
    for (size_t i : file.items) file.bytes += items[i].bytes;
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace dtbench
