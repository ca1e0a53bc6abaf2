// Intra-op parallelism: batched kernels split their images over a pool of threads.
#ifndef TAPEGRAD_CORE_PARALLEL_HPP
#define TAPEGRAD_CORE_PARALLEL_HPP

#include <cstddef>
#include <functional>
#include <memory>

namespace tapegrad {

namespace detail {
struct ThreadPool;
}

// While alive, tapegrad's batched kernels run on this thread split their work image by image (or
// plane by plane) over `threads` threads, this one included: batched matrix products,
// convolutions and their gradients, im2col/col2im and pooling. OpenBLAS runs on one thread
// meanwhile (its previous setting comes back after; the setting is process-wide), so the two never
// oversubscribe the cores. Each image is computed by one thread in the same order of operations
// (a convolution's weight gradient sums fixed blocks of images); a single large matrix product
// is split by panels of 64 rows or columns, which OpenBLAS computes element by element as in one
// call; large elementwise ops and optimizer updates are split by chunks. Results are bitwise those of one
// thread with OpenBLAS on one thread (tested).
// Guards nest; the innermost applies. Other threads are unaffected.
class Parallel {
 public:
  explicit Parallel(int threads);
  ~Parallel();
  Parallel(const Parallel&) = delete;
  Parallel& operator=(const Parallel&) = delete;

 private:
  std::unique_ptr<detail::ThreadPool> pool_;
  detail::ThreadPool* previous_;
  int previous_blas_threads_;
};

namespace detail {
// Calls f(begin, end) on disjoint ranges covering [0, n): split over the active tg::Parallel
// pool of this thread, or f(0, n) on this thread when there is none or n < 2. Returns when all
// ranges are done; an exception thrown by f is rethrown here.
void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& f);
// Whether a tg::Parallel pool of two threads or more is active on this thread.
bool parallel_active();

// Elements per task when a loop over independent elements (elementwise ops, optimizer updates)
// is split over the threads; shorter loops run on the calling thread alone. Each element is
// computed alone, so any split gives the same bits.
constexpr std::size_t element_chunk = std::size_t(1) << 15;

// Calls f(begin, end) over [0, n): in chunks of element_chunk over the tg::Parallel threads when
// n spans two chunks or more, else once on this thread.
template <class F>
void parallel_elements(std::size_t n, F f) {
  if (n < 2 * element_chunk || !parallel_active()) {
    f(std::size_t(0), n);
    return;
  }
  parallel_for((n + element_chunk - 1) / element_chunk, [&](std::size_t first, std::size_t last) {
    f(first * element_chunk, last * element_chunk < n ? last * element_chunk : n);
  });
}
}  // namespace detail

}  // namespace tapegrad

#endif
