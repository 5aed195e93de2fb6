#include "ckpt/writer_files.h"

#include <algorithm>
#include <numeric>

#include "ckpt/index_format.h"  // shard_file_name
#include "core/error.h"

namespace dtbench {

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
