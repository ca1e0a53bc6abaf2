// Recurrent layers: LSTM and GRU cells, and multi-layer LSTM and GRU over sequences, composed of
// ops. Parameters follow PyTorch's names, layout (gates stacked along the rows of (gates * hidden,
// in) matrices), gate order and initialisation U(-1/sqrt(hidden), 1/sqrt(hidden)), so that a
// PyTorch state_dict maps onto them name for name.
#ifndef TAPEGRAD_LAYERS_RECURRENT_HPP
#define TAPEGRAD_LAYERS_RECURRENT_HPP

#include "module.hpp"

namespace tapegrad {

// Their forward takes a state beside the input, with no default: forward(x) alone is the
// one-tensor forward of Module, which names the layer in a UsageError. Called as lstm(x) (the
// call operator), the state defaults to zeros.

// An LSTM's hidden and cell states: (batch, hidden) for a cell, (layers, batch, hidden) for LSTM.
// Undefined tensors stand for zeros.
template <class T>
struct LSTMState {
  Tensor<T> h, c;
};

// i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh) (sigmoid, sigmoid, tanh, sigmoid);
// c' = f c + i g;  h' = o tanh(c')
template <class T>
class LSTMCell : public Module<T> {
 public:
  LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);
  using Module<T>::forward;
  // x (batch, input_size) and the state -> the next state.
  LSTMState<T> forward(const Tensor<T>& x, const LSTMState<T>& state);
  LSTMState<T> operator()(const Tensor<T>& x, const LSTMState<T>& state = {}) { return forward(x, state); }
  Remade remake(bool in_double) const override;

 private:
  std::size_t input_, hidden_;
  Tensor<T> weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

// r, z, n: r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), z likewise,
// n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn));  h' = (1 - z) n + z h
template <class T>
class GRUCell : public Module<T> {
 public:
  GRUCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);
  using Module<T>::forward;
  // x (batch, input_size) and h (batch, hidden_size; undefined: zeros) -> the next h.
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& h);
  Tensor<T> operator()(const Tensor<T>& x, const Tensor<T>& h) { return forward(x, h); }
  Remade remake(bool in_double) const override;

 private:
  std::size_t input_, hidden_;
  Tensor<T> weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

// Stacked LSTM over a sequence x of shape (time, batch, input_size), or one tensor (batch,
// input_size) per step: layer l reads layer l - 1's outputs. Parameters weight_ih_l<l>,
// weight_hh_l<l>, bias_ih_l<l>, bias_hh_l<l>. Returns the last layer's outputs (time, batch,
// hidden_size), the same as one tensor per step, and the final states (layers, batch, hidden_size).
// Each layer is one product for the inputs' part of the gates at every step and one
// lstm_recurrence op for the steps (its VJP: one product for weight_hh's gradient). The per-step
// outputs are slices of the last layer's outputs: a loss over all of them back-propagates a
// gradient of all the outputs through each (time^2 batch hidden_size in all); a loss over
// `output` does not.
template <class T>
class LSTM : public Module<T> {
 public:
  struct Output {
    Tensor<T> output;
    std::vector<Tensor<T>> steps;
    LSTMState<T> state;
  };
  LSTM(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1, bool bias = true);
  using Module<T>::forward;
  Output forward(const Tensor<T>& x, const LSTMState<T>& state);
  Output forward(const std::vector<Tensor<T>>& steps, const LSTMState<T>& state);
  Output operator()(const Tensor<T>& x, const LSTMState<T>& state = {}) { return forward(x, state); }
  Output operator()(const std::vector<Tensor<T>>& steps, const LSTMState<T>& state = {}) { return forward(steps, state); }
  Remade remake(bool in_double) const override;

 private:
  // The sequence as rows (steps * batch, input_size), step after step.
  Output run(const Tensor<T>& rows, std::size_t steps, std::size_t batch, const LSTMState<T>& state);
  std::size_t input_, hidden_, layers_;
  std::vector<Tensor<T>> weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

// Stacked GRU over (time, batch, input_size), as LSTM; the final state h is (layers, batch, hidden).
template <class T>
class GRU : public Module<T> {
 public:
  struct Output {
    Tensor<T> output;
    std::vector<Tensor<T>> steps;
    Tensor<T> h;
  };
  GRU(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1, bool bias = true);
  using Module<T>::forward;
  Output forward(const Tensor<T>& x, const Tensor<T>& h);
  Output forward(const std::vector<Tensor<T>>& steps, const Tensor<T>& h);
  Output operator()(const Tensor<T>& x, const Tensor<T>& h = {}) { return forward(x, h); }
  Output operator()(const std::vector<Tensor<T>>& steps, const Tensor<T>& h = {}) { return forward(steps, h); }
  Remade remake(bool in_double) const override;

 private:
  std::size_t input_, hidden_, layers_;
  std::vector<Tensor<T>> weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

extern template class LSTMCell<float>;
extern template class LSTMCell<double>;
extern template class GRUCell<float>;
extern template class GRUCell<double>;
extern template class LSTM<float>;
extern template class LSTM<double>;
extern template class GRU<float>;
extern template class GRU<double>;

}  // namespace tapegrad

#endif
