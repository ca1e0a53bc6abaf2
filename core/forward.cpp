// Forward mode: the tangent of every op's output as the op runs (its own rule, or its VJP
// transposed), and tg::jvp.
#include "forward.hpp"

#include <memory>
#include <type_traits>

#include "tape_internals.hpp"

namespace tapegrad {
namespace detail {

ForwardLevel::ForwardLevel() : previous_(thread_state().forward) { thread_state().forward = this; }
ForwardLevel::~ForwardLevel() { thread_state().forward = previous_; }

bool forward_active() { return thread_state().forward != nullptr; }

NoTangents::NoTangents(ForwardLevel* kept) : levels_(thread_state().forward) { thread_state().forward = kept; }
NoTangents::~NoTangents() { thread_state().forward = levels_; }

namespace {

// sum_i <a_i, t_i> as one recorded op (core uses no op): its gradient with respect to a_i is t_i.
template <class T>
Tensor<T> dot_with(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& t) {
  T value = 0;
  std::vector<xt::xarray<T>> ts;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const T* pa = a[i].value().data();
    const T* pt = t[i].value().data();
    for (std::size_t e = 0, n = a[i].size(); e < n; ++e) value += pa[e] * pt[e];
    ts.push_back(t[i].value());
  }
  return record<T>("jvp_transpose", a, xt::xarray<T>(value), [ts](const VjpArgs<T>& g) {
    const T scale = g.grad.value()();
    Gradients<T> grads;
    for (const xt::xarray<T>& ti : ts) grads.push_back(Tensor<T>(xt::xarray<T>(scale * ti)));
    return grads;
  }, Saved::nothing);
}

// x again as a tensor of its own, recorded: y = x;  dx = grad;  ty = tx
template <class T>
Tensor<T> copy_of(const Tensor<T>& x) {
  return record<T>("jvp_copy", {x}, xt::xarray<T>(x.value()), [](const VjpArgs<T>& g) { return Gradients<T>{g.grad}; },
                   Saved::nothing, takes_batch([](const JvpArgs<T>& a) { return a.tangents[0]; }));
}

// J t from the op's VJP, which is linear in its seed g: J t = d/dg <VJP(g), t>, one run of the
// VJP on a recorded seed and one reverse walk. The VJP reads the inputs and output detached.
template <class T>
Tensor<T> tangent_from_vjp(std::string_view op, InputSpan<T> inputs, const Tensor<T>& output,
                           const std::vector<Tensor<T>>& tangents, const VjpClosure<T>& vjp, Saved saved) {
  if (!vjp) throw_usage_error(op, "forward mode: the op has neither a JVP rule nor a VJP to derive one from");
  GradMode recording(true);
  // On the active tape if there is one (gradcheck opens its own; tg::jvp does, but not with
  // tg::record_on_tape under a recording tape: these entries stay there): a VJP may read tensors
  // it captured, recorded there.
  std::unique_ptr<Tape> own;
  if (thread_state().live.empty()) own = std::make_unique<Tape>();
  const std::size_t n = inputs.size();
  std::size_t rank_sum = 0;
  for (std::size_t i = 0; i < n; ++i) rank_sum += inputs[i].value().dimension();
  std::vector<std::size_t> dims;
  dims.reserve(rank_sum + 1);   // the records point into it: no reallocation
  using InputRoom = std::aligned_storage_t<sizeof(RecordedInput), alignof(RecordedInput)>;
  using SavedRoom = std::aligned_storage_t<sizeof(SavedInput<T>), alignof(SavedInput<T>)>;
  std::vector<InputRoom> input_room(n + 1);
  std::vector<SavedRoom> saved_room(n + 1);
  std::vector<Tensor<T>> detached;
  EntryList<RecordedInput> records(reinterpret_cast<RecordedInput*>(input_room.data()));
  EntryList<SavedInput<T>> saved_inputs(reinterpret_cast<SavedInput<T>*>(saved_room.data()));
  const bool saves_inputs = saved == Saved::inputs || saved == Saved::inputs_and_output;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& shape = inputs[i].value().shape();
    const std::size_t* first = dims.data() + dims.size();
    dims.insert(dims.end(), shape.begin(), shape.end());
    records.emplace_back(tangents[i].defined() ? std::size_t(0) : no_node, RecordedShape(first, shape.size()));
    detached.push_back(inputs[i].detach());
    if (saves_inputs) saved_inputs.emplace_back(detached.back(), std::uint64_t(0));
  }
  const Tensor<T> seed(xt::xarray<T>(xt::zeros<T>(output.value().shape())), true);
  const Tensor<T> out = output.detach();
  const Gradients<T> grads = vjp(VjpArgs<T>{seed, out, records, saved_inputs});
  if (grads.size() != n)
    throw_usage_error(op, "forward mode: its VJP returned " + std::to_string(grads.size()) + " gradients for " +
                              std::to_string(n) + " inputs");
  std::vector<Tensor<T>> terms, ts;
  for (std::size_t i = 0; i < n; ++i) {
    if (!tangents[i].defined() || !grads[i].defined()) continue;
    if (!detail::same_shape(grads[i].value().shape(), inputs[i].value().shape()))
      throw_shape_error(op, "forward mode: its VJP returned a gradient of shape " + shape_str(grads[i].shape()) +
                                " for input " + std::to_string(i) + " of shape " + shape_str(inputs[i].shape()));
    terms.push_back(grads[i]);
    ts.push_back(tangents[i]);
  }
  if (terms.empty()) return Tensor<T>();
  return grad(dot_with(terms, ts), {seed})[0].detach();
}

// An elementwise op's VJP run with the tangent as its seed: the op's inputs and output as they
// are, so that the result is differentiable in turn.
template <class T>
Tensor<T> vjp_of_tangent(std::string_view op, InputSpan<T> inputs, const Tensor<T>& output, const Tensor<T>& tangent,
                         const VjpClosure<T>& vjp, Saved saved) {
  if (inputs.size() != 1 || !vjp) throw_usage_error(op, "forward mode: a diagonal JVP needs one input and a VJP");
  const auto& shape = inputs[0].value().shape();
  std::vector<std::size_t> dims(shape.begin(), shape.end());
  using InputRoom = std::aligned_storage_t<sizeof(RecordedInput), alignof(RecordedInput)>;
  using SavedRoom = std::aligned_storage_t<sizeof(SavedInput<T>), alignof(SavedInput<T>)>;
  InputRoom input_room[2];
  SavedRoom saved_room[2];
  EntryList<RecordedInput> records(reinterpret_cast<RecordedInput*>(input_room));
  EntryList<SavedInput<T>> saved_inputs(reinterpret_cast<SavedInput<T>*>(saved_room));
  records.emplace_back(std::size_t(0), RecordedShape(dims.data(), dims.size()));
  if (saved == Saved::inputs || saved == Saved::inputs_and_output) saved_inputs.emplace_back(inputs[0], inputs[0].version());
  const Gradients<T> grads = vjp(VjpArgs<T>{tangent, output, records, saved_inputs});
  return grads.size() == 1 ? grads[0] : Tensor<T>();
}

}  // namespace

