#include "parallel.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>

#include "errors.hpp"

namespace tapegrad {
namespace detail {

namespace {
// True on a thread while a tg::Parallel guard of it is alive, and on a pool's workers.
bool& guarded() {
  static thread_local bool flag = false;
  return flag;
}
}  // namespace

// Workers that wait for a job (one range each), run it, and report back.
struct ThreadPool {
  explicit ThreadPool(int threads) {
    try {
      for (int i = 1; i < threads; ++i) workers.emplace_back([this, i] { work(std::size_t(i)); });
    } catch (...) {   // a thread could not start: stop the ones that did, then report
      stop();
      throw;
    }
  }
  ~ThreadPool() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
  }

  // Runs f over [0, n) split into size() contiguous ranges; range 0 on the calling thread.
  void run(std::size_t n, const std::function<void(std::size_t, std::size_t)>& f) {
    const std::size_t parts = workers.size() + 1;
    {
      std::lock_guard<std::mutex> lock(mutex);
      job = &f;
      items = n;
      pending = workers.size();
      error = nullptr;
      generation.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    std::exception_ptr mine;
    try {
      f(0, n / parts);
    } catch (...) {
      mine = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return pending == 0; });
    job = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error) std::rethrow_exception(error);
  }

  void work(std::size_t index) {
    guarded() = true;
    std::size_t seen = 0;
    for (;;) {
      // Kernels come in bursts (a step calls several): spin briefly before sleeping, as waking a
      // sleeping thread costs tens of microseconds.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until)
        std::this_thread::yield();
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stopping || generation.load(std::memory_order_relaxed) != seen; });
      if (stopping) return;
      seen = generation.load(std::memory_order_relaxed);
      const auto* f = job;
      const std::size_t parts = workers.size() + 1, n = items;
      lock.unlock();
      std::exception_ptr failed;
      try {
        (*f)(n * index / parts, n * (index + 1) / parts);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      if (failed && !error) error = failed;
      if (--pending == 0) done.notify_one();
    }
  }

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  const std::function<void(std::size_t, std::size_t)>* job = nullptr;
  std::size_t items = 0, pending = 0;
  std::atomic<std::size_t> generation{0};   // written under the mutex, read spinning without it
  std::exception_ptr error;
  bool stopping = false;
};

namespace {
ThreadPool*& active_pool() {
  static thread_local ThreadPool* pool = nullptr;
  return pool;
}
}  // namespace

bool parallel_guarded() { return guarded(); }

bool parallel_active() {
  const ThreadPool* pool = active_pool();
  return pool && !pool->workers.empty();
}

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& f) {
  ThreadPool* pool = active_pool();
  if (!pool || pool->workers.empty() || n < 2) {
    f(0, n);
    return;
  }
  // The pool's workers run with no pool of their own: a nested call runs inline.
  active_pool() = nullptr;
  try {
    pool->run(n, f);
  } catch (...) {
    active_pool() = pool;
    throw;
  }
  active_pool() = pool;
}

}  // namespace detail

void set_num_threads(int threads) {
  if (threads < 1) throw_value_error("set_num_threads", "threads must be >= 1, got " + std::to_string(threads));
  openblas_set_num_threads(threads);
}

int num_threads() { return openblas_get_num_threads(); }

Parallel::Parallel(int threads)
    : previous_(detail::active_pool()), previous_blas_threads_(num_threads()), previously_guarded_(detail::guarded()) {
  if (threads < 1 || threads > 1024)
    throw_value_error("Parallel", "threads must be between 1 and 1024, got " + std::to_string(threads));
  pool_ = std::make_unique<detail::ThreadPool>(threads);
  set_num_threads(1);
  detail::active_pool() = pool_.get();
  detail::guarded() = true;
}

Parallel::~Parallel() {
  detail::guarded() = previously_guarded_;
  detail::active_pool() = previous_;
  set_num_threads(previous_blas_threads_);
}

}  // namespace tapegrad
