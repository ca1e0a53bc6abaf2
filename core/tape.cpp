// Recording: the Tape object, an op's entry in the tape's arena (record_op), and its VJP applied
// during the reverse walk (Entry::backprop).
#include "tape.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "forward.hpp"
#include "tape_internals.hpp"

namespace tapegrad {
namespace detail {

TapeOwners& tape_owners() {
  static TapeOwners owners;
  return owners;
}
bool owned_by_another_thread(std::uint64_t tape_id) {
  auto& owners = tape_owners();
  std::lock_guard<std::mutex> lock(owners.mutex);
  const auto it = owners.owner.find(tape_id);
  return it != owners.owner.end() && it->second != std::this_thread::get_id();
}

namespace {

std::atomic<std::uint64_t> next_tape_id{1};

// "[0, 2]"
std::string multi_index_str(std::size_t flat, const Shape& shape) {
  const Shape index = unravel_index(flat, shape);
  std::string s = "[";
  for (std::size_t k = 0; k < index.size(); ++k) s += (k ? ", " : "") + std::to_string(index[k]);
  return s + "]";
}

}  // namespace

template <class T>
std::string first_non_finite(const xt::xarray<T>& v) {
  const T* p = v.data();
  for (std::size_t i = 0, n = v.size(); i < n; ++i)
    if (!std::isfinite(p[i]))
      return std::string(std::isnan(p[i]) ? "NaN" : p[i] > 0 ? "+Inf" : "-Inf") + " at " +
             multi_index_str(i, shape_of(v));
  return "";
}

void throw_anomaly(const std::string& op, const std::string& message) {
  throw AnomalyError(op + ": " + message);
}

template std::string first_non_finite(const xt::xarray<float>&);
template std::string first_non_finite(const xt::xarray<double>&);

const TapeImpl& owned_tape(const std::unique_ptr<TapeImpl>& impl, const char* method) {
  if (impl->owner != std::this_thread::get_id())
    throw_usage_error(std::string("Tape::") + method,
                      "tape #" + std::to_string(impl->id) +
                          " belongs to the thread that created it; it cannot be used from another");
  return *impl;
}

namespace {

// The tape's own op: a gradient flowing into a node from two places.  y = a + b;  da = db = grad;
//   ty = ta + tb
template <class T>
Tensor<T> accumulate(const Tensor<T>& a, const Tensor<T>& b, bool create_graph) {
  // Each matches the shape its op recorded for the node; they differ only if a leaf was reshaped
  // (mutable_value) between two ops that read it.
  if (!detail::same_shape(a.value().shape(), b.value().shape()))
    throw_shape_error("backward", "gradients of shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                                      " reach one tensor (was it reshaped through mutable_value() after an op read it?)");
  if (!create_graph && a.impl().use_count() == 1) {
    // Only the walk holds a: add into it rather than allocate (a fan-out node such as a weight
    // used at every time step receives one gradient per use).
    add_into(a.impl()->value, b.value());
    return a;
  }
  OutputState<T> sum = new_output<T>(a.value().shape());
  T* out = sum->value.data();
  const T* pa = a.value().data();
  const T* pb = b.value().data();
  for (std::size_t i = 0, n = a.size(); i < n; ++i) out[i] = pa[i] + pb[i];
  if (!create_graph) return Tensor<T>(std::move(sum));
  const Tensor<T>* inputs[] = {&a, &b};
  return record_lambda<T>("accumulate_grad", {inputs, 2}, std::move(sum), [](const VjpArgs<T>& args) {
    return std::vector<Tensor<T>>{args.grad, args.grad};
  }, Saved::nothing, takes_batch([](const JvpArgs<T>& j) {
    if (!j.has_tangent(0) || !j.has_tangent(1)) return j.has_tangent(0) ? j.tangents[0] : j.tangents[1];
    return accumulate(j.tangents[0], j.tangents[1], true);
  }));
}

template <class T>
struct Entry;

// An entry's block of the arena, laid out here only: the entry, its VjpFunction (if it holds one),
// its input records, its saved output (if it keeps it), its saved inputs (if it saves them), the
// dimensions of the shapes it records (the output's, then each input's), and its op's name.
template <class T>
struct BlockLayout {
  std::size_t records, kept, saved, dims, name, size;
  BlockLayout(bool holds_function, std::size_t inputs, bool keeps_output, bool saves_inputs = false,
              std::size_t num_dims = 0, std::size_t name_length = 0) {
    static_assert(sizeof(Entry<T>) % alignof(VjpFunction<T>) == 0 &&
                      sizeof(VjpFunction<T>) % alignof(RecordedInput) == 0 &&
                      sizeof(Entry<T>) % alignof(RecordedInput) == 0 &&
                      sizeof(RecordedInput) % alignof(SavedInput<T>) == 0 &&
                      sizeof(SavedInput<T>) % alignof(std::size_t) == 0 && alignof(Entry<T>) >= alignof(std::size_t),
                  "the entry's lists and dimensions follow it unpadded");
    records = sizeof(Entry<T>) + (holds_function ? sizeof(VjpFunction<T>) : 0);
    kept = records + inputs * sizeof(RecordedInput);
    saved = kept + (keeps_output ? sizeof(SavedInput<T>) : 0);
    dims = saved + (saves_inputs ? inputs * sizeof(SavedInput<T>) : 0);
    name = dims + num_dims * sizeof(std::size_t);
    size = name + name_length + 1;
  }
};

template <class T>
struct Entry final : EntryBase {
  VjpPointer<T> vjp_pointer = nullptr;   // the VJP, unless it is a VjpFunction (holds_function)
  // Empty, or one per input: what the VJP reads (VjpArgs::input, or its own captures), kept
  // alive with the entry until backward releases it.
  EntryList<SavedInput<T>> saved_inputs;
  Entry(const char* op, RecordedInput* input_room, SavedInput<T>* saved_room, RecordedShape output_shape,
        std::uint32_t block_bytes)
      : EntryBase(op, input_room, output_shape, block_bytes), saved_inputs(saved_room) {}
  ~Entry() override { release_saved(); }
  // The output and its version when recorded, if the op saved it (keeps_output); else null. Kept
  // in the block: an op that does not save it pays nothing.
  SavedInput<T>* kept_output() const {
    if (!keeps_output) return nullptr;
    return std::launder(reinterpret_cast<SavedInput<T>*>(block() + BlockLayout<T>(holds_function, inputs.size(), true).kept));
  }
  // The VJP when it is a VjpFunction (holds_function), in the block right after the entry.
  VjpFunction<T>* function() const {
    return std::launder(reinterpret_cast<VjpFunction<T>*>(block() + sizeof(Entry)));
  }
  char* block() const { return reinterpret_cast<char*>(const_cast<Entry*>(this)); }
  // Destroys the VJP and the saved output (saved_inputs clears itself).
  void release_saved() {
    if (keeps_output) kept_output()->~SavedInput<T>();
    keeps_output = false;
    if (holds_function) function()->~VjpFunction<T>();
    holds_function = false;
    vjp_pointer = nullptr;
  }
  static const Tensor<T>& undefined_output() {
    static const Tensor<T> undefined;
    return undefined;
  }

  void check_saved_values(std::size_t position) const {
    auto changed = [&](const std::string& what, std::uint64_t then, std::uint64_t now) {
      throw_usage_error("backward", what + " of " + where(position) +
                                        " was modified in place after the op was recorded "
                                        "(version " + std::to_string(then) + " -> " +
                                        std::to_string(now) +
                                        "), and its VJP reads it: the gradient would be wrong. "
                                        "Change it after backward, or change a copy (detach())");
    };
    for (std::size_t i = 0; i < saved_inputs.size(); ++i)
      if (const auto& impl = saved_inputs[i].tensor.impl(); impl->version != saved_inputs[i].version)
        changed("input " + std::to_string(i) + " (shape " + shape_str(inputs[i].shape) + ")",
                saved_inputs[i].version, impl->version);
    if (const SavedInput<T>* kept = kept_output(); kept && kept->tensor.impl()->version != kept->version)
      changed("the output (shape " + shape_str(output_shape) + ")", kept->version, kept->tensor.impl()->version);
  }

  bool backprop(GradStore& store, bool create_graph, std::size_t position) override {
    auto& grads = store.existing<T>();
    if (output >= grads.size() || !grads[output].defined()) return false;
    if (released)
      throw_usage_error("backward",
                        "the saved values of " + where(position) +
                            " were released by an earlier backward with retain_graph=false; "
                            "keep the default retain_graph=true to back-propagate twice");
    check_saved_values(position);
    // Consumed here unless asked for: intermediate gradients die as soon as they are used.
    const Tensor<T> grad = store.keep[output] ? grads[output] : std::move(grads[output]);
    // The VJP may append entries (create_graph) and so move this->entries' storage; it never
    // moves *this, which the tape owns through a unique_ptr.
    const SavedInput<T>* kept = kept_output();
    const VjpArgs<T> args{grad, kept ? kept->tensor : undefined_output(), inputs, saved_inputs};
    Gradients<T> input_grads = holds_function ? (*function())(args) : vjp_pointer(args);
    if (input_grads.size() != inputs.size())
      throw_usage_error("backward", "VJP of " + where(position) + " returned " +
                                        std::to_string(input_grads.size()) + " gradients for " +
                                        std::to_string(inputs.size()) + " inputs");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].node == no_node || !input_grads[i].defined()) continue;
      if (!detail::same_shape(input_grads[i].value().shape(), inputs[i].shape))
        throw_shape_error("backward", "VJP of " + where(position) + " returned a gradient of shape " +
                                          shape_str(input_grads[i].shape()) + " for input " + std::to_string(i) +
                                          " of shape " + shape_str(inputs[i].shape));
      if (thread_state().detect_anomaly) {
        const std::string bad = first_non_finite(input_grads[i].value());
        if (!bad.empty())
          throw_anomaly(op, "backward produced " + bad + " in the gradient of input " +
                                std::to_string(i) + " (shape " + shape_str(inputs[i].shape) +
                                "); op #" + std::to_string(position) + " on the tape" +
                                (label ? ", label '" + *label + "'" : std::string()) +
                                ", input shapes " + input_shapes_str() +
                                "; its incoming gradient " +
                                (first_non_finite(grad.value()).empty() ? "was finite"
                                                                        : "was not finite") +
                                " (anomaly detection)");
      }
      Tensor<T>& slot = grads[inputs[i].node];
      slot = slot.defined() ? accumulate(slot, input_grads[i], create_graph)
                            : std::move(input_grads[i]);
    }
    return true;
  }

