#include "tape.hpp"

#include <algorithm>
#include <atomic>
#include <sstream>
#include <unordered_map>

namespace tapegrad {
namespace detail {
namespace {

Shape shape_of(const xt::xarray<float>& v) { return Shape(v.shape().begin(), v.shape().end()); }
Shape shape_of(const xt::xarray<double>& v) { return Shape(v.shape().begin(), v.shape().end()); }

// Gradients by node during one reverse walk; a node holds float or double gradients.
struct GradStore {
  std::vector<Tensor<float>> f;
  std::vector<Tensor<double>> d;
  std::vector<char> keep;   // nodes whose gradient the caller asked for: not consumed by the walk
  explicit GradStore(std::size_t nodes) : f(nodes), d(nodes), keep(nodes, 0) {}
  template <class T>
  std::vector<Tensor<T>>& of();
};
template <>
std::vector<Tensor<float>>& GradStore::of<float>() { return f; }
template <>
std::vector<Tensor<double>>& GradStore::of<double>() { return d; }

}  // namespace

struct EntryBase {
  std::string op;
  std::vector<std::size_t> inputs;   // node per input, no_node for inputs needing no gradient
  std::vector<Shape> input_shapes;
  std::size_t output = 0;
  Shape output_shape;
  bool released = false;
  bool walked = false;   // reached by the current reverse walk
  virtual ~EntryBase() = default;
  // Drops the VJP and saved values (backward with retain_graph=false, once the walk succeeded).
  virtual void release() = 0;
  // Applies the VJP if the output has a gradient; accumulates into the inputs' gradients.
  virtual void backprop(GradStore& store, bool create_graph) = 0;
};

struct ThreadState {
  std::vector<TapeImpl*> live;   // this thread's live tapes, newest (the active one) last
  bool grad_enabled = true;
};

ThreadState& thread_state() {
  static thread_local ThreadState state;
  return state;
}

struct TapeImpl {
  std::uint64_t id;
  std::vector<std::unique_ptr<EntryBase>> entries;
  std::size_t num_nodes = 0;
  // Leaves that require grad get a node the first time an op on this tape reads them.
  std::unordered_map<const void*, std::size_t> leaf_nodes;
  std::vector<std::pair<std::size_t, std::shared_ptr<TensorImpl<float>>>> leaves_f;
  std::vector<std::pair<std::size_t, std::shared_ptr<TensorImpl<double>>>> leaves_d;

  template <class T>
  auto& leaves();

  template <class T>
  std::size_t leaf_node(const std::shared_ptr<TensorImpl<T>>& impl) {
    auto [it, inserted] = leaf_nodes.emplace(impl.get(), num_nodes);
    if (inserted) {
      leaves<T>().emplace_back(num_nodes, impl);
      ++num_nodes;
    }
    return it->second;
  }

  // The node of x on this tape, or no_node if x is neither recorded here nor a leaf seen here.
  template <class T>
  std::size_t node_of(const TensorImpl<T>& x) const {
    if (x.tape_id == id) return x.node;
    auto it = leaf_nodes.find(&x);
    return it == leaf_nodes.end() ? no_node : it->second;
  }
};
template <>
auto& TapeImpl::leaves<float>() { return leaves_f; }
template <>
auto& TapeImpl::leaves<double>() { return leaves_d; }

namespace {

std::atomic<std::uint64_t> next_tape_id{1};

// The tape's own op: a gradient flowing into a node from two places.  y = a + b;  da = db = grad
template <class T>
Tensor<T> accumulate(const Tensor<T>& a, const Tensor<T>& b, bool create_graph) {
  xt::xarray<T> sum = a.value() + b.value();
  if (!create_graph) return Tensor<T>(std::move(sum));
  return record<T>("accumulate_grad", {a, b}, std::move(sum), [](const VjpArgs<T>& args) {
    return std::vector<Tensor<T>>{args.grad, args.grad};
  });
}

template <class T>
struct Entry final : EntryBase {
  VjpFunction<T> vjp;
  std::shared_ptr<TensorImpl<T>> kept_output;

