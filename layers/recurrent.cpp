#include "recurrent.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/index.hpp"
#include "../ops/linalg.hpp"
#include "../ops/recurrent.hpp"
#include "../ops/shape.hpp"
#include "init.hpp"

namespace tapegrad {

namespace {

// One layer's weights: W_ih (gates * hidden, in), W_hh (gates * hidden, hidden), biases (gates * hidden).
template <class T>
struct GateWeights {
  Tensor<T> w_ih, w_hh, b_ih, b_hh;
};

// Draws a layer's weights from U(-1/sqrt(hidden), 1/sqrt(hidden)) and registers them as
// weight_ih<suffix>, ... through `reg` (the module's register_parameter).
template <class T, class Register>
GateWeights<T> gate_weights(Register reg, std::size_t gates, std::size_t in, std::size_t hidden, bool bias,
                            const std::string& suffix) {
  GateWeights<T> w;
  w.w_ih = reg("weight_ih" + suffix, init_bias<T>({gates * hidden, in}, hidden));
  w.w_hh = reg("weight_hh" + suffix, init_bias<T>({gates * hidden, hidden}, hidden));
  if (bias) {
    w.b_ih = reg("bias_ih" + suffix, init_bias<T>({gates * hidden}, hidden));
    w.b_hh = reg("bias_hh" + suffix, init_bias<T>({gates * hidden}, hidden));
  }
  return w;
}

void check_sizes(const char* layer, std::size_t input, std::size_t hidden, std::size_t layers = 1) {
  if (input == 0 || hidden == 0 || layers == 0)
    throw_value_error(layer, "input_size, hidden_size and num_layers must be >= 1, got " + std::to_string(input) + ", " +
                                 std::to_string(hidden) + " and " + std::to_string(layers));
}

// x W^T (+ b) for x (rows, in).
template <class T>
Tensor<T> project(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b) {
  const Tensor<T> y = matmul(x, w, false, true);
  return b.defined() ? y + b : y;
}

// A state given or zeros of (batch, hidden); a given one must have that shape.
template <class T>
Tensor<T> state_or_zeros(const char* layer, const char* what, const Tensor<T>& s, std::size_t batch, std::size_t hidden) {
  if (!s.defined()) return Tensor<T>(xt::xarray<T>(xt::zeros<T>({batch, hidden})));
  if (s.shape() != Shape{batch, hidden})
    throw_shape_error(layer, std::string(what) + " shape " + shape_str(s.shape()) + " is not (batch, hidden_size) = " +
                                 shape_str({batch, hidden}));
  return s;
}

// A layer's slice (batch, hidden) of a stacked state (layers, batch, hidden), or undefined.
template <class T>
Tensor<T> layer_state(const char* layer, const char* what, const Tensor<T>& s, std::size_t l, std::size_t layers,
                      std::size_t batch, std::size_t hidden) {
  if (!s.defined()) return s;
  if (s.shape() != Shape{layers, batch, hidden})
    throw_shape_error(layer, std::string(what) + " shape " + shape_str(s.shape()) + " is not (num_layers, batch, hidden_size) = " +
                                 shape_str({layers, batch, hidden}));
  const auto at = static_cast<std::ptrdiff_t>(l);
  return reshape(slice(s, 0, at, at + 1), {batch, hidden});
}

// i, f, g, o = split(gates) (sigmoid, sigmoid, tanh, sigmoid);  c' = f c + i g;  h' = o tanh(c')
template <class T>
LSTMState<T> lstm_update(const Tensor<T>& gates, const Tensor<T>& c, std::size_t hidden) {
  const std::vector<Tensor<T>> g = split(gates, {hidden, hidden, hidden, hidden}, 1);
  const Tensor<T> cell = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
  return {sigmoid(g[3]) * tanh(cell), cell};
}

// r, z from x_part + h part; n = tanh(x_n + r h_n);  h' = (1 - z) n + z h
template <class T>
Tensor<T> gru_step(const Tensor<T>& x_part, const Tensor<T>& h, const GateWeights<T>& w, std::size_t hidden) {
  const std::vector<std::size_t> sizes{hidden, hidden, hidden};
  const std::vector<Tensor<T>> xs = split(x_part, sizes, 1), hs = split(project(h, w.w_hh, w.b_hh), sizes, 1);
  const Tensor<T> r = sigmoid(xs[0] + hs[0]), z = sigmoid(xs[1] + hs[1]);
  const Tensor<T> n = tanh(xs[2] + r * hs[2]);
  return n + z * (h - n);   // (1 - z) n + z h
}

// x of shape (time >= 1, batch, input), checked.
template <class T>
void check_sequence(const char* layer, const Tensor<T>& x, std::size_t input) {
  check_defined<T>(layer, {&x});
  const Shape s = x.shape();
  if (s.size() != 3 || s[2] != input)
    throw_shape_error(layer, "input shape " + shape_str(s) + " is not (time, batch, input_size=" + std::to_string(input) + ")");
  if (s[0] == 0) throw_shape_error(layer, "the sequence is empty (input shape " + shape_str(s) + ")");
}

// x (time, batch, features) as one tensor per step, checked.
template <class T>
std::vector<Tensor<T>> unbind_steps(const char* layer, const Tensor<T>& x, std::size_t input) {
  check_sequence(layer, x, input);
  const Shape s = x.shape();
  std::vector<Tensor<T>> steps;
  for (std::size_t t = 0; t < s[0]; ++t) {
    const auto at = static_cast<std::ptrdiff_t>(t);
    steps.push_back(reshape(slice(x, 0, at, at + 1), {s[1], s[2]}));
  }
  return steps;
}

// The batch size of a sequence of steps, each (batch, input), checked.
template <class T>
std::size_t check_steps(const char* layer, const std::vector<Tensor<T>>& steps, std::size_t input) {
  if (steps.empty()) throw_shape_error(layer, "the sequence is empty (no steps)");
  for (std::size_t t = 0; t < steps.size(); ++t) {
    if (!steps[t].defined()) throw_usage_error(layer, "step " + std::to_string(t) + " is an undefined tensor");
    const Shape s = steps[t].shape();
    if (s.size() != 2 || s[1] != input || s[0] != steps[0].shape()[0])
      throw_shape_error(layer, "step " + std::to_string(t) + " has shape " + shape_str(s) + ", not (batch, input_size=" +
                                   std::to_string(input) + ") as step 0's " + shape_str(steps[0].shape()));
  }
  return steps[0].shape()[0];
}

}  // namespace

template <class T>
LSTMCell<T>::LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias) : input_(input_size), hidden_(hidden_size) {
  check_sizes("LSTMCell", input_, hidden_);
  const auto w = gate_weights<T>([this](const std::string& n, xt::xarray<T> v) { return this->register_parameter(n, std::move(v)); },
                                 4, input_, hidden_, bias, "");
  weight_ih_ = w.w_ih, weight_hh_ = w.w_hh, bias_ih_ = w.b_ih, bias_hh_ = w.b_hh;
}

