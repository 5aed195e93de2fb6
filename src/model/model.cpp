#include "model/model.h"

// fccp copies file names with strncpy into a fixed buffer; GCC's -O2 truncation warning about it
// is harmless (the buffer is NUL-terminated right after) and not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-truncation"
#include <libfccp/csv.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>

#include "core/error.h"

namespace dtbench {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool operator==(const TensorSpec& a, const TensorSpec& b) {
  return a.name == b.name && a.shape == b.shape && a.dtype == b.dtype && a.expert == b.expert &&
         a.shared_embedding == b.shared_embedding && a.layer == b.layer;
}

int64_t ModelSpec::numel() const {
  int64_t n = 0;
  for (const TensorSpec& t : tensors) n += t.numel();
  return n;
}

size_t ModelSpec::bytes() const {
  size_t n = 0;
  for (const TensorSpec& t : tensors) n += t.bytes();
  return n;
}

int ModelSpec::num_layers() const {
  int last = -1;
  for (const TensorSpec& t : tensors) last = std::max(last, t.layer);
  return last + 1;
}

// ---------------------------------------------------------------------------------------------
// Presets

namespace {

struct NamedPreset {
  const char* name;
  PresetShape shape;
};

// GPT-2/3 style: LayerNorm with bias, biased linears, learned positions, tied embedding.
// Llama style: RMSNorm, no biases, rotary positions (no tensor), SwiGLU MLP, untied output.
const NamedPreset kPresets[] = {
    {"tiny", {64, 2, 256, 512, 128, true, false, false, true}},
    {"gpt-125m", {768, 12, 3072, 50257, 1024, true, false, false, true}},
    {"gpt-1.3b", {2048, 24, 8192, 50257, 2048, true, false, false, true}},
    {"llama-7b", {4096, 32, 11008, 32000, 0, false, true, true, false}},
};

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

std::string joined_preset_names() {
  std::string out;
  for (const std::string& n : preset_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const NamedPreset& p : kPresets) names.push_back(p.name);
  return names;
}

PresetShape preset_shape(const std::string& name) {
  for (const NamedPreset& p : kPresets)
    if (name == p.name) return p.shape;
  throw InputError("--model: unknown model preset " + in_quotes(name) + " (known: " +
                   joined_preset_names() + "; or give a CSV file)");
}

ModelSpec build_transformer(const std::string& name, const PresetShape& s, DType dtype) {
  if (s.hidden < 1 || s.layers < 1 || s.ffn < 1 || s.vocab < 1 || s.max_positions < 0)
    throw InputError("model " + in_quotes(name) + ": hidden, layers, ffn and vocab must be positive");

  ModelSpec model;
  model.name = name;
  auto add = [&](const std::string& tensor, std::vector<int64_t> shape, int layer) {
    TensorSpec t;
    t.name = tensor;
    t.shape = std::move(shape);
    t.dtype = dtype;
    t.layer = layer;
    model.tensors.push_back(std::move(t));
  };
  auto add_norm = [&](const std::string& prefix, int layer) {
    add(prefix + ".weight", {s.hidden}, layer);
    if (!s.rms_norm) add(prefix + ".bias", {s.hidden}, layer);
  };
  auto add_linear = [&](const std::string& prefix, int64_t out, int64_t in, int layer) {
    add(prefix + ".weight", {out, in}, layer);
    if (s.bias) add(prefix + ".bias", {out}, layer);
  };

  // Registration order of Megatron's GPTModel: embedding, decoder layers, final norm, output.
  add("embedding.word", {s.vocab, s.hidden}, -1);
  model.tensors.back().shared_embedding = s.tied_embedding;
  if (s.max_positions > 0) add("embedding.position", {s.max_positions, s.hidden}, -1);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "layers." + std::to_string(l);
    add_norm(p + ".attn.norm", l);
    add_linear(p + ".attn.qkv", 3 * s.hidden, s.hidden, l);
    add_linear(p + ".attn.proj", s.hidden, s.hidden, l);
    add_norm(p + ".mlp.norm", l);
    add_linear(p + ".mlp.fc1", s.gated_mlp ? 2 * s.ffn : s.ffn, s.hidden, l);
    add_linear(p + ".mlp.fc2", s.hidden, s.ffn, l);
  }
  add_norm("final_norm", -1);
  if (!s.tied_embedding) add("output.weight", {s.vocab, s.hidden}, -1);
  return model;
}

ModelSpec make_preset(const std::string& name, DType dtype, int layers_override,
                      int hidden_override) {
  PresetShape shape = preset_shape(name);
  if (layers_override < 0)
    throw InputError("--layers must be positive (got " + std::to_string(layers_override) + ")");
  if (hidden_override < 0)
    throw InputError("--hidden must be positive (got " + std::to_string(hidden_override) + ")");
  if (layers_override > 0) shape.layers = layers_override;
  if (hidden_override > 0) {
    // Keep the preset's MLP expansion (4x for GPT, 11008/4096 for Llama) at the smaller width.
    shape.ffn = std::max<int64_t>(1, hidden_override * shape.ffn / shape.hidden);
    shape.hidden = hidden_override;
  }
  return build_transformer(name, shape, dtype);
}

// ---------------------------------------------------------------------------------------------
// CSV

namespace {

using ModelCsvReader =
    io::CSVReader<6, io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>,
                  io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;

const char kHeaderHelp[] = "name,shape,dtype,expert[,shared_embedding][,layer]";

[[noreturn]] void fail_at(const std::string& path, unsigned line, const std::string& what) {
  throw InputError(path + ":" + std::to_string(std::max(1u, line)) + ": " + what);
}

// "4096x1024" or "4096": positive decimal dimensions, product within int64.
bool parse_shape(const std::string& text, std::vector<int64_t>* shape) {
  shape->clear();
  int64_t numel = 1;
  size_t pos = 0;
  while (true) {
    size_t end = text.find('x', pos);
    if (end == std::string::npos) end = text.size();
    if (end == pos) return false;
    int64_t dim = 0;
    for (size_t i = pos; i < end; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
      if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10) return false;
      dim = dim * 10 + (text[i] - '0');
    }
    if (dim < 1 || numel > std::numeric_limits<int64_t>::max() / dim) return false;
    numel *= dim;
    shape->push_back(dim);
    if (end == text.size()) return true;
    pos = end + 1;
  }
}

bool parse_bool(std::string text, bool* out) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "0" || text == "false") *out = false;
  else if (text == "1" || text == "true") *out = true;
  else return false;
  return true;
}

