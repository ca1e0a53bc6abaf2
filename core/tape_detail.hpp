// The tape's recording machinery that its public header (tape.hpp) needs inline: what an entry
// keeps of its inputs, and the path by which an op's output enters the tape. Internal: users never
// include it (tape.hpp does), and nothing here is part of the API.
#ifndef TAPEGRAD_CORE_TAPE_DETAIL_HPP
#define TAPEGRAD_CORE_TAPE_DETAIL_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "tensor.hpp"

namespace tapegrad {

// Declared in tape.hpp and forward.hpp.
template <class T>
struct VjpArgs;
template <class T>
class Gradients;
enum class Saved;
template <class T>
struct JvpArgs;
template <class F>
struct BatchRule;

namespace detail {

struct TapeImpl;

// tg::VjpFunction, the same type.
template <class T>
using VjpClosure = std::function<Gradients<T>(const VjpArgs<T>&)>;
// An op's forward-mode rule (forward.hpp): the output's tangent from the inputs' tangents. Null:
// derived from the op's VJP.
template <class T>
using JvpPointer = Tensor<T> (*)(const JvpArgs<T>&);
// A rule that captures what it needs (an axis, a permutation): built only in forward mode.
template <class T>
using JvpClosure = std::function<Tensor<T>(const JvpArgs<T>&)>;
// True while a jvp is carrying tangents on this thread (forward.hpp).
bool forward_active();
// The JVP rule of an op whose Jacobian is diagonal (elementwise, one input): J t = J^T t, the
// op's own VJP with the tangent as its seed. Passed as the rule; forward mode recognises it.
template <class T>
Tensor<T> diagonal_jvp(const JvpArgs<T>& args);
// A BatchRule's rule once its type is erased (forward.hpp): what tells forward mode that the rule
// takes a batch of tangents.
template <class T>
struct BatchedJvp;
template <class T>
struct BatchedJvpPointer;
template <class J>
struct IsBatchRule : std::false_type {};
template <class F>
struct IsBatchRule<BatchRule<F>> : std::true_type {};

// A shape kept by the tape. Its dimensions live in the block of the tape's arena that holds the
// entry (a shape held inline took 56 bytes, most of them unused, three times per binary op).
class RecordedShape {
 public:
  RecordedShape(const std::size_t* dims, std::size_t rank) : dims_(dims), rank_(rank) {}
  std::size_t size() const { return rank_; }
  std::size_t operator[](std::size_t i) const { return dims_[i]; }
  const std::size_t* begin() const { return dims_; }
  const std::size_t* end() const { return dims_ + rank_; }
  operator Shape() const { return Shape(begin(), end()); }

 private:
  const std::size_t* dims_;
  std::size_t rank_;
};
// What an entry keeps of each input: its node on the tape (no_node when it needs no gradient)
// and its shape when the op was recorded.
struct RecordedInput {
  std::size_t node;
  RecordedShape shape;
};
// An input kept for the VJP to read, and its version when the op was recorded.
template <class T>
struct SavedInput {
  Tensor<T> tensor;
  std::uint64_t version;
};
// A list an entry keeps in its tape's arena, in the same block as the entry: its elements are
// built one by one into room reserved with the entry, and destroyed with it.
template <class X>
class EntryList {
 public:
  EntryList() = default;
  explicit EntryList(X* room) : first_(room) {}
  EntryList(const EntryList&) = delete;
  EntryList& operator=(const EntryList&) = delete;
  ~EntryList() { clear(); }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const X& operator[](std::size_t i) const { return first_[i]; }
  const X* begin() const { return first_; }
  const X* end() const { return first_ + count_; }
  // Built in place (X{args...}) in the room reserved for it: the caller reserved one element
  // more than size().
  template <class... Args>
  void emplace_back(Args&&... args) {
    new (first_ + count_) X{std::forward<Args>(args)...};
    ++count_;
  }
  void clear() {
    for (std::size_t i = count_; i-- > 0;) first_[i].~X();
    count_ = 0;
  }

