// Intra-op parallelism: kernels split their work, in pieces fixed by the shapes, over a pool of threads.
#ifndef TAPEGRAD_CORE_PARALLEL_HPP
#define TAPEGRAD_CORE_PARALLEL_HPP

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>

namespace tapegrad {

namespace detail {
struct ThreadPool;
}

// Threads OpenBLAS uses for matrix products (a process-wide setting). tapegrad's own kernels run
// on the calling thread, or split over the threads of a tg::Parallel guard.
void set_num_threads(int threads);
int num_threads();

// While alive, tapegrad's batched kernels run on this thread split their work over `threads`
// threads, this one included: batched matrix products, convolutions and their gradients,
// im2col/col2im, pooling, a single large matrix product, large elementwise ops and optimizer
// updates. OpenBLAS runs on one thread meanwhile (its previous setting comes back after; the
// setting is process-wide), so the two never oversubscribe the cores.
// Results are bitwise those of one thread with OpenBLAS on one thread, by construction: the work
// is cut into pieces that depend on the shapes alone (one image or plane, a fixed block of images
// for a convolution's weight gradient, a fixed panel of a large product, a fixed chunk of
// elements), each computed by one call in one order of operations; one thread computes the same
// pieces in sequence. This holds whatever kernels OpenBLAS or libxsmm pick on the host (tested).
// Guards nest; the innermost applies. Other threads' work is not split, but OpenBLAS's thread
// count is one setting for the whole process: guards alive on several threads at once must end
// in the reverse order of their start, or one may restore the count under another.
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
  bool previously_guarded_;
};

namespace detail {
// Calls f(begin, end) on disjoint ranges covering [0, n): split over the active tg::Parallel
// pool of this thread, or f(0, n) on this thread when there is none or n < 2. Returns when all
// ranges are done; an exception thrown by f is rethrown here. The ranges depend on the thread
// count: callers make each item's result independent of the range that holds it.
void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& f);
// Whether a tg::Parallel pool of two threads or more is active on this thread.
bool parallel_active();
// Whether a tg::Parallel guard is alive on this thread, or this thread is one of a pool's workers:
// then kernels choose by shape alone, not by OpenBLAS's (process-wide) thread count.
bool parallel_guarded();

// Elements per piece of a loop over independent elements (elementwise ops, optimizer updates).
constexpr std::size_t element_chunk = std::size_t(1) << 15;

// Calls f(begin, end) on the chunks of element_chunk elements that cover [0, n), the last one
// short: over the tg::Parallel threads when there are two chunks or more, else on this thread,
// chunk by chunk in either case.
template <class F>
void parallel_elements(std::size_t n, F f) {
  const auto chunks = [&](std::size_t first, std::size_t last) {
    for (std::size_t c = first; c < last; ++c) f(c * element_chunk, std::min(n, (c + 1) * element_chunk));
  };
  const std::size_t count = (n + element_chunk - 1) / element_chunk;
  if (count < 2 || !parallel_active()) chunks(0, count);
  else parallel_for(count, chunks);
}
}  // namespace detail

}  // namespace tapegrad

#endif
