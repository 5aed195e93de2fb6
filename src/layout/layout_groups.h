#pragma once
// Communicators for ParallelLayout's groups: the one place a suite turns Megatron's rank formulas
// (layout/parallel_layout.h) into split communicators (Comm::split: MPI_Comm_split, ncclCommSplit).
#include <memory>
#include <string>

#include "core/comm.h"
#include "layout/parallel_layout.h"

namespace dtbench {

// This rank's group of `kind`, split from `world` (collective over `world`: every rank calls it for
// the same kinds in the same order). Members keep Megatron's order (the key is the rank's index in
// its group). A rank outside every group of the kind (a middle pipeline stage for the embedding
// group) gets a group of its own. `name` names the communicator in watchdog and error messages
// (default: the kind's name).
std::unique_ptr<Comm> split_layout_group(Comm& world, const ParallelLayout& layout, GroupKind kind,
                                         const std::string& name = "");

}  // namespace dtbench
