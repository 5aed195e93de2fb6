#include "ep/token_dispatch.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace dtbench {

DispatchPlan plan_dispatch(const MoeRouting& routing, int rank, int64_t misroute_row) {
  const int ep = routing.config().ep_size;
  std::vector<TokenSlot> rows = routing.dispatch_order(rank);
  std::vector<int> dest(rows.size());
  for (size_t j = 0; j < rows.size(); ++j) dest[j] = routing.expert_owner(rows[j].expert);
  if (misroute_row >= 0 && !rows.empty()) {
    const size_t j = std::min<size_t>(size_t(misroute_row), rows.size() - 1);
    dest[j] = (dest[j] + 1) % ep;
  }
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return dest[a] < dest[b]; });
  DispatchPlan plan;
  plan.send_counts.assign(ep, 0);
  plan.send_displs.assign(ep, 0);
  for (size_t j : order) {
    plan.rows.push_back(rows[j]);
    plan.dest.push_back(dest[j]);
    ++plan.send_counts[dest[j]];
  }
  for (int p = 1; p < ep; ++p) plan.send_displs[p] = plan.send_displs[p - 1] + plan.send_counts[p - 1];
  return plan;
}

int expert_output(int payload, int expert) { return (payload + expert) % 256; }

RowCheck check_received_row(const MoeRouting& routing, const float* row, int elements, int sender, int my_ep_rank,
                            int64_t* prev_key) {
  RowCheck c;
  c.culprit = sender;
  const int64_t id = payload_row_id(row, elements);
  TokenSlot ts;
  bool decoded = id >= 0;
  if (decoded) {
    try {
      ts = routing.decode_token_id(uint64_t(id));
    } catch (const std::out_of_range&) {
      decoded = false;
    }
  }
  if (!decoded) {
    c.ok = false, c.why = "row from rank " + std::to_string(sender) + " carries no token id";
    return c;
  }
  c.culprit = ts.src_rank;
  const std::string token = "token " + std::to_string(ts.token) + " slot " + std::to_string(ts.slot) + " of rank " +
                            std::to_string(ts.src_rank);
  for (int e = 0; e < elements; ++e) {
    if (row[e] != float(payload_value(uint64_t(id), e))) {
      c.ok = false, c.why = token + ": payload element " + std::to_string(e) + " corrupted";
      return c;
    }
  }
  if (ts.src_rank != sender) {
    c.ok = false, c.why = token + " arrived in the chunk of rank " + std::to_string(sender);
    return c;
  }
  const int owner = routing.expert_owner(ts.expert);
  if (owner != my_ep_rank) {
    c.ok = false, c.why = token + " is routed to expert " + std::to_string(ts.expert) + " (EP rank " +
                          std::to_string(owner) + ") but arrived at EP rank " + std::to_string(my_ep_rank);
    return c;
  }
  const int64_t key = (int64_t(ts.expert) * routing.config().tokens_per_rank + ts.token);
  if (key <= *prev_key) {
    c.ok = false, c.why = token + " arrived out of dispatch order (expert, token)";
    return c;
  }
  *prev_key = key;
  return c;
}

TokenExchange token_exchange(const DispatchPlan& plan, const std::vector<size_t>& rows_from_peer, int hidden) {
  TokenExchange x;
  const size_t H = size_t(hidden);
  for (size_t p = 0; p < rows_from_peer.size(); ++p) {
    x.send_counts.push_back(plan.send_counts[p] * H);
    x.send_displs.push_back(plan.send_displs[p] * H);
    x.recv_displs.push_back(x.recv_rows * H);
    x.recv_counts.push_back(rows_from_peer[p] * H);
    x.recv_rows += rows_from_peer[p];
  }
  return x;
}

namespace {

// One all-to-all-v of rows: what each peer gets from `send` and where each peer's rows land in `recv`.
CollArgs rows_exchange(DType dtype, void* send, void* recv, const std::vector<size_t>& send_counts,
                       const std::vector<size_t>& send_displs, const std::vector<size_t>& recv_counts,
                       const std::vector<size_t>& recv_displs) {
  CollArgs a;
  a.kind = CollKind::all_to_allv, a.dtype = dtype, a.send = send, a.recv = recv;
  a.send_counts = send_counts, a.send_displs = send_displs;
  a.recv_counts = recv_counts, a.recv_displs = recv_displs;
  return a;
}

}  // namespace

CollArgs dispatch_args(const TokenExchange& x, DType dtype, void* tokens, void* expert_rows) {
  return rows_exchange(dtype, tokens, expert_rows, x.send_counts, x.send_displs, x.recv_counts, x.recv_displs);
}

// The combine is the dispatch transposed: expert rows go back whence they came.
CollArgs combine_args(const TokenExchange& x, DType dtype, void* tokens, void* expert_rows) {
  return rows_exchange(dtype, expert_rows, tokens, x.recv_counts, x.recv_displs, x.send_counts, x.send_displs);
}

double dispatch_element(const MoeRouting& routing, const DispatchPlan& plan, int hidden, size_t i) {
  const TokenSlot& r = plan.rows[i / size_t(hidden)];
  return double(payload_value(routing.token_id(r.src_rank, r.token, r.slot), int(i % size_t(hidden))));
}

void run_experts(const MoeRouting& routing, std::vector<float>& rows, int hidden) {
  const size_t H = size_t(hidden);
  for (size_t r = 0; r < rows.size() / H; ++r) {
    float* row = &rows[r * H];
    const int64_t id = payload_row_id(row, hidden);
    int expert = 0;
    try {
      if (id >= 0) expert = routing.decode_token_id(uint64_t(id)).expert;
    } catch (const std::out_of_range&) {
    }
    for (size_t e = 0; e < H; ++e) row[e] = float(expert_output(int(row[e]) & 255, expert));
  }
}

void unpermute(const DispatchPlan& plan, int top_k, int hidden, const Buffer& combined, Buffer& slots) {
  const size_t H = size_t(hidden), K = size_t(top_k);
  for (size_t j = 0; j < plan.rows.size(); ++j)
    copy_elements(slots, (size_t(plan.rows[j].token) * K + size_t(plan.rows[j].slot)) * H, combined, j * H, H);
}

std::vector<int> slot_experts(const MoeRouting& routing, int rank) {
  const int T = routing.config().tokens_per_rank, K = routing.config().top_k;
  std::vector<int> out(size_t(T) * size_t(K));
  for (int t = 0; t < T; ++t) {
    const std::vector<int> experts = routing.experts_of(rank, t);
    for (int s = 0; s < K; ++s) out[size_t(t) * size_t(K) + size_t(s)] = experts[size_t(s)];
  }
  return out;
}

}  // namespace dtbench
