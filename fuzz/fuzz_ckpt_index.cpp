// libFuzzer target: CheckpointIndex::parse (src/ckpt/index_format.cpp), the global index file of a
// dtbench-ckpt checkpoint. Rejections are InputError (malformed) or CheckpointingError (inconsistent).
#include "fuzz_util.h"
#include "ckpt/sharded_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    dtbench::CheckpointIndex idx = dtbench::CheckpointIndex::parse(text, "fuzz-index");
    (void)idx;
  } catch (const dtbench::InputError&) {
  } catch (const dtbench::CheckpointingError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