  void prefetch(GradStore& store, bool states) const override {
    const auto fetch = [&](const TensorImpl<T>* impl) {
      if (!impl) return;
      if (!states) {
        __builtin_prefetch(impl->value.data());
        return;
      }
      __builtin_prefetch(impl);                  // version, shape
      __builtin_prefetch(&impl->value.storage());   // where the elements are
    };
    for (const SavedInput<T>& s : saved_inputs) fetch(s.tensor.impl().get());
    if (const SavedInput<T>* kept = kept_output()) fetch(kept->tensor.impl().get());
    if (!states) return;
    const auto& grads = store.existing<T>();
    for (const RecordedInput& in : inputs)
      if (in.node < grads.size()) __builtin_prefetch(&grads[in.node]);
  }

  void release() override {
    saved_inputs.clear();
    release_saved();
    released = true;
    count(Counted::entry_bytes, -static_cast<std::ptrdiff_t>(saved_bytes));
    saved_bytes = 0;
  }
};

}  // namespace
}  // namespace detail

Tape::Tape() : impl_(std::make_unique<detail::TapeImpl>()) {
  impl_->id = detail::next_tape_id.fetch_add(1);
  detail::thread_state().live.push_back(impl_.get());
  auto& owners = detail::tape_owners();
  std::lock_guard<std::mutex> lock(owners.mutex);
  owners.owner.emplace(impl_->id, impl_->owner);
}

