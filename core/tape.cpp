#include "tape.hpp"

#include <algorithm>
#include <atomic>
#include <memory_resource>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace tapegrad {
namespace detail {
namespace {

// Gradients by node during one reverse walk; a node holds float or double gradients. Only the
// walked output's type is allocated (of<T>): entries of the other type, which no gradient can
// reach, find theirs empty (existing<T>).
struct GradStore {
  std::size_t nodes;
  std::vector<Tensor<float>> f;
  std::vector<Tensor<double>> d;
  std::vector<char> keep;   // nodes whose gradient the caller asked for: not consumed by the walk
  explicit GradStore(std::size_t count) : nodes(count), keep(count, 0) {}
  template <class T>
  std::vector<Tensor<T>>& existing();
  template <class T>
  std::vector<Tensor<T>>& of() {
    auto& grads = existing<T>();
    if (grads.empty()) grads.resize(nodes);
    return grads;
  }
};
template <>
std::vector<Tensor<float>>& GradStore::existing<float>() { return f; }
template <>
std::vector<Tensor<double>>& GradStore::existing<double>() { return d; }

}  // namespace

// Process-wide accounting of the entries alive on all tapes (tg::memory_stats).
std::atomic<std::size_t> entries_alive{0};
std::atomic<std::size_t> entry_bytes_alive{0};

// Which thread owns each live tape, consulted only to word errors.
struct TapeOwners {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::thread::id> owner;
};
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

using tapegrad::shape_str;

// "(2, 3), (3)", or "none".
template <class S>
std::string shapes_str(const std::vector<S>& shapes) {
  std::string s;
  for (std::size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + shape_str(shapes[i]);
  return shapes.empty() ? "none" : s;
}

// An entry is small, since a long tape of small ops is bound by memory: what it keeps besides
// itself (its op's name, its lists, the shapes' dimensions) lives in the same block of the tape's
// arena, right after it (record_op), and the label it names is kept alive by its tape.
struct EntryBase {
  const char* op;                    // NUL-terminated, in the entry's block
  const std::string* label = nullptr;   // the tg::Label active when recorded, or null
  EntryList<RecordedInput> inputs;   // node (no_node for inputs needing no gradient) and shape
  std::size_t output = 0;
  RecordedShape output_shape;
  std::size_t saved_bytes = 0;       // the saved values' share of bytes(), given back by release()
  std::uint32_t block_bytes;         // the entry's block of the arena
  bool released = false;
  bool keeps_output = false;         // a SavedInput record of the output follows the input records
  bool holds_function = false;       // the VJP is a VjpFunction, right after the entry
  EntryBase(const char* op, RecordedInput* input_room, RecordedShape output_shape, std::uint32_t block_bytes)
      : op(op), inputs(input_room), output_shape(output_shape), block_bytes(block_bytes) {
    entries_alive.fetch_add(1, std::memory_order_relaxed);
  }
  virtual ~EntryBase() {
    entries_alive.fetch_sub(1, std::memory_order_relaxed);
    entry_bytes_alive.fetch_sub(bytes(), std::memory_order_relaxed);
  }
  // What it accounts for in entry_bytes_alive.
  std::size_t bytes() const { return block_bytes + saved_bytes; }
  EntryBase(const EntryBase&) = delete;
  EntryBase& operator=(const EntryBase&) = delete;
  // "'mul' (#3 on the tape, label 'decoder')", for the entry at `position` on its tape.
  std::string where(std::size_t position) const {
    return std::string("'") + op + "' (#" + std::to_string(position) + " on the tape" +
           (label ? ", label '" + *label + "'" : std::string()) + ")";
  }
  std::string input_shapes_str() const {
    std::vector<Shape> shapes;
    for (const auto& in : inputs) shapes.push_back(in.shape);
    return shapes_str(shapes);
  }
  // Drops the VJP and saved values (backward with retain_graph=false, once the walk succeeded).
  virtual void release() = 0;
  // Applies the VJP if the output has a gradient; accumulates into the inputs' gradients. False
  // when there was no gradient to apply.
  virtual bool backprop(GradStore& store, bool create_graph, std::size_t position) = 0;
  // Asks the cache for what backprop will read, a few entries ahead of the walk: on a long tape of
  // small ops those reads are cache misses, scattered over the heap, and they dominate the walk.
  // First the states of the saved values and the inputs' gradient slots (states), then, once the
  // states have arrived, the values' elements (!states).
  virtual void prefetch(GradStore& store, bool states) const = 0;
};

struct ThreadState {
  std::vector<TapeImpl*> live;   // this thread's live tapes, newest (the active one) last
  bool grad_enabled = true;
  bool detect_anomaly = false;
  bool in_backward = false;   // VJPs running: their results are checked per entry, not per op
  std::vector<std::shared_ptr<const std::string>> labels;   // full paths, innermost last
};

ThreadState& thread_state() {
  static thread_local ThreadState state;
  return state;
}

// Entries live in their tape's arena: destroying one runs its destructor only; the arena frees
// the memory with the tape.
struct DestroyEntry {
  void operator()(EntryBase* e) const { e->~EntryBase(); }
};
using EntryPtr = std::unique_ptr<EntryBase, DestroyEntry>;

struct TapeImpl {
  std::uint64_t id;
  std::thread::id owner = std::this_thread::get_id();
  // Before the entries: destroyed after them. Entries recorded one after another sit side by side,
  // so the reverse walk reads memory in order instead of chasing scattered allocations.
  std::pmr::monotonic_buffer_resource arena{std::size_t(1) << 16};
  std::vector<EntryPtr> entries;
  std::size_t num_nodes = 0;
  // The labels its entries name, each once (entries recorded under one label follow each other).
  std::vector<std::shared_ptr<const std::string>> labels;
  // Leaves that require grad get a node the first time an op on this tape reads them.
  std::unordered_map<const void*, std::size_t> leaf_nodes;
  std::vector<std::pair<std::size_t, std::shared_ptr<TensorImpl<float>>>> leaves_f;
  std::vector<std::pair<std::size_t, std::shared_ptr<TensorImpl<double>>>> leaves_d;

  template <class T>
  auto& leaves();

  template <class T>
  std::size_t leaf_node(const std::shared_ptr<TensorImpl<T>>& impl) {
    // try_emplace: no node is allocated when the leaf is already known (every use of a weight).
    auto [it, inserted] = leaf_nodes.try_emplace(impl.get(), num_nodes);
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

// "[0, 2]"
std::string multi_index_str(std::size_t flat, const Shape& shape) {
  const Shape index = unravel_index(flat, shape);
  std::string s = "[";
  for (std::size_t k = 0; k < index.size(); ++k) s += (k ? ", " : "") + std::to_string(index[k]);
  return s + "]";
}

// "" if every element is finite, else "nan at [0, 2]".
template <class T>
std::string first_non_finite(const xt::xarray<T>& v) {
  const T* p = v.data();
  for (std::size_t i = 0, n = v.size(); i < n; ++i)
    if (!std::isfinite(p[i]))
      return std::string(std::isnan(p[i]) ? "NaN" : p[i] > 0 ? "+Inf" : "-Inf") + " at " +
             multi_index_str(i, shape_of(v));
  return "";
}

[[noreturn]] void throw_anomaly(const std::string& op, const std::string& message) {
  throw AnomalyError(op + ": " + message);
}

// into += from, arrays of one shape.
template <class T>
void add_into(xt::xarray<T>& into, const xt::xarray<T>& from) {
  T* dst = into.data();
  const T* src = from.data();
  for (std::size_t i = 0, n = into.size(); i < n; ++i) dst[i] += src[i];
}

// The tape's own op: a gradient flowing into a node from two places.  y = a + b;  da = db = grad
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
  }, Saved::nothing);
}

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
  // in the block, right after the input records: an op that does not save it pays nothing.
  SavedInput<T>* kept_output() const {
    if (!keeps_output) return nullptr;
    const char* room = reinterpret_cast<const char*>(inputs.end());
    return std::launder(reinterpret_cast<SavedInput<T>*>(const_cast<char*>(room)));
  }
  // The VJP when it is a VjpFunction (holds_function), in the block right after the entry.
  VjpFunction<T>* function() const {
    const char* room = reinterpret_cast<const char*>(this) + sizeof(Entry);
    return std::launder(reinterpret_cast<VjpFunction<T>*>(const_cast<char*>(room)));
  }
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
    entry_bytes_alive.fetch_sub(saved_bytes, std::memory_order_relaxed);
    saved_bytes = 0;
  }
};

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
                       bool retain_graph, const std::vector<std::size_t>& keep = {}) {
  GradStore store(tape.num_nodes);
  for (std::size_t node : keep)
    if (node != no_node) store.keep[node] = 1;
  store.of<T>()[y.impl()->node] = Tensor<T>(std::move(seed));
  GradMode mode(create_graph);
  InBackward in_backward;
  // With create_graph the VJPs record onto y's tape, even when a newer tape is active.
  ActiveTape active(create_graph ? &tape : nullptr);
  const std::size_t end = tape.entries.size();
  // How far ahead of the walk the cache is asked for an entry (its first bytes: the entry itself
  // and the lists recorded after it in the arena), then for what it points to (prefetch()).
  constexpr std::size_t entry_ahead = 16, states_ahead = 8, values_ahead = 4;
  std::vector<std::size_t> walked;   // entries whose VJP ran, to release once the walk succeeded
  for (std::size_t i = end; i-- > 0;) {
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

namespace {
const detail::TapeImpl& owned(const std::unique_ptr<detail::TapeImpl>& impl, const char* method) {
  if (impl->owner != std::this_thread::get_id())
    throw_usage_error(std::string("Tape::") + method,
                      "tape #" + std::to_string(impl->id) +
                          " belongs to the thread that created it; it cannot be used from another");
  return *impl;
}
}  // namespace

std::size_t Tape::size() const { return owned(impl_, "size").entries.size(); }

std::size_t Tape::bytes() const {
  std::size_t total = 0;
  for (const auto& e : owned(impl_, "bytes").entries) total += e->bytes();
  return total;
}

std::string Tape::str() const {
  std::ostringstream os;
  const auto& entries = owned(impl_, "str").entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = *entries[i];
    os << '#' << i << ' ' << e.op;
    for (const auto& in : e.inputs) os << ' ' << detail::shape_str(in.shape);
    os << " -> " << detail::shape_str(e.output_shape) << " node " << e.output;
    if (e.label) os << " [" << *e.label << ']';
    os << '\n';
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
  owned(impl_, "dot");
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::vector<std::size_t> producer(impl_->num_nodes, no_node);   // node -> entry
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    producer[e.output] = i;
    os << "  op" << i << " [shape=box, style=rounded, label=\"" << dot_escape(e.op) << "\\n" << detail::shape_str(e.output_shape)
       << "\"];\n";
  }
  std::size_t constants = 0;
  std::vector<bool> leaf_drawn(impl_->num_nodes, false);
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    for (std::size_t k = 0; k < e.inputs.size(); ++k) {
      const std::size_t node = e.inputs[k].node;
      std::string from;
      if (node == no_node) {
        from = "const" + std::to_string(constants++);
        os << "  " << from << " [shape=plaintext, label=\"const\\n" << detail::shape_str(e.inputs[k].shape) << "\"];\n";
      } else if (producer[node] != no_node) {
        from = "op" + std::to_string(producer[node]);
      } else {
        from = "leaf" + std::to_string(node);
        if (!leaf_drawn[node])
          os << "  " << from << " [shape=ellipse, label=\"leaf\\n" << detail::shape_str(e.inputs[k].shape) << "\"];\n";
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

DetectAnomaly::DetectAnomaly() : previous_(detail::thread_state().detect_anomaly) {
  detail::thread_state().detect_anomaly = true;
}
DetectAnomaly::~DetectAnomaly() { detail::thread_state().detect_anomaly = previous_; }

Label::Label(const std::string& name) {
  auto& labels = detail::thread_state().labels;
  labels.push_back(std::make_shared<const std::string>(labels.empty() ? name : *labels.back() + "/" + name));
}
Label::~Label() { detail::thread_state().labels.pop_back(); }

MemoryStats memory_stats() {
  MemoryStats stats;
  stats.live_tensors = detail::live_tensor_count();
  stats.tape_entries = detail::entries_alive.load(std::memory_order_relaxed);
  stats.tape_bytes = detail::entry_bytes_alive.load(std::memory_order_relaxed);
  return stats;
}

namespace {
// The anomaly check of a forward result: the first NaN or Inf, the inputs' shapes, and whether
// the inputs were finite already (then the culprit is upstream).
template <class T>
void check_forward_anomaly(const std::string& op, detail::InputSpan<T> inputs,
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
  detail::throw_anomaly(op, "forward produced " + bad + " in its output of shape " +
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
// record_op, for a VJP given as a VjpFunction or as a VjpPointer.
template <class T, class Vjp>
Tensor<T> record_entry(const std::string& op, InputSpan<T> inputs, OutputState<T>&& out, Vjp&& vjp, Saved saved) {
  constexpr bool is_function = std::is_same<std::decay_t<Vjp>, VjpFunction<T>>::value;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw_usage_error(op, "input " + std::to_string(i) + " is an undefined tensor");
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
  // One block of the arena: the entry, its VjpFunction (if it is one), its input records, its saved
  // output, its saved inputs, the dimensions of the shapes it records (the output's, then each
  // input's), and its op's name.
  using Entry = detail::Entry<T>;
  using RecordedInput = detail::RecordedInput;
  using SavedInput = detail::SavedInput<T>;
  static_assert(sizeof(Entry) % alignof(VjpFunction<T>) == 0 && sizeof(VjpFunction<T>) % alignof(RecordedInput) == 0 &&
                    sizeof(Entry) % alignof(RecordedInput) == 0 && sizeof(RecordedInput) % alignof(SavedInput) == 0 &&
                    sizeof(SavedInput) % alignof(std::size_t) == 0 && alignof(Entry) >= alignof(std::size_t),
                "the entry's lists and dimensions follow it unpadded");
  std::size_t num_dims = out->value.dimension();
  for (std::size_t i = 0; i < inputs.size(); ++i) num_dims += inputs[i].impl()->value.dimension();
  const std::size_t records_at = sizeof(Entry) + (is_function ? sizeof(VjpFunction<T>) : 0);
  const std::size_t kept_at = records_at + inputs.size() * sizeof(RecordedInput);
  const std::size_t saved_at = kept_at + (saves_output ? sizeof(SavedInput) : 0);
  const std::size_t dims_at = saved_at + (saves_inputs ? inputs.size() * sizeof(SavedInput) : 0);
  const std::size_t name_at = dims_at + num_dims * sizeof(std::size_t);
  const std::size_t block_size = name_at + op.size() + 1;
  if (block_size > std::numeric_limits<std::uint32_t>::max())
    throw_usage_error(op, "an op with " + std::to_string(inputs.size()) + " inputs of " + std::to_string(num_dims) +
                              " dimensions in all is too large to record (its tape entry would exceed 4 GiB)");
  char* block = static_cast<char*>(tape.arena.allocate(block_size, alignof(Entry)));
  std::memcpy(block + name_at, op.c_str(), op.size() + 1);
  auto* dims = reinterpret_cast<std::size_t*>(block + dims_at);
  // Copies a shape into the block's dimensions; returns it as recorded there.
  const auto record_shape = [&dims](const auto& shape) {
    const RecordedShape recorded(dims, shape.size());
    dims = std::copy(shape.begin(), shape.end(), dims);
    return recorded;
  };
  detail::EntryPtr owner(new (block) Entry(block + name_at, reinterpret_cast<RecordedInput*>(block + records_at),
                                           reinterpret_cast<SavedInput*>(block + saved_at),
                                           record_shape(out->value.shape()),
                                           static_cast<std::uint32_t>(block_size)));
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
    new (block + sizeof(Entry)) VjpFunction<T>(std::move(vjp));
    entry->holds_function = true;   // function() finds it right after the entry
  } else {
    entry->vjp_pointer = vjp;
  }
  if (saves_output) {
    new (block + kept_at) SavedInput{Tensor<T>(out), out->version};
    entry->keeps_output = true;   // kept_output() finds it at kept_at
    saved_bytes += value_bytes(*out);
  }
  entry->saved_bytes = saved_bytes;
  detail::entry_bytes_alive.fetch_add(entry->bytes(), std::memory_order_relaxed);
  tape.entries.push_back(std::move(owner));
  return Tensor<T>(std::move(out));
}
}  // namespace
}  // namespace detail

template <class T>
Tensor<T> detail::record_op(const std::string& op, InputSpan<T> inputs, OutputState<T>&& out, VjpFunction<T>&& vjp,
                            Saved saved) {
  return record_entry<T>(op, inputs, std::move(out), std::move(vjp), saved);
}

template <class T>
Tensor<T> detail::record_op(const std::string& op, InputSpan<T> inputs, OutputState<T>&& out, VjpPointer<T> vjp,
                            Saved saved) {
  return record_entry<T>(op, inputs, std::move(out), vjp, saved);
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

template bool detail::appends_entry<float>(InputSpan<float>);
template bool detail::appends_entry<double>(InputSpan<double>);
template Tensor<float> detail::record_op<float>(const std::string&, InputSpan<float>, OutputState<float>&&,
                                                VjpFunction<float>&&, Saved);
template Tensor<double> detail::record_op<double>(const std::string&, InputSpan<double>, OutputState<double>&&,
                                                  VjpFunction<double>&&, Saved);
template Tensor<float> detail::record_op<float>(const std::string&, InputSpan<float>, OutputState<float>&&,
                                                VjpPointer<float>, Saved);
template Tensor<double> detail::record_op<double>(const std::string&, InputSpan<double>, OutputState<double>&&,
                                                  VjpPointer<double>, Saved);
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