template <class T>
LSTMState<T> LSTMCell<T>::forward(const Tensor<T>& x, const LSTMState<T>& state) {
  check_defined<T>("LSTMCell", {&x});
  const Shape s = x.shape();
  if (s.size() != 2 || s[1] != input_)
    throw_shape_error("LSTMCell", "input shape " + shape_str(s) + " is not (batch, input_size=" + std::to_string(input_) + ")");
  const GateWeights<T> w{weight_ih_, weight_hh_, bias_ih_, bias_hh_};
  const Tensor<T> h = state_or_zeros("LSTMCell", "h", state.h, s[0], hidden_);
  return lstm_update(project(x, w.w_ih, w.b_ih) + project(h, w.w_hh, w.b_hh),
                     state_or_zeros("LSTMCell", "c", state.c, s[0], hidden_), hidden_);
}

template <class T>
GRUCell<T>::GRUCell(std::size_t input_size, std::size_t hidden_size, bool bias) : input_(input_size), hidden_(hidden_size) {
  check_sizes("GRUCell", input_, hidden_);
  const auto w = gate_weights<T>([this](const std::string& n, xt::xarray<T> v) { return this->register_parameter(n, std::move(v)); },
                                 3, input_, hidden_, bias, "");
  weight_ih_ = w.w_ih, weight_hh_ = w.w_hh, bias_ih_ = w.b_ih, bias_hh_ = w.b_hh;
}