Tape::~Tape() {
  {
    auto& owners = detail::tape_owners();
    std::lock_guard<std::mutex> lock(owners.mutex);
    owners.owner.erase(impl_->id);
  }
  // A Tape is a scope guard of its thread, like std::lock_guard: destroyed on another thread it
  // cannot leave its owner's list safely, so its owner's list is left to the owner.
  auto& live = detail::thread_state().live;
  live.erase(std::remove(live.begin(), live.end(), impl_.get()), live.end());
}


std::size_t Tape::size() const { return detail::owned_tape(impl_, "size").entries.size(); }

std::size_t Tape::bytes() const {
  std::size_t total = 0;
  for (const auto& e : detail::owned_tape(impl_, "bytes").entries) total += e->bytes();
  return total;
}

namespace {
// The anomaly check of a forward result: the first NaN or Inf, the inputs' shapes, and whether
// the inputs were finite already (then the culprit is upstream).
template <class T>
void check_forward_anomaly(std::string_view op, detail::InputSpan<T> inputs,
                           const xt::xarray<T>& value, const std::string& position) {
  const std::string bad = detail::first_non_finite(value);
  if (bad.empty()) return;
  std::vector<Shape> shapes;
  std::string upstream;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    shapes.push_back(inputs[i].shape());
    const std::string in = detail::first_non_finite(inputs[i].value());
    if (!in.empty() && upstream.empty()) upstream = "; input " + std::to_string(i) + " already held " + in;
  }
  const auto& labels = detail::thread_state().labels;
  detail::throw_anomaly(std::string(op), "forward produced " + bad + " in its output of shape " +
                                shape_str(detail::shape_of(value)) + "; op " + position +
                                (labels.empty() ? std::string() : ", label '" + *labels.back() + "'") +
                                ", input shapes " + detail::shapes_str(shapes) +
                                (upstream.empty() ? "; every input was finite" : upstream) +
                                " (anomaly detection)");
}

