#pragma once
// Missing and unexpected keys at load (Megatron's dist_checkpointing/validation.py StrictHandling).
#include <set>
#include <string>
#include <vector>

namespace dtbench {

enum class StrictHandling {
  assume_ok_unexpected,  // no check; the loader fails on an unexpected key
  log_unexpected,
  log_all,
  raise_unexpected,
  raise_all,
  return_unexpected,
  return_all,
  ignore_all,
};
const char* strict_handling_name(StrictHandling mode);
bool parse_strict_handling(const std::string& s, StrictHandling* out);
std::vector<std::string> strict_handling_names();  // every mode's name, in declaration order

struct StrictOutcome {
  std::set<std::string> keys_to_load;  // requested here minus unexpected (all of them for assume_ok)
  std::set<std::string> missing;       // saved, requested by no rank (*_all modes only)
  std::set<std::string> unexpected;    // requested here, not saved
  std::string warning;                 // log_* modes with a mismatch: the line to log
  bool returns_mismatch = false;       // return_* modes: load hands missing/unexpected back
};
// requested_here: this rank's keys; requested_anywhere: every rank's (for missing keys).
// raise_* modes throw CheckpointingError listing "Unexpected keys" / "Missing keys".
StrictOutcome apply_strict_handling(StrictHandling mode, const std::set<std::string>& requested_here,
                                    const std::set<std::string>& requested_anywhere,
                                    const std::set<std::string>& saved);

}  // namespace dtbench
