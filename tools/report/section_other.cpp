// The other-metrics section of dtbench-report (see sections.h).
#include <sstream>

#include "sections.h"

namespace dtbench::report {

void OtherSection::take(const RunData& d, const PerfRecord& r) {
  if ((!r.metric.empty() && r.has_value) || r.timed()) rows_.push_back({&d, &r});
}

std::string OtherSection::html() const {
  if (rows_.empty()) return "";  // every row was drawn in a plot
  std::ostringstream o;
  o << "<section id=\"sec-other\">\n<h2>Other metrics</h2>\n<table><tr><th>run</th><th>suite</th><th>op</th>"
       "<th>case</th><th>metric</th><th>value</th><th>unit</th><th>bytes</th></tr>\n";
  for (auto& row : rows_) {
    const PerfRecord& r = *row.r;
    bool m = !r.metric.empty();
    o << "<tr><td>" << esc(row.run->label) << "</td><td>" << esc(r.suite) << "</td><td>" << esc(r.op) << "</td><td>"
      << esc(r.case_name) << "</td><td>" << esc(m ? r.metric : "median time") << "</td><td>"
      << num(m ? r.value : r.time_med_us, 6) << "</td><td>" << esc(m ? r.unit : "us") << "</td><td>" << r.bytes
      << "</td></tr>\n";
  }
  o << "</table>\n</section>\n";
  return o.str();
}

}  // namespace dtbench::report