bool parse_layer(const std::string& text, int* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < -1 || v > std::numeric_limits<int>::max()) return false;
  *out = static_cast<int>(v);
  return true;
}

// fccp's structural errors, reworded; the caller prefixes path:line.
std::string describe(const io::error::base& e) {
  if (dynamic_cast<const io::error::header_missing*>(&e))
    return std::string("empty file (expected the header ") + kHeaderHelp + ")";
  if (auto* x = dynamic_cast<const io::error::extra_column_in_header*>(&e))
    return "unknown column " + in_quotes(x->column_name) + " in header (expected " + kHeaderHelp + ")";
  if (auto* x = dynamic_cast<const io::error::duplicated_column_in_header*>(&e))
    return "column " + in_quotes(x->column_name) + " appears twice in header";
  if (dynamic_cast<const io::error::too_few_columns*>(&e)) return "too few columns for the header";
  if (dynamic_cast<const io::error::too_many_columns*>(&e)) return "too many columns for the header";
  if (dynamic_cast<const io::error::escaped_string_not_closed*>(&e)) return "unclosed quote";
  if (dynamic_cast<const io::error::line_length_limit_exceeded*>(&e)) return "line too long";
  return e.what();
}

// Quotes a name that the reader would otherwise split, trim or take for a comment.
std::string csv_field(const std::string& s) {
  const bool needs_quotes =
      s.find_first_of(",\"") != std::string::npos ||
      (!s.empty() && (s.front() == '#' || std::isspace(static_cast<unsigned char>(s.front())) ||
                      std::isspace(static_cast<unsigned char>(s.back()))));
  if (!needs_quotes) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

ModelSpec load_model_csv(const std::string& path) {
  std::unique_ptr<ModelCsvReader> csv;
  try {
    csv = std::make_unique<ModelCsvReader>(path);
  } catch (const io::error::can_not_open_file& e) {
    throw InputError(path + ": cannot open model file (" + std::strerror(e.errno_value) + ")");
  }

  ModelSpec model;
  model.name = std::filesystem::path(path).stem().string();
  std::map<std::string, unsigned> line_of_name;
  try {
    csv->read_header(io::ignore_missing_column, "name", "shape", "dtype", "expert",
                     "shared_embedding", "layer");
    for (const char* required : {"name", "shape", "dtype", "expert"})
      if (!csv->has_column(required))
        fail_at(path, csv->get_file_line(),
                "missing column " + in_quotes(required) + " in header (expected " + kHeaderHelp + ")");

    std::string name, shape, dtype, expert, shared, layer;
    while (true) {
      shared = "0";  // optional columns keep these when absent
      layer = "-1";
      if (!csv->read_row(name, shape, dtype, expert, shared, layer)) break;
      const unsigned line = csv->get_file_line();
      TensorSpec t;
      t.name = name;
      if (t.name.empty()) fail_at(path, line, "empty tensor name");
      if (!parse_shape(shape, &t.shape))
        fail_at(path, line, "bad shape " + in_quotes(shape) + " (expected positive dims like 4096x1024)");
      if (!parse_dtype(dtype, &t.dtype))
        fail_at(path, line, "unknown dtype " + in_quotes(dtype) + " (expected fp32, bf16 or fp16)");
      if (!parse_bool(expert, &t.expert))
        fail_at(path, line, "bad expert value " + in_quotes(expert) + " (expected 0/1/true/false)");
      if (!parse_bool(shared, &t.shared_embedding))
        fail_at(path, line,
                "bad shared_embedding value " + in_quotes(shared) + " (expected 0/1/true/false)");
      if (!parse_layer(layer, &t.layer))
        fail_at(path, line, "bad layer " + in_quotes(layer) + " (expected an integer >= -1)");
      auto [it, inserted] = line_of_name.emplace(t.name, line);
      if (!inserted)
        fail_at(path, line,
                "duplicate tensor name " + in_quotes(t.name) + " (first on line " +
                    std::to_string(it->second) + ")");
      model.tensors.push_back(std::move(t));
    }
    if (model.tensors.empty()) fail_at(path, csv->get_file_line(), "no tensors after the header");
  } catch (const io::error::base& e) {
    fail_at(path, csv->get_file_line(), describe(e));
  }
  return model;
}

void write_model_csv(const ModelSpec& model, const std::string& path) {
  std::ofstream out(path);
  out << "name,shape,dtype,expert,shared_embedding,layer\n";
  for (const TensorSpec& t : model.tensors) {
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    out << csv_field(t.name) << ',' << shape << ',' << dtype_name(t.dtype) << ',' << int(t.expert)
        << ',' << int(t.shared_embedding) << ',' << t.layer << '\n';
  }
  out.flush();
  if (!out) throw RuntimeError(path + ": cannot write model file");
}

}  // namespace dtbench
