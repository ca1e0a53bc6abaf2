// A corpus of deliberately wrong hand-written gradients, each checked in two framings: the hand
// function as the op's VJP with f the op's raw output, and f a scalar loss sum(W * op(x)) whose
// hand gradient is the same VJP at the seed W * s. Each bug must be caught, and the diagnosis of
// the wrong input must name its pattern in both framings, with no candidates from the caller.
#include "helpers.hpp"

#include <algorithm>
#include <map>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xsort.hpp>

namespace {

using Values = std::vector<Arr>;
// The op's VJP by hand: input values and a seed of the output's shape, one gradient per input.
using Vjp = std::function<Values(const Values& x, const Arr& v)>;

struct Bug {
  std::string name;
  std::string op;                      // the op or layer it concerns
  std::vector<tg::Shape> shapes;       // of the inputs, all checked
  double lo, hi;                       // their values' range
  tg::GradcheckFunction f;             // the op
  Vjp vjp;                             // its VJP, wrong for input `wrong`
  std::size_t wrong;
  std::string expected;                // the pattern the diagnosis starts with ("" for none)
};

// A naive matrix product of 2-D arrays.
Arr dot(const Arr& a, const Arr& b) {
  Arr c = xt::zeros<double>({a.shape(0), b.shape(1)});
  for (std::size_t i = 0; i < a.shape(0); ++i)
    for (std::size_t j = 0; j < b.shape(1); ++j)
      for (std::size_t k = 0; k < a.shape(1); ++k) c(i, j) += a(i, k) * b(k, j);
  return c;
}

// An array of x's shape holding `value` everywhere.
Arr filled(const Arr& x, double value) {
  Arr a = Arr::from_shape(x.shape());
  a.fill(value);
  return a;
}

Arr sig(const Arr& x) { return 1.0 / (1.0 + xt::exp(-x)); }

// A convolution's bias gradient: the seed (N, K, H, W) summed over (0, 2, 3).
Arr sum_nhw(const Arr& a) { return xt::sum(a, {0, 2, 3}); }

// y[n, k, i, j] = b[k] + sum_{c, p, q} w[k, c, p, q] x[n, c, i + p, j + q] (stride 1, no padding).
Values conv_vjp(const Values& x, const Arr& v, bool flip_dw, bool unflipped_dx) {
  const Arr& X = x[0];
  const Arr& W = x[1];
  const std::size_t N = X.shape(0), C = X.shape(1), H = X.shape(2), Wd = X.shape(3);
  const std::size_t K = W.shape(0), kh = W.shape(2), kw = W.shape(3), Ho = H - kh + 1, Wo = Wd - kw + 1;
  Arr dx = xt::zeros<double>(X.shape()), dw = xt::zeros<double>(W.shape());
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < Ho; ++i)
        for (std::size_t j = 0; j < Wo; ++j)
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t p = 0; p < kh; ++p)
              for (std::size_t q = 0; q < kw; ++q) {
                const double g = v(n, k, i, j);
                dw(k, c, p, q) += g * X(n, c, i + p, j + q);
                // The bug reads the kernel unrotated: dx at the mirrored offset.
                dx(n, c, i + p, j + q) += g * (unflipped_dx ? W(k, c, kh - 1 - p, kw - 1 - q) : W(k, c, p, q));
              }
  if (flip_dw) dw = xt::flip(xt::flip(dw, 2), 3);
  return {dx, dw, sum_nhw(v)};
}

// avg_pool2d, 2 x 2 windows, stride 2: each input element gets a quarter of its window's seed.
Arr pool_vjp(const Arr& x, const Arr& v, std::ptrdiff_t shift, double scale) {
  Arr dx = xt::zeros<double>(x.shape());
  const std::size_t H = x.shape(2), W = x.shape(3), Ho = H / 2, Wo = W / 2;
  for (std::size_t n = 0; n < x.shape(0); ++n)
    for (std::size_t c = 0; c < x.shape(1); ++c)
      for (std::size_t i = 0; i < H; ++i)
        for (std::size_t j = 0; j < W; ++j) {
          const std::ptrdiff_t k = std::ptrdiff_t(i / 2) + shift;
          if (k < 0 || k >= std::ptrdiff_t(Ho) || j / 2 >= Wo) continue;
          dx(n, c, i, j) = scale * v(n, c, std::size_t(k), j / 2);
        }
  return dx;
}

