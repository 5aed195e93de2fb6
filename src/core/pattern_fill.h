#pragma once
// Host loops over the identity pattern of kernels/pattern.h for whole ranges: the inputs a rank
// sends (fills) and the outputs a check expects. Vectorised (an AVX2 clone where the CPU has it) and
// identical, element for element, to the *_at forms the CUDA kernels use.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace dtbench {

// out[k] (stored as dt) = rank's share of the sum at index first_index + k, in a group of group_size.
void fill_sum_shares(DType dt, void* out, size_t n, uint64_t seed, int rank, int group_size, uint64_t first_index);
// out[k] (stored as dt) = rank's moved value at index first_index + k: what rank sends, and what a
// data-movement collective must deliver from it.
void fill_moved_values(DType dt, void* out, size_t n, uint64_t seed, int rank, uint64_t first_index);
// out[k] (stored as dt) = the exact sum of every group's shares at index first_index + k (the same
// for any group size): what a sum must deliver.
void fill_sum_totals(DType dt, void* out, size_t n, uint64_t seed, uint64_t first_index);

}  // namespace dtbench
