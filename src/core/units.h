#pragma once
// Sizes and summary statistics, one definition each for the suites and the tools.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dtbench {

// Bytes from a size written the way nccl-tests' -b/-e take it: a number (fractions allowed) and an
// optional binary unit, any case: K, M, G, T, also as KB/KiB, MB/MiB...; B alone = bytes.
// nullopt when the text is anything else, negative, not a whole number of bytes or above 2^63.
std::optional<uint64_t> parse_size(const std::string& text);
// 4096 -> "4KiB", 1536 -> "1536B": the largest binary unit that divides b.
std::string human_bytes(uint64_t b);
// The median (the mean of the middle two for an even count); `if_empty` when there is none.
double median(std::vector<double> v, double if_empty = 0);
// The q-quantile (q in [0, 1]) by linear interpolation between the closest ranks (numpy's default:
// position q*(n-1) of the sorted values); `if_empty` when there is none.
double percentile(std::vector<double> v, double q, double if_empty = 0);
// The coefficient of variation: the population standard deviation over the mean (0 when the mean is
// 0 or there are no values).
double coefficient_of_variation(const std::vector<double>& v);

}  // namespace dtbench