// max_pool2d, 2 x 2 windows: the seed to each window's maximum, or (the bug) to its first element.
Arr max_pool_vjp(const Arr& x, const Arr& v, bool first) {
  Arr dx = xt::zeros<double>(x.shape());
  for (std::size_t n = 0; n < x.shape(0); ++n)
    for (std::size_t c = 0; c < x.shape(1); ++c)
      for (std::size_t i = 0; i + 1 < x.shape(2); i += 2)
        for (std::size_t j = 0; j + 1 < x.shape(3); j += 2) {
          std::size_t bi = i, bj = j;
          if (!first)
            for (std::size_t p = 0; p < 2; ++p)
              for (std::size_t q = 0; q < 2; ++q)
                if (x(n, c, i + p, j + q) > x(n, c, bi, bj)) bi = i + p, bj = j + q;
          dx(n, c, bi, bj) += v(n, c, i / 2, j / 2);
        }
  return dx;
}

// c' = sigmoid(f) c + sigmoid(i) tanh(g): an LSTM cell's state update; inputs f, i, g, c.
TD lstm_state(const Inputs& in) { return tg::sigmoid(in[0]) * in[3] + tg::sigmoid(in[1]) * tg::tanh(in[2]); }

std::vector<Bug> corpus() {
  using S = tg::Shape;
  const std::vector<std::size_t> labels{2, 0, 3};
  auto ce_vjp = [labels](const Values& x, const Arr& v, double scale) {
    const Arr s = xt::exp(x[0]) / xt::eval(xt::sum(xt::exp(x[0]), {1}, xt::keep_dims));
    Arr g = s;
    for (std::size_t n = 0; n < labels.size(); ++n) g(n, labels[n]) -= 1;
    return Values{Arr(v() * scale * g)};
  };
  auto lstm = [](const Values& x, const Arr& v, int bug) {
    const Arr sf = sig(x[0]), si = sig(x[1]), tg_ = xt::tanh(x[2]);
    Values d{Arr(v * x[3] * sf * (1.0 - sf)), Arr(v * tg_ * si * (1.0 - si)), Arr(v * si * (1.0 - tg_ * tg_)),
             Arr(v * sf)};
    if (bug == 0) d[2] = v * si;                    // tanh' dropped
    if (bug == 1) d[0] = v * x[3] * sf;             // sigmoid's (1 - y) dropped
    if (bug == 2) d[3] = v;                         // sigmoid(f) dropped
    if (bug == 3) d[1] = -d[1];                     // sign
    return d;
  };
  return {
      // Elementwise.
      {"sigmoid without its (1 - y)", "sigmoid", {S{3, 4}}, -2, 2, [](const Inputs& in) { return tg::sigmoid(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(v * sig(x[0]))}; }, 0, "missing factor"},
      {"sigmoid with the sign flipped", "sigmoid", {S{3, 4}}, -2, 2, [](const Inputs& in) { return tg::sigmoid(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(-v * sig(x[0]) * (1.0 - sig(x[0])))}; }, 0,
       "sign flipped"},
      {"tanh with the sign flipped", "tanh", {S{5}}, -1.5, 1.5, [](const Inputs& in) { return tg::tanh(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(-v * (1.0 - xt::tanh(x[0]) * xt::tanh(x[0])))}; }, 0,
       "sign flipped"},
      {"tanh without its (1 - y^2)", "tanh", {S{2, 3}}, -1.5, 1.5, [](const Inputs& in) { return tg::tanh(in[0]); },
       [](const Values&, const Arr& v) { return Values{v}; }, 0, "missing factor"},
      {"exp times x", "exp", {S{4}}, -1, 1, [](const Inputs& in) { return tg::exp(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(v * xt::exp(x[0]) * x[0])}; }, 0, "extra factor"},
      {"log's gradient as g / x^2", "log", {S{2, 3}}, 0.5, 2, [](const Inputs& in) { return tg::log(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(v / (x[0] * x[0]))}; }, 0, "extra factor"},   // log' twice
      {"sqrt without its 1/2", "sqrt", {S{6}}, 0.5, 2, [](const Inputs& in) { return tg::sqrt(in[0]); },
       [](const Values& x, const Arr& v) { return Values{Arr(v / xt::sqrt(x[0]))}; }, 0, "scaled by a constant"},
      {"relu passing the gradient everywhere", "relu", {S{3, 3}}, -1, 1, [](const Inputs& in) { return tg::relu(in[0]); },
       [](const Values&, const Arr& v) { return Values{v}; }, 0, "missing factor"},
      {"pow 3 with x^3 for x^2", "pow", {S{5}}, 0.5, 1.5, [](const Inputs& in) { return tg::pow(in[0], 3.0); },
       [](const Values& x, const Arr& v) { return Values{Arr(3.0 * v * x[0] * x[0] * x[0])}; }, 0, "extra factor"},
      {"mul's da from the wrong operand", "mul", {S{2, 3}, S{2, 3}}, -1, 1,
       [](const Inputs& in) { return in[0] * in[1]; },
       [](const Values& x, const Arr& v) { return Values{Arr(v * x[0]), Arr(v * x[0])}; }, 0, "wrong variable"},
      {"div's db without its minus", "div", {S{4}, S{4}}, 0.5, 2, [](const Inputs& in) { return in[0] / in[1]; },
       [](const Values& x, const Arr& v) { return Values{Arr(v / x[1]), Arr(v * x[0] / (x[1] * x[1]))}; }, 1,
       "sign flipped"},
      {"sub's db without its minus", "sub", {S{3}, S{3}}, -1, 1, [](const Inputs& in) { return in[0] - in[1]; },
       [](const Values&, const Arr& v) { return Values{v, v}; }, 1, "sign flipped"},
      {"a broadcast bias summed over the wrong axis", "add", {S{4, 4}, S{4}}, -1, 1,
       [](const Inputs& in) { return in[0] + in[1]; },
       [](const Values&, const Arr& v) { return Values{v, Arr(xt::sum(v, {1}))}; }, 1, "wrong reduction axis"},
      // Reductions.
      {"sum over axis 1 broadcast back along axis 0", "sum", {S{4, 4}}, -1, 1,
       [](const Inputs& in) { return tg::sum(in[0], {1}); },
       [](const Values&, const Arr& v) {
         Arr d = xt::zeros<double>({4, 4});
         for (std::size_t i = 0; i < 4; ++i)
           for (std::size_t j = 0; j < 4; ++j) d(i, j) = v(j);   // should be v(i)
         return Values{d};
       },
       0, "indices transposed"},
      {"mean without its 1/N", "mean", {S{3, 4}}, -1, 1, [](const Inputs& in) { return tg::mean(in[0]); },
       [](const Values& x, const Arr& v) { return Values{filled(x[0], v())}; }, 0, "scaled by a constant"},
      {"max's gradient spread over every element", "max", {S{6}}, -1, 1, [](const Inputs& in) { return tg::max(in[0]); },
       [](const Values& x, const Arr& v) { return Values{filled(x[0], v() / 6.0)}; }, 0, ""},
      // Matrix products.
      {"matmul's dA without the transpose of B", "matmul", {S{2, 3}, S{3, 3}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, x[1])), Arr(dot(xt::transpose(x[0]), v))};
       },
       0, "operand rearranged"},
      {"matmul's dB transposed", "matmul", {S{3, 3}, S{3, 3}}, -1, 1, [](const Inputs& in) { return tg::matmul(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, xt::transpose(x[1]))), Arr(xt::transpose(dot(xt::transpose(x[0]), v)))};
       },
       1, "indices transposed"},
      {"matmul's dA doubled", "matmul", {S{2, 4}, S{4, 3}}, -1, 1, [](const Inputs& in) { return tg::matmul(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         return Values{Arr(2.0 * dot(v, xt::transpose(x[1]))), Arr(dot(xt::transpose(x[0]), v))};
       },
       0, "scaled by a constant"},
      {"matmul's dB with the sign flipped", "matmul", {S{2, 4}, S{4, 3}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, xt::transpose(x[1]))), Arr(-dot(xt::transpose(x[0]), v))};
       },
       1, "sign flipped"},
      // A linear layer, x W + b.
      {"linear's dW transposed", "linear", {S{2, 3}, S{3, 3}, S{3}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]) + in[2]; },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, xt::transpose(x[1]))), Arr(dot(xt::transpose(v), x[0])),
                       Arr(xt::sum(v, {0}))};
       },
       1, "indices transposed"},
      {"linear's db summed over the features", "linear", {S{3, 2}, S{2, 3}, S{3}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]) + in[2]; },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, xt::transpose(x[1]))), Arr(dot(xt::transpose(x[0]), v)),
                       Arr(xt::sum(v, {1}))};
       },
       2, "wrong reduction axis"},
      {"linear's dx without the transpose of W", "linear", {S{2, 3}, S{3, 3}, S{3}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]) + in[2]; },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, x[1])), Arr(dot(xt::transpose(x[0]), v)), Arr(xt::sum(v, {0}))};
       },
       0, "operand rearranged"},
      {"linear's db averaged over the batch", "linear", {S{4, 3}, S{3, 2}, S{2}}, -1, 1,
       [](const Inputs& in) { return tg::matmul(in[0], in[1]) + in[2]; },
       [](const Values& x, const Arr& v) {
         return Values{Arr(dot(v, xt::transpose(x[1]))), Arr(dot(xt::transpose(x[0]), v)),
                       Arr(xt::sum(v, {0}) / 4.0)};
       },
       2, "scaled by a constant"},
      // Convolution.
      {"conv2d's weight gradient with the kernel flipped", "conv2d", {S{1, 2, 5, 5}, S{3, 2, 3, 3}, S{3}}, -1, 1,
       [](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2]); },
       [](const Values& x, const Arr& v) { return conv_vjp(x, v, true, false); }, 1, "indices flipped"},
      {"conv2d's input gradient with the kernel unrotated", "conv2d", {S{1, 2, 5, 5}, S{3, 2, 3, 3}, S{3}}, -1, 1,
       [](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2]); },
       [](const Values& x, const Arr& v) { return conv_vjp(x, v, false, true); }, 0, "operand rearranged"},
      {"conv2d's bias gradient with the sign flipped", "conv2d", {S{1, 2, 4, 4}, S{2, 2, 3, 3}, S{2}}, -1, 1,
       [](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2]); },
       [](const Values& x, const Arr& v) {
         Values d = conv_vjp(x, v, false, false);
         d[2] = -d[2];
         return d;
       },
       2, "sign flipped"},
      {"conv2d's weight gradient averaged over positions", "conv2d", {S{1, 2, 5, 5}, S{2, 2, 3, 3}, S{2}}, -1, 1,
       [](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2]); },
       [](const Values& x, const Arr& v) {
         Values d = conv_vjp(x, v, false, false);
         d[1] = d[1] / 9.0;
         return d;
       },
       1, "scaled by a constant"},
      // Pooling.
      {"avg_pool2d routed one window over", "avg_pool2d", {S{1, 2, 8, 4}}, -1, 1,
       [](const Inputs& in) { return tg::avg_pool2d(in[0], 2); },
       [](const Values& x, const Arr& v) { return Values{pool_vjp(x[0], v, 1, 0.25)}; }, 0, "indices shifted"},
      {"avg_pool2d without its 1/4", "avg_pool2d", {S{1, 1, 4, 4}}, -1, 1,
       [](const Inputs& in) { return tg::avg_pool2d(in[0], 2); },
       [](const Values& x, const Arr& v) { return Values{pool_vjp(x[0], v, 0, 1.0)}; }, 0, "scaled by a constant"},
      {"max_pool2d routed to each window's first element", "max_pool2d", {S{1, 1, 4, 4}}, -1, 1,
       [](const Inputs& in) { return tg::max_pool2d(in[0], 2); },
       [](const Values& x, const Arr& v) { return Values{max_pool_vjp(x[0], v, true)}; }, 0, ""},
      // Softmax.
      {"softmax's Jacobian reduced to its diagonal", "softmax", {S{5}}, -1, 1,
       [](const Inputs& in) { return tg::softmax(in[0], 0); },
       [](const Values& x, const Arr& v) {
         const Arr s = xt::exp(x[0]) / xt::sum(xt::exp(x[0]))();
         return Values{Arr(v * s * (1.0 - s))};
       },
       0, "only the diagonal of a Jacobian"},
      {"softmax with the sign flipped", "softmax", {S{4}}, -1, 1, [](const Inputs& in) { return tg::softmax(in[0], 0); },
       [](const Values& x, const Arr& v) {
         const Arr s = xt::exp(x[0]) / xt::sum(xt::exp(x[0]))();
         return Values{Arr(-s * (v - xt::sum(v * s)()))};
       },
       0, "sign flipped"},
      {"log_softmax's gradient passed through", "log_softmax", {S{5}}, -1, 1,
       [](const Inputs& in) { return tg::log_softmax(in[0], 0); }, [](const Values&, const Arr& v) { return Values{v}; },
       0, "wrong variable"},
      // Losses.
      {"mse without its factor 2", "mse_loss", {S{4, 3}, S{4, 3}}, -1, 1,
       [](const Inputs& in) { return tg::mse_loss(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         const Arr d = v() * (x[0] - x[1]) / 12.0;
         return Values{d, Arr(-2.0 * d)};
       },
       0, "scaled by a constant"},
      {"mse's target gradient without its minus", "mse_loss", {S{4, 3}, S{4, 3}}, -1, 1,
       [](const Inputs& in) { return tg::mse_loss(in[0], in[1]); },
       [](const Values& x, const Arr& v) {
         const Arr d = v() * 2.0 * (x[0] - x[1]) / 12.0;
         return Values{d, d};
       },
       1, "sign flipped"},
      {"cross_entropy without its 1/N", "cross_entropy", {S{3, 4}}, -2, 2,
       [labels](const Inputs& in) { return tg::cross_entropy(in[0], labels); },
       [ce_vjp](const Values& x, const Arr& v) { return ce_vjp(x, v, 1.0); }, 0, "scaled by a constant"},
      {"cross_entropy with the sign flipped", "cross_entropy", {S{3, 4}}, -2, 2,
       [labels](const Inputs& in) { return tg::cross_entropy(in[0], labels); },
       [ce_vjp](const Values& x, const Arr& v) { return ce_vjp(x, v, -1.0 / 3.0); }, 0, "sign flipped"},
      // An LSTM cell's state update.
      {"LSTM cell: the candidate's tanh' dropped", "lstm_cell", {S{2, 3}, S{2, 3}, S{2, 3}, S{2, 3}}, -1, 1, lstm_state,
       [lstm](const Values& x, const Arr& v) { return lstm(x, v, 0); }, 2, "missing factor"},
      {"LSTM cell: the forget gate's (1 - y) dropped", "lstm_cell", {S{2, 3}, S{2, 3}, S{2, 3}, S{2, 3}}, -1, 1, lstm_state,
       [lstm](const Values& x, const Arr& v) { return lstm(x, v, 1); }, 0, "missing factor"},
      {"LSTM cell: the state gradient without the forget gate", "lstm_cell", {S{2, 3}, S{2, 3}, S{2, 3}, S{2, 3}}, -1, 1,
       lstm_state, [lstm](const Values& x, const Arr& v) { return lstm(x, v, 2); }, 3, "missing factor"},
      {"LSTM cell: the input gate's sign flipped", "lstm_cell", {S{2, 3}, S{2, 3}, S{2, 3}, S{2, 3}}, -1, 1, lstm_state,
       [lstm](const Values& x, const Arr& v) { return lstm(x, v, 3); }, 1, "sign flipped"},
      // Moving elements.
      {"transpose's gradient not transposed back", "transpose", {S{4, 4}}, -1, 1,
       [](const Inputs& in) { return tg::transpose(in[0]); }, [](const Values&, const Arr& v) { return Values{v}; }, 0,
       "wrong variable"},   // the gradient at the output, returned as is
  };
}

