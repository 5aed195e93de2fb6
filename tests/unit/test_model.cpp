// Model presets (sizes checked against the published parameter counts and the textbook
// per-layer formula) and the CSV loader (round trip, every malformed case names file:line).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model.h"

namespace dtbench {
namespace {

const TensorSpec& find(const ModelSpec& m, const std::string& name) {
  for (const TensorSpec& t : m.tensors)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

int count_shared(const ModelSpec& m) {
  return static_cast<int>(std::count_if(m.tensors.begin(), m.tensors.end(),
                                        [](const TensorSpec& t) { return t.shared_embedding; }));
}

// GPT with LayerNorm and biases: per layer 4h^2 + 2h*ffn (weights) + 9h + ffn (biases, norms);
// 12h^2 + 13h when ffn = 4h. Plus word and position embeddings and the final norm.
int64_t gpt_numel(int64_t h, int64_t layers, int64_t ffn, int64_t vocab, int64_t positions) {
  return layers * (4 * h * h + 2 * h * ffn + 9 * h + ffn) + vocab * h + positions * h + 2 * h;
}

TEST(ModelPresets, Gpt125mHasGpt2SmallParameterCount) {
  const ModelSpec m = make_preset("gpt-125m", DType::bf16);
  EXPECT_EQ(m.numel(), 124'439'808);  // GPT-2 small as published (tied output layer)
  EXPECT_GE(m.numel(), 124'000'000);
  EXPECT_LE(m.numel(), 125'000'000);
  EXPECT_EQ(m.numel(), gpt_numel(768, 12, 3072, 50257, 1024));
  EXPECT_EQ(m.bytes(), size_t(2) * m.numel());
  EXPECT_EQ(m.num_layers(), 12);
}

TEST(ModelPresets, Gpt1p3bAndLlama7bSizes) {
  const ModelSpec gpt = make_preset("gpt-1.3b", DType::bf16);
  EXPECT_EQ(gpt.numel(), gpt_numel(2048, 24, 8192, 50257, 2048));
  EXPECT_GE(gpt.numel(), 1'300'000'000);
  EXPECT_LE(gpt.numel(), 1'350'000'000);

  const ModelSpec llama = make_preset("llama-7b", DType::bf16);
  EXPECT_EQ(llama.numel(), 6'738'415'616);  // LLaMA-7B as published
  EXPECT_EQ(llama.num_layers(), 32);
}

TEST(ModelPresets, TinyPresetForTests) {
  const ModelSpec m = make_preset("tiny", DType::f32);
  EXPECT_EQ(m.num_layers(), 2);
  EXPECT_EQ(m.numel(), gpt_numel(64, 2, 256, 512, 128));
  EXPECT_EQ(find(m, "embedding.word").shape, (std::vector<int64_t>{512, 64}));
}

TEST(ModelPresets, NamesShapesAndFlags) {
  const ModelSpec gpt = make_preset("gpt-125m", DType::f16);
  EXPECT_EQ(gpt.tensors.front().name, "embedding.word");  // registration order
  EXPECT_TRUE(find(gpt, "embedding.word").shared_embedding);
  EXPECT_EQ(count_shared(gpt), 1);
  EXPECT_EQ(find(gpt, "embedding.word").layer, -1);
  EXPECT_EQ(find(gpt, "final_norm.weight").layer, -1);
  const TensorSpec& qkv = find(gpt, "layers.3.attn.qkv.weight");
  EXPECT_EQ(qkv.shape, (std::vector<int64_t>{3 * 768, 768}));
  EXPECT_EQ(qkv.layer, 3);
  EXPECT_EQ(find(gpt, "layers.11.mlp.fc2.weight").shape, (std::vector<int64_t>{768, 3072}));
  for (const TensorSpec& t : gpt.tensors) {
    EXPECT_EQ(t.dtype, DType::f16) << t.name;
    EXPECT_FALSE(t.expert) << t.name;
  }

  const ModelSpec llama = make_preset("llama-7b", DType::bf16);
  EXPECT_EQ(count_shared(llama), 0);  // untied: a separate output layer
  EXPECT_EQ(find(llama, "output.weight").shape, (std::vector<int64_t>{32000, 4096}));
  EXPECT_EQ(llama.tensors.back().name, "output.weight");
  EXPECT_EQ(find(llama, "layers.0.mlp.fc1.weight").shape,
            (std::vector<int64_t>{2 * 11008, 4096}));  // gate and up projections fused
  for (const TensorSpec& t : llama.tensors)  // RMSNorm, no biases anywhere
    EXPECT_EQ(t.name.find(".bias"), std::string::npos) << t.name;
}

TEST(ModelPresets, OverridesScaleTheModelDown) {
  const ModelSpec gpt = make_preset("gpt-125m", DType::bf16, 2, 256);
  EXPECT_EQ(gpt.num_layers(), 2);
  EXPECT_EQ(find(gpt, "layers.1.mlp.fc1.weight").shape, (std::vector<int64_t>{4 * 256, 256}));
  EXPECT_EQ(find(gpt, "embedding.word").shape, (std::vector<int64_t>{50257, 256}));

  const ModelSpec llama = make_preset("llama-7b", DType::bf16, 0, 1024);
  const int64_t ffn = 1024 * 11008 / 4096;  // the preset's ffn/hidden ratio
  EXPECT_EQ(llama.num_layers(), 32);
  EXPECT_EQ(find(llama, "layers.0.mlp.fc1.weight").shape, (std::vector<int64_t>{2 * ffn, 1024}));
  EXPECT_EQ(find(llama, "layers.0.mlp.fc2.weight").shape, (std::vector<int64_t>{1024, ffn}));

  EXPECT_THROW(make_preset("tiny", DType::bf16, -1), InputError);
  EXPECT_THROW(make_preset("tiny", DType::bf16, 0, -64), InputError);
}

TEST(ModelPresets, UnknownPresetNamesTheFlagAndTheKnownNames) {
  try {
    make_preset("gpt-9000", DType::bf16);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("gpt-9000"), std::string::npos) << msg;
    for (const char* known : {"tiny", "gpt-125m", "gpt-1.3b", "llama-7b"})
      EXPECT_NE(msg.find(known), std::string::npos) << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// CSV

class ModelCsv : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dtbench_test_model_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }

  std::string load_error(const std::string& path) {
    try {
      load_model_csv(path);
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no InputError)";
  }

  std::filesystem::path dir_;
};

TEST_F(ModelCsv, RoundTripKeepsEveryField) {
  ModelSpec model = make_preset("tiny", DType::bf16);
  TensorSpec expert;
  expert.name = "layers.1.mlp.experts.0.fc1.weight";
  expert.shape = {256, 64};
  expert.dtype = DType::f32;
  expert.expert = true;
  expert.layer = 1;
  model.tensors.push_back(expert);
  TensorSpec odd = expert;
  odd.name = "odd, \"quoted\" name";
  odd.shape = {3};
  odd.expert = false;
  odd.dtype = DType::f16;
  model.tensors.push_back(odd);

  const std::string path = (dir_ / "tiny.csv").string();
  write_model_csv(model, path);
  const ModelSpec loaded = load_model_csv(path);
  EXPECT_EQ(loaded.name, "tiny");
  EXPECT_EQ(loaded.tensors, model.tensors);
  EXPECT_EQ(loaded.numel(), model.numel());
}

TEST_F(ModelCsv, OptionalColumnsCommentsAndAnyColumnOrder) {
  const std::string path = write("m.csv",
                                 "# exported by hand\n"
                                 "shape, name ,dtype,expert\n"
                                 "\n"
                                 "4096x1024, w ,bf16,true\n"
                                 "4096,b,fp32,0\n");
  const ModelSpec m = load_model_csv(path);
  ASSERT_EQ(m.tensors.size(), 2u);
  EXPECT_EQ(m.tensors[0].name, "w");
  EXPECT_EQ(m.tensors[0].shape, (std::vector<int64_t>{4096, 1024}));
  EXPECT_EQ(m.tensors[0].dtype, DType::bf16);
  EXPECT_TRUE(m.tensors[0].expert);
  EXPECT_FALSE(m.tensors[0].shared_embedding);
  EXPECT_EQ(m.tensors[0].layer, -1);
  EXPECT_EQ(m.tensors[1].shape, (std::vector<int64_t>{4096}));
  EXPECT_EQ(m.tensors[1].dtype, DType::f32);
  EXPECT_FALSE(m.tensors[1].expert);
}

TEST_F(ModelCsv, EveryMalformedFileNamesTheLine) {
  const std::string header = "name,shape,dtype,expert,shared_embedding,layer\n";
  const std::string good = "a,4x4,bf16,0,0,0\n";
  struct Case {
    std::string content;
    int line;
    std::string says;
  };
  const Case cases[] = {
      {header + good + "b,40x,bf16,0,0,0\n", 3, "bad shape \"40x\""},
      {header + "b,4x0,bf16,0,0,0\n", 2, "bad shape \"4x0\""},
      {header + "b,-4,bf16,0,0,0\n", 2, "bad shape \"-4\""},
      {header + "b,4xx4,bf16,0,0,0\n", 2, "bad shape"},
      {header + "b,,bf16,0,0,0\n", 2, "bad shape \"\""},
      {header + "b,99999999999x99999999999,bf16,0,0,0\n", 2, "bad shape"},
      {header + good + good, 3, "duplicate tensor name \"a\" (first on line 2)"},
      {header + "b,4,fp8,0,0,0\n", 2, "unknown dtype \"fp8\""},
      {header + "b,4,bf16,maybe,0,0\n", 2, "bad expert value \"maybe\""},
      {header + "b,4,bf16,0,2,0\n", 2, "bad shared_embedding value \"2\""},
      {header + "b,4,bf16,0,0,x\n", 2, "bad layer \"x\""},
      {header + "b,4,bf16,0,0,-2\n", 2, "bad layer \"-2\""},
      {header + ",4,bf16,0,0,0\n", 2, "empty tensor name"},
      {"name,shape,expert\nb,4,0\n", 1, "missing column \"dtype\""},
      {"name,shape,dtype,expert,color\n", 1, "unknown column \"color\""},
      {"name,shape,dtype,dtype,expert\n", 1, "column \"dtype\" appears twice"},
      {"", 1, "empty file"},
      {header, 1, "no tensors"},
      {header + good + "b,4,bf16,0,0,0,extra\n", 3, "too many columns"},
      {header + "b,4,bf16\n", 2, "too few columns"},
      {header + "\"b,4,bf16,0,0,0\n", 2, "unclosed quote"},
  };
  for (const Case& c : cases) {
    const std::string path = write("model.csv", c.content);
    const std::string msg = load_error(path);
    SCOPED_TRACE(c.content);
    EXPECT_EQ(msg.rfind(path + ":" + std::to_string(c.line) + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << msg;
  }
}

TEST_F(ModelCsv, MissingFileNamesTheFile) {
  const std::string path = (dir_ / "does_not_exist.csv").string();
  const std::string msg = load_error(path);
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
}

}  // namespace
}  // namespace dtbench
