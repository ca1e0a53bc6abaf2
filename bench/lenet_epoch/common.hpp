// Shared by the two LeNet-5 epoch benchmarks: the data and the shuffled order, identical on both sides.
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

// Fisher-Yates with tapegrad's portable generator, as examples/fashion_mnist shuffles.
inline std::vector<std::size_t> shuffled(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  tapegrad::Generator gen(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[gen.next() % i]);
  return order;
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace bench

#endif
