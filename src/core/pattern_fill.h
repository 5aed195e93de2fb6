#pragma once
// Host loops over the identity pattern of kernels/pattern.h for whole ranges: the inputs a rank
// sends (fills) and the outputs a check expects. Vectorised (AVX-512 and AVX2 clones where the CPU has
// them) and
// identical, element for element, to the *_at forms the CUDA kernels use. 16-bit types take one hash
// per pair of elements (kernels/pattern.h element_hash).
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

// The checks' fused forms: whether any of the n dt elements at `data` differs, bit for bit, from
// what the fill of the same name would store there (the expectation is never written out).
bool moved_values_differ(DType dt, const void* data, size_t n, uint64_t seed, int rank, uint64_t first_index);
bool sum_totals_differ(DType dt, const void* data, size_t n, uint64_t seed, uint64_t first_index);

}  // namespace dtbench
