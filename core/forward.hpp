// Forward mode: tangents carried through ops as they run, and the jvp transform.
#ifndef TAPEGRAD_CORE_FORWARD_HPP
#define TAPEGRAD_CORE_FORWARD_HPP

#include <functional>
#include <vector>

#include "tape.hpp"

namespace tapegrad {

// What a Jacobian-vector product rule receives: the op's inputs and output, and one tangent per
// input (undefined where the input carries none: a zero tangent). It returns the output's
// tangent, of the output's shape, written with tapegrad's own ops (so that it can be
// differentiated in turn: forward over reverse).
template <class T>
struct JvpArgs {
  const std::vector<Tensor<T>>& inputs;
  const Tensor<T>& output;
  const std::vector<Tensor<T>>& tangents;
  // 0, or the number of tangents carried at once (a batch of seeds: jacfwd, jacrev, hessian):
  // then each tangent has a leading axis of this size before its input's shape, and the rule
  // returns the output's tangent likewise. Only a rule given through tg::takes_batch sees a
  // batch; any other rule is called once per seed.
  std::size_t batch = 0;
  bool has_tangent(std::size_t i) const { return tangents[i].defined(); }
};

// A JVP rule that takes a batch of tangents at once (JvpArgs::batch): pass tg::takes_batch(rule)
// to tg::record as its jvp. Every built-in op's rule is one.
template <class F>
struct BatchRule {
  F rule;
};
template <class F>
BatchRule<std::decay_t<F>> takes_batch(F&& rule) {
  return {std::forward<F>(rule)};
}

namespace detail {
// How forward mode keeps a BatchRule's rule, its type erased (a captureless one as a pointer).
template <class T>
struct BatchedJvp {
  std::function<Tensor<T>(const JvpArgs<T>&)> rule;
  Tensor<T> operator()(const JvpArgs<T>& args) const { return rule(args); }
};
template <class T>
struct BatchedJvpPointer {
  Tensor<T> (*rule)(const JvpArgs<T>&);
  Tensor<T> operator()(const JvpArgs<T>& args) const { return rule(args); }
};
}  // namespace detail

// Outputs and their tangents.
template <class T>
struct JvpResult {
  std::vector<Tensor<T>> outputs, tangents;
  // Op outputs whose tangent was derived from the op's VJP, for want of a JVP rule (each cost one
  // run of the VJP and one reverse walk): where a rule would make forward mode faster.
  std::size_t derived_from_vjp = 0;
  // With a batch of tangents (the transforms): op outputs whose rule does not take a batch, so
  // that it ran once per seed (where tg::takes_batch would make the batch faster).
  std::size_t looped_over_batch = 0;
};

// The outputs of f at `primals` and the directional derivatives J t of each along `tangents`
// (one per primal, of its shape; an undefined tangent is zero and costs nothing), in one
// evaluation of f with tangents carried through every op:
// an op's own JVP rule where it has one, else the JVP derived from its VJP (which is linear in its
// seed: its transpose, one reverse walk of the VJP). f runs on copies of the primals detached from
// any tape, under a tape of its own: nothing is recorded on the caller's tape (for reverse over
// forward, pass tg::record_on_tape, below). An output not derived from the primals
// gets a zero tangent. A jvp may run inside another's f (forward over forward, to any depth): the
// outputs and tangents it returns carry the outer jvp's tangents, so the outer one differentiates
// them (a custom op without a JVP rule of its own is then a UsageError naming it).
template <class T>
JvpResult<T> jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                 const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents);

// f of one output.
template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                                    const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents);

// jvp's last argument to make it differentiable by reverse mode (reverse over forward): under a
// recording tape, f runs on the primals and tangents themselves and its ops and their JVP rules
// record there like any op (where an input requires grad, a tensor f captures included), so that
// tg::grad of a returned tangent J t gives H t. The primals enter f as recorded copies carrying
// the outer levels' tangents only. Without a recording tape it is the plain jvp. (Plain jvp keeps
// f off the caller's tape, so that f may open a tape of its own on its inputs.)
struct RecordOnTape {};
inline constexpr RecordOnTape record_on_tape{};
template <class T>
JvpResult<T> jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                 const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents, RecordOnTape);
template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                                    const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents,
                                    RecordOnTape);

namespace detail {
// True while a jvp is carrying tangents on this thread.
bool forward_active();

struct ForwardLevel;
// Forward mode suspended on this thread while alive: what is computed meanwhile carries no
// tangent (a constant, as tg::NoGrad makes one for reverse mode: softmax's shift), or only the
// tangents of `kept` and the levels outside it (a level computing its own tangents).
class NoTangents {
 public:
  explicit NoTangents(ForwardLevel* kept = nullptr);
  ~NoTangents();
  NoTangents(const NoTangents&) = delete;
  NoTangents& operator=(const NoTangents&) = delete;

 private:
  ForwardLevel* levels_;
};

// jvp with a batch of `batch` tangents per primal at once, each of shape (batch, primal shape...)
// (undefined: zero); the output tangents have shape (batch, output shape...). For the transforms:
// one pass for all the seeds of a Jacobian. `composes`: records on the caller's tape where one
// records (reverse over forward: tg::jvp with tg::record_on_tape).
template <class T>
JvpResult<T> batched_jvp(const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                         const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& tangents,
                         std::size_t batch, bool composes = false);
}  // namespace detail

}  // namespace tapegrad

#endif
