// The tape: a Wengert list of recorded ops, walked once in reverse by backward.
#ifndef TAPEGRAD_CORE_TAPE_HPP
#define TAPEGRAD_CORE_TAPE_HPP

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "tape_detail.hpp"
#include "tensor.hpp"

namespace tapegrad {

// While alive, records every op run on this thread (RAII). Tapes nest: the newest is active.
// Its memory (saved values, closures) is released when it goes out of scope.
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Number of recorded entries.
  std::size_t size() const;
  // Bytes the entries account for: each entry, its shapes, and the values it keeps for backward
  // (the inputs or output its VJP reads); saved values released by backward(false) are not counted.
  std::size_t bytes() const;
  // One line per entry: "#3 mul (2, 3) (2, 3) -> (2, 3) node 5", then " [label]" if labelled.
  std::string str() const;
  // The recorded graph in Graphviz DOT: one node per op (its name and output shape), one per leaf
  // or constant input (its shape), and an edge from each input to the op that reads it.
  std::string dot() const;

 private:
  std::unique_ptr<detail::TapeImpl> impl_;
};

// A tape belongs to the thread that created it: its methods, the ops that record on it and
// backward through it throw tg::UsageError on any other thread. Like std::lock_guard, it is a
// scope guard: destroy it on its own thread too.

// While alive, every NaN or Inf in an op's output (forward) or in a gradient a VJP returns
// (backward) on this thread throws tg::AnomalyError naming the op, its position on the tape, its
// input shapes and the active tg::Label. Off by default; when off it costs one flag test per op.
class DetectAnomaly {
 public:
  DetectAnomaly();
  ~DetectAnomaly();
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

 private:
  bool previous_;
};

// Names a region of the user's code while alive ("decoder"; nested: "decoder/attention"): entries
// recorded meanwhile carry it, and anomaly errors and Tape::str() show it.
class Label {
 public:
  explicit Label(const std::string& name);
  ~Label();
  Label(const Label&) = delete;
  Label& operator=(const Label&) = delete;
};

// What tapegrad holds right now in this process, to find leaks and measure memory.
struct MemoryStats {
  std::size_t live_tensors = 0;   // tensor states alive (shared by the handles to each)
  std::size_t tape_entries = 0;   // recorded entries alive on all tapes
  std::size_t tape_bytes = 0;     // what those entries account for (see Tape::bytes)
};
MemoryStats memory_stats();

// Sets whether ops record on this thread while alive; restores the previous mode after.
class GradMode {
 public:
  explicit GradMode(bool enabled);
  ~GradMode();
  GradMode(const GradMode&) = delete;
  GradMode& operator=(const GradMode&) = delete;

 private:
  bool previous_;
};

// Suspends recording on this thread while alive.
class NoGrad : public GradMode {
 public:
  NoGrad() : GradMode(false) {}
};

// True when an op run now on this thread would be recorded.
bool is_recording();


// The node of an input that needs no gradient.
constexpr std::size_t no_node = std::numeric_limits<std::size_t>::max();

// What a vector-Jacobian product receives.
template <class T>
struct VjpArgs {
  const Tensor<T>& grad;     // dL/d(output), of the output's shape
  const Tensor<T>& output;   // the op's output if its entry saved it (Saved::output), else undefined
  const detail::EntryList<detail::RecordedInput>& inputs;
  const detail::EntryList<detail::SavedInput<T>>& saved;   // one per input if the entry saved them, else empty
  // False for inputs that need no gradient (constants): the VJP may leave them undefined.
  bool needs_grad(std::size_t i) const { return inputs[i].node != no_node; }
  // The shape input i had when the op was recorded: what a VJP sums a broadcast gradient down
  // to, without capturing it. It converts to a tg::Shape.
  detail::RecordedShape input_shape(std::size_t i) const { return inputs[i].shape; }
  // Input i itself, if the op saved its inputs (Saved::inputs or Saved::inputs_and_output): what
  // a VJP reads without capturing it (a closure that captures nothing allocates nothing).
  const Tensor<T>& input(std::size_t i) const {
    if (i >= saved.size())
      throw_usage_error("backward", "a VJP read input " + std::to_string(i) + " of an op that saved " +
                                        std::to_string(saved.size()) +
                                        " inputs (record it with Saved::inputs to read them)");
    return saved[i].tensor;
  }
};

// What a VJP reads besides the gradient. Before running it, backward checks that none of these
// was changed in place since the op was recorded (assign, mutable_value) and throws
// tg::UsageError naming the op and the tensor if one was: the gradient would be silently wrong.
enum class Saved {
  nothing,             // shapes or copies only (add, sum, reshape...)
  inputs,              // the input tensors (mul, matmul, log...): the default for custom ops
  output,              // the output, passed to the VJP as VjpArgs::output (exp, tanh...)
  inputs_and_output,
};

