// Ops that move elements without arithmetic: reshape, transpose, broadcast, slice, concat, pad.
#ifndef TAPEGRAD_OPS_SHAPE_HPP
#define TAPEGRAD_OPS_SHAPE_HPP

#include <utility>

#include "../core/tape.hpp"

namespace tapegrad {

// Same elements in row-major order, new shape (same element count).
template <class T> Tensor<T> reshape(const Tensor<T>& x, const Shape& shape);
// result.shape[i] = x.shape[perm[i]]; without perm the axes are reversed.
template <class T> Tensor<T> transpose(const Tensor<T>& x, const std::vector<std::size_t>& perm);
template <class T> Tensor<T> transpose(const Tensor<T>& x);
// NumPy broadcast_to: x's shape must broadcast to `shape`, and the result has exactly `shape`.
template <class T> Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape);
// Elements start, start+step, ... before stop along `axis`, with Python's rules for negative
// and out-of-range start/stop. step >= 1.
template <class T>
Tensor<T> slice(const Tensor<T>& x, std::ptrdiff_t axis, std::ptrdiff_t start, std::ptrdiff_t stop,
                std::ptrdiff_t step = 1);
// Joins tensors along `axis`; all other dimensions must agree.
template <class T> Tensor<T> concat(const std::vector<Tensor<T>>& xs, std::ptrdiff_t axis);
// Adds pads[k].first elements before and pads[k].second after along every axis k, set to value.
template <class T>
Tensor<T> pad(const Tensor<T>& x, const std::vector<std::pair<std::size_t, std::size_t>>& pads,
              scalar_t<T> value = 0);

}  // namespace tapegrad

#endif
