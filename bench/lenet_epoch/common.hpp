// Shared by the two LeNet-5 epoch benchmarks (the data order is tg::shuffled_indices on both sides).
#ifndef TAPEGRAD_BENCH_LENET_COMMON_HPP
#define TAPEGRAD_BENCH_LENET_COMMON_HPP

#include <malloc.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace bench {

// Both programs keep large per-step buffers in the heap (the same glibc settings on both sides).
inline void same_allocator_settings() {
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace bench

#endif
