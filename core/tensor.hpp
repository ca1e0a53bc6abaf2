// Tensor<T>: a cheap-to-copy handle to an evaluated array, its gradient, and where it was recorded.
#ifndef TAPEGRAD_CORE_TENSOR_HPP
#define TAPEGRAD_CORE_TENSOR_HPP

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "errors.hpp"

namespace tapegrad {

namespace detail {

// An array's shape as a tg::Shape.
template <class T>
Shape shape_of(const xt::xarray<T>& a) {
  return Shape(a.shape().begin(), a.shape().end());
}

template <class T>
struct identity {
  using type = T;
};

// What tg::memory_stats counts. Each thread keeps its own counts, changed without a locked
// instruction (three process-wide atomics per op took a tenth of a small op's time); reading sums
// every thread's, and those of threads that have ended. A count may go down on another thread
// than the one that raised it: the sum is exact once those threads have synchronised with the
// reader (joined, say).
enum class Counted { tensors, entries, entry_bytes };
void count(Counted what, std::ptrdiff_t delta);
// The three sums, in Counted's order, read in one pass.
struct CountedTotals {
  std::size_t of[3];
};
CountedTotals counted();

// Counts the TensorImpl objects alive in the process (tg::memory_stats), to find leaks.
struct LiveTensorCount {
  LiveTensorCount() { count(Counted::tensors, 1); }
  LiveTensorCount(const LiveTensorCount&) : LiveTensorCount() {}
  LiveTensorCount& operator=(const LiveTensorCount&) = default;
  ~LiveTensorCount() { count(Counted::tensors, -1); }
};

// What a handle points to. Shared by every copy of the handle.
template <class T>
struct TensorImpl {
  // Moved in: a default-constructed xarray would allocate its one 0-D element first.
  explicit TensorImpl(xt::xarray<T>&& v) : value(std::move(v)) {}
  // A value of `shape` built in place, its elements uninitialized (see detail::new_output).
  struct Uninitialized {};
  template <class S>
  TensorImpl(Uninitialized, const S& shape) : value(xt::xarray<T>::from_shape(shape)) {}
  // The small fields first, in the cache line that also holds the value's shape: backward reads
  // a saved input's version, shape and data, and on a long tape each line read is a cache miss.
  std::uint64_t version = 0;   // bumped by every in-place change of value
  std::uint64_t tape_id = 0;   // the tape whose op produced this tensor; 0 for a leaf or a constant
  std::size_t node = 0;        // its node on that tape
  bool requires_grad = false;
  LiveTensorCount counted;
  xt::xarray<T> value;
  // The accumulated gradient, null until a backward reaches the tensor. A pointer: most tensors
  // (every op's output) never get one, and an empty xarray is 240 bytes per op.
  std::unique_ptr<xt::xarray<T>> grad;
};

// a == b for two shapes (xtensor's or tapegrad's), inline: operator== calls memcmp, and an op
// compares shapes several times on its way through the tape.
template <class A, class B>
bool same_shape(const A& a, const B& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace detail

// Named arrays: a module's parameters and buffers, an optimizer's state (Module::state_dict).
template <class T>
using StateDict = std::vector<std::pair<std::string, xt::xarray<T>>>;

// A scalar argument of the tensor's own type, not deduced (x * 2 works for Tensor<float>).
template <class T>
using scalar_t = typename detail::identity<T>::type;

template <class T>
class Tensor {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "tapegrad::Tensor<T> is instantiated for float and double");

 public:
  using value_type = T;

  // An undefined handle (what a VJP returns for an input that gets no gradient).
  Tensor() = default;
  // A leaf tensor holding `value`. With requires_grad, backward() accumulates into its grad().
  explicit Tensor(xt::xarray<T> value, bool requires_grad = false);
  // A handle to an existing node (used by the tape).
  explicit Tensor(std::shared_ptr<detail::TensorImpl<T>> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  // On a temporary handle (tg::exp(x).value()) the value is returned by copy, so that a loop over
  // it cannot outlive the tensor.
  const xt::xarray<T>& value() const&;
  xt::xarray<T> value() const&&;
  Shape shape() const;
  std::size_t dim() const;
  std::size_t size() const;
  // The single element of a one-element tensor.
  T item() const;

  bool requires_grad() const;
  // Only on leaves: a tensor produced by a recorded op requires grad by construction.
  Tensor& set_requires_grad(bool requires_grad);
  // True unless the tensor was produced by an op recorded on a tape.
  bool is_leaf() const;

  bool has_grad() const;
  // The accumulated gradient; an error if backward() never reached this tensor.
  const xt::xarray<T>& grad() const&;
  xt::xarray<T> grad() const&&;
  // The accumulated gradient, to change in place (gradient clipping); an error without one.
  xt::xarray<T>& mutable_grad();
  // Sets the gradient to zeros of the tensor's shape.
  void zero_grad();
  // Drops the gradient: has_grad() is false until a backward reaches the tensor again.
  void clear_grad();

  // Reverse pass from this tensor: accumulates d(this)/d(leaf) into every reached leaf's grad().
  // A non-scalar needs a seed of its own shape. With retain_graph=false the walked entries
  // release their saved values, and a later backward through them is an error.
  void backward(bool retain_graph = true) const;
  void backward(const xt::xarray<T>& seed, bool retain_graph = true) const;

  // A leaf copy of the value that no tape knows about.
  Tensor detach() const;

  // In-place changes (optimizers). Shapes must match. Each bumps the version counter.
  void assign(const xt::xarray<T>& value);
  xt::xarray<T>& mutable_value();
  std::uint64_t version() const;

  // For the tape and custom ops: the shared state behind the handle.
  const std::shared_ptr<detail::TensorImpl<T>>& impl() const { return impl_; }

 private:
  detail::TensorImpl<T>& checked(const char* what) const;
  std::shared_ptr<detail::TensorImpl<T>> impl_;
};

// Throws tg::UsageError "op: input i is an undefined tensor" if one of the inputs is undefined:
// ops call it first, so that the error names the op rather than the accessor.
template <class T>
void check_defined(const char* op, std::initializer_list<const Tensor<T>*> inputs);
// The same for a list of tensors (concat, stack).
template <class T>
void check_defined(const char* op, const std::vector<Tensor<T>>& inputs);

// Prints "tensor(shape (2, 3), requires_grad)" followed by the values.
template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t);

extern template class Tensor<float>;
extern template class Tensor<double>;

}  // namespace tapegrad

#endif