template <class T>
std::size_t value_bytes(const detail::TensorImpl<T>& x) { return x.value.size() * sizeof(T); }
}  // namespace

template <class T>
bool detail::appends_entry(InputSpan<T> inputs) {
  const auto& state = detail::thread_state();
  if (!state.grad_enabled || state.live.empty()) return false;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].impl()->requires_grad) return true;
  return false;
}

namespace detail {
namespace {
// Shows a recorded entry to the thread's probe, and moves its output if the probe says so.
void probe_entry(TapeProbe& probe, std::size_t position, const EntryBase& entry, InputSpan<double> inputs,
                 const OutputState<double>& out) {
  if (position == probe.perturb_at) {
    if (!detail::same_shape(probe.delta.shape(), out->value.shape()))
      throw_shape_error(entry.op, "a perturbation of shape " + shape_str(shape_of(probe.delta)) +
                                      " for an output of shape " + shape_str(shape_of(out->value)));
    add_into(out->value, probe.delta);
  }
  TapeProbe::Op op{entry.op, entry.label ? *entry.label : std::string(), position, {}, Tensor<double>(out)};
  for (std::size_t i = 0; i < inputs.size(); ++i) op.inputs.push_back(inputs[i]);
  probe.ops.push_back(std::move(op));
}

// Appends the op's entry where it is recorded (the output returned as it is otherwise).
template <class T, class Vjp>
Tensor<T> append_entry(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, Vjp&& vjp, Saved saved);

// Every forward level's tangent of out, outermost first: an inner level's rule may read the
// output, whose outer tangents must then be known.
template <class T>
void forward_tangents(std::string_view op, InputSpan<T> inputs, const OutputState<T>& out, const JvpClosure<T>* jvp,
                      const VjpClosure<T>& vjp, Saved saved) {
  auto& state = detail::thread_state();
  for (ForwardLevel* done = nullptr; done != state.forward;) {
    ForwardLevel* level = state.forward;
    while (level->outer() != done) level = level->outer();
    forward_tangent<T>(*level, op, inputs, out, jvp, vjp, saved);
    done = level;
  }
}

// record_op, for a VJP given as a VjpFunction or as a VjpPointer.
template <class T, class Vjp>
Tensor<T> record_entry(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, Vjp&& vjp, Saved saved,
                       const JvpClosure<T>* jvp) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw_usage_error(op, "input " + std::to_string(i) + " is an undefined tensor");
  auto& state = detail::thread_state();
  if (!state.forward) return append_entry<T>(op, inputs, std::move(out), std::forward<Vjp>(vjp), saved);
  // Forward mode: the tangents are computed before the entry is appended, unless a level records on
  // the caller's tape (reverse over forward: the rules' ops must see the output as recorded, so
  // that reverse mode differentiates the tangent through it).
  bool after = false;
  for (ForwardLevel* level = state.forward; level; level = level->outer()) after = after || level->on_caller_tape;
  if (!after) {
    if constexpr (std::is_same<std::decay_t<Vjp>, VjpFunction<T>>::value) {
      forward_tangents<T>(op, inputs, out, jvp, vjp, saved);
    } else {
      forward_tangents<T>(op, inputs, out, jvp, VjpClosure<T>(vjp), saved);
    }
    return append_entry<T>(op, inputs, std::move(out), std::forward<Vjp>(vjp), saved);
  }
  if (!jvp) check_reverse_over_derived<T>(op, inputs);   // before the entry: a failed op leaves none
  const VjpClosure<T> function = vjp;   // a copy: the entry takes vjp
  const OutputState<T> kept = out;
  Tensor<T> y = append_entry<T>(op, inputs, std::move(out), std::forward<Vjp>(vjp), saved);
  forward_tangents<T>(op, inputs, kept, jvp, function, saved);
  return y;
}

template <class T, class Vjp>
Tensor<T> append_entry(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, Vjp&& vjp, Saved saved) {
  constexpr bool is_function = std::is_same<std::decay_t<Vjp>, VjpFunction<T>>::value;
  auto& state = detail::thread_state();
  const bool recording = state.grad_enabled && !state.live.empty();
  const bool check_anomaly = state.detect_anomaly && !state.in_backward;
  if (!recording) {
    if (check_anomaly) check_forward_anomaly(op, inputs, out->value, "(not recorded)");
    return Tensor<T>(std::move(out));
  }

  detail::TapeImpl& tape = *state.live.back();
  bool any_requires_grad = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = *inputs[i].impl();
    if (in.tape_id != 0 && in.tape_id != tape.id)
      throw_usage_error(op, "input " + std::to_string(i) + " of shape " +
                                shape_str(inputs[i].shape()) + " was recorded on another tape (#" +
                                std::to_string(in.tape_id) +
                                (detail::owned_by_another_thread(in.tape_id)
                                     ? ", which belongs to another thread"
                                     : "") +
                                "; this thread's active tape is #" + std::to_string(tape.id) +
                                "); compute it under the active tape or pass x.detach()");
    any_requires_grad = any_requires_grad || in.requires_grad;
  }
  if (check_anomaly)
    check_forward_anomaly(op, inputs, out->value,
                          any_requires_grad ? "#" + std::to_string(tape.entries.size()) + " on the tape"
                                            : "(not recorded: no input requires grad)");
  if (!any_requires_grad) return Tensor<T>(std::move(out));
  if (!vjp) throw_usage_error(op, "recorded without a VJP function");