template <class T>
Tensor<T> GRUCell<T>::forward(const Tensor<T>& x, const Tensor<T>& h) {
  check_defined<T>("GRUCell", {&x});
  const Shape s = x.shape();
  if (s.size() != 2 || s[1] != input_)
    throw_shape_error("GRUCell", "input shape " + shape_str(s) + " is not (batch, input_size=" + std::to_string(input_) + ")");
  const GateWeights<T> w{weight_ih_, weight_hh_, bias_ih_, bias_hh_};
  return gru_step(project(x, w.w_ih, w.b_ih), state_or_zeros("GRUCell", "h", h, s[0], hidden_), w, hidden_);
}

template <class T>
LSTM<T>::LSTM(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers, bool bias)
    : input_(input_size), hidden_(hidden_size), layers_(num_layers) {
  check_sizes("LSTM", input_, hidden_, layers_);
  for (std::size_t l = 0; l < layers_; ++l) {
    const auto w = gate_weights<T>([this](const std::string& n, xt::xarray<T> v) { return this->register_parameter(n, std::move(v)); },
                                   4, l == 0 ? input_ : hidden_, hidden_, bias, "_l" + std::to_string(l));
    weight_ih_.push_back(w.w_ih), weight_hh_.push_back(w.w_hh), bias_ih_.push_back(w.b_ih), bias_hh_.push_back(w.b_hh);
  }
}

// Per layer: P = x W_ih^T + b_ih + b_hh for every step in one product, the steps' inputs as rows
// (time * batch, features), then the recurrence over the steps as one op (lstm_recurrence); the
// next layer reads this one's h_t.
template <class T>
typename LSTM<T>::Output LSTM<T>::forward(const Tensor<T>& x, const LSTMState<T>& state) {
  check_sequence("LSTM", x, input_);
  const Shape s = x.shape();
  return run(reshape(x, {s[0] * s[1], s[2]}), s[0], s[1], state);
}

template <class T>
typename LSTM<T>::Output LSTM<T>::forward(const std::vector<Tensor<T>>& steps, const LSTMState<T>& state) {
  const std::size_t batch = check_steps("LSTM", steps, input_);
  return run(concat(steps, 0), steps.size(), batch, state);
}

template <class T>
typename LSTM<T>::Output LSTM<T>::run(const Tensor<T>& rows, std::size_t steps, std::size_t batch,
                                      const LSTMState<T>& state) {
  const auto h = static_cast<std::ptrdiff_t>(hidden_), b = static_cast<std::ptrdiff_t>(batch);
  const auto last = static_cast<std::ptrdiff_t>(steps - 1) * b;
  if (batch == 0) {   // nothing to run: empty outputs of the right shapes (the given states checked)
    for (std::size_t l = 0; l < layers_; ++l) {
      layer_state("LSTM", "h", state.h, l, layers_, batch, hidden_);
      layer_state("LSTM", "c", state.c, l, layers_, batch, hidden_);
    }
    const auto empty = [](const Shape& shape) { return Tensor<T>(xt::xarray<T>::from_shape(shape)); };
    return {empty({steps, 0, hidden_}), std::vector<Tensor<T>>(steps, empty({0, hidden_})),
            {empty({layers_, 0, hidden_}), empty({layers_, 0, hidden_})}};
  }
  Tensor<T> layer_input = rows;
  std::vector<Tensor<T>> h_n, c_n;
  for (std::size_t l = 0; l < layers_; ++l) {
    const Tensor<T> h0 = state_or_zeros("LSTM", "h", layer_state("LSTM", "h", state.h, l, layers_, batch, hidden_), batch, hidden_);
    const Tensor<T> c0 = state_or_zeros("LSTM", "c", layer_state("LSTM", "c", state.c, l, layers_, batch, hidden_), batch, hidden_);
    const Tensor<T> bias = bias_ih_[l].defined() ? bias_ih_[l] + bias_hh_[l] : Tensor<T>();
    const Tensor<T> y = lstm_recurrence(project(layer_input, weight_ih_[l], bias), weight_hh_[l], h0, c0);   // rows [h, c]
    layer_input = slice(y, 1, 0, h);
    const Tensor<T> final_state = slice(y, 0, last, last + b);
    h_n.push_back(slice(final_state, 1, 0, h));
    c_n.push_back(slice(final_state, 1, h, 2 * h));
  }
  std::vector<Tensor<T>> per_step;
  for (std::size_t t = 0; t < steps; ++t) {
    const auto at = static_cast<std::ptrdiff_t>(t) * b;
    per_step.push_back(slice(layer_input, 0, at, at + b));
  }
  return {reshape(layer_input, {steps, batch, hidden_}), per_step, {stack(h_n, 0), stack(c_n, 0)}};
}

