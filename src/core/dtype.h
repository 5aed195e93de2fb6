#pragma once
// Element types dtbench moves: fp32, bf16, fp16 (16-bit types are stored as raw uint16_t bits).
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../kernels/element_math.h"

namespace dtbench {

enum class DType { f32, bf16, f16 };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }

// The dtype code of kernels/ (0 fp32, 1 bf16, 2 fp16).
inline int dtype_code(DType t) { return t == DType::f32 ? 0 : t == DType::bf16 ? 1 : 2; }

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "fp32";
    case DType::bf16: return "bf16";
    case DType::f16: return "fp16";
  }
  return "?";
}

// Parses "fp32|float32|f32", "bf16|bfloat16", "fp16|half|f16"; returns false on anything else.
bool parse_dtype(const std::string& s, DType* out);

// Rounds an fp32 value to the given type and back (the value a buffer of that type would hold).
inline float round_to(DType t, float v) {
  switch (t) {
    case DType::f32: return v;
    case DType::bf16: return bf16_to_f32(f32_to_bf16(v));
    case DType::f16: return f16_to_f32(f32_to_f16(v));
  }
  return v;
}

// Reads element i of a typed array as fp32 / writes fp32 into element i (rounding to nearest even).
inline float load_elem(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
  return 0;
}

inline void store_elem(DType t, void* p, size_t i, float v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = v; break;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    case DType::f16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
  }
}

}  // namespace dtbench
