// libFuzzer target: the idx reader on arbitrary bytes (tests/fuzz/run builds and runs it).
#include "reader_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tapegrad::fuzz::read_idx_bytes(data, size, "/tmp");
  return 0;
}
