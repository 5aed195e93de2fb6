#include "layout/layout_groups.h"

namespace dtbench {

std::unique_ptr<Comm> split_layout_group(Comm& world, const ParallelLayout& layout, GroupKind kind,
                                         const std::string& name) {
  const int rank = world.rank();
  int color = layout.group_color(kind, rank), key = layout.group_index(kind, rank);
  // MPI_Comm_split needs a colour for every rank: one past the layout's colours per lone rank.
  if (color == kNoGroup) color = layout.num_groups(kind) + rank, key = 0;
  return world.split(color, key, name.empty() ? std::string(group_kind_name(kind)) : name);
}

}  // namespace dtbench