template <class T>
Tensor<T> diagonal_jvp(const JvpArgs<T>&) {
  throw_usage_error("jvp", "diagonal_jvp marks an op's rule; forward mode runs the op's VJP instead");
}
template Tensor<float> diagonal_jvp(const JvpArgs<float>&);
template Tensor<double> diagonal_jvp(const JvpArgs<double>&);

// Seed b's tangent out of a batch (undefined stays undefined): a constant copy.
template <class T>
Tensor<T> seed_of(const Tensor<T>& batched, std::size_t b) {
  if (!batched.defined()) return batched;
  const xt::xarray<T>& v = batched.value();
  const std::size_t n = v.size() / v.shape()[0];
  xt::xarray<T> one = xt::xarray<T>::from_shape(Shape(v.shape().begin() + 1, v.shape().end()));
  std::copy(v.data() + b * n, v.data() + (b + 1) * n, one.data());
  return Tensor<T>(std::move(one));
}

template <class T>
void check_reverse_over_derived(std::string_view op, InputSpan<T> inputs) {
  for (ForwardLevel* level = thread_state().forward; level; level = level->outer()) {
    if (!level->on_caller_tape) continue;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor<T> t = level->get(inputs[i]);
      if (t.defined() && (inputs[i].requires_grad() || t.requires_grad()))
        throw_usage_error(op, "reverse mode over forward mode (a jvp with tg::record_on_tape) needs the op's own JVP "
                              "rule (a tangent derived from its VJP cannot be differentiated again): give one "
                              "through tg::record's jvp argument, or call jvp without tg::record_on_tape");
    }
  }
}
template void check_reverse_over_derived<float>(std::string_view, InputSpan<float>);
template void check_reverse_over_derived<double>(std::string_view, InputSpan<double>);

