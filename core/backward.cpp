// The reverse walk: backward() and grad() walk a tape's entries once, last to first, applying
// each entry's VJP (Entry::backprop, core/tape.cpp) and accumulating the gradients.
#include <algorithm>

#include "tape.hpp"

#include "tape_internals.hpp"

namespace tapegrad {
namespace detail {
namespace {

// Marks this thread as walking a tape for the guard's lifetime.
class InBackward {
 public:
  InBackward() : previous_(thread_state().in_backward) { thread_state().in_backward = true; }
  ~InBackward() { thread_state().in_backward = previous_; }
  InBackward(const InBackward&) = delete;
  InBackward& operator=(const InBackward&) = delete;

 private:
  bool previous_;
};

// Makes `tape` the thread's active tape for the guard's lifetime (nothing when null).
class ActiveTape {
 public:
  explicit ActiveTape(TapeImpl* tape) : tape_(tape) {
    if (tape_) thread_state().live.push_back(tape_);
  }
  ~ActiveTape() {
    if (tape_) thread_state().live.pop_back();
  }
  ActiveTape(const ActiveTape&) = delete;
  ActiveTape& operator=(const ActiveTape&) = delete;

 private:
  TapeImpl* tape_;
};

TapeImpl* find_live_tape(std::uint64_t id) {
  for (TapeImpl* t : thread_state().live)
    if (t->id == id) return t;
  return nullptr;
}

template <class T>
TapeImpl& tape_of(const Tensor<T>& y, const char* op) {
  if (!y.defined()) throw_usage_error(op, "the output is an undefined tensor");
  const std::uint64_t id = y.impl()->tape_id;
  if (id == 0)
    throw_usage_error(op, "the tensor of shape " + shape_str(y.shape()) +
                              " was not recorded on a tape: no tg::Tape was alive when it was "
                              "computed, recording was suspended by tg::NoGrad, or no input "
                              "required grad");
  TapeImpl* tape = find_live_tape(id);
  if (!tape && owned_by_another_thread(id))
    throw_usage_error(op, "the tensor of shape " + shape_str(y.shape()) + " was recorded on tape #" +
                              std::to_string(id) +
                              ", which belongs to another thread; a tape is used only by the "
                              "thread that created it");
  if (!tape)
    throw_usage_error(op, "the tape that recorded this tensor is no longer alive on this thread "
                          "(backward must run while its tg::Tape is in scope, on the same thread)");
  return *tape;
}

template <class T>
xt::xarray<T> checked_seed(const Tensor<T>& y, const xt::xarray<T>* seed, const char* op) {
  if (!seed) {
    if (y.size() != 1)
      throw_usage_error(op, "the output has shape " + shape_str(y.shape()) +
                                " and is not a scalar: pass a seed gradient of that shape");
    return xt::ones<T>(y.value().shape());
  }
  if (shape_of(*seed) != y.shape())
    throw_shape_error(op, "seed of shape " + shape_str(shape_of(*seed)) +
                              " does not match the output's shape " + shape_str(y.shape()));
  return *seed;
}

// One reverse walk over the entries recorded before it started.
template <class T>
GradStore reverse_walk(TapeImpl& tape, const Tensor<T>& y, xt::xarray<T> seed, bool create_graph,
                       bool retain_graph, const std::vector<std::size_t>& keep = {},
                       std::size_t lowest_node = 0) {
  GradStore store(tape.num_nodes);
  for (std::size_t node : keep)
    if (node != no_node) store.keep[node] = 1;
  store.of<T>()[y.impl()->node] = Tensor<T>(std::move(seed));
  GradMode mode(create_graph);
  InBackward in_backward;
  // With create_graph the VJPs record onto y's tape, even when a newer tape is active.
  ActiveTape active(create_graph ? &tape : nullptr);
  // Only the entries from y's own back to the first whose output is lowest_node or newer can carry
  // y's gradient to what is asked (nodes are numbered in the order they are recorded): a gradient
  // taken inside a long recording walks its own part of the tape, not the whole of it.
  const auto by_output = [](const EntryPtr& e, std::size_t node) { return e->output < node; };
  const auto& entries = tape.entries;
  const std::size_t end = static_cast<std::size_t>(
      std::lower_bound(entries.begin(), entries.end(), y.impl()->node + 1, by_output) - entries.begin());
  const std::size_t begin = std::min(end, static_cast<std::size_t>(
      std::lower_bound(entries.begin(), entries.end(), lowest_node, by_output) - entries.begin()));
  // How far ahead of the walk the cache is asked for an entry (its first bytes: the entry itself
  // and the lists recorded after it in the arena), then for what it points to (prefetch()).
  constexpr std::size_t entry_ahead = 16, states_ahead = 8, values_ahead = 4;
  std::vector<std::size_t> walked;   // entries whose VJP ran, to release once the walk succeeded
  for (std::size_t i = end; i-- > begin;) {
    if (i >= entry_ahead) {
      const char* entry = reinterpret_cast<const char*>(tape.entries[i - entry_ahead].get());
      for (std::size_t offset = 0; offset < 512; offset += 64) __builtin_prefetch(entry + offset);
    }
    if (i >= states_ahead) tape.entries[i - states_ahead]->prefetch(store, true);
    if (i >= values_ahead) tape.entries[i - values_ahead]->prefetch(store, false);
    if (tape.entries[i]->backprop(store, create_graph, i) && !retain_graph) walked.push_back(i);
  }
  // Saved values are released only after the whole walk succeeded, like the leaves' gradients.
  for (std::size_t i : walked) tape.entries[i]->release();
  return store;
}

template <class T>
void backward_impl(const Tensor<T>& y, const xt::xarray<T>* seed, bool retain_graph) {
  TapeImpl& tape = tape_of(y, "backward");
  GradStore store = reverse_walk(tape, y, checked_seed(y, seed, "backward"), false, retain_graph);
  // Leaves are written only once the whole walk succeeded: an error leaves every grad() as it was.
  auto& grads = store.of<T>();
  for (auto& [node, leaf] : tape.leaves<T>())
    if (grads[node].defined() && leaf->grad && leaf->grad->shape() != grads[node].value().shape())
      throw_shape_error("backward", "a leaf's accumulated gradient has shape " +
                                        shape_str(Shape(leaf->grad->shape().begin(), leaf->grad->shape().end())) +
                                        " but this backward gives it shape " + shape_str(grads[node].shape()) +
                                        " (was the leaf reshaped through mutable_value()? call zero_grad())");
  for (auto& [node, leaf] : tape.leaves<T>()) {
    if (!grads[node].defined()) continue;
    const auto& from = grads[node].impl();
    if (leaf->grad) {
      add_into(*leaf->grad, from->value);
    } else {
      // The store's tensor is the only holder once the walk is over: its array moves, uncopied.
      leaf->grad = std::make_unique<xt::xarray<T>>(from.use_count() == 1 ? std::move(from->value) : from->value);
    }
  }
}

template <class T>
std::vector<Tensor<T>> grad_impl(const Tensor<T>& y, const std::vector<Tensor<T>>& xs,
                                 const xt::xarray<T>* seed, bool create_graph) {
  TapeImpl& tape = tape_of(y, "grad");
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw_usage_error("grad", "xs[" + std::to_string(i) + "] is undefined");
  std::vector<std::size_t> nodes;
  for (const auto& x : xs) nodes.push_back(tape.node_of(*x.impl()));
  const std::size_t lowest = nodes.empty() ? no_node : *std::min_element(nodes.begin(), nodes.end());
  GradStore store =
      reverse_walk(tape, y, checked_seed(y, seed, "grad"), create_graph, true, nodes, lowest);
  auto& grads = store.of<T>();
  std::vector<Tensor<T>> result;
  result.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::size_t node = nodes[i];
    if (node != no_node && grads[node].defined()) {
      result.push_back(grads[node]);
    } else {
      result.emplace_back(xt::xarray<T>(xt::zeros<T>(xs[i].value().shape())));
    }
  }
  return result;
}

}  // namespace
}  // namespace detail