  void backprop(GradStore& store, bool create_graph) override {
    auto& grads = store.of<T>();
    if (output >= grads.size() || !grads[output].defined()) return;
    if (released)
      throw_usage_error("backward",
                        "the saved values of '" + op + "' (output node " + std::to_string(output) +
                            ") were released by an earlier backward with retain_graph=false; "
                            "keep the default retain_graph=true to back-propagate twice");
    // Consumed here unless asked for: intermediate gradients die as soon as they are used.
    const Tensor<T> grad = store.keep[output] ? grads[output] : std::move(grads[output]);
    const Tensor<T> out = kept_output ? Tensor<T>(kept_output) : Tensor<T>();
    // The VJP may append entries (create_graph) and so move this->entries' storage; it never
    // moves *this, which the tape owns through a unique_ptr.
    std::vector<Tensor<T>> input_grads = vjp(VjpArgs<T>{grad, out, inputs});
    if (input_grads.size() != inputs.size())
      throw_usage_error("backward", "VJP of '" + op + "' returned " +
                                        std::to_string(input_grads.size()) + " gradients for " +
                                        std::to_string(inputs.size()) + " inputs");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i] == no_node || !input_grads[i].defined()) continue;
      const Shape got = input_grads[i].shape();
      if (got != input_shapes[i])
        throw_shape_error("backward", "VJP of '" + op + "' returned a gradient of shape " +
                                          shape_str(got) + " for input " + std::to_string(i) +
                                          " of shape " + shape_str(input_shapes[i]));
      Tensor<T>& slot = grads[inputs[i]];
      slot = slot.defined() ? accumulate(slot, input_grads[i], create_graph)
                            : std::move(input_grads[i]);
    }
    walked = true;
  }

  void release() override {
    vjp = nullptr;
    kept_output.reset();
    released = true;
  }
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
                       bool retain_graph, const std::vector<std::size_t>& keep = {}) {
  GradStore store(tape.num_nodes);
  for (std::size_t node : keep)
    if (node != no_node) store.keep[node] = 1;
  store.of<T>()[y.impl()->node] = Tensor<T>(std::move(seed));
  GradMode mode(create_graph);
  // With create_graph the VJPs record onto y's tape, even when a newer tape is active.
  ActiveTape active(create_graph ? &tape : nullptr);
  const std::size_t end = tape.entries.size();
  try {
    for (std::size_t i = end; i-- > 0;) tape.entries[i]->backprop(store, create_graph);
  } catch (...) {
    for (std::size_t i = 0; i < end; ++i) tape.entries[i]->walked = false;
    throw;
  }
  // Saved values are released only after the whole walk succeeded, like the leaves' gradients.
  for (std::size_t i = 0; i < end; ++i) {
    if (tape.entries[i]->walked && !retain_graph) tape.entries[i]->release();
    tape.entries[i]->walked = false;
  }
  return store;
}

