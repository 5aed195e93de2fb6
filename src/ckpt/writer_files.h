#pragma once
// The per-rank file binning of Megatron's dist_checkpointing.save (torch_dist writer): a rank's items
// into at most `writers` files __<rank>_<k>.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dtbench {

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