template <class T>
void Tensor<T>::backward(bool retain_graph) const {
  detail::backward_impl<T>(*this, nullptr, retain_graph);
}

template <class T>
void Tensor<T>::backward(const xt::xarray<T>& seed, bool retain_graph) const {
  detail::backward_impl<T>(*this, &seed, retain_graph);
}

template <class T>
std::vector<Tensor<T>> grad(const Tensor<T>& y, const std::vector<Tensor<T>>& xs,
                            bool create_graph) {
  return detail::grad_impl<T>(y, xs, nullptr, create_graph);
}

template <class T>
std::vector<Tensor<T>> grad(const Tensor<T>& y, const std::vector<Tensor<T>>& xs,
                            const xt::xarray<T>& seed, bool create_graph) {
  return detail::grad_impl<T>(y, xs, &seed, create_graph);
}

template void Tensor<float>::backward(bool) const;
template void Tensor<double>::backward(bool) const;
template void Tensor<float>::backward(const xt::xarray<float>&, bool) const;
template void Tensor<double>::backward(const xt::xarray<double>&, bool) const;
template std::vector<Tensor<float>> grad(const Tensor<float>&, const std::vector<Tensor<float>>&,
                                         bool);
template std::vector<Tensor<double>> grad(const Tensor<double>&,
                                          const std::vector<Tensor<double>>&, bool);
template std::vector<Tensor<float>> grad(const Tensor<float>&, const std::vector<Tensor<float>>&,
                                         const xt::xarray<float>&, bool);
template std::vector<Tensor<double>> grad(const Tensor<double>&,
                                          const std::vector<Tensor<double>>&,
                                          const xt::xarray<double>&, bool);

}  // namespace tapegrad
