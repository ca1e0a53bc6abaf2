// The vector_math functions, on the kernels vector_math_table() chose for this machine (or a
// VectorMathOverride's).
#include "vector_math.hpp"

#include <atomic>

namespace tapegrad {
namespace detail {

const VectorMathTable& vector_math_table() {
  static const VectorMathTable table = vector_math_tables().front().table;
  return table;
}

namespace {

std::atomic<const VectorMathTable*> override_table{nullptr};

const VectorMathTable& current_table() {
  const VectorMathTable* t = override_table.load(std::memory_order_acquire);
  return t ? *t : vector_math_table();
}

template <class T>
const VectorMath<T>& kernels();
template <>
const VectorMath<float>& kernels<float>() { return current_table().f; }
template <>
const VectorMath<double>& kernels<double>() { return current_table().d; }

}  // namespace

VectorMathOverride::VectorMathOverride(const VectorMathTable& table)
    : previous_(override_table.exchange(&table, std::memory_order_acq_rel)) {}

VectorMathOverride::~VectorMathOverride() { override_table.store(previous_, std::memory_order_release); }

template <class T>
void vector_exp(const T* x, T* y, std::size_t n) { kernels<T>().exp(x, y, n); }
template <class T>
void vector_log(const T* x, T* y, std::size_t n) { kernels<T>().log(x, y, n); }
template <class T>
void vector_tanh(const T* x, T* y, std::size_t n) { kernels<T>().tanh(x, y, n); }
template <class T>
void vector_sigmoid(const T* x, T* y, std::size_t n) { kernels<T>().sigmoid(x, y, n); }

template void vector_exp(const float*, float*, std::size_t);
template void vector_exp(const double*, double*, std::size_t);
template void vector_log(const float*, float*, std::size_t);
template void vector_log(const double*, double*, std::size_t);
template void vector_tanh(const float*, float*, std::size_t);
template void vector_tanh(const double*, double*, std::size_t);
template void vector_sigmoid(const float*, float*, std::size_t);
template void vector_sigmoid(const double*, double*, std::size_t);

}  // namespace detail
}  // namespace tapegrad