template <class T>
GRU<T>::GRU(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers, bool bias)
    : input_(input_size), hidden_(hidden_size), layers_(num_layers) {
  check_sizes("GRU", input_, hidden_, layers_);
  for (std::size_t l = 0; l < layers_; ++l) {
    const auto w = gate_weights<T>([this](const std::string& n, xt::xarray<T> v) { return this->register_parameter(n, std::move(v)); },
                                   3, l == 0 ? input_ : hidden_, hidden_, bias, "_l" + std::to_string(l));
    weight_ih_.push_back(w.w_ih), weight_hh_.push_back(w.w_hh), bias_ih_.push_back(w.b_ih), bias_hh_.push_back(w.b_hh);
  }
}

template <class T>
typename GRU<T>::Output GRU<T>::forward(const Tensor<T>& x, const Tensor<T>& h0) {
  return forward(unbind_steps("GRU", x, input_), h0);
}

template <class T>
typename GRU<T>::Output GRU<T>::forward(const std::vector<Tensor<T>>& steps, const Tensor<T>& h0) {
  const std::size_t batch = check_steps("GRU", steps, input_);
  std::vector<Tensor<T>> layer_input = steps, h_n;
  for (std::size_t l = 0; l < layers_; ++l) {
    const GateWeights<T> w{weight_ih_[l], weight_hh_[l], bias_ih_[l], bias_hh_[l]};
    Tensor<T> h = state_or_zeros("GRU", "h", layer_state("GRU", "h", h0, l, layers_, batch, hidden_), batch, hidden_);
    for (Tensor<T>& x : layer_input) {
      h = gru_step(project(x, w.w_ih, w.b_ih), h, w, hidden_);
      x = h;
    }
    h_n.push_back(h);
  }
  return {stack(layer_input, 0), layer_input, stack(h_n, 0)};
}

template <class T>
Remade LSTMCell<T>::remake(bool in_double) const {
  return remade<LSTMCell>(in_double, input_, hidden_, bias_ih_.defined());
}
template <class T>
Remade GRUCell<T>::remake(bool in_double) const {
  return remade<GRUCell>(in_double, input_, hidden_, bias_ih_.defined());
}
template <class T>
Remade LSTM<T>::remake(bool in_double) const {
  return remade<LSTM>(in_double, input_, hidden_, layers_, bias_ih_[0].defined());
}
template <class T>
Remade GRU<T>::remake(bool in_double) const {
  return remade<GRU>(in_double, input_, hidden_, layers_, bias_ih_[0].defined());
}

template class LSTMCell<float>;
template class LSTMCell<double>;
template class GRUCell<float>;
template class GRUCell<double>;
template class LSTM<float>;
template class LSTM<double>;
template class GRU<float>;
template class GRU<double>;

}  // namespace tapegrad
