// Softmax and losses, composed of primitive ops.
#ifndef TAPEGRAD_OPS_NN_HPP
#define TAPEGRAD_OPS_NN_HPP

#include <vector>

#include "../core/tape.hpp"

namespace tapegrad {

// exp(x) / sum(exp(x)) along axis, with the maximum subtracted first: finite for any finite x.
template <class T> Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis);
// x - max - log(sum(exp(x - max))) along axis.
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis);
// log(sum(exp(x))) along axis, as max + log(sum(exp(x - max))): finite for any finite x. Its
// gradient is softmax(x, axis).
template <class T> Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);

enum class Reduction { mean, sum };

// Squared error between pred and target (same shape): mean (default) or sum of (pred - target)^2.
// The notes' E = 1/2 sum (o - l)^2 is 0.5 * mse_loss(l, o, Reduction::sum).
template <class T>
Tensor<T> mse_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction = Reduction::mean);
// Cross-entropy of logits (N, K) against integer class labels (N values in [0, K)), from
// log_softmax (stable for large logits), averaged over the batch (or summed).
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::size_t>& labels,
                        Reduction reduction = Reduction::mean);

}  // namespace tapegrad

#endif
