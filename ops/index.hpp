// Ops that pick elements by index or by condition, split and stack tensors, and scan; and the
// index-valued ops (argmax, argmin), which have no gradient.
#ifndef TAPEGRAD_OPS_INDEX_HPP
#define TAPEGRAD_OPS_INDEX_HPP

#include <cstdint>
#include <vector>

#include "../core/tape.hpp"

namespace tapegrad {

// Indices into a tensor, of any shape (NumPy's and LibTorch's int64).
using Index = xt::xarray<std::int64_t>;

// x's slices at `index` along `axis`: the result has x's shape with shape[axis] = index.size().
// An index may repeat; negative indices count from the end. The gradient of a repeated index is
// the sum of its slices' gradients.
template <class T>
Tensor<T> index_select(const Tensor<T>& x, std::ptrdiff_t axis, const std::vector<std::int64_t>& index);
// NumPy's take_along_axis: y[i..., j, k...] = x[i..., index[i..., j, k...], k...] along `axis`.
// `index` has x's rank; its other axes broadcast against x's (NumPy's rules), and the result has
// their broadcast shape with index.shape[axis] along `axis`.
template <class T>
Tensor<T> take_along_axis(const Tensor<T>& x, const Index& index, std::ptrdiff_t axis);
// PyTorch's gather: y[i..., j, k...] = x[i..., index[i..., j, k...], k...] with the result of
// index's shape; index has x's rank and no axis longer than x's outside `axis` (no broadcasting).
template <class T>
Tensor<T> gather(const Tensor<T>& x, std::ptrdiff_t axis, const Index& index);

// a where cond is true, b elsewhere; cond, a and b broadcast together (NumPy's rules). An element
// not chosen stays out of the value even if Inf or NaN, and its gradient is exactly 0 (an op
// before it may still make NaN of that 0: log's gradient at 0 is 0 / 0). cond is usually a
// comparison of values: tg::where(x.value() > 0.0, x, y). Call it qualified: unqualified,
// argument-dependent lookup on cond finds xt::where, a better match.
template <class T>
Tensor<T> where(const xt::xarray<bool>& cond, const Tensor<T>& a, const Tensor<T>& b);

// The position of the first maximum (minimum) along `axis`, or of all elements in row-major
// order; a NaN counts as the maximum and the minimum (NumPy's rule). No gradient.
template <class T> Index argmax(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Index argmin(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);
template <class T> std::int64_t argmax(const Tensor<T>& x);
template <class T> std::int64_t argmin(const Tensor<T>& x);

// Running sum along `axis`: y[..., i, ...] = x[..., 0, ...] + ... + x[..., i, ...].
template <class T> Tensor<T> cumsum(const Tensor<T>& x, std::ptrdiff_t axis);

// Tensors of one shape joined along a new axis at `axis` (in [-rank - 1, rank]).
template <class T> Tensor<T> stack(const std::vector<Tensor<T>>& xs, std::ptrdiff_t axis = 0);
// Consecutive pieces of the given sizes along `axis` (the sizes add up to shape[axis]).
template <class T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis = 0);
// PyTorch's chunk: pieces of ceil(shape[axis] / chunks) along `axis`, the last one smaller, so
// that there may be fewer than `chunks` pieces.
template <class T> std::vector<Tensor<T>> chunk(const Tensor<T>& x, std::size_t chunks, std::ptrdiff_t axis = 0);

}  // namespace tapegrad

#endif