struct Outcome {
  bool caught = false;
  std::string diagnosis;
};

// Three-way gradcheck of one framing; the wrong input's hand-vs-autodiff comparison.
Outcome check(const Bug& bug, const tg::GradcheckFunction& f, const tg::HandGradient& hand, unsigned seed) {
  Inputs inputs;
  for (std::size_t i = 0; i < bug.shapes.size(); ++i) inputs.push_back(leaf(bug.shapes[i], seed + unsigned(i), bug.lo, bug.hi));
  const auto report = tg::gradcheck(f, inputs, hand);
  INFO(report.str());
  Outcome out;
  for (const auto& c : report.comparisons) {
    if (c.what == "autodiff vs finite differences") CHECK(c.ok());
    if (c.what == "hand-written vs autodiff" && c.input == "input " + std::to_string(bug.wrong)) {
      out.caught = !c.ok();
      out.diagnosis = c.diagnosis;
    }
  }
  return out;
}

// The bug as a custom op ("hand_op": the op's value, the wrong VJP as its VJP) hidden in a larger
// function: each input through tanh(0.8 x) first, the output through tanh and a weighted sum
// after. gradcheck of the whole must find that op.
std::vector<tg::GradcheckCulprit> localize(const Bug& bug, unsigned seed) {
  Inputs inputs;
  for (std::size_t i = 0; i < bug.shapes.size(); ++i) inputs.push_back(leaf(bug.shapes[i], seed + unsigned(i), bug.lo, bug.hi));
  auto hand_op = [&bug](const Inputs& in) {
    Arr value;
    {
      tg::NoGrad no_grad;
      value = bug.f(in).value();
    }
    return tg::record<double>("hand_op", in, value, [&bug](const tg::VjpArgs<double>& g) {
      Values x;
      for (std::size_t i = 0; i < g.inputs.size(); ++i) x.push_back(g.input(i).value());
      tg::Gradients<double> grads;
      for (Arr& d : bug.vjp(x, g.grad.value())) grads.push_back(TD(std::move(d)));
      return grads;
    });
  };
  // Pre-ops keep the inputs' ranges (log and sqrt need positive values): an affine map of tanh.
  const double mid = (bug.lo + bug.hi) / 2, half = (bug.hi - bug.lo) / 2;
  const tg::GradcheckFunction larger = [&](const Inputs& in) {
    Inputs moved;
    for (const TD& x : in) moved.push_back(tg::tanh((x - mid) * (0.8 / half)) * half + mid);
    return tg::sum(tg::tanh(hand_op(moved)) * 0.7);
  };
  const auto report = tg::gradcheck(larger, inputs);
  INFO(report.str());
  CHECK_FALSE(report.ok());
  return report.culprits;
}

