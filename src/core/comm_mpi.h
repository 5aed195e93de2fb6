#pragma once
// Host backend: host memory, MPI collectives. 16-bit sums use user-defined MPI ops that round to the
// element type after every addition (what a ring of bf16 adds does), or, with accumulate_fp32,
// widen to fp32, reduce in fp32 and round once. AVG is SUM followed by one division by the size.
#include <mpi.h>

#include <memory>
#include <vector>

#include "core/comm.h"

namespace dtbench {

// Wraps `comm` (not owned when world is true: MPI_COMM_WORLD is never freed).
std::unique_ptr<Comm> make_mpi_comm(MPI_Comm comm, const std::string& label);

// World ranks of a communicator's members, in its rank order.
std::vector<int> world_ranks_of(MPI_Comm comm);

}  // namespace dtbench
