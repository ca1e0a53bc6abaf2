// Shared by the tests: gradient checks with the report in the failure message, array comparison.
#ifndef TAPEGRAD_TESTS_HELPERS_HPP
#define TAPEGRAD_TESTS_HELPERS_HPP

#include <doctest/doctest.h>
#include <tapegrad/tapegrad.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace tg = tapegrad;
using Arr = xt::xarray<double>;
using TD = tg::Tensor<double>;
using TF = tg::Tensor<float>;
using Inputs = std::vector<TD>;

// Uniform random values in [lo, hi) of the given shape, reproducible per seed.
inline Arr random_array(const tg::Shape& shape, unsigned seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Arr a = Arr::from_shape(shape);
  for (auto& v : a) v = u(rng);
  return a;
}

inline TD leaf(const tg::Shape& shape, unsigned seed, double lo = -1.0, double hi = 1.0) {
  return TD(random_array(shape, seed, lo, hi), true);
}

inline bool same_shape(const Arr& a, const tg::Shape& s) {
  return tg::Shape(a.shape().begin(), a.shape().end()) == s;
}

// Elementwise |a - b| <= tol, shapes equal.
template <class EA, class EB>
bool all_close(const EA& ea, const EB& eb, double tol = 1e-12) {
  const Arr a = xt::cast<double>(ea), b = xt::cast<double>(eb);
  if (a.dimension() != b.dimension() || !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()))
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a.data()[i] - b.data()[i]) <= tol)) return false;
  return true;
}

// A fresh directory under the system temp directory, removed with its contents at the end of scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "tapegrad-test-")
      : path(std::filesystem::temp_directory_path() / (prefix + std::to_string(std::random_device()()))) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// OpenBLAS's thread count set for a scope and restored after it, however the test leaves it.
struct BlasThreads {
  int saved;
  explicit BlasThreads(int threads) : saved(tg::num_threads()) { tg::set_num_threads(threads); }
  ~BlasThreads() { tg::set_num_threads(saved); }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;
};

// A file's bytes.
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The project's README (tests/main.cpp), and whether it says `text`: its figures about the tests
// are checked by the tests that produce them.
std::string readme_path();
inline bool readme_says(const std::string& text) { return read_bytes(readme_path()).find(text) != std::string::npos; }

// Values computed by PyTorch (tests/torch_reference.py prints them), and the formulas it filled its
// inputs from: the k-th element, row-major, of parameters is 0.5 sin(0.7 k + 1), of inputs
// cos(0.37 k), of states 0.3 sin(0.5 k + 2).
struct Reference {
  tg::Shape shape;
  std::vector<double> values;
};
inline Arr filled(const tg::Shape& shape, double (*f)(std::size_t), std::size_t start = 0) {
  Arr a = Arr::from_shape(shape);
  for (std::size_t k = 0; k < a.size(); ++k) a.data()[k] = f(start + k);
  return a;
}
inline double param_at(std::size_t k) { return 0.5 * std::sin(0.7 * double(k) + 1); }
inline double input_at(std::size_t k) { return std::cos(0.37 * double(k)); }
inline double state_at(std::size_t k) { return 0.3 * std::sin(0.5 * double(k) + 2); }
inline bool matches(const TD& got, const Reference& want, double tol = 1e-12) {
  if (got.shape() != want.shape) return false;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::abs(got.value().data()[i] - want.values[i]) > tol) return false;
  return true;
}

// Direct convolution by loops, the reference of the conv tests: y[n,k,i,j] = b[k] + sum_{c,u,v} w[k,c,u,v] * xpad[n,c,i*s+u,j*s+v]
inline Arr naive_conv(const Arr& x, const Arr& w, const Arr* b, tg::Size2 s, tg::Size2 p) {
  const std::size_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const std::size_t K = w.shape(0), kh = w.shape(2), kw = w.shape(3);
  const std::size_t Ho = (H + 2 * p.h - kh) / s.h + 1, Wo = (W + 2 * p.w - kw) / s.w + 1;
  Arr y = xt::zeros<double>({N, K, Ho, Wo});
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < Ho; ++i)
        for (std::size_t j = 0; j < Wo; ++j) {
          double acc = b ? (*b)(k) : 0.0;
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t u = 0; u < kh; ++u)
              for (std::size_t v = 0; v < kw; ++v) {
                const long r = long(i * s.h + u) - long(p.h), q = long(j * s.w + v) - long(p.w);
                if (r >= 0 && r < long(H) && q >= 0 && q < long(W)) acc += w(k, c, u, v) * x(n, c, r, q);
              }
          y(n, k, i, j) = acc;
        }
  return y;
}

// The tests' gradient checks: Richardson-extrapolated differences with step 1e-4 resolve ~1e-11
// on the tests' functions (inputs of order 1; the step, small, keeps clear of kinks), so rtol
// 1e-6 and atol 1e-8 hold with room, and a 0.1 % error in one element fails (test_gradcheck
// shows it does). gradcheck's defaults, for users, are PyTorch's looser ones.
inline tg::GradcheckOptions strict() {
  tg::GradcheckOptions o;
  o.richardson = true;
  o.eps = 1e-4;
  o.rtol = 1e-6;
  o.atol = 1e-8;
  return o;
}

// The same with forward mode checked too.
inline tg::GradcheckOptions forward_too() {
  tg::GradcheckOptions o = strict();
  o.forward = true;
  return o;
}

// Runs gradcheck in double and fails the test with the report printed if it does not pass.
inline void check_gradients(const tg::GradcheckFunction& f, const Inputs& inputs,
                            const tg::GradcheckOptions& options = strict()) {
  const tg::GradcheckReport report = tg::gradcheck(f, inputs, options);
  INFO(report.str());
  CHECK(report.ok());
  CHECK(!report.comparisons.empty());
}

#endif
