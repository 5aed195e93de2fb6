#include "core/verify.h"

#include <atomic>
#include <sstream>

#include "core/error.h"

namespace dtbench {

double ulp_of_slow(DType dt, double x) {
  int mant_bits = dt == DType::f32 ? 23 : dt == DType::bf16 ? 7 : 10;
  int min_exp = dt == DType::f16 ? -14 : -126;
  double ax = std::fabs(x);
  int e = ax > 0 ? std::ilogb(ax) : min_exp;
  if (e < min_exp) e = min_exp;
  return std::ldexp(1.0, e - mant_bits);
}

FaultSpec parse_fault_spec(const std::string& s) {
  FaultSpec f;
  std::stringstream ss(s);
  std::string item;
  bool first = true;
  while (std::getline(ss, item, ',')) {
    auto eq = item.find('=');
    if (first && eq == std::string::npos) {
      f.kind = item;
      first = false;
      continue;
    }
    first = false;
    if (eq == std::string::npos) throw InputError("--inject-fault: expected key=value, got \"" + item + "\"");
    std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    try {
      size_t used = 0;
      if (key == "rank") {
        f.rank = std::stoi(val, &used);
      } else if (key == "index") {
        f.index = std::stoll(val, &used);
      } else if (key == "op") {
        f.op = val;
        used = val.size();
      } else if (key == "window") {
        f.window = std::stoi(val, &used);
        if (f.window < 0) throw InputError("--inject-fault: window must be >= 0");
      } else if (key == "kind") {
        f.kind = val;
        used = val.size();
      } else {
        throw InputError("--inject-fault: unknown key \"" + key + "\" (kind, rank, op, index, window)");
      }
      if (used != val.size()) throw std::invalid_argument(val);
    } catch (const std::logic_error&) {
      throw InputError("--inject-fault: bad value for " + key + ": \"" + val + "\"");
    }
  }
  if (f.kind.empty()) throw InputError("--inject-fault: missing fault kind (e.g. flip,rank=2)");
  if (f.index < 0) throw InputError("--inject-fault: index must be >= 0");
  // Only flip picks its check by name; a suite's own faults act where the suite documents, so an
  // op= on them would be ignored and the run would PASS untouched.
  if (!f.op.empty() && f.kind != "flip")
    throw InputError("--inject-fault: op= selects the check of a flip; fault \"" + f.kind +
                     "\" takes no op= (see --help for where it acts)");
  if (f.window >= 0 && f.kind != "flip")
    throw InputError("--inject-fault: window= picks the burn-in window of a flip; fault \"" + f.kind + "\" takes none");
  return f;
}

namespace {
std::atomic<bool> g_fault_applied{false};
}  // namespace

void note_fault_applied() { g_fault_applied = true; }
std::atomic<int> g_burn_in_window{0};
void set_burn_in_window(int window) { g_burn_in_window = window; }
int burn_in_window() { return g_burn_in_window.load(); }
bool fault_applied() { return g_fault_applied.load(); }

int64_t flip_target(const FaultSpec& f, int world_rank, const std::string& check, size_t total_n) {
  if (!f.applies("flip", world_rank) || total_n == 0) return -1;
  if (f.window >= 0 && f.window != burn_in_window()) return -1;
  if (!f.op.empty() && check.find(f.op) == std::string::npos) return -1;
  note_fault_applied();
  return size_t(f.index) < total_n ? f.index : int64_t(total_n - 1);
}

void flip_value(DType dt, float& value) {
  // Flip the most significant mantissa bit: a silent-data-corruption look-alike.
  switch (dt) {
    case DType::f32: value = bits_f32(f32_bits(value) ^ 0x00400000u); break;
    case DType::bf16: value = bf16_to_f32(uint16_t(f32_to_bf16(value) ^ 0x0040u)); break;
    case DType::f16: value = f16_to_f32(uint16_t(f32_to_f16(value) ^ 0x0200u)); break;
  }
}

void apply_flip_fault(const FaultSpec& f, int world_rank, const std::string& check, DType dt,
                      std::vector<float>& observed) {
  int64_t i = flip_target(f, world_rank, check, observed.size());
  if (i >= 0) flip_value(dt, observed[size_t(i)]);
}

}  // namespace dtbench
