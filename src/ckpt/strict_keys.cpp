#include "ckpt/strict_keys.h"

#include "ckpt/shapes.h"

namespace dtbench {

// --- strict handling -----------------------------------------------------------------------------
namespace {
constexpr std::pair<StrictHandling, const char*> kStrictNames[] = {
    {StrictHandling::assume_ok_unexpected, "assume_ok_unexpected"},
    {StrictHandling::log_unexpected, "log_unexpected"},
    {StrictHandling::log_all, "log_all"},
    {StrictHandling::raise_unexpected, "raise_unexpected"},
    {StrictHandling::raise_all, "raise_all"},
    {StrictHandling::return_unexpected, "return_unexpected"},
    {StrictHandling::return_all, "return_all"},
    {StrictHandling::ignore_all, "ignore_all"},
};

std::string join_keys(const std::set<std::string>& keys) {
  std::string s;
  for (const std::string& k : keys) s += (s.empty() ? "" : ", ") + k;
  return s;
}
}  // namespace

const char* strict_handling_name(StrictHandling mode) {
  for (const auto& [m, name] : kStrictNames)
    if (m == mode) return name;
  return "?";
}

bool parse_strict_handling(const std::string& s, StrictHandling* out) {
  for (const auto& [m, name] : kStrictNames)
    if (s == name) {
      *out = m;
      return true;
    }
  return false;
}

std::vector<std::string> strict_handling_names() {
  std::vector<std::string> names;
  for (const auto& [m, name] : kStrictNames) names.push_back(name);
  return names;
}

StrictOutcome apply_strict_handling(StrictHandling mode, const std::set<std::string>& requested_here,
                                    const std::set<std::string>& requested_anywhere,
                                    const std::set<std::string>& saved) {
  StrictOutcome out;
  if (mode == StrictHandling::assume_ok_unexpected) {
    out.keys_to_load = requested_here;
    return out;
  }
  for (const std::string& k : requested_here) (saved.count(k) ? out.keys_to_load : out.unexpected).insert(k);
  // Missing keys need every rank's request (a metadata exchange), so only *_all modes look.
  const bool check_missing = mode == StrictHandling::log_all || mode == StrictHandling::raise_all ||
                             mode == StrictHandling::return_all || mode == StrictHandling::ignore_all;
  if (check_missing)
    for (const std::string& k : saved)
      if (!requested_anywhere.count(k) && !requested_here.count(k)) out.missing.insert(k);

  std::string message;
  if (!out.missing.empty())
    message += "Missing keys (in the checkpoint, requested by no rank): " + join_keys(out.missing) + ". ";
  if (!out.unexpected.empty())
    message += "Unexpected keys (requested on this rank, not in the checkpoint): " +
               join_keys(out.unexpected) + ".";
  switch (mode) {
    case StrictHandling::ignore_all:
      out.missing.clear();
      out.unexpected.clear();
      break;
    case StrictHandling::raise_unexpected:
    case StrictHandling::raise_all:
      if (!message.empty()) throw CheckpointingError(message);
      break;
    case StrictHandling::log_unexpected:
    case StrictHandling::log_all:
      out.warning = message;
      break;
    case StrictHandling::return_unexpected:
    case StrictHandling::return_all:
      out.returns_mismatch = true;
      break;
    case StrictHandling::assume_ok_unexpected:
      break;
  }
  return out;
}

}  // namespace dtbench
