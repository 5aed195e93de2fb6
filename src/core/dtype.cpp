#include "core/dtype.h"

namespace dtbench {

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "fp32" || s == "float32" || s == "f32" || s == "float") *out = DType::f32;
  else if (s == "bf16" || s == "bfloat16") *out = DType::bf16;
  else if (s == "fp16" || s == "half" || s == "f16" || s == "float16") *out = DType::f16;
  else return false;
  return true;
}

}  // namespace dtbench
