// Softmax and losses, composed of primitive ops; logsumexp, a primitive.
#ifndef TAPEGRAD_OPS_NN_HPP
#define TAPEGRAD_OPS_NN_HPP

#include <cstdint>
#include <type_traits>
#include <vector>

#include "../core/tape.hpp"

namespace tapegrad {

// exp(x) / sum(exp(x)) along axis, with the maximum subtracted first: finite for any finite x.
template <class T> Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis);
// x - max - log(sum(exp(x - max))) along axis.
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis);
// log(sum(exp(x))) along axis, as max + log(sum(exp(x - max))): finite for any finite x, +inf
// where an element is +inf, -inf along an empty axis. Its gradient is softmax(x, axis). One op;
// where recorded it keeps x, its output, and exp(x - max) (x's size) with 1 / sum for a plain
// backward. The last two live in its VJP, which Tape::bytes() and memory_stats() do not count.
template <class T> Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);

// How a loss reduces its per-element (per-sample) terms: their mean, their sum, or none (the
// terms themselves, one per sample for the class losses).
enum class Reduction { mean, sum, none };

// Squared error between pred and target (same shape): mean (default) or sum of (pred - target)^2.
// The notes' E = 1/2 sum (o - l)^2 is 0.5 * mse_loss(l, o, Reduction::sum).
template <class T>
Tensor<T> mse_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction = Reduction::mean);
// Huber's loss of d = pred - target: d^2 / 2 where |d| <= delta, delta (|d| - delta / 2) beyond.
template <class T>
Tensor<T> huber_loss(const Tensor<T>& pred, const Tensor<T>& target, scalar_t<T> delta = 1,
                     Reduction reduction = Reduction::mean);
// The binary cross-entropy of logits x against targets y in [0, 1] (same shape), from x directly
// (stable for large |x|): (1 - y) x + (1 + (pos_weight - 1) y) log(1 + exp(-x)).
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& targets,
                                           Reduction reduction = Reduction::mean, scalar_t<T> pos_weight = 1);

// Options of the class losses (PyTorch's): per-class weights (K values; empty: all 1), a label
// that marks samples to skip, and label smoothing ε in [0, 1): the target is (1 - ε) onehot + ε / K.
// The mean divides by the skipped-free sum of the labels' weights (the sample count without
// weights); with every sample skipped it is 0 (PyTorch gives NaN).
struct CrossEntropyOptions {
  CrossEntropyOptions(Reduction reduction = Reduction::mean) : reduction(reduction) {}
  Reduction reduction;
  std::vector<double> weight{};
  std::int64_t ignore_index = -100;
  double label_smoothing = 0;
};

// Cross-entropy of logits (N, K) against integer class labels (N values in [0, K), or
// ignore_index), from log_softmax (stable for large logits). A bad label is a ValueError naming
// it, its position and the class count.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::int64_t>& labels,
                        const CrossEntropyOptions& options = {});
// The negative log-likelihood of log-probabilities (N, K) (log_softmax's output): cross_entropy
// without the log_softmax; label_smoothing must be 0.
template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const std::vector<std::int64_t>& labels,
                   const CrossEntropyOptions& options = {});
// Labels of any other integer type, converted (an unsigned value above 2^63 reads as negative).
template <class T, class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, std::int64_t>>>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<I>& labels, const CrossEntropyOptions& options = {}) {
  return cross_entropy(logits, std::vector<std::int64_t>(labels.begin(), labels.end()), options);
}
template <class T, class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, std::int64_t>>>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const std::vector<I>& labels, const CrossEntropyOptions& options = {}) {
  return nll_loss(log_probs, std::vector<std::int64_t>(labels.begin(), labels.end()), options);
}

}  // namespace tapegrad

#endif