// One gradient per input, what a VJP returns. Built like a std::vector (a braced list, a count of
// undefined tensors, push_back) or from one; up to three are held inline, so back-propagating
// through an op allocates no list.
template <class T>
class Gradients {
 public:
  Gradients() = default;
  Gradients(std::initializer_list<Tensor<T>> grads) {
    for (const Tensor<T>& g : grads) push_back(g);
  }
  explicit Gradients(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) push_back(Tensor<T>());
  }
  // A VJP may return a std::vector<Tensor<T>>: it converts.
  Gradients(std::vector<Tensor<T>> grads) {
    if (grads.size() > inline_capacity) {
      count_ = grads.size();
      spilled_ = std::move(grads);
      return;
    }
    for (Tensor<T>& g : grads) push_back(std::move(g));
  }
  std::size_t size() const { return count_; }
  Tensor<T>& operator[](std::size_t i) { return count_ > inline_capacity ? spilled_[i] : inline_[i]; }
  const Tensor<T>& operator[](std::size_t i) const { return count_ > inline_capacity ? spilled_[i] : inline_[i]; }
  void push_back(Tensor<T> g) {
    if (count_ < inline_capacity) {
      inline_[count_++] = std::move(g);
      return;
    }
    if (count_ == inline_capacity)
      for (Tensor<T>& held : inline_) spilled_.push_back(std::move(held));
    spilled_.push_back(std::move(g));
    ++count_;
  }

 private:
  static constexpr std::size_t inline_capacity = 3;
  Tensor<T> inline_[inline_capacity];
  std::vector<Tensor<T>> spilled_;   // all of them, once there are more than inline_capacity
  std::size_t count_ = 0;
};

// Returns one gradient per input, each of that input's shape, or an undefined Tensor for an
// input that gets none. Written with tapegrad's own ops, it can itself be recorded (higher order).
template <class T>
using VjpFunction = std::function<Gradients<T>(const VjpArgs<T>&)>;


// The one path by which every op, built-in or a user's, enters the tape: wraps `value` (the
// forward result computed from the inputs' values) into a tensor and, if recording and any input
// requires grad, appends an entry that will call `vjp` during backward. `saved` says what the VJP
// reads; with an output, the entry keeps the output alive so the VJP can read it without
// capturing it. The inputs come as a vector or a braced list ({a, b}: nothing allocated).
// (Elementwise built-in ops build their output in place and pass their inputs by pointer, then
// take the same path: detail::record_lambda.)
template <class T>
Tensor<T> record(std::string_view op, const std::vector<Tensor<T>>& inputs, xt::xarray<T> value,
                 VjpFunction<T> vjp, Saved saved = Saved::inputs) {
  return detail::record_op<T>(op, {inputs.data(), inputs.size()}, detail::output_of(std::move(value)),
                              std::move(vjp), saved);
}
template <class T, class F, class = detail::IfLambda<T, F>>
Tensor<T> record(std::string_view op, const std::vector<Tensor<T>>& inputs, xt::xarray<T> value, F&& vjp,
                 Saved saved = Saved::inputs) {
  return detail::record_lambda<T>(op, {inputs.data(), inputs.size()}, detail::output_of(std::move(value)),
                                  std::forward<F>(vjp), saved);
}
template <class T, class F, class = detail::IfLambda<T, F>>
Tensor<T> record(std::string_view op, std::initializer_list<Tensor<T>> inputs, xt::xarray<T> value, F&& vjp,
                 Saved saved = Saved::inputs) {
  return detail::record_lambda<T>(op, {inputs.begin(), inputs.size()}, detail::output_of(std::move(value)),
                                  std::forward<F>(vjp), saved);
}

// The same, with the op's forward-mode rule `jvp` (a callable taking tg::JvpArgs<T>, forward.hpp,
// and returning the output's tangent): used by tg::jvp. Without one, forward mode derives the
// tangent from `vjp`.
template <class T, class F, class J, class = detail::IfLambda<T, F>>
Tensor<T> record(std::string_view op, const std::vector<Tensor<T>>& inputs, xt::xarray<T> value, F&& vjp,
                 Saved saved, J&& jvp) {
  return detail::record_lambda<T>(op, {inputs.data(), inputs.size()}, detail::output_of(std::move(value)),
                                  std::forward<F>(vjp), saved, std::forward<J>(jvp));
}
template <class T, class F, class J, class = detail::IfLambda<T, F>>
Tensor<T> record(std::string_view op, std::initializer_list<Tensor<T>> inputs, xt::xarray<T> value, F&& vjp,
                 Saved saved, J&& jvp) {
  return detail::record_lambda<T>(op, {inputs.begin(), inputs.size()}, detail::output_of(std::move(value)),
                                  std::forward<F>(vjp), saved, std::forward<J>(jvp));
}

// Gradients of y with respect to xs, returned rather than accumulated into grad(). A tensor of xs
// that y does not depend on gets zeros. With create_graph the backward pass is itself recorded,
// so the results can be differentiated again. The seed (default: 1 for a scalar y) has y's shape.
template <class T>
std::vector<Tensor<T>> grad(const Tensor<T>& y, const std::vector<Tensor<T>>& xs,
                            bool create_graph = false);
template <class T>
std::vector<Tensor<T>> grad(const Tensor<T>& y, const std::vector<Tensor<T>>& xs,
                            const xt::xarray<T>& seed, bool create_graph = false);

}  // namespace tapegrad

#endif
