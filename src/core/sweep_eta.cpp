#include "core/sweep_eta.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace dtbench {

SweepEta::SweepEta(std::vector<double> weights, double latency_weight) : weights_(std::move(weights)) {
  for (double& w : weights_) {
    w += latency_weight;
    total_weight_ += w;
  }
}

double SweepEta::step_done(size_t i, double elapsed_s) {
  if (i >= weights_.size()) return 0;
  // Steps may be skipped (a size below one element per rank): count what ran up to i.
  done_weight_ = 0;
  for (size_t k = 0; k <= i; ++k) done_weight_ += weights_[k];
  done_ = i + 1;
  elapsed_s_ = elapsed_s;
  left_s_ = done_weight_ > 0 ? elapsed_s * (total_weight_ - done_weight_) / done_weight_ : 0;
  return left_s_;
}

std::string SweepEta::text() const {
  return std::to_string(done_) + "/" + std::to_string(weights_.size()) + ", ETA " + format_duration(left_s_);
}

std::optional<std::string> SweepEta::deadline_warning(double deadline_s, size_t min_steps, double min_elapsed_s) {
  if (warned_ || done_ < min_steps || elapsed_s_ < min_elapsed_s || done_ == weights_.size()) return std::nullopt;
  if (elapsed_s_ + left_s_ <= deadline_s || left_s_ < 1) return std::nullopt;
  warned_ = true;
  return "the sweep needs about " + format_duration(left_s_) + " more (estimated from " + std::to_string(done_) +
         " of " + std::to_string(weights_.size()) + " steps) but the job ends in " +
         format_duration(std::max(0.0, deadline_s - elapsed_s_)) +
         ": the run will be cut and INCOMPLETE; lower the largest size (-e) or raise the time limit";
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const long s = std::lround(seconds);
  char b[32];
  if (s < 60) std::snprintf(b, sizeof(b), "%lds", s);
  else if (s < 3600) std::snprintf(b, sizeof(b), "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(b, sizeof(b), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return b;
}

std::optional<double> seconds_to_deadline() {
  const char* v = std::getenv("DTBENCH_DEADLINE");
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(t > 0)) return std::nullopt;
  return t - double(std::time(nullptr));
}

}  // namespace dtbench