template <class T>
void backward_impl(const Tensor<T>& y, const xt::xarray<T>* seed, bool retain_graph) {
  TapeImpl& tape = tape_of(y, "backward");
  GradStore store = reverse_walk(tape, y, checked_seed(y, seed, "backward"), false, retain_graph);
  // Leaves are written only once the whole walk succeeded: an error leaves every grad() as it was.
  auto& grads = store.of<T>();
  for (auto& [node, leaf] : tape.leaves<T>()) {
    if (!grads[node].defined()) continue;
    if (leaf->has_grad) {
      leaf->grad += grads[node].value();
    } else {
      leaf->grad = grads[node].value();
      leaf->has_grad = true;
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
  GradStore store =
      reverse_walk(tape, y, checked_seed(y, seed, "grad"), create_graph, true, nodes);
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

Tape::Tape() : impl_(std::make_unique<detail::TapeImpl>()) {
  impl_->id = detail::next_tape_id.fetch_add(1);
  detail::thread_state().live.push_back(impl_.get());
}

Tape::~Tape() {
  auto& live = detail::thread_state().live;
  live.erase(std::remove(live.begin(), live.end(), impl_.get()), live.end());
}

std::size_t Tape::size() const { return impl_->entries.size(); }

std::string Tape::str() const {
  std::ostringstream os;
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    os << '#' << i << ' ' << e.op;
    for (const auto& s : e.input_shapes) os << ' ' << shape_str(s);
    os << " -> " << shape_str(e.output_shape) << " node " << e.output << '\n';
  }
  return os.str();
}

namespace {
// An op name inside a double-quoted DOT label.
std::string dot_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string Tape::dot() const {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::vector<std::size_t> producer(impl_->num_nodes, no_node);   // node -> entry
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    producer[e.output] = i;
    os << "  op" << i << " [shape=box, style=rounded, label=\"" << dot_escape(e.op) << "\\n" << shape_str(e.output_shape)
       << "\"];\n";
  }
  std::size_t constants = 0;
  std::vector<bool> leaf_drawn(impl_->num_nodes, false);
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    for (std::size_t k = 0; k < e.inputs.size(); ++k) {
      const std::size_t node = e.inputs[k];
      std::string from;
      if (node == no_node) {
        from = "const" + std::to_string(constants++);
        os << "  " << from << " [shape=plaintext, label=\"const\\n" << shape_str(e.input_shapes[k]) << "\"];\n";
      } else if (producer[node] != no_node) {
        from = "op" + std::to_string(producer[node]);
      } else {
        from = "leaf" + std::to_string(node);
        if (!leaf_drawn[node])
          os << "  " << from << " [shape=ellipse, label=\"leaf\\n" << shape_str(e.input_shapes[k]) << "\"];\n";
        leaf_drawn[node] = true;
      }
      os << "  " << from << " -> op" << i << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

GradMode::GradMode(bool enabled) : previous_(detail::thread_state().grad_enabled) {
  detail::thread_state().grad_enabled = enabled;
}
GradMode::~GradMode() { detail::thread_state().grad_enabled = previous_; }

bool is_recording() {
  const auto& st = detail::thread_state();
  return st.grad_enabled && !st.live.empty();
}

template <class T>
Tensor<T> record(const std::string& op, const std::vector<Tensor<T>>& inputs, xt::xarray<T> value,
                 VjpFunction<T> vjp, bool keep_output) {
  auto out = std::make_shared<detail::TensorImpl<T>>();
  out->value = std::move(value);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw_usage_error(op, "input " + std::to_string(i) + " is an undefined tensor");
  if (!is_recording()) return Tensor<T>(std::move(out));

  detail::TapeImpl& tape = *detail::thread_state().live.back();
  bool any_requires_grad = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = *inputs[i].impl();
    if (in.tape_id != 0 && in.tape_id != tape.id)
      throw_usage_error(op, "input " + std::to_string(i) + " of shape " +
                                shape_str(inputs[i].shape()) + " was recorded on another tape (#" +
                                std::to_string(in.tape_id) + ", this thread's active tape is #" +
                                std::to_string(tape.id) +
                                "); compute it under the active tape or pass x.detach()");
    any_requires_grad = any_requires_grad || in.requires_grad;
  }
  if (!any_requires_grad) return Tensor<T>(std::move(out));
  if (!vjp) throw_usage_error(op, "recorded without a VJP function");

  auto entry = std::make_unique<detail::Entry<T>>();
  entry->op = op;
  entry->inputs.reserve(inputs.size());
  entry->input_shapes.reserve(inputs.size());
  for (const auto& x : inputs) {
    const auto& impl = x.impl();
    entry->inputs.push_back(impl->tape_id == tape.id ? impl->node
                            : impl->requires_grad     ? tape.leaf_node(impl)
                                                      : no_node);
    entry->input_shapes.push_back(x.shape());
  }
  out->requires_grad = true;
  out->tape_id = tape.id;
  out->node = tape.num_nodes++;
  entry->output = out->node;
  entry->output_shape = detail::shape_of(out->value);
  entry->vjp = std::move(vjp);
  if (keep_output) entry->kept_output = out;
  tape.entries.push_back(std::move(entry));
  return Tensor<T>(std::move(out));
}

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

template Tensor<float> record<float>(const std::string&, const std::vector<Tensor<float>>&,
                                     xt::xarray<float>, VjpFunction<float>, bool);
template Tensor<double> record<double>(const std::string&, const std::vector<Tensor<double>>&,
                                       xt::xarray<double>, VjpFunction<double>, bool);
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
