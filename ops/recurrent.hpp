// Recurrent ops: an LSTM layer's recurrence over a whole sequence as one op.
#ifndef TAPEGRAD_OPS_RECURRENT_HPP
#define TAPEGRAD_OPS_RECURRENT_HPP

#include "../core/tensor.hpp"

namespace tapegrad {

// The recurrence of one LSTM layer over a sequence, as one op (as cuDNN's and PyTorch's fused RNN
// kernels are): for t = 0 .. T-1, with the gates in PyTorch's order i, f, g, o,
//   z_t = P_t + h_{t-1} W^T,   c_t = σ(z_f) c_{t-1} + σ(z_i) tanh(z_g),   h_t = σ(z_o) tanh(c_t).
// `projections` P (T, B, 4H) are the inputs' part of the gates, x_t W_ih^T + b, computed for all
// steps in one product; `weight_hh` W (4H, H); h0, c0 (B, H). Returns (T, B, 2H): [h_t, c_t] at
// each step. P may also come as rows (T B, 4H), step after step (what that product gives): the
// result is then rows (T B, 2H) too. One tape entry for the sequence: its VJP takes the gradients of the gates at every
// step, then W's gradient as one product over all steps (rather than a product and a sum per
// step), and P's as they are. Differentiable to any order, in both modes.
template <class T>
Tensor<T> lstm_recurrence(const Tensor<T>& projections, const Tensor<T>& weight_hh, const Tensor<T>& h0,
                          const Tensor<T>& c0);

}  // namespace tapegrad

#endif
