#pragma once
// Hang detection. Each rank publishes a heartbeat (which collective it is in, on which communicator,
// which call number) and runs one watchdog thread. When a rank has been inside one collective for
// longer than the timeout, its watchdog asks every rank, over a private duplicate of MPI_COMM_WORLD,
// where it is; members of the hung communicator that are not in the same call are the ranks that did
// not arrive. It prints one line naming the collective and those ranks and aborts the job (exit 3).
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace dtbench {
namespace watchdog {

// Starts the watchdog thread (after MPI_Init_thread). timeout_s <= 0 disables it.
void start(double timeout_s, bool mpi_thread_multiple);
void stop();

// SIGTERM (what Slurm sends at the time limit, and mpirun to the other ranks when one dies) and
// SIGINT: prints one line naming the collective this rank was in (or its last one), then exits
// 128 + signal (143 for SIGTERM). Report rows are flushed as they are written, so every complete row
// stays on disk; a row being written at that moment is dropped whole, never left half-written.
void install_term_handler(int world_rank);
// Starts a helper thread (checkpoint I/O) with SIGTERM and SIGINT blocked, so that the handler runs
// on a thread that can take it at once: a helper sleeping in fsync or an O_DIRECT write would delay
// it until mpirun's SIGKILL, losing the rank's line. Threads the helper starts inherit the mask.
std::thread start_helper_thread(std::function<void()> body);

// Marks this rank as inside a collective for the scope's lifetime.
class Scope {
 public:
  Scope(const char* op, int comm_id, uint64_t call, const std::vector<int>* members, const std::string* comm_label);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
};

}  // namespace watchdog
}  // namespace dtbench
