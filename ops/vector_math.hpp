// Transcendental functions over arrays, vectorised with xsimd. Internal to the ops.
#ifndef TAPEGRAD_OPS_VECTOR_MATH_HPP
#define TAPEGRAD_OPS_VECTOR_MATH_HPP

#include <cstddef>
#include <string>
#include <vector>

namespace tapegrad {
namespace detail {

// y[i] = f(x[i]) for i < n, with the widest SIMD instructions the CPU has (chosen once at run
// time on x86-64: AVX-512, AVX2 with FMA, or SSE2). An element's result does not depend on where
// it sits in the array. Accurate to a few ulp of the C library's results; NaN, infinities,
// zeros and subnormals behave as in the C library.
template <class T> void vector_exp(const T* x, T* y, std::size_t n);
template <class T> void vector_log(const T* x, T* y, std::size_t n);
template <class T> void vector_tanh(const T* x, T* y, std::size_t n);
// 1 / (1 + exp(-x)), evaluated on the side where exp cannot overflow.
template <class T> void vector_sigmoid(const T* x, T* y, std::size_t n);

// The four kernels, for float and double, behind those functions.
template <class T>
struct VectorMath {
  void (*exp)(const T*, T*, std::size_t);
  void (*log)(const T*, T*, std::size_t);
  void (*tanh)(const T*, T*, std::size_t);
  void (*sigmoid)(const T*, T*, std::size_t);
};

struct VectorMathTable {
  VectorMath<float> f;
  VectorMath<double> d;
};

// The kernels this machine runs: the first of vector_math_tables(), chosen once.
const VectorMathTable& vector_math_table();

// Every table this machine can run, the one vector_math_table() chose first: on x86-64 those of
// AVX-512, AVX2 with FMA and SSE2 that the CPU has; elsewhere the C library's.
struct NamedVectorMathTable {
  std::string name;
  VectorMathTable table;
};
std::vector<NamedVectorMathTable> vector_math_tables();

// While alive, the vector_math functions run `table` instead of vector_math_table(), in every
// thread (the ops split large arrays over threads): how the tests run the ops on each table. Not
// to be made while another thread runs ops.
class VectorMathOverride {
 public:
  explicit VectorMathOverride(const VectorMathTable& table);
  ~VectorMathOverride();
  VectorMathOverride(const VectorMathOverride&) = delete;
  VectorMathOverride& operator=(const VectorMathOverride&) = delete;

 private:
  const VectorMathTable* previous_;
};

}  // namespace detail
}  // namespace tapegrad

#endif
