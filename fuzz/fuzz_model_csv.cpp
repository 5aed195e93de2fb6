// libFuzzer target: load_model_csv (src/model/model.cpp), the --model CSV of dtbench-ddp/-fsdp.
#include "fuzz_util.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_temp(data, size, "-model.csv");
  fuzz::expect_only_input_errors([&] {
    dtbench::ModelSpec m = dtbench::load_model_csv(path);
    // A model that loads must be usable: sizes computable, names unique and non-empty.
    (void)m.numel();
    (void)m.bytes();
    (void)m.num_layers();
    for (const auto& t : m.tensors)
      if (t.name.empty() || t.shape.empty()) std::abort();
  });
  return 0;
}
