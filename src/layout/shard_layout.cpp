#include "layout/shard_layout.h"

#include <algorithm>
#include <list>
#include <numeric>
#include <stdexcept>

#include "core/error.h"

namespace dtbench {
namespace {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw InputError(std::string("ShardLayout: ") + what + " overflows int64");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw InputError(std::string("ShardLayout: ") + what + " overflows int64");
  return r;
}

int64_t round_up(int64_t value, int64_t multiple) {
  return checked_mul(checked_add(value, multiple - 1, "padded size") / multiple, multiple, "padded size");
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

const char* shard_layout_kind_name(ShardLayoutKind kind) {
  return kind == ShardLayoutKind::flat ? "flat" : "per_param";
}

std::string format_shape(const TensorShape& shape) {
  std::string s = "(";
  for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::optional<LocalPiece> intersect_item_shard(int64_t item_begin, int64_t item_numel,
                                               int64_t shard_begin, int64_t shard_end) {
  int64_t begin = std::max(item_begin, shard_begin);
  int64_t end = std::min(item_begin + item_numel, shard_end);
  if (begin >= end) return std::nullopt;
  return LocalPiece{begin - item_begin, end - begin, begin - shard_begin};
}

ShardLayout::ShardLayout(std::vector<TensorShape> shapes, int shard_group_size, ShardLayoutKind kind,
                         bool pad_to_shards)
    : kind_(kind), group_size_(shard_group_size) {
  if (shard_group_size < 1)
    throw InputError("ShardLayout: shard group size must be >= 1, got " + std::to_string(shard_group_size));
  if (kind == ShardLayoutKind::per_param && !pad_to_shards)
    throw InputError("ShardLayout: pad_to_shards=false (no_shard) applies to the flat layout only");
  items_.reserve(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    ShardItem item;
    item.shape = std::move(shapes[i]);
    if (item.shape.empty())
      throw InputError("ShardLayout: tensor " + std::to_string(i) + " is 0-D; every tensor needs a dim 0 to shard");
    for (int64_t dim : item.shape)
      if (dim < 1)
        throw InputError("ShardLayout: tensor " + std::to_string(i) + " has shape " + format_shape(item.shape) +
                         "; every dimension must be >= 1");
    item.row_size = 1;
    for (size_t d = 1; d < item.shape.size(); ++d) item.row_size = checked_mul(item.row_size, item.shape[d], "row size");
    item.numel = checked_mul(item.row_size, item.shape[0], "tensor numel");
    unpadded_size_ = checked_add(unpadded_size_, item.numel, "total numel");
    items_.push_back(std::move(item));
  }
  if (kind == ShardLayoutKind::flat) build_flat(pad_to_shards);
  else build_per_param();
}

// Megatron-FSDP v2 GlobalLayout.build (= v1 build_data_parallel_buffer_index), step for step.
void ShardLayout::build_flat(bool pad_to_shards) {
  for (const ShardItem& item : items_)
    chunk_ = checked_mul(chunk_ / std::gcd(chunk_, item.row_size), item.row_size, "lcm of row sizes");

  std::list<size_t> regular;      // numel >= chunk, in bucket order: they anchor the layout
  std::vector<size_t> fragments;  // smaller ones, held back to fill the padding gaps regulars leave
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].numel >= chunk_) regular.push_back(i);
    else fragments.push_back(i);
  }
  std::stable_sort(fragments.begin(), fragments.end(),
                   [&](size_t a, size_t b) { return items_[a].numel > items_[b].numel; });

