// Seeded random numbers that are the same on every host: a generator, the thread's default one,
// and random tensors drawn from it.
#ifndef TAPEGRAD_CORE_RANDOM_HPP
#define TAPEGRAD_CORE_RANDOM_HPP

#include <cstdint>
#include <random>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// mt19937_64 (its outputs fixed by the C++ standard) with mappings of its own to doubles: the same
// seed gives the same numbers on every host and compiler. uniform uses the top 53 bits; normal
// is Marsaglia's polar method with a logarithm computed from + - * / alone (IEEE-exact, unlike
// the C library's log, which may differ in the last bit between hosts).
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  // Uniform in [lo, hi).
  double uniform(double lo, double hi);
  // Standard normal: mean 0, standard deviation 1. Draws come in pairs; the second is kept for the
  // next call.
  double normal();
  std::uint64_t next() { return engine_(); }
  // The whole state as words (the engine's, then the normal draw kept for the next call), for a
  // checkpoint: a generator given it by set_state continues with the same numbers. set_state
  // takes only what state() returns: a ValueError names a state of another length or form.
  std::vector<std::uint64_t> state() const;
  void set_state(const std::vector<std::uint64_t>& words);

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// This thread's generator, which layers draw their initial parameters and random tensors their
// values from. Seeded with 0 when the thread starts; tg::ManualSeed replaces it for a scope.
Generator& default_generator();

// While alive, the thread's default generator is Generator(seed); the previous one is restored
// after. The same seed gives the same model and the same random tensors.
class ManualSeed {
 public:
  explicit ManualSeed(std::uint64_t seed);
  ~ManualSeed();
  ManualSeed(const ManualSeed&) = delete;
  ManualSeed& operator=(const ManualSeed&) = delete;

 private:
  Generator previous_;
};

// Random leaf tensors (no gradient), drawn in row-major order: tg::normal<float>({2, 3}).
// uniform: in [lo, hi) (lo <= hi, both finite); normal: mean + stddev z (stddev >= 0);
// bernoulli: 1 with probability p (0 <= p <= 1), else 0.
template <class T>
Tensor<T> uniform(const Shape& shape, scalar_t<T> lo = 0, scalar_t<T> hi = 1, Generator& gen = default_generator());
template <class T>
Tensor<T> normal(const Shape& shape, scalar_t<T> mean = 0, scalar_t<T> stddev = 1, Generator& gen = default_generator());
template <class T>
Tensor<T> bernoulli(const Shape& shape, scalar_t<T> p, Generator& gen = default_generator());

}  // namespace tapegrad

#endif
