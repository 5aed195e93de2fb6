#pragma once
// The sections of dtbench-report's page, in page order, each drawn from the rows its suite writes:
//   runs           every report's metadata and check verdicts, then every failed check;
//   coll           busbw vs message size, one plot per collective and dtype, one line per run;
//   ddp            bucket-size sweep: step time and exposed comm vs bucket size, best size marked;
//   fsdp           step time prefetch off/on, overlap efficiency, AG/RS busbw per unit size;
//   ckpt           save timeline: blocking / background write / until commit, one lane per save;
//   ep             all-to-all-v vs all-to-all, two-level grad sync vs one flat all-reduce (bar pairs);
//   other metrics  every row no plot used, in a table.
// Every perf row is offered to the plotting sections (runs in the order given, file by file); take()
// keeps what the section's plots need and returns true when the row is drawn and so need not be
// listed under other metrics. Each section takes only rows of its own suite. html() renders the
// section once every row is in; plot ids come from unique_id(), so the sections must render in page
// order for the ids to stay the same from one report to the next.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/perf_csv.h"
#include "svg_plot.h"

namespace dtbench::report {

// The runs table (with an INCOMPLETE mark for a report without its end-of-run line) and the failed
// checks (the first 50); `failed_checks` and `incomplete_reports` get their numbers.
std::string runs_section(const std::vector<RunData>& data, int* failed_checks, int* incomplete_reports);

// dtbench-coll: busbw vs message size per collective and dtype, a line per run. A file that holds
// several variants of a plot (in place and out of place, layouts) gets a line per variant.
class CollSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  const PerfFile* variants_of_ = nullptr;               // the file `variants_` was counted in
  std::map<std::string, std::set<std::string>> variants_;  // plot -> in_place|redop|layout
  Ordered<Ordered<Series>> bw_;                         // plot -> series
};

// dtbench-ddp --bucket-sweep: step time (or grad sync time) and exposed comm per bucket cap, a plot
// per dtype, lines per run and configuration, the best size marked.
class DdpSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  struct SweepLine {
    Series step, exposed, comm;
    std::vector<double> best;  // the suite's own best_bucket_size verdicts
    size_t run = 0;            // colour
  };
  Ordered<Ordered<SweepLine>> sweep_;  // dtype -> run and configuration -> lines
};

// dtbench-fsdp: step time prefetch off / on and overlap efficiency (bars), unit all-gather and
// reduce-scatter busbw next to plain collectives (lines).
class FsdpSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  Ordered<Ordered<std::vector<double>>> step_, efficiency_;  // group -> series -> values
  Ordered<Ordered<Series>> busbw_;                           // plot -> series
};

// dtbench-ckpt: one timeline lane per save, or per case from the medians over saves in older reports.
class CkptSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  using Metrics = std::map<std::string, std::vector<double>>;  // metric -> values
  Ordered<Metrics> lanes_, medians_;                           // lane -> metrics
  std::map<std::string, uint64_t> median_bytes_;               // lane -> checkpoint bytes
};

// dtbench-ep: dispatch all-to-all-v vs all-to-all, two-level grad sync vs one flat all-reduce.
class EpSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  Ordered<Ordered<std::vector<double>>> a2a_, sync_;  // group -> series -> values
  std::map<std::string, std::vector<double>> flat_;   // run|dtype -> flat all-reduce times
};

// dtbench-p2p: per run file and schedule, a source x destination heat map of the links' GB/s at the
// largest size (from the links CSV beside the perf CSV), coloured against the matrix's own median
// as dtbench-p2p judges it, links with wrong data framed. Takes every p2p perf row (they summarise
// the matrix the maps show).
class P2pSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  std::vector<std::pair<const RunData*, const PerfFile*>> files_;
};

// Per-rank time bars from the ranks CSV beside each perf CSV: per run and suite, for the timed row
// whose slowest rank stands out most (highest straggler score), each rank's own median time, the
// straggler's bar in its own colour, node names next to the ranks.
class RanksSection {
 public:
  void take(const RunData& d, const PerfFile& f);
  std::string html(size_t* nplots);

 private:
  std::vector<std::pair<const RunData*, const PerfFile*>> files_;
};

// make bench-peers' PEERS_CSV (suite "peers"): per comparison the speed ratio (peer time / dtbench
// time, > 1: dtbench faster) as a bar, grouped by the peer suite (coll, ddp, ckpt, p2p).
class PeersSection {
 public:
  bool take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r);
  std::string html(size_t* nplots);

 private:
  Ordered<Ordered<Ordered<std::vector<double>>>> ratio_;  // peer suite -> case -> run -> ratios
};

// Every timed or valued row that the plotting sections did not take, in a table.
class OtherSection {
 public:
  void take(const RunData& d, const PerfRecord& r);
  std::string html() const;

 private:
  struct Row {
    const RunData* run;
    const PerfRecord* r;
  };
  std::vector<Row> rows_;
};

}  // namespace dtbench::report
