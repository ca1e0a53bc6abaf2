// Reductions: over all elements, or over axes (negative axes count from the end).
#ifndef TAPEGRAD_OPS_REDUCE_HPP
#define TAPEGRAD_OPS_REDUCE_HPP

#include "../core/tape.hpp"

namespace tapegrad {

using Axes = std::vector<std::ptrdiff_t>;

// Sum of all elements: a scalar of shape ().
template <class T> Tensor<T> sum(const Tensor<T>& x);
// Sum over `axes`; with keepdims the reduced axes stay with size 1.
template <class T> Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
template <class T> Tensor<T> mean(const Tensor<T>& x);
template <class T> Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
// Maximum of all elements, or along one axis. The gradient goes to one element per reduced
// slice: the first maximum in row-major order when several tie.
template <class T> Tensor<T> max(const Tensor<T>& x);
template <class T> Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);
// Over several axes: ties go to the first maximum in row-major order of the reduced axes.
template <class T> Tensor<T> max(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
// Sums x down to `shape`, the inverse of broadcasting x from `shape` (what every broadcasting
// op's VJP uses). `shape` must broadcast to x's shape.
template <class T> Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);

}  // namespace tapegrad

#endif