  int64_t next = 0;
  while (!regular.empty()) {
    ShardItem& item = items_[regular.front()];
    regular.pop_front();
    item.offset = next;
    int64_t remainder = item.numel % chunk_;
    if (remainder == 0) {
      next = checked_add(next, item.numel, "layout size");
      continue;
    }
    int64_t gap = next + item.numel;
    next = checked_add(next, round_up(item.numel, chunk_), "layout size");
    int64_t gap_end = next;

    // Pair with the first later regular tensor whose remainder fits in the same chunk: it starts
    // inside this tensor's last chunk and continues with whole chunks.
    for (auto it = regular.begin(); it != regular.end(); ++it) {
      ShardItem& partner = items_[*it];
      int64_t partner_remainder = partner.numel % chunk_;
      if (partner_remainder == 0 || remainder + partner_remainder > chunk_) continue;
      partner.offset = next - partner_remainder;
      gap_end = partner.offset;
      next = checked_add(next, partner.numel / chunk_ * chunk_, "layout size");
      regular.erase(it);
      break;
    }

    // Fill what is left of the gap with fragments, each aligned to its own row size so a chunk
    // boundary never cuts one of its rows.
    for (auto it = fragments.begin(); it != fragments.end();) {
      ShardItem& fragment = items_[*it];
      int64_t aligned = round_up(gap, fragment.row_size);
      if (aligned + fragment.numel > gap_end) {
        ++it;
        continue;
      }
      fragment.offset = aligned;
      gap = aligned + fragment.numel;
      it = fragments.erase(it);
    }
  }
  for (size_t i : fragments) {  // fragments that found no gap go at the tail, row-aligned
    next = round_up(next, items_[i].row_size);
    items_[i].offset = next;
    next = checked_add(next, items_[i].numel, "layout size");
  }

  for (ShardItem& item : items_) item.padded_numel = item.numel;
  sharded_ = pad_to_shards;
  size_ = pad_to_shards ? round_up(next, checked_mul(chunk_, group_size_, "chunk * D")) : next;
  shard_size_ = sharded_ ? size_ / group_size_ : size_;
}

// PyTorch FSDP2: dim-0 split per tensor, slices padded to ceil(rows/D) rows.
void ShardLayout::build_per_param() {
  int64_t offset = 0;
  for (ShardItem& item : items_) {
    int64_t slice = checked_mul(ceil_div(item.shape[0], group_size_), item.row_size, "padded slice");
    item.offset = offset;
    item.padded_numel = checked_mul(slice, group_size_, "padded numel");
    offset = checked_add(offset, slice, "shard size");
  }
  shard_size_ = offset;
  size_ = checked_mul(offset, group_size_, "layout size");
}

const ShardItem& ShardLayout::item(size_t i) const {
  if (i >= items_.size())
    throw std::out_of_range("ShardLayout: item " + std::to_string(i) + " of " + std::to_string(items_.size()));
  return items_[i];
}

void ShardLayout::check_rank(int rank) const {
  if (rank < 0 || rank >= group_size_)
    throw std::out_of_range("ShardLayout: rank " + std::to_string(rank) + " outside a group of " +
                            std::to_string(group_size_));
}

int64_t ShardLayout::shard_begin(int rank) const {
  check_rank(rank);
  return sharded_ ? rank * shard_size_ : 0;
}

std::optional<LocalPiece> ShardLayout::local_piece(size_t i, int rank) const {
  const ShardItem& it = item(i);
  int64_t begin = shard_begin(rank);
  if (kind_ == ShardLayoutKind::flat) return intersect_item_shard(it.offset, it.numel, begin, begin + shard_size_);
  int64_t rows = it.shape[0], rows_per_rank = ceil_div(rows, group_size_);
  int64_t first_row = std::min(rows, rows_per_rank * rank);
  int64_t end_row = std::min(rows, rows_per_rank * (rank + 1));
  if (first_row >= end_row) return std::nullopt;  // trailing ranks of a short dim 0 hold padding only
  return LocalPiece{first_row * it.row_size, (end_row - first_row) * it.row_size, it.offset};
}

int64_t ShardLayout::local_rows(size_t i, int rank) const {
  std::optional<LocalPiece> piece = local_piece(i, rank);
  return piece ? piece->length / items_[i].row_size : 0;
}

}  // namespace dtbench
