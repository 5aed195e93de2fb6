#include "core/watchdog.h"

#include <mpi.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace dtbench {
namespace watchdog {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kTagQuery = 7001;
constexpr int kTagReply = 7002;
constexpr int kOpNameLen = 32;

// What a rank answers when asked where it is.
struct Position {
  int in_collective = 0;
  int comm_id = -1;
  uint64_t call = 0;
  char op[kOpNameLen] = {0};
};

struct Heartbeat {
  std::mutex mutex;  // guards the fields below; held only for a few loads/stores
  Position pos;
  Clock::time_point since;
  const std::vector<int>* members = nullptr;
  const std::string* comm_label = nullptr;
};

Heartbeat g_beat;
std::atomic<bool> g_running{false};
std::thread g_thread;
double g_timeout_s = 0;
bool g_can_ask = false;
MPI_Comm g_comm = MPI_COMM_NULL;

// Lock-free mirror of the heartbeat for the signal handler (which may not take the mutex).
std::atomic<int> g_sig_in{0};
std::atomic<const char*> g_sig_op{nullptr};
// A copy, not a pointer: the signal may arrive after the communicator is gone (during MPI_Finalize).
char g_sig_label[96] = {0};
std::atomic<uint64_t> g_sig_call{0};
int g_sig_rank = -1;

Position snapshot() {
  std::lock_guard<std::mutex> lock(g_beat.mutex);
  return g_beat.pos;
}

// Answers pending queries from other ranks' watchdogs. Returns immediately when there are none.
void answer_queries() {
  int flag = 1;
  while (flag) {
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kTagQuery, g_comm, &flag, &st);
    if (!flag) break;
    int dummy;
    MPI_Recv(&dummy, 1, MPI_INT, st.MPI_SOURCE, kTagQuery, g_comm, MPI_STATUS_IGNORE);
    Position p = snapshot();
    MPI_Send(&p, sizeof(p), MPI_BYTE, st.MPI_SOURCE, kTagReply, g_comm);
  }
}

std::string describe(const Position& p) {
  std::ostringstream os;
  if (p.in_collective) os << "in " << p.op << " (comm " << p.comm_id << " call #" << p.call << ")";
  else os << "not in a collective (last call #" << p.call << " on comm " << p.comm_id << ")";
  return os.str();
}

[[noreturn]] void fire(const Position& mine, const std::vector<int>& members, const std::string& label) {
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(g_comm, &world_rank);
  MPI_Comm_size(g_comm, &world_size);
  std::ostringstream msg;
  msg << "dtbench: watchdog on rank " << world_rank << ": " << mine.op << " on communicator '" << label
      << "' (call #" << mine.call << ") did not complete within " << g_timeout_s << " s";
  if (g_can_ask) {
    std::vector<Position> answers(world_size);
    std::vector<int> answered(world_size, 0);
    std::vector<MPI_Request> recv_reqs(world_size, MPI_REQUEST_NULL);
    int one = 1;
    for (int r : members) {
      if (r == world_rank) continue;
      MPI_Send(&one, 1, MPI_INT, r, kTagQuery, g_comm);
      MPI_Irecv(&answers[r], sizeof(Position), MPI_BYTE, r, kTagReply, g_comm, &recv_reqs[r]);
    }
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      answer_queries();  // other ranks may be diagnosing at the same time
      bool all = true;
      for (int r : members) {
        if (r == world_rank || answered[r]) continue;
        int done = 0;
        MPI_Test(&recv_reqs[r], &done, MPI_STATUS_IGNORE);
        if (done) answered[r] = 1; else all = false;
      }
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::ostringstream missing, where;
    int n_missing = 0;
    for (int r : members) {
      if (r == world_rank) continue;
      bool arrived = answered[r] && answers[r].in_collective && answers[r].comm_id == mine.comm_id &&
                     answers[r].call == mine.call &&
                     std::strncmp(answers[r].op, mine.op, kOpNameLen) == 0;
      if (arrived) continue;
      missing << (n_missing ? "," : "") << r;
      where << "; rank " << r << ": " << (answered[r] ? describe(answers[r]) : "no answer (busy, dead or gone)");
      ++n_missing;
    }
    if (n_missing) msg << "; ranks that did not arrive: " << missing.str() << where.str();
    else msg << "; every member arrived (the collective itself is stuck: network or library)";
  } else {
    msg << "; MPI lacks MPI_THREAD_MULTIPLE, so the ranks that did not arrive cannot be asked";
  }
  std::fprintf(stderr, "%s\n", msg.str().c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, kExitHang);
  std::_Exit(kExitHang);
}