bool named(const Outcome& o, const std::string& expected) {
  if (expected.empty()) return o.diagnosis.rfind("no simple pattern", 0) == 0;
  return o.diagnosis.rfind(expected, 0) == 0;
}

}  // namespace

TEST_CASE("the corpus of wrong gradients: caught, and named in both framings without candidates") {
  const std::vector<Bug> bugs = corpus();
  std::map<std::string, int> ops;
  std::size_t caught = 0, named_vjp = 0, named_loss = 0, checks = 0, localized = 0;
  unsigned seed = 7000;
  for (const Bug& bug : bugs) {
    CAPTURE(bug.name);
    ++ops[bug.op];
    seed += 10;
    const tg::HandGradient vjp_form = [&](const Inputs& in, const Arr& v) {
      Values x;
      for (const TD& t : in) x.push_back(t.value());
      return bug.vjp(x, v);
    };
    const Outcome as_vjp = check(bug, bug.f, vjp_form, seed);
    // The loss form: sum(W * op(x)) for a fixed W of the op's output shape.
    Inputs probe;
    for (std::size_t i = 0; i < bug.shapes.size(); ++i) probe.push_back(leaf(bug.shapes[i], seed + unsigned(i), bug.lo, bug.hi));
    const Arr w = random_array(tg::detail::shape_of(bug.f(probe).value()), seed + 100, 0.5, 1.5);
    const tg::GradcheckFunction loss = [&](const Inputs& in) { return tg::sum(TD(w) * bug.f(in)); };
    const tg::HandGradient loss_form = [&](const Inputs& in, const Arr& s) {
      Values x;
      for (const TD& t : in) x.push_back(t.value());
      return bug.vjp(x, Arr(w * s()));
    };
    const Outcome as_loss = check(bug, loss, loss_form, seed);
    checks += 2;
    caught += as_vjp.caught + as_loss.caught;
    CHECK(as_vjp.caught);
    CHECK(as_loss.caught);
    INFO("VJP form: ", as_vjp.diagnosis);
    INFO("loss form: ", as_loss.diagnosis);
    CHECK(named(as_vjp, bug.expected));
    CHECK(named(as_loss, bug.expected));
    named_vjp += named(as_vjp, bug.expected);
    named_loss += named(as_loss, bug.expected);
    // Hidden in a larger function as a custom op: localised.
    const auto culprits = localize(bug, seed);
    const bool found = !culprits.empty() && std::all_of(culprits.begin(), culprits.end(), [](const auto& c) {
      return c.op == "hand_op";
    });
    CHECK(found);
    localized += found;
  }
  MESSAGE("diagnosis corpus: ", bugs.size(), " bugs over ", ops.size(), " ops and layers; caught ", caught, " of ", checks,
          "; named right ", named_vjp, " of ", bugs.size(), " in the VJP form, ", named_loss, " of ", bugs.size(),
          " in the loss form; the wrong op found in a larger function ", localized, " of ", bugs.size());
  CHECK(bugs.size() >= 40);
  CHECK(ops.size() >= 12);
}
