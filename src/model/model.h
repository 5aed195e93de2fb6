#pragma once
// Model specs: the named tensors a training framework would register, in registration order.
// The suites plan their buffers (BucketPlan, ShardLayout) from a ModelSpec, so a preset and a
// CSV file describe the same thing: names, shapes, dtype and the flags the planners look at.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace dtbench {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::f32;
  bool expert = false;            // reduced over the expert data-parallel group (Megatron allreduce=False)
  bool shared_embedding = false;  // tied word embedding: DistOpt gives it a bucket of its own
  int layer = -1;                 // transformer layer index; -1 = outside the layers (embedding, final norm)

  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
};

bool operator==(const TensorSpec& a, const TensorSpec& b);
inline bool operator!=(const TensorSpec& a, const TensorSpec& b) { return !(a == b); }

struct ModelSpec {
  std::string name;
  std::vector<TensorSpec> tensors;  // registration order (the planners walk it backwards)

  int64_t numel() const;
  size_t bytes() const;
  int num_layers() const;  // 1 + the largest layer index (0 when no tensor is in a layer)
};

// The few numbers a transformer preset is generated from.
struct PresetShape {
  int64_t hidden = 0;
  int layers = 0;
  int64_t ffn = 0;            // MLP inner size (per projection when gated)
  int64_t vocab = 0;
  int64_t max_positions = 0;  // learned position-embedding rows; 0 = rotary (no tensor)
  bool tied_embedding = true; // output layer reuses the word embedding (shared_embedding=true)
  bool gated_mlp = false;     // SwiGLU: fc1 holds gate and up projections, 2*ffn rows
  bool rms_norm = false;      // RMSNorm: weight only, no bias
  bool bias = true;           // linear layers carry biases
};

// Names accepted by make_preset / --model.
std::vector<std::string> preset_names();

// The shape of a named preset; InputError naming --model (and the known names) when unknown.
PresetShape preset_shape(const std::string& name);

// Builds the tensors of a GPT/Llama-style transformer with Megatron's fused layouts
// (qkv as one [3h, h] weight, gated fc1 as one [2*ffn, h] weight), weights stored [out, in].
ModelSpec build_transformer(const std::string& name, const PresetShape& shape, DType dtype);

// A preset, optionally scaled down: layers_override > 0 replaces the layer count,
// hidden_override > 0 replaces hidden and scales ffn by the preset's ffn/hidden ratio.
ModelSpec make_preset(const std::string& name, DType dtype, int layers_override = 0,
                      int hidden_override = 0);

// CSV with header name,shape,dtype,expert[,shared_embedding][,layer] (any column order);
// shape "4096x1024" or "4096"; booleans 0/1/true/false; '#' lines and blank lines skipped.
// Any malformed content throws InputError "<path>:<line>: <what>".
ModelSpec load_model_csv(const std::string& path);

// Writes the format load_model_csv reads (all six columns). RuntimeError when it cannot write.
void write_model_csv(const ModelSpec& model, const std::string& path);

}  // namespace dtbench