 private:
  X* first_ = nullptr;
  std::size_t count_ = 0;
};

// The inputs of an op, not owned: a vector's or a braced list's elements, or (built-in ops)
// pointers to them, which copy no handle.
template <class T>
class InputSpan {
 public:
  InputSpan(const Tensor<T>* first, std::size_t count) : tensors_(first), count_(count) {}
  InputSpan(const Tensor<T>* const* pointers, std::size_t count) : pointers_(pointers), count_(count) {}
  std::size_t size() const { return count_; }
  const Tensor<T>& operator[](std::size_t i) const { return tensors_ ? tensors_[i] : *pointers_[i]; }

 private:
  const Tensor<T>* tensors_ = nullptr;
  const Tensor<T>* const* pointers_ = nullptr;
  std::size_t count_;
};
// An op's output state, its value built in place (moving an xt::xarray swaps its shape, strides
// and backstrides element by element: about 35 ns, as much as building it).
template <class T>
using OutputState = std::shared_ptr<TensorImpl<T>>;
// A state whose value has this shape and uninitialized elements, for the op to fill.
template <class T, class S>
OutputState<T> new_output(const S& shape) {
  return std::make_shared<TensorImpl<T>>(typename TensorImpl<T>::Uninitialized(), shape);
}
// True when record() appends an entry for these inputs: recording on this thread and an input
// requires grad.
template <class T>
bool appends_entry(InputSpan<T> inputs);
template <class T>
Tensor<T> record_op(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out,
                    VjpClosure<T>&& vjp, Saved saved, const JvpClosure<T>* jvp = nullptr);
// A VJP that captures nothing, as a plain function pointer: the entry keeps 8 bytes instead of a
// VjpFunction's 32, and no std::function is built, moved and destroyed per op.
template <class T>
using VjpPointer = Gradients<T> (*)(const VjpArgs<T>&);
template <class T>
Tensor<T> record_op(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, VjpPointer<T> vjp, Saved saved,
                    const JvpClosure<T>* jvp = nullptr);
// A VJP given as a lambda that captures nothing and returns Gradients is passed as a pointer.
// Another becomes a VjpFunction (a heap allocation, copies of what it captures) only when an entry
// is appended, not for values computed without a tape or inside a backward pass.
// The op's JVP rule (a function pointer, a lambda, or nullptr for none) is made a JvpClosure only
// in forward mode.
template <class T, class F, class J = std::nullptr_t>
Tensor<T> record_lambda(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, F&& vjp, Saved saved,
                        J&& jvp = nullptr) {
  const bool forward = forward_active();
  JvpClosure<T> rule;
  if constexpr (IsBatchRule<std::decay_t<J>>::value) {
    // A rule that captures nothing kept as a pointer: no allocation per op in forward mode.
    if constexpr (std::is_convertible<decltype(jvp.rule), JvpPointer<T>>::value) {
      if (forward) rule = BatchedJvpPointer<T>{static_cast<JvpPointer<T>>(jvp.rule)};
    } else {
      if (forward) rule = BatchedJvp<T>{std::forward<J>(jvp).rule};
    }
  } else if constexpr (!std::is_same<std::decay_t<J>, std::nullptr_t>::value) {
    if (forward) rule = std::forward<J>(jvp);
  }
  const JvpClosure<T>* rule_or_null = rule ? &rule : nullptr;
  if constexpr (std::is_convertible<std::decay_t<F>, VjpPointer<T>>::value) {
    return record_op<T>(op, inputs, std::move(out), static_cast<VjpPointer<T>>(vjp), saved, rule_or_null);
  } else {
    VjpClosure<T> function;
    // Forward mode derives a tangent from the VJP (without a rule, or with a diagonal one): it
    // needs the function too.
    if (forward || appends_entry(inputs)) function = std::forward<F>(vjp);
    return record_op<T>(op, inputs, std::move(out), std::move(function), saved, rule_or_null);
  }
}

template <class T>
OutputState<T> output_of(xt::xarray<T>&& value) {
  return std::make_shared<TensorImpl<T>>(std::move(value));
}
template <class T, class F>
using IfLambda = std::enable_if_t<!std::is_same<std::decay_t<F>, VjpClosure<T>>::value>;

}  // namespace detail
}  // namespace tapegrad

#endif
