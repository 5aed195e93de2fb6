#pragma once
// Which ranks exchange messages with which, and when: dtbench-p2p's schedules. A schedule is a list
// of rounds; the links of one round (directed: source rank sends to destination rank) run at once
// and no rank takes part in more than one send and one receive per peer in a round.
//  * pairs: every pair of ranks (or of nodes) once, by the circle method (round-robin tournament):
//    n-1 rounds of n/2 concurrent pairs for even n, n rounds for odd n (one entity sits out each),
//    so the whole matrix costs O(n) rounds, not O(n^2).
//  * ring: each rank with its neighbours (the pipeline-parallel exchange), in one round.
//  * one_to_all: one reference rank (or node) with each other in turn.
// Node level: a node pair is all local ranks of node A with the same local rank of node B at once
// (rail-aligned, as NCCL's PXN and rail-optimised fabrics pair GPUs); it needs the same number of
// ranks on every node.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dtbench {

enum class LinkPattern { pairs, ring, one_to_all };
enum class LinkDirection { uni, bi };
const char* link_pattern_name(LinkPattern p);
const char* link_direction_name(LinkDirection d);

struct Link {
  int src = 0, dst = 0;  // world ranks
  bool operator==(const Link& o) const { return src == o.src && dst == o.dst; }
};
using LinkRound = std::vector<Link>;

// The unordered pairs of entities 0..n-1, by the circle method: each pair exactly once, no entity
// twice in a round. n < 2: no rounds.
std::vector<std::vector<std::pair<int, int>>> circle_rounds(int n);

// The ranks of each node, in rank order (ranks_of_node[k] for node k). Node level needs them.
struct LinkSchedule {
  LinkPattern pattern = LinkPattern::pairs;
  LinkDirection direction = LinkDirection::uni;
  bool node_level = false;
  std::vector<LinkRound> rounds;
};

// Builds a schedule over `ranks_of_node` (node k's world ranks; rank level uses every rank as its
// own entity). `reference`: the rank (rank level) or node (node level) of one_to_all. Uni: each
// round of pairs runs twice, a->b then b->a, so that every directed link is measured alone in its
// direction; bi: both directions at once.
// Throws InputError when the layout cannot run it (node level with unequal nodes or one node).
LinkSchedule make_link_schedule(LinkPattern pattern, LinkDirection direction, bool node_level,
                                const std::vector<std::vector<int>>& ranks_of_node, int reference);

// The payload seed of the messages from any source to `dst`: element i from source s carries the
// moved value of (payload_seed(seed, dst), s, i), so data delivered to the wrong rank, from the
// wrong rank or from another round's seed is wrong.
uint64_t payload_seed(uint64_t seed, int dst);

// What a link matrix says about its ends, against its own median: the reference is the median over
// entities (ranks or nodes) of each entity's median link bandwidth, so one slow entity, which
// touches half the links of a small matrix, cannot drag the reference down with it. An entity is
// slow when most of its links (more than half, and at least two) are below slow_factor x the
// reference; a link is slow when it is below that and neither end is slow (both ends are fine
// elsewhere: the link itself).
struct LinkVerdicts {
  double median_gbps = 0;  // the reference
  struct SlowEnd {
    int entity = 0;  // rank or node index
    int slow_links = 0, links = 0;
    double median_gbps = 0;  // the median of its own links
  };
  std::vector<SlowEnd> slow_ends;
  std::vector<size_t> slow_links;  // indices into the links given
};
// `ends[i]` are the two entities of link i (rank or node indices), gbps[i] its bandwidth.
LinkVerdicts judge_links(const std::vector<std::pair<int, int>>& ends, const std::vector<double>& gbps,
                         double slow_factor);

}  // namespace dtbench
