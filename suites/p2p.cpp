// dtbench-p2p: point-to-point links between ranks, timed and validated link by link, so that a slow
// rank, a slow node or one bad link is named rather than averaged away. Schedules (p2p/link_schedule.h):
// every pair of ranks or of nodes in n-1 rounds of concurrent pairs, ring neighbours (the pipeline
// exchange), one reference against all others; each uni- and bidirectional, over message sizes
// (small ones measure latency). Every message carries closed-form values of (seed, source,
// destination, index): the receiver checks each element and a wrong one names its sender.
// Output: the link matrix in <suite>-<run>-links.csv, summary metrics in the perf CSV, and verdict
// lines naming slow ranks/nodes and slow links against the matrix's own median.
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/pattern_fill.h"
#include "core/suite.h"
#include "core/units.h"
#include "p2p/link_schedule.h"

using namespace dtbench;

namespace {

const std::vector<std::pair<std::string, LinkPattern>> kPatternNames = {
    {"pairs", LinkPattern::pairs}, {"ring", LinkPattern::ring}, {"one_to_all", LinkPattern::one_to_all}};

struct P2POptions {
  uint64_t min_b = 8, max_b = 2 << 20;  // bytes per message
  double step_factor = 8;
  std::vector<LinkPattern> patterns = {LinkPattern::pairs, LinkPattern::ring};
  std::string level = "rank";          // rank | node
  std::string direction = "both";      // uni | bi | both
  int reference = 0;                   // one_to_all: the rank (or node)
  double slow_factor = 0.5;
  bool fail_slow = false;
};
P2POptions g_opt;

// The links CSV: one line per directed link and message size (README "Links CSV").
const std::vector<std::string> kLinkColumns = {"pattern", "level",    "direction", "bytes",       "src_rank",
                                               "src_node", "dst_rank", "dst_node",  "round",       "iters",
                                               "time_p50_us", "time_p90_us", "GBps", "n_checked", "n_wrong"};

// One directed link's measurement at one size (rank 0).
struct LinkResult {
  Link link;
  int round = 0;
  double p50_s = 0, p90_s = 0, gbps = 0;
  double n_checked = 0, n_wrong = 0;
};

std::vector<std::vector<int>> ranks_of_nodes(const RunInfo& run) {
  std::vector<std::vector<int>> nodes;
  std::map<std::string, size_t> index;
  for (int r = 0; r < run.size; ++r) {
    auto it = index.emplace(run.hostnames[size_t(r)], nodes.size()).first;
    if (it->second == nodes.size()) nodes.emplace_back();
    nodes[it->second].push_back(r);
  }
  return nodes;
}

// What rank `me` does in a round: the links it sends on and receives on, in the round's order.
struct RoundPart {
  std::vector<const Link*> sends, recvs;
};
RoundPart part_of(const LinkRound& round, int me) {
  RoundPart p;
  for (const Link& l : round) {
    if (l.src == me) p.sends.push_back(&l);
    if (l.dst == me) p.recvs.push_back(&l);
  }
  return p;
}

// The transfers of one round on this rank, sending from send[k] and receiving into recv[k].
CollArgs round_args(const RoundPart& p, std::vector<Buffer>& send, std::vector<Buffer>& recv, size_t count, DType dt) {
  CollArgs a;
  a.kind = CollKind::send_recv;
  a.dtype = dt;
  for (size_t k = 0; k < p.recvs.size(); ++k)
    a.transfers.push_back({PeerTransfer::recv, p.recvs[k]->src, recv[k].data(), count});
  for (size_t k = 0; k < p.sends.size(); ++k)
    a.transfers.push_back({PeerTransfer::send, p.sends[k]->dst, send[k].data(), count});
  return a;
}

// `misroute`: the --inject-fault of that name on this rank, which sends each message the payload
// of the next rank's (what a send to the wrong peer, or a swapped buffer, delivers).
void fill_payloads(Context& ctx, const RoundPart& p, std::vector<Buffer>& send, std::vector<Buffer>& recv,
                   size_t count, uint64_t seed, bool misroute = false) {
  for (size_t k = 0; k < p.sends.size(); ++k) {
    PatternSpec spec;
    int dst = p.sends[k]->dst;
    if (misroute) dst = (dst + 1) % ctx.run.size, note_fault_applied();
    spec.kind = PatternSpec::gather, spec.seed = payload_seed(seed, dst), spec.rank = ctx.run.rank;
    ctx.backend.fill_pattern(send[k], 0, count, spec);
  }
  for (size_t k = 0; k < p.recvs.size(); ++k) {  // stale data must not pass as a message
    PatternSpec junk;
    junk.kind = PatternSpec::gather, junk.seed = seed + 31337, junk.rank = ctx.run.rank;
    ctx.backend.fill_pattern(recv[k], 0, count, junk);
  }
}

// Element i of the message from `src` to `dst` (bit-exact; the sender is the culprit).
auto payload_expected(DType dt, uint64_t seed, int src, int dst) {
  const uint64_t s = payload_seed(seed, dst);
  return block_expected(
      dt, [=](size_t i, size_t len, void* out) { fill_moved_values(dt, out, len, s, src, i); },
      [=](size_t i, size_t len, const void* data) { return moved_values_differ(dt, data, len, s, src, i); });
}

std::string node_of(const Context& ctx, int rank) { return ctx.run.hostnames[size_t(rank)]; }

// The verdict lines of one matrix (rank 0 prints them) and, with --fail-slow, a check that fails
// on the ranks of a slow end or link. Judged on the largest size, where bandwidth, not latency, counts.
void judge(Context& ctx, const LinkSchedule& s, const std::vector<std::vector<int>>& nodes,
           std::vector<LinkResult> results, const std::string& what, const std::string& case_name) {
  std::vector<double> flat;
  for (const LinkResult& r : results) flat.insert(flat.end(), {double(r.link.src), double(r.link.dst), r.gbps});
  ctx.broadcast_from_root(flat);  // every rank judges the same matrix (its own check line below)
  results.resize(flat.size() / 3);
  std::vector<int> node_index(size_t(ctx.run.size), 0);
  for (size_t k = 0; k < nodes.size(); ++k)
    for (int r : nodes[k]) node_index[size_t(r)] = int(k);
  // A node pair's rails are one link: the slowest rail's bandwidth.
  std::map<std::pair<int, int>, double> by_ends;
  for (size_t i = 0; i < results.size(); ++i) {
    results[i].link = Link{int(flat[3 * i]), int(flat[3 * i + 1])};
    results[i].gbps = flat[3 * i + 2];
    int a = results[i].link.src, b = results[i].link.dst;
    if (s.node_level) a = node_index[size_t(a)], b = node_index[size_t(b)];
    auto it = by_ends.emplace(std::make_pair(a, b), results[i].gbps).first;
    it->second = std::min(it->second, results[i].gbps);
  }
  std::vector<std::pair<int, int>> ends;
  std::vector<double> gbps;
  for (auto& [e, g] : by_ends) ends.push_back(e), gbps.push_back(g);
  const int entities = s.node_level ? int(nodes.size()) : ctx.run.size;
  LinkVerdicts v = judge_links(ends, gbps, g_opt.slow_factor);
  auto entity_text = [&](int e) {
    if (s.node_level) return "node " + node_of(ctx, nodes[size_t(e)][0]);
    return "rank " + std::to_string(e) + " (node " + node_of(ctx, e) + ")";
  };
  auto ends_text = [&](const std::pair<int, int>& e) {
    if (s.node_level) return node_of(ctx, nodes[size_t(e.first)][0]) + "->" + node_of(ctx, nodes[size_t(e.second)][0]);
    return std::to_string(e.first) + "->" + std::to_string(e.second) + " (" + node_of(ctx, e.first) + "->" +
           node_of(ctx, e.second) + ")";
  };
  // Per rank: blamed (its rank or node is slow, or it ends a slow link) and the bandwidth seen.
  std::vector<double> blamed(size_t(ctx.run.size), -1);
  auto blame = [&](int e, double observed_gbps) {
    if (!s.node_level) blamed[size_t(e)] = observed_gbps;
    else
      for (int r : nodes[size_t(e)]) blamed[size_t(r)] = observed_gbps;
  };
  std::ostringstream lines;
  if (entities < 3) {
    lines << what << " " << case_name << ": " << entities << (s.node_level ? " nodes" : " ranks")
          << ": too few to tell a slow one from the median (need 3)\n";
  } else {
    for (const auto& e : v.slow_ends) {
      lines << what << " " << case_name << ": slow " << entity_text(e.entity) << ": " << e.slow_links << " of "
            << e.links << " links below " << format_double(g_opt.slow_factor, 3) << "x the median ("
            << format_double(e.median_gbps, 3) << " vs " << format_double(v.median_gbps, 3) << " GB/s)\n";
      blame(e.entity, e.median_gbps);
    }
    for (size_t i : v.slow_links) {
      lines << what << " " << case_name << ": slow link " << ends_text(ends[i]) << ": "
            << format_double(gbps[i], 3) << " vs " << format_double(v.median_gbps, 3)
            << " GB/s median; both ends are fine elsewhere\n";
      blame(ends[i].first, gbps[i]), blame(ends[i].second, gbps[i]);
    }
    if (v.slow_ends.empty() && v.slow_links.empty())
      lines << what << " " << case_name << ": no slow " << (s.node_level ? "node" : "rank")
            << " or link (median " << format_double(v.median_gbps, 3) << " GB/s, slowest link "
            << format_double(gbps.empty() ? 0 : *std::min_element(gbps.begin(), gbps.end()), 3) << ")\n";
  }
  if (ctx.is_root()) {
    std::fputs(lines.str().c_str(), stderr);
    std::fflush(stderr);
  }
  if (!g_opt.fail_slow || entities < 3) return;
  LocalVerify mine;
  mine.n_checked = 1;
  if (blamed[size_t(ctx.run.rank)] >= 0) {
    mine.n_wrong = 1, mine.first_index = 0, mine.culprit = ctx.run.rank;
    mine.expected = g_opt.slow_factor * v.median_gbps;
    mine.observed = blamed[size_t(ctx.run.rank)];
  }
  ctx.report_check(CheckInfo{what + ".bandwidth", case_name, dtype_name(ctx.opts.dtype),
                             "--fail-slow: links below " + format_double(g_opt.slow_factor, 3) +
                                 "x the median; expected/observed in GB/s"},
                   mine);
}

// Runs one schedule over every size: per round, time it (each link's time per iteration is the
// later of its two ends' own times), then validate it; per size, one check, link rows and metrics.
void run_schedule(Context& ctx, const LinkSchedule& s, const std::vector<std::vector<int>>& nodes,
                  const std::vector<uint64_t>& sizes) {
  Comm& world = ctx.world;
  const int me = ctx.run.rank;
  const DType dt = ctx.opts.dtype;
  const std::string pattern = link_pattern_name(s.pattern), direction = link_direction_name(s.direction);
  const std::string op = "p2p_" + pattern;
  const std::string what = op + "." + direction + (s.node_level ? ".node" : "");
  std::string layout = "direction=" + direction + (s.node_level ? ",level=node" : "");
  if (s.pattern == LinkPattern::one_to_all) layout += ",reference=" + std::to_string(g_opt.reference);
  if (s.rounds.empty()) {
    ctx.progress(what + ": no links on " + std::to_string(ctx.run.size) + " ranks, skipped");
    return;
  }
  // Buffers for the most links one rank has in one round (ring bi: two each way).
  size_t slots = 1;
  for (const LinkRound& round : s.rounds) {
    RoundPart p = part_of(round, me);
    slots = std::max({slots, p.sends.size(), p.recvs.size()});
  }
  slots = size_t(ctx.max_over_ranks(double(slots)));
  const size_t max_elems = std::max<size_t>(1, g_opt.max_b / dtype_size(dt));
  std::vector<Buffer> send, recv;
  for (size_t k = 0; k < slots; ++k) send.push_back(ctx.backend.alloc(dt, max_elems)), recv.push_back(ctx.backend.alloc(dt, max_elems));

  for (uint64_t bytes : sizes) {
    const size_t count = bytes / dtype_size(dt);
    if (count == 0) continue;
    const uint64_t moved = count * dtype_size(dt);
    const std::string case_name = std::to_string(moved) + "B";
    std::vector<LinkResult> results;  // rank 0
    LocalVerify check;
    double rounds_time_s = 0;
    for (size_t ri = 0; ri < s.rounds.size(); ++ri) {
      const LinkRound& round = s.rounds[ri];
      RoundPart p = part_of(round, me);
      CollArgs a = round_args(p, send, recv, count, dt);
      fill_payloads(ctx, p, send, recv, count, ctx.opts.seed);
      TimingStats t = ctx.time_op(world, ctx.opts.warmup, ctx.opts.iters, [&] { world.run(a); });
      rounds_time_s += t.med_s;
      if (ctx.is_root()) {
        const std::vector<RankSamples>& samples = ctx.last_rank_samples();
        for (const Link& l : round) {
          std::vector<double> per_iter(samples[size_t(l.src)].own_s.size());
          for (size_t i = 0; i < per_iter.size(); ++i)
            per_iter[i] = std::max(samples[size_t(l.src)].own_s[i], samples[size_t(l.dst)].own_s[i]);
          LinkResult r;
          r.link = l, r.round = int(ri);
          r.p50_s = median(per_iter), r.p90_s = percentile(per_iter, 0.9);
          r.gbps = r.p50_s > 0 ? double(moved) / r.p50_s / 1e9 : 0;
          results.push_back(r);
        }
      }
      // Validation with fresh seeds; per receive slot, what this rank saw from its sender.
      std::vector<double> seen(2 * slots, 0);  // [wrong per slot..., checked per slot...]
      for (int rep = 0; rep < ctx.opts.check_iters; ++rep) {
        const uint64_t seed = ctx.opts.seed * 1000003u + uint64_t(rep + 1) * 7919u + bytes + ri * 104729u;
        fill_payloads(ctx, p, send, recv, count, seed, ctx.fault.applies("misroute", me));
        world.run(a);
        for (size_t k = 0; k < p.recvs.size(); ++k) {
          const int src = p.recvs[k]->src;
          LocalVerify v = ctx.verify_local(what, recv[k], 0, count, 0, payload_expected(dt, seed, src, me), 0,
                                           [src](size_t) { return src; });
          seen[k] += double(v.n_wrong), seen[slots + k] += double(v.n_checked);
          combine_verify(check, v);
        }
      }
      std::vector<double> all = ctx.gather_on_root(seen);
      if (ctx.is_root()) {
        std::vector<size_t> slot_of(size_t(ctx.run.size), 0);
        for (LinkResult& r : results) {
          if (r.round != int(ri)) continue;
          const size_t k = slot_of[size_t(r.link.dst)]++;
          r.n_wrong = all[size_t(r.link.dst) * 2 * slots + k];
          r.n_checked = all[size_t(r.link.dst) * 2 * slots + slots + k];
        }
      }
    }
    const bool ok = ctx.report_check(CheckInfo{what, case_name, dtype_name(dt), "message from src to dst: values of (seed, src, dst, index); culprit = sender"}, check);

    std::vector<double> gbps, times;
    for (const LinkResult& r : results) {
      ctx.reports()->table_row(
          "links", {pattern, s.node_level ? "node" : "rank", direction, std::to_string(moved), std::to_string(r.link.src),
                    node_of(ctx, r.link.src), std::to_string(r.link.dst), node_of(ctx, r.link.dst),
                    std::to_string(r.round), std::to_string(ctx.opts.iters), format_double(r.p50_s * 1e6),
                    format_double(r.p90_s * 1e6), format_double(r.gbps), format_double(r.n_checked, 12),
                    format_double(r.n_wrong, 12)});
      gbps.push_back(r.gbps), times.push_back(r.p50_s * 1e6);
    }
    if (ctx.is_root()) {
      PerfRow base;
      base.case_name = case_name, base.op = op, base.dtype = dtype_name(dt), base.layout = layout;
      base.group_size = 2, base.count = count, base.bytes = moved;
      base.n_wrong = ctx.opts.check_iters ? (long long)(check.n_wrong) : -1;
      ctx.perf(metric_row(base, "link_GBps_median", median(gbps), "GB/s"));
      ctx.perf(metric_row(base, "link_GBps_min", *std::min_element(gbps.begin(), gbps.end()), "GB/s"));
      ctx.perf(metric_row(base, "link_time_us_median", median(times), "us"));
      ctx.perf(metric_row(base, "schedule_time_us", rounds_time_s * 1e6, "us"));
      ctx.perf(metric_row(base, "rounds", double(s.rounds.size()), "count"));
    }
    ctx.progress(what + " " + std::to_string(moved) + " B: " + std::to_string(results.size()) + " links in " +
                 std::to_string(s.rounds.size()) + (s.rounds.size() == 1 ? " round" : " rounds") + ", median " + format_double(median(gbps), 4) +
                 " GB/s (" + format_double(median(times), 4) + " us), slowest " +
                 format_double(gbps.empty() ? 0 : *std::min_element(gbps.begin(), gbps.end()), 4) + " GB/s" +
                 (ctx.opts.check_iters ? (ok ? ", ok" : ", CHECK FAILED") : ""));
    if (bytes == sizes.back()) judge(ctx, s, nodes, results, what, case_name);
  }
}

void run_links(Context& ctx) {
  std::vector<uint64_t> sizes;
  for (double b = double(g_opt.min_b); b <= double(g_opt.max_b) + 0.5; b *= g_opt.step_factor) {
    sizes.push_back(uint64_t(b));
    if (g_opt.step_factor <= 1) break;
  }
  const std::vector<std::vector<int>> nodes = ranks_of_nodes(ctx.run);
  std::vector<LinkDirection> directions;
  if (g_opt.direction != "bi") directions.push_back(LinkDirection::uni);
  if (g_opt.direction != "uni") directions.push_back(LinkDirection::bi);
  for (LinkPattern pattern : g_opt.patterns)
    for (LinkDirection d : directions)
      run_schedule(ctx, make_link_schedule(pattern, d, g_opt.level == "node", nodes, g_opt.reference), nodes, sizes);
}

void add_options(CLI::App& app, CommonOptions&) {
  app.add_option("-b,--min-bytes", g_opt.min_b, "smallest message (bytes; K, M, G suffixes)")
      ->default_str("8")
      ->transform(size_bytes())
      ->check(at_least(1));
  app.add_option("-e,--max-bytes", g_opt.max_b, "largest message; verdicts are judged at this size")
      ->default_str("2M")
      ->transform(size_bytes());
  app.add_option("-f,--step-factor", g_opt.step_factor, "multiply the size by this between steps")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--patterns", g_opt.patterns, "comma-separated: pairs (every pair, n-1 rounds), ring, one_to_all")
      ->default_str(names_of(kPatternNames, g_opt.patterns))
      ->delimiter(',')
      ->transform(one_of(kPatternNames));
  app.add_option("--level", g_opt.level,
                 "rank: pairs of ranks; node: pairs of nodes, every local rank with the same local rank "
                 "of the other node at once (rail-aligned)")
      ->capture_default_str()
      ->check(one_of({"rank", "node"}));
  app.add_option("--direction", g_opt.direction, "uni (one way at a time), bi (both ways at once) or both")
      ->capture_default_str()
      ->check(one_of({"uni", "bi", "both"}));
  app.add_option("--reference", g_opt.reference, "one_to_all: the reference rank (or node index at --level node)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--slow-factor", g_opt.slow_factor, "a link below this fraction of the median is slow")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  app.add_flag("--fail-slow", g_opt.fail_slow,
               "a slow rank, node or link fails the run (a check per schedule; exit 1), not only a verdict line");
}

void validate_options(const RunInfo& run, CommonOptions&) {
  if (g_opt.min_b > g_opt.max_b)
    throw InputError("-b/--min-bytes " + std::to_string(g_opt.min_b) + " is larger than -e/--max-bytes " +
                     std::to_string(g_opt.max_b));
  if (run.size < 2) throw InputError("dtbench-p2p needs at least 2 ranks (it measures links between them)");
  // Every schedule is built here too, so a layout that cannot run one stops the job before it starts.
  const auto nodes = ranks_of_nodes(run);
  for (LinkPattern p : g_opt.patterns) make_link_schedule(p, LinkDirection::uni, g_opt.level == "node", nodes, g_opt.reference);
}

}  // namespace

int main(int argc, char** argv) {
  Suite suite;
  suite.name = "p2p";
  suite.summary = "point-to-point links (every pair, ring, one to all; uni/bidirectional), per link timed and validated";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 8 dtbench-p2p                                  # every pair and the ring, 8 B .. 2 MiB\n"
      "  mpirun -np 16 dtbench-p2p --level node --patterns pairs   # node pairs, rail-aligned\n"
      "  mpirun -np 8 dtbench-p2p --patterns one_to_all --reference 3 -b 1M -e 64M\n"
      "  srun dtbench-p2p --backend nccl -b 64M -e 64M --fail-slow  # acceptance: a slow link fails the job\n"
      "A link's time per iteration is the later of its two ends (each from its own barrier release);\n"
      "GB/s = message bytes / median time (1e9 B). Verdicts compare each rank (node) and link with the\n"
      "matrix's own median at the largest size. The matrix is in <out>/p2p-<run>-links.csv.";
  suite.tables = {{"links", kLinkColumns}};
  suite.faults = {"misroute"};
  suite.add_options = add_options;
  suite.validate = validate_options;
  suite.body = run_links;
  return suite_main(argc, argv, suite);
}
