// The tape's internals, shared by core/tape.cpp (recording), core/backward.cpp (the reverse
// walk), core/tape_text.cpp (text and DOT) and core/grad_mode.cpp (the thread's modes and guards).
// Internal: never installed, never included by tapegrad.hpp.
#ifndef TAPEGRAD_CORE_TAPE_INTERNALS_HPP
#define TAPEGRAD_CORE_TAPE_INTERNALS_HPP

#include <atomic>
#include <memory_resource>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tape.hpp"

namespace tapegrad {
namespace detail {

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
inline std::vector<Tensor<float>>& GradStore::existing<float>() { return f; }
template <>
inline std::vector<Tensor<double>>& GradStore::existing<double>() { return d; }


// Which thread owns each live tape, consulted only to word errors.
struct TapeOwners {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::thread::id> owner;
};
TapeOwners& tape_owners();
bool owned_by_another_thread(std::uint64_t tape_id);

using tapegrad::shape_str;

// "(2, 3), (3)", or "none".
template <class S>
inline std::string shapes_str(const std::vector<S>& shapes) {
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
    count(Counted::entries, 1);
  }
  virtual ~EntryBase() {
    count(Counted::entries, -1);
    count(Counted::entry_bytes, -static_cast<std::ptrdiff_t>(bytes()));
  }
  // What it accounts for in memory_stats' tape_bytes.
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

// While alive on its thread, sees every entry recorded there in double (gradcheck's localisation
// of a wrong VJP and its diagnosis): keeps each entry's name, position, label, inputs and output,
// and adds `delta` to the output of the entry at position `perturb_at` (finite differences at a
// node). Probes nest; the newest sees the entries.
struct TapeProbe {
  struct Op {
    std::string name, label;
    std::size_t position;
    std::vector<Tensor<double>> inputs;
    Tensor<double> output;
  };
  std::vector<Op> ops;
  std::size_t perturb_at = std::size_t(-1);
  xt::xarray<double> delta;

  TapeProbe();
  ~TapeProbe();
  TapeProbe(const TapeProbe&) = delete;
  TapeProbe& operator=(const TapeProbe&) = delete;

 private:
  TapeProbe* previous_;
};

// While alive on its thread (tg::jvp), ops carry tangents: the tangent of each tensor state that
// has one, the state kept alive with it (no other state can take its address meanwhile). Levels
// nest (a jvp inside a jvp: forward over forward): each op's tangent is computed at every level,
// outermost first, a level's rule running with its outer levels still active (so that they
// differentiate the inner tangent in turn) and itself and its inner levels suspended.
struct ForwardLevel {
  template <class T>
  struct Tangents {
    std::unordered_map<const void*, std::pair<std::shared_ptr<TensorImpl<T>>, Tensor<T>>> of;
  };
  Tangents<float> f;
  Tangents<double> d;
  std::size_t derived = 0;   // tangents derived from a VJP, for want of a rule (JvpResult)
  std::size_t batch = 0;     // tangents carried per tensor at once (JvpArgs::batch)
  std::size_t looped = 0;    // tangents of a batch computed seed by seed (JvpResult)
  bool on_caller_tape = false;   // tg::jvp recording on the caller's tape: reverse over forward
  template <class T>
  Tangents<T>& tangents();
  template <class T>
  void set(const Tensor<T>& primal, Tensor<T> tangent) {
    tangents<T>().of[primal.impl().get()] = {primal.impl(), std::move(tangent)};
  }
  template <class T>
  bool has(const Tensor<T>& x) {
    return tangents<T>().of.count(x.impl().get()) != 0;
  }
  // Undefined when x carries no tangent.
  template <class T>
  Tensor<T> get(const Tensor<T>& x) {
    auto& of = tangents<T>().of;
    const auto it = of.find(x.impl().get());
    return it == of.end() ? Tensor<T>() : it->second.second;
  }

  // The level this one is nested in, if any.
  ForwardLevel* outer() const { return previous_; }

  ForwardLevel();
  ~ForwardLevel();
  ForwardLevel(const ForwardLevel&) = delete;
  ForwardLevel& operator=(const ForwardLevel&) = delete;

 private:
  ForwardLevel* previous_;
};
template <>
inline ForwardLevel::Tangents<float>& ForwardLevel::tangents<float>() { return f; }
template <>
inline ForwardLevel::Tangents<double>& ForwardLevel::tangents<double>() { return d; }

// Before an op without a JVP rule is recorded under a jvp that records on the caller's tape: a
// UsageError where reverse mode would have to differentiate a tangent derived from its VJP.
template <class T>
void check_reverse_over_derived(std::string_view op, InputSpan<T> inputs);
// Computes and keeps the tangent of an op's output from its inputs' (core/forward.cpp): the op's
// rule, or the transpose of its VJP.
template <class T>
void forward_tangent(ForwardLevel& level, std::string_view op, InputSpan<T> inputs, const OutputState<T>& out,
                     const JvpClosure<T>* jvp, const VjpClosure<T>& vjp, Saved saved);

struct ThreadState {
  ForwardLevel* forward = nullptr;
  TapeProbe* probe = nullptr;
  std::vector<TapeImpl*> live;   // this thread's live tapes, newest (the active one) last
  bool grad_enabled = true;
  bool detect_anomaly = false;
  bool in_backward = false;   // VJPs running: their results are checked per entry, not per op
  std::vector<std::shared_ptr<const std::string>> labels;   // full paths, innermost last
};

inline ThreadState& thread_state() {
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
inline auto& TapeImpl::leaves<float>() { return leaves_f; }
template <>
inline auto& TapeImpl::leaves<double>() { return leaves_d; }


// "" if every element is finite, else "NaN at [0, 2]".
template <class T>
std::string first_non_finite(const xt::xarray<T>& v);
[[noreturn]] void throw_anomaly(const std::string& op, const std::string& message);

// into += from, arrays of one shape.
template <class T>
void add_into(xt::xarray<T>& into, const xt::xarray<T>& from) {
  T* dst = into.data();
  const T* src = from.data();
  for (std::size_t i = 0, n = into.size(); i < n; ++i) dst[i] += src[i];
}

// The tape, checked to belong to this thread; errors name Tape::<method>.
const TapeImpl& owned_tape(const std::unique_ptr<TapeImpl>& impl, const char* method);

}  // namespace detail
}  // namespace tapegrad

#endif