template <class T>
void forward_tangent(ForwardLevel& level, std::string_view op, InputSpan<T> inputs, const OutputState<T>& out,
                     const JvpClosure<T>* jvp, const VjpClosure<T>& vjp, Saved saved) {
  bool any = false;   // (most ops of a backward pass under forward mode carry none: nothing allocated)
  for (std::size_t i = 0; i < inputs.size() && !any; ++i) any = level.has(inputs[i]);
  if (!any) return;
  std::vector<Tensor<T>> tangents(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) tangents[i] = level.get(inputs[i]);
  NoTangents suspend(level.outer());   // this level and those inside it: the rule's ops carry outer tangents only
  const Tensor<T> output(out);
  const std::size_t batch = level.batch;
  std::vector<Tensor<T>> in;
  // The op's own rule, or its VJP transposed, for one seed's tangents.
  const auto one_seed = [&](const std::vector<Tensor<T>>& ts) {
    if (jvp) {
      if (in.empty())
        for (std::size_t i = 0; i < inputs.size(); ++i) in.push_back(inputs[i]);
      return (*jvp)(JvpArgs<T>{in, output, ts});
    }
    return tangent_from_vjp(op, inputs, output, ts, vjp, saved);
  };
  Tensor<T> tangent;
  const JvpPointer<T>* pointer = jvp ? jvp->template target<JvpPointer<T>>() : nullptr;
  if (pointer && *pointer == &diagonal_jvp<T>) {
    tangent = vjp_of_tangent(op, inputs, output, tangents[0], vjp, saved);   // takes a batch as it is
  } else if (jvp && batch > 0 &&
             (jvp->template target<BatchedJvp<T>>() || jvp->template target<BatchedJvpPointer<T>>())) {
    for (std::size_t i = 0; i < inputs.size(); ++i) in.push_back(inputs[i]);
    tangent = (*jvp)(JvpArgs<T>{in, output, tangents, batch});
  } else {
    if (!jvp) {
      // A derived tangent is not differentiable again: an outer level that differentiates this
      // op's inputs or their tangents needs the op's own rule.
      for (ForwardLevel* outer = level.outer(); outer; outer = outer->outer())
        for (std::size_t i = 0; i < inputs.size(); ++i)
          if (outer->has(inputs[i]) || (tangents[i].defined() && outer->has(tangents[i])))
            throw_usage_error(op, "forward mode over forward mode (a jvp inside a jvp) needs the op's own JVP rule "
                                  "(a tangent derived from its VJP cannot be differentiated again): give one through "
                                  "tg::record's jvp argument");
      ++level.derived;
    }
    if (batch == 0) {
      tangent = one_seed(tangents);
    } else {
      // A rule that takes one seed at a time, or none: once per seed, the results copied into
      // one batch (constants, which no outer level could differentiate).
      if (level.outer())
        throw_usage_error(op, "batched forward mode (jacfwd, jacrev, hessian) inside another forward level needs "
                              "the op's JVP rule to take a batch (tg::takes_batch)");
      ++level.looped;
      Shape shape = output.shape();
      shape.insert(shape.begin(), batch);
      xt::xarray<T> rows = xt::zeros<T>(shape);
      const std::size_t n = output.size();
      std::vector<Tensor<T>> ts(tangents.size());
      for (std::size_t b = 0; b < batch; ++b) {
        for (std::size_t i = 0; i < tangents.size(); ++i) ts[i] = seed_of(tangents[i], b);
        const Tensor<T> t = one_seed(ts);
        if (!t.defined()) continue;
        if (!detail::same_shape(t.value().shape(), out->value.shape()))
          throw_shape_error(op, "forward mode: its JVP rule returned a tangent of shape " + shape_str(t.shape()) +
                                    " for an output of shape " + shape_str(output.shape()));
        std::copy(t.value().data(), t.value().data() + n, rows.data() + b * n);
      }
      tangent = Tensor<T>(std::move(rows));
    }
  }
  if (!tangent.defined()) return;   // zero
  Shape expected = output.shape();
  if (batch > 0) expected.insert(expected.begin(), batch);
  if (tangent.shape() != expected)
    throw_shape_error(op, "forward mode: its JVP rule returned a tangent of shape " + shape_str(tangent.shape()) +
                              " for an output of shape " + shape_str(output.shape()) +
                              (batch > 0 ? " (a batch of " + std::to_string(batch) + ": expected " +
                                               shape_str(expected) + ")"
                                         : std::string()));
  level.set(output, std::move(tangent));
}