  const bool saves_inputs = saved == Saved::inputs || saved == Saved::inputs_and_output;
  const bool saves_output = saved == Saved::output || saved == Saved::inputs_and_output;
  using Entry = detail::Entry<T>;
  using SavedInput = detail::SavedInput<T>;
  std::size_t num_dims = out->value.dimension();
  for (std::size_t i = 0; i < inputs.size(); ++i) num_dims += inputs[i].impl()->value.dimension();
  const BlockLayout<T> at(is_function, inputs.size(), saves_output, saves_inputs, num_dims, op.size());
  if (at.size > std::numeric_limits<std::uint32_t>::max())
    throw_usage_error(op, "an op with " + std::to_string(inputs.size()) + " inputs of " + std::to_string(num_dims) +
                              " dimensions in all is too large to record (its tape entry would exceed 4 GiB)");
  char* block = static_cast<char*>(tape.arena.allocate(at.size, alignof(Entry)));
  std::memcpy(block + at.name, op.data(), op.size());
  block[at.name + op.size()] = '\0';
  auto* dims = reinterpret_cast<std::size_t*>(block + at.dims);
  // Copies a shape into the block's dimensions; returns it as recorded there.
  const auto record_shape = [&dims](const auto& shape) {
    const RecordedShape recorded(dims, shape.size());
    dims = std::copy(shape.begin(), shape.end(), dims);
    return recorded;
  };
  detail::EntryPtr owner(new (block) Entry(block + at.name, reinterpret_cast<RecordedInput*>(block + at.records),
                                           reinterpret_cast<SavedInput*>(block + at.saved),
                                           record_shape(out->value.shape()), static_cast<std::uint32_t>(at.size)));
  auto* entry = static_cast<Entry*>(owner.get());
  if (!state.labels.empty()) {
    if (tape.labels.empty() || tape.labels.back() != state.labels.back()) tape.labels.push_back(state.labels.back());
    entry->label = tape.labels.back().get();
  }
  std::size_t saved_bytes = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor<T>& x = inputs[i];
    const auto& impl = x.impl();
    entry->inputs.emplace_back(impl->tape_id == tape.id ? impl->node
                               : impl->requires_grad     ? tape.leaf_node(impl)
                                                         : no_node,
                               record_shape(impl->value.shape()));
    if (saves_inputs) {
      entry->saved_inputs.emplace_back(x, impl->version);
      saved_bytes += value_bytes(*impl);
    }
  }
  out->requires_grad = true;
  out->tape_id = tape.id;
  out->node = tape.num_nodes++;
  entry->output = out->node;
  if constexpr (is_function) {
    new (entry->function()) VjpFunction<T>(std::move(vjp));
    entry->holds_function = true;
  } else {
    entry->vjp_pointer = vjp;
  }
  if (saves_output) {
    new (block + at.kept) SavedInput{Tensor<T>(out), out->version};
    entry->keeps_output = true;   // kept_output() finds it there
    saved_bytes += value_bytes(*out);
  }
  entry->saved_bytes = saved_bytes;
  detail::count(detail::Counted::entry_bytes, static_cast<std::ptrdiff_t>(entry->bytes()));
  tape.entries.push_back(std::move(owner));
  if constexpr (std::is_same<T, double>::value)
    if (state.probe) probe_entry(*state.probe, tape.entries.size() - 1, *entry, inputs, out);
  return Tensor<T>(std::move(out));
}
}  // namespace
}  // namespace detail

