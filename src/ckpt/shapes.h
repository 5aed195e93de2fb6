#pragma once
// Shapes and boxes of sharded tensors, and the exact-cover check that save validation and the index
// parser share. Pure host code.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace dtbench {

using TensorShape = std::vector<int64_t>;

// A checkpoint's sharding or keys are wrong (Megatron's CheckpointingException).
struct CheckpointingError : RuntimeError {
  using RuntimeError::RuntimeError;
};

int64_t shape_numel(const TensorShape& shape);  // product of the extents; 1 for a 0-d shape
std::string shape_str(const TensorShape& shape);  // "(4, 5, 80)"

// Row-major strides (in elements) of a shape.
TensorShape strides_of(const TensorShape& shape);
// Whether box [offset, offset+shape) lies inside [outer_offset, outer_offset+outer_shape) (same rank).
bool box_inside(const TensorShape& offset, const TensorShape& shape, const TensorShape& outer_offset,
                const TensorShape& outer_shape);
std::string replica_str(const std::vector<int>& replica_id);  // "(0, 1)"

struct CoverBox {
  TensorShape offset;
  TensorShape shape;
  std::string owner;  // "main replica on rank 3", "line 7": names the culprit in messages
};
// Throws CheckpointingError "Invalid access pattern for key '<key>': overlap at global index (...)
// ..." or "... hole at global index (...): no <what> covers it" unless the non-empty boxes tile
// [0, global_shape) exactly once. Cost grows with the number of boxes, never with the elements.
void check_exact_cover(const std::string& key, const TensorShape& global_shape, const char* what,
                       const std::vector<CoverBox>& boxes);

}  // namespace dtbench