template void forward_tangent<float>(ForwardLevel&, std::string_view, InputSpan<float>, const OutputState<float>&,
                                     const JvpClosure<float>*, const VjpClosure<float>&, Saved);
template void forward_tangent<double>(ForwardLevel&, std::string_view, InputSpan<double>, const OutputState<double>&,
                                      const JvpClosure<double>*, const VjpClosure<double>&, Saved);

// x detached from its tape, with the tangents x carries at every forward level active on this
// thread: a jvp inside a jvp keeps the outer one's derivatives.
template <class T>
Tensor<T> detach_keeping_tangents(const Tensor<T>& x) {
  Tensor<T> detached = x.detach();
  for (ForwardLevel* level = thread_state().forward; level; level = level->outer()) {
    Tensor<T> t = level->get(x);
    if (t.defined()) level->set(detached, std::move(t));
  }
  return detached;
}

}  // namespace detail

namespace detail {

template <class T>
JvpResult<T> batched_jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                         const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents,
                         std::size_t batch, bool composes) {
  if (!f) throw_usage_error("jvp", "the function is empty");
  if (primals.size() != tangents.size())
    throw_value_error("jvp", "got " + std::to_string(tangents.size()) + " tangents for " + std::to_string(primals.size()) +
                                 " primals");
  for (std::size_t i = 0; i < primals.size(); ++i) {
    if (!primals[i].defined()) throw_usage_error("jvp", "primal " + std::to_string(i) + " is undefined");
    Shape expected = primals[i].shape();
    if (batch > 0) expected.insert(expected.begin(), batch);
    if (tangents[i].defined() && tangents[i].shape() != expected)
      throw_shape_error("jvp", "tangent " + std::to_string(i) + " has shape " + shape_str(tangents[i].shape()) +
                                   (batch > 0 ? " and should be " + shape_str(expected) + " (a batch of " +
                                                    std::to_string(batch) + " of its primal's shape)"
                                              : " and its primal shape " + shape_str(primals[i].shape())));
  }
  // Reverse over forward (tg::record_on_tape): under a recording tape, f runs on recorded copies of
  // the primals, with the tangents as they are, and every op (the JVP rules' too) records there as
  // any op does (where an input requires grad, a tensor f captured included), so that reverse mode
  // differentiates what jvp returns. Otherwise f runs on detached copies under a tape of its own.
  const bool on_caller_tape = composes && batch == 0 && is_recording();
  ForwardLevel level;
  level.batch = batch;
  level.on_caller_tape = on_caller_tape;
  std::unique_ptr<Tape> own_tape;
  if (!on_caller_tape) own_tape = std::make_unique<Tape>();
  const auto kept = [on_caller_tape](const Tensor<T>& x) { return on_caller_tape ? x : detach_keeping_tangents(x); };
  std::vector<Tensor<T>> xs;
  for (std::size_t i = 0; i < primals.size(); ++i) {
    if (on_caller_tape) {
      // A recorded copy carrying the outer levels' tangents only: this level's tangent is the one
      // given, even where the tensor is given twice or f also captures it (as when detached).
      NoTangents outer_only(level.outer());
      xs.push_back(copy_of(primals[i]));
    } else {
      xs.push_back(detach_keeping_tangents(primals[i]));
    }
    if (tangents[i].defined()) level.set(xs.back(), kept(tangents[i]));
  }
  const std::vector<Tensor<T>> outs = f(xs);
  JvpResult<T> result;
  result.derived_from_vjp = level.derived;
  result.looped_over_batch = level.looped;
  for (std::size_t j = 0; j < outs.size(); ++j) {
    if (!outs[j].defined()) throw_usage_error("jvp", "the function returned an undefined tensor (output " + std::to_string(j) + ")");
    const Tensor<T> t = level.get(outs[j]);
    result.outputs.push_back(kept(outs[j]));
    Shape zero = outs[j].shape();
    if (batch > 0) zero.insert(zero.begin(), batch);
    result.tangents.push_back(t.defined() ? kept(t) : Tensor<T>(xt::xarray<T>(xt::zeros<T>(zero))));
  }
  return result;
}