template <class T>
Tensor<T> detail::record_op(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, VjpFunction<T>&& vjp,
                            Saved saved, const JvpClosure<T>* jvp) {
  return record_entry<T>(op, inputs, std::move(out), std::move(vjp), saved, jvp);
}

template <class T>
Tensor<T> detail::record_op(std::string_view op, InputSpan<T> inputs, OutputState<T>&& out, VjpPointer<T> vjp,
                            Saved saved, const JvpClosure<T>* jvp) {
  return record_entry<T>(op, inputs, std::move(out), vjp, saved, jvp);
}

template bool detail::appends_entry<float>(InputSpan<float>);
template bool detail::appends_entry<double>(InputSpan<double>);
template Tensor<float> detail::record_op<float>(std::string_view, InputSpan<float>, OutputState<float>&&,
                                                VjpFunction<float>&&, Saved, const JvpClosure<float>*);
template Tensor<double> detail::record_op<double>(std::string_view, InputSpan<double>, OutputState<double>&&,
                                                  VjpFunction<double>&&, Saved, const JvpClosure<double>*);
template Tensor<float> detail::record_op<float>(std::string_view, InputSpan<float>, OutputState<float>&&,
                                                VjpPointer<float>, Saved, const JvpClosure<float>*);
template Tensor<double> detail::record_op<double>(std::string_view, InputSpan<double>, OutputState<double>&&,
                                                  VjpPointer<double>, Saved, const JvpClosure<double>*);
}  // namespace tapegrad