void loop() {
  while (g_running.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_can_ask) answer_queries();
    Position mine;
    std::vector<int> members;
    std::string label;
    bool expired = false;
    {
      std::lock_guard<std::mutex> lock(g_beat.mutex);
      if (g_beat.pos.in_collective) {
        double waited = std::chrono::duration<double>(Clock::now() - g_beat.since).count();
        if (waited > g_timeout_s) {
          expired = true;
          mine = g_beat.pos;
          members = *g_beat.members;
          label = *g_beat.comm_label;
        }
      }
    }
    if (expired) fire(mine, members, label);
  }
}

}  // namespace

void start(double timeout_s, bool mpi_thread_multiple) {
  if (timeout_s <= 0 || g_running.load()) return;
  g_timeout_s = timeout_s;
  g_can_ask = mpi_thread_multiple;
  MPI_Comm_dup(MPI_COMM_WORLD, &g_comm);
  MPI_Comm_set_name(g_comm, "dtbench-control-watchdog");  // harness traffic (see suite.cpp)
  g_running = true;
  g_thread = std::thread(loop);
}

void stop() {
  if (!g_running.load()) return;
  g_running = false;
  g_thread.join();
  MPI_Comm_free(&g_comm);
}

Scope::Scope(const char* op, int comm_id, uint64_t call, const std::vector<int>* members, const std::string* label) {
  std::lock_guard<std::mutex> lock(g_beat.mutex);
  g_beat.pos.in_collective = 1;
  g_beat.pos.comm_id = comm_id;
  g_beat.pos.call = call;
  std::strncpy(g_beat.pos.op, op, kOpNameLen - 1);
  g_beat.since = Clock::now();
  g_beat.members = members;
  g_beat.comm_label = label;
  g_sig_in.store(0);
  g_sig_op.store(op);
  if (label) std::strncpy(g_sig_label, label->c_str(), sizeof(g_sig_label) - 1);
  g_sig_call.store(call);
  g_sig_in.store(1);
}

Scope::~Scope() {
  std::lock_guard<std::mutex> lock(g_beat.mutex);
  g_beat.pos.in_collective = 0;
  g_sig_in.store(0);
}

namespace {

// Async-signal-safe formatting into a fixed buffer.
struct SigLine {
  char buf[512];
  size_t n = 0;
  void add(const char* s) {
    while (s && *s && n + 1 < sizeof(buf)) buf[n++] = *s++;
  }
  void add(uint64_t v) {
    char d[24];
    int k = 0;
    do d[k++] = char('0' + v % 10), v /= 10; while (v && k < 24);
    while (k && n + 1 < sizeof(buf)) buf[n++] = d[--k];
  }
};

volatile sig_atomic_t g_term_seen = 0;

void on_term_signal(int sig) {
  if (g_term_seen) ::_exit(128 + sig);  // a second signal (mpirun forwards one too): one line per rank
  g_term_seen = 1;
  SigLine l;
  l.add("dtbench: rank ");
  l.add(uint64_t(g_sig_rank < 0 ? 0 : g_sig_rank));
  l.add(sig == SIGTERM ? ": terminated by SIGTERM" : ": interrupted by SIGINT");
  const char* op = g_sig_op.load();
  const char* label = g_sig_label[0] ? g_sig_label : nullptr;
  if (op) {
    l.add(g_sig_in.load() ? " while in " : " outside any collective (last: ");
    l.add(op);
    if (label) {
      l.add(" on communicator '");
      l.add(label);
      l.add("'");
    }
    l.add(" call #");
    l.add(g_sig_call.load());
    if (!g_sig_in.load()) l.add(")");
  } else {
    l.add(" before its first collective");
  }
  l.add("; rows written so far are on disk; exit ");
  l.add(uint64_t(128 + sig));
  l.add("\n");
  ssize_t ignored = ::write(2, l.buf, l.n);
  (void)ignored;
  ::_exit(128 + sig);
}

}  // namespace

std::thread start_helper_thread(std::function<void()> body) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  std::thread t(std::move(body));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

void install_term_handler(int world_rank) {
  g_sig_rank = world_rank;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace watchdog
}  // namespace dtbench