template JvpResult<float> batched_jvp(const std::function<std::vector<Tensor<float>>(const std::vector<Tensor<float>>&)>&,
                                      const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&, std::size_t,
                                      bool);
template JvpResult<double> batched_jvp(
    const std::function<std::vector<Tensor<double>>(const std::vector<Tensor<double>>&)>&,
    const std::vector<Tensor<double>>&, const std::vector<Tensor<double>>&, std::size_t, bool);

}  // namespace detail

template <class T>
JvpResult<T> jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                 const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents) {
  return detail::batched_jvp<T>(f, primals, tangents, 0);
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                                    const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents) {
  if (!f) throw_usage_error("jvp", "the function is empty");
  const JvpResult<T> r = jvp<T>([&f](const std::vector<Tensor<T>>& xs) { return std::vector<Tensor<T>>{f(xs)}; },
                                primals, tangents);
  return {r.outputs[0], r.tangents[0]};
}

template <class T>
JvpResult<T> jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                 const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents, RecordOnTape) {
  return detail::batched_jvp<T>(f, primals, tangents, 0, /*composes=*/true);
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                                    const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents,
                                    RecordOnTape) {
  if (!f) throw_usage_error("jvp", "the function is empty");
  const JvpResult<T> r = jvp<T>([&f](const std::vector<Tensor<T>>& xs) { return std::vector<Tensor<T>>{f(xs)}; },
                                primals, tangents, record_on_tape);
  return {r.outputs[0], r.tangents[0]};
}

template JvpResult<float> jvp(const std::function<std::vector<Tensor<float>>(const std::vector<Tensor<float>>&)>&,
                              const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&);
template JvpResult<double> jvp(const std::function<std::vector<Tensor<double>>(const std::vector<Tensor<double>>&)>&,
                               const std::vector<Tensor<double>>&, const std::vector<Tensor<double>>&);
template std::pair<Tensor<float>, Tensor<float>> jvp(const std::function<Tensor<float>(const std::vector<Tensor<float>>&)>&,
                                                     const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&);
template std::pair<Tensor<double>, Tensor<double>> jvp(
    const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>&, const std::vector<Tensor<double>>&,
    const std::vector<Tensor<double>>&);
template JvpResult<float> jvp(const std::function<std::vector<Tensor<float>>(const std::vector<Tensor<float>>&)>&,
                              const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&, RecordOnTape);
template JvpResult<double> jvp(const std::function<std::vector<Tensor<double>>(const std::vector<Tensor<double>>&)>&,
                               const std::vector<Tensor<double>>&, const std::vector<Tensor<double>>&, RecordOnTape);
template std::pair<Tensor<float>, Tensor<float>> jvp(const std::function<Tensor<float>(const std::vector<Tensor<float>>&)>&,
                                                     const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&,
                                                     RecordOnTape);
template std::pair<Tensor<double>, Tensor<double>> jvp(
    const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>&, const std::vector<Tensor<double>>&,
    const std::vector<Tensor<double>>&, RecordOnTape);

}  // namespace tapegrad
