#pragma once
// MoE token dispatch and combine over one expert-parallel group, as Megatron's
// MoEAlltoAllTokenDispatcher moves tokens: the rows each rank sends to each EP peer (the permute,
// sorted by expert), the counts exchange that sizes the all-to-all-v, the dispatch all-to-all-v,
// the experts' work, the combine all-to-all-v back and the un-permute into (token, slot) order.
// Every row carries its token id in its payload (payload_value), so the expert side checks each
// received row in O(1) per element and names the rank it came from.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/comm.h"
#include "ep/moe_routing.h"

namespace dtbench {

struct DispatchPlan {
  std::vector<TokenSlot> rows;               // send buffer order: chunk per EP rank, sorted by expert, token
  std::vector<int> dest;                     // EP rank each row goes to
  std::vector<size_t> send_counts, send_displs;  // rows per EP rank
};
// The dispatch of `rank` (MoeRouting::dispatch_order). `misroute_row` >= 0 is the fault "a token
// sent to the wrong expert": that row (clamped to the rows) goes to the next EP rank instead.
DispatchPlan plan_dispatch(const MoeRouting& routing, int rank, int64_t misroute_row = -1);

// What an expert does to a row element: the payload plus the expert id, mod 256 (exact in every dtype).
int expert_output(int payload, int expert);

// The verdict on one received row at the expert side.
struct RowCheck {
  bool ok = true;
  int culprit = -1;  // the source rank the row came from (decoded from the payload), else the sender
  std::string why;
};
// Checks a row EP rank `my_ep_rank` received from world rank `sender`: its payload carries one
// valid id, from `sender`, routed to an expert this EP rank owns, and rows of one sender arrive in
// dispatch order (strictly increasing (expert, token, slot) key, `prev_key` tracks it; start at -1).
RowCheck check_received_row(const MoeRouting& routing, const float* row, int elements, int sender, int my_ep_rank,
                            int64_t* prev_key);


// The element counts and displacements of one dispatch all-to-all-v: the send side from the plan,
// the receive side from the rows each EP peer announced (the counts all-to-all), `hidden` elements
// per row. Receive chunks follow in EP-rank order.
struct TokenExchange {
  std::vector<size_t> send_counts, send_displs, recv_counts, recv_displs;  // elements
  size_t recv_rows = 0;
};
TokenExchange token_exchange(const DispatchPlan& plan, const std::vector<size_t>& rows_from_peer, int hidden);

// The dispatch all-to-all-v of `x` from `tokens` into `expert_rows`, and the combine that brings
// every row back: the same exchange with the sides swapped, `expert_rows` into `tokens`.
CollArgs dispatch_args(const TokenExchange& x, DType dtype, void* tokens, void* expert_rows);
CollArgs combine_args(const TokenExchange& x, DType dtype, void* tokens, void* expert_rows);

// Element i of `rank`'s dispatch buffer: the payload of the row's token id.
double dispatch_element(const MoeRouting& routing, const DispatchPlan& plan, int hidden, size_t i);

// The experts' work on the received rows (host copy, `hidden` elements per row): each element
// becomes expert_output(element, expert the row's id names); a row without a valid id keeps expert 0.
void run_experts(const MoeRouting& routing, std::vector<float>& rows, int hidden);

// The un-permute after the combine: row j of `combined` is the (token, slot) plan.rows[j] and lands
// at row token * top_k + slot of `slots` (top_k * tokens rows).
void unpermute(const DispatchPlan& plan, int top_k, int hidden, const Buffer& combined, Buffer& slots);

// The expert of every (token, slot) of `rank`, in slot order (token * top_k + slot).
std::vector<int> slot_experts(const MoeRouting& routing, int rank);

}  // namespace dtbench
