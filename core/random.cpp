#include "random.hpp"

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

namespace tapegrad {

namespace {

Generator& thread_generator() {
  static thread_local Generator generator(0);
  return generator;
}

// log(x) for x > 0 from frexp (exact) and + - * / (correctly rounded), so the same bits on every
// host: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s), s = (m - 1) / (m + 1),
// |s| < 0.172, the series summed to s^41 (the next term is below 2^-60 of the first).
double portable_log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < 0.70710678118654752440) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1), s2 = s * s;
  double series = 0;
  for (int k = 41; k >= 3; k -= 2) series = (series + 1.0 / k) * s2;
  const double log_m = 2 * s + 2 * s * series;
  // ln 2 as a sum of two doubles: e ln2_hi is exact for |e| < 2^11.
  constexpr double ln2_hi = 0.693147180369123816490, ln2_lo = 1.90821492927058770002e-10;
  return (e * ln2_hi + log_m) + e * ln2_lo;
}

// The element count of a shape a random tensor is about to get: a ValueError naming `op` above 2^48.
void check_count(const char* op, const Shape& shape) {
  constexpr std::size_t limit = std::size_t(1) << 48;
  std::size_t n = 1;
  for (const std::size_t d : shape) {
    if (d > limit || (d > 0 && n > limit / d))
      throw_value_error(op, "shape " + shape_str(shape) + " has more than 2^48 elements");
    n *= d;
  }
}

template <class T, class Draw>
Tensor<T> draw(const char* op, const Shape& shape, Draw f) {
  check_count(op, shape);
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = f();
  return Tensor<T>(std::move(a));
}

}  // namespace

double Generator::uniform(double lo, double hi) {
  // The top 53 bits as a double in [0, 1): exact and the same on every platform.
  const double unit = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * unit;
}

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u = 0, v = 0, s = 0;
  do {
    u = uniform(-1, 1);
    v = uniform(-1, 1);
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  const double f = std::sqrt(-2 * portable_log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

std::vector<std::uint64_t> Generator::state() const {
  // The engine's textual state: its words, in order (libstdc++ adds the engine's position, so a
  // state moves between builds on libstdc++, not to another standard library).
  std::stringstream text;
  text << engine_;
  std::vector<std::uint64_t> words;
  for (std::uint64_t w = 0; text >> w;) words.push_back(w);
  std::uint64_t spare_bits = 0;
  std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
  words.push_back(spare_bits);
  words.push_back(has_spare_ ? 1 : 0);
  return words;
}

void Generator::set_state(const std::vector<std::uint64_t>& words) {
  const std::size_t expected = Generator().state().size();
  if (words.size() != expected)
    throw_value_error("Generator::set_state", "a state has " + std::to_string(expected) + " words, got " +
                                                  std::to_string(words.size()));
  if (words.back() > 1)
    throw_value_error("Generator::set_state", "the last word (whether a normal draw is kept) must be 0 or 1, got " +
                                                  std::to_string(words.back()));
  // libstdc++ writes the engine's position after its words: past the words, it would read out of bounds.
  const std::size_t engine_words = words.size() - 2, n = std::mt19937_64::state_size;
  if (engine_words > n && words[n] > n)
    throw_value_error("Generator::set_state", "word " + std::to_string(n) + " (the engine's position) must be at most " +
                                                  std::to_string(n) + ", got " + std::to_string(words[n]));
  std::stringstream text;
  for (std::size_t i = 0; i < engine_words; ++i) text << words[i] << ' ';
  std::mt19937_64 engine;
  text >> engine;
  if (text.fail()) throw_value_error("Generator::set_state", "the engine's words are not a state of mt19937_64");
  engine_ = engine;
  std::memcpy(&spare_, &words[words.size() - 2], sizeof spare_);
  has_spare_ = words.back() == 1;
}

Generator& default_generator() { return thread_generator(); }

ManualSeed::ManualSeed(std::uint64_t seed) : previous_(thread_generator()) { thread_generator() = Generator(seed); }
ManualSeed::~ManualSeed() { thread_generator() = previous_; }

template <class T>
Tensor<T> uniform(const Shape& shape, scalar_t<T> lo, scalar_t<T> hi, Generator& gen) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    throw_value_error("uniform", "needs finite bounds lo <= hi, got lo " + number_str(lo) + " and hi " +
                                     number_str(hi));
  return draw<T>("uniform", shape, [&] {
    const T v = static_cast<T>(gen.uniform(lo, hi));
    // Rounding to float (or lo + (hi - lo) u itself) may reach hi: the interval stays half-open.
    return v < hi || lo == hi ? v : std::nextafter(hi, lo);
  });
}

template <class T>
Tensor<T> normal(const Shape& shape, scalar_t<T> mean, scalar_t<T> stddev, Generator& gen) {
  if (!std::isfinite(mean) || !(stddev >= 0) || !std::isfinite(stddev))
    throw_value_error("normal", "needs a finite mean and a finite stddev >= 0, got mean " + number_str(mean) +
                                    " and stddev " + number_str(stddev));
  return draw<T>("normal", shape, [&] { return static_cast<T>(double(mean) + double(stddev) * gen.normal()); });
}

template <class T>
Tensor<T> bernoulli(const Shape& shape, scalar_t<T> p, Generator& gen) {
  if (!(p >= 0 && p <= 1)) throw_value_error("bernoulli", "p must be in [0, 1], got " + number_str(p));
  return draw<T>("bernoulli", shape, [&] { return gen.uniform(0, 1) < double(p) ? T(1) : T(0); });
}

template Tensor<float> uniform(const Shape&, float, float, Generator&);
template Tensor<double> uniform(const Shape&, double, double, Generator&);
template Tensor<float> normal(const Shape&, float, float, Generator&);
template Tensor<double> normal(const Shape&, double, double, Generator&);
template Tensor<float> bernoulli(const Shape&, float, Generator&);
template Tensor<double> bernoulli(const Shape&, double, Generator&);

}  // namespace tapegrad
