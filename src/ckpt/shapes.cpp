#include "ckpt/shapes.h"

#include <algorithm>

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

namespace {

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

void check_exact_cover(const std::string& key, const TensorShape& global_shape, const char* what,
                       const std::vector<CoverBox>& boxes) {
  CoverCheck(key, global_shape, what).run(boxes);
}

}  // namespace dtbench
