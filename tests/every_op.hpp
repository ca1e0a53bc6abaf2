// Every public op, each on small inputs of its own shapes, in float or double: the table behind
// the forward-mode tests (test_forward) and the float-against-double tests (test_float).
#ifndef TAPEGRAD_TESTS_EVERY_OP_HPP
#define TAPEGRAD_TESTS_EVERY_OP_HPP

#include <tapegrad/tapegrad.hpp>

#include <functional>
#include <vector>

namespace tg = tapegrad;

// One public op, on inputs of these shapes drawn in [lo, hi).
template <class T>
struct OpCase {
  const char* name;
  std::function<tg::Tensor<T>(const std::vector<tg::Tensor<T>>&)> f;
  std::vector<tg::Shape> shapes;
  double lo = -1, hi = 1;
};

template <class T>
std::vector<OpCase<T>> every_op() {
  using tg::Shape;
  using In = std::vector<tg::Tensor<T>>;
  const Shape m{2, 3}, img{1, 2, 5, 5};
  return {
      {"add (broadcast)", [](const In& x) { return x[0] + x[1]; }, {m, {3}}},
      {"sub (broadcast)", [](const In& x) { return x[0] - x[1]; }, {m, {2, 1}}},
      {"mul (broadcast)", [](const In& x) { return x[0] * x[1]; }, {m, {1, 3}}},
      {"mul (x * x)", [](const In& x) { return x[0] * x[0]; }, {m}},
      {"mul_add", [](const In& x) { return tg::mul_add(x[0], x[1], x[2]) * x[0]; }, {m, m, m}},
      {"mul_add (c only)", [](const In& x) { return tg::mul_add(x[1], x[1], x[0]); }, {m, m}},
      {"mul_add (broadcast)", [](const In& x) { return tg::mul_add(x[0], x[1], x[2]); }, {m, {3}, {2, 1}}},
      {"div", [](const In& x) { return x[0] / x[1]; }, {m, m}, 0.5, 1.5},
      {"add_scalar", [](const In& x) { return x[0] + 0.5; }, {m}},
      {"mul_scalar", [](const In& x) { return x[0] * 1.5; }, {m}},
      {"rdiv_scalar", [](const In& x) { return 2.0 / x[0]; }, {m}, 0.5, 1.5},
      {"neg", [](const In& x) { return -x[0]; }, {m}},
      {"exp", [](const In& x) { return tg::exp(x[0]); }, {m}},
      {"log", [](const In& x) { return tg::log(x[0]); }, {m}, 0.5, 1.5},
      {"sqrt", [](const In& x) { return tg::sqrt(x[0]); }, {m}, 0.5, 1.5},
      {"pow", [](const In& x) { return tg::pow(x[0], 2.5); }, {m}, 0.5, 1.5},
      {"abs", [](const In& x) { return tg::abs(x[0]); }, {m}},
      {"tanh", [](const In& x) { return tg::tanh(x[0]); }, {m}},
      {"sigmoid", [](const In& x) { return tg::sigmoid(x[0]); }, {m}},
      {"relu", [](const In& x) { return tg::relu(x[0]) * x[0]; }, {m}},
      {"sin", [](const In& x) { return tg::sin(x[0]); }, {m}},
      {"cos", [](const In& x) { return tg::cos(x[0]); }, {m}},
      {"log1p", [](const In& x) { return tg::log1p(x[0]); }, {m}, -0.5, 1.5},
      {"expm1", [](const In& x) { return tg::expm1(x[0]); }, {m}},
      {"softplus", [](const In& x) { return tg::softplus(x[0] * 3.0); }, {m}},
      {"leaky_relu", [](const In& x) { return tg::leaky_relu(x[0], 0.2) * x[0]; }, {m}},
      {"elu", [](const In& x) { return tg::elu(x[0], 1.5); }, {m}},
      {"erf", [](const In& x) { return tg::erf(x[0] * 1.5); }, {m}},
      {"gelu", [](const In& x) { return tg::gelu(x[0] * 2.0); }, {m}},
      {"maximum (broadcast)", [](const In& x) { return tg::maximum(x[0], x[1]) * x[0]; }, {m, {3}}},
      {"minimum (broadcast)", [](const In& x) { return tg::minimum(x[1], x[0] * x[0]); }, {m, {2, 1}}},
      {"clamp", [](const In& x) { return tg::clamp(x[0], -0.5, 0.5) * x[0]; }, {m}},
      {"matmul", [](const In& x) { return tg::matmul(x[0], x[1]); }, {m, {3, 4}}},
      {"matmul (batched)", [](const In& x) { return tg::matmul(x[0], x[1]); }, {{2, 2, 3}, {3, 4}}},
      {"matmul (transposed)", [](const In& x) { return tg::matmul(x[0], x[1], true, true); }, {{3, 2}, {4, 3}}},
      {"matmul (a column)", [](const In& x) { return tg::matmul(x[0], x[1]); }, {m, {3, 1}}},
      {"matmul (a large product)", [](const In& x) { return tg::matmul(x[0], x[1]); }, {{40, 3}, {3, 30}}},
      {"matmul (a column, transposed)", [](const In& x) { return tg::matmul(x[0], x[1], true, true); },
       {{3, 2}, {1, 3}}},
      {"matmul (1-D)", [](const In& x) { return tg::matmul(x[0], x[1]); }, {m, {3}}},
      {"softmax", [](const In& x) { return tg::softmax(x[0], 1); }, {m}},
      {"log_softmax", [](const In& x) { return tg::log_softmax(x[0], 0); }, {m}},
      {"logsumexp", [](const In& x) { return tg::logsumexp(x[0], 1); }, {m}},
      {"mse_loss", [](const In& x) { return tg::mse_loss(x[0], x[1]); }, {m, m}},
      {"cross_entropy", [](const In& x) { return tg::cross_entropy(x[0], {2, 0}); }, {m}},
      {"cross_entropy (weights, smoothing)", [](const In& x) {
         tg::CrossEntropyOptions o(tg::Reduction::none);
         o.weight = {1.0, 0.5, 2.0};
         o.label_smoothing = 0.1;
         return tg::cross_entropy(x[0], {2, 0}, o);
       }, {m}},
      {"binary_cross_entropy_with_logits", [](const In& x) { return tg::binary_cross_entropy_with_logits(x[0], x[1], tg::Reduction::none, 2.0); }, {m, m}},
      {"huber_loss", [](const In& x) { return tg::huber_loss(x[0], x[1] * 0.2, 0.5, tg::Reduction::none); }, {m, m}, 0.6, 1.0},
      {"sum", [](const In& x) { return tg::sum(x[0]) * tg::sum(x[0], {0}); }, {m}},
      {"mean", [](const In& x) { return tg::mean(x[0]) * tg::mean(x[0], {1}, true); }, {m}},
      {"max (all)", [](const In& x) { return tg::max(x[0]) * x[0]; }, {m}},
      {"max (axis)", [](const In& x) { return tg::max(x[0], 1, true) * tg::max(x[0], 0, true); }, {m}},
      {"max (axes)", [](const In& x) { return tg::max(x[0], tg::Axes{0, 2}); }, {{2, 3, 2}}},
      {"sum_to", [](const In& x) { return tg::sum_to(x[0] * x[0], {1, 3}); }, {m}},
      {"reshape", [](const In& x) { return tg::reshape(x[0] * x[0], {3, 2}); }, {m}},
      {"transpose", [](const In& x) { return tg::transpose(x[0] * x[0], {2, 0, 1}) + tg::transpose(x[1]); },
       {{2, 3, 2}, {3, 2}}},
      {"broadcast_to", [](const In& x) { return tg::broadcast_to(x[0] * x[0], {2, 2, 3}); }, {{1, 3}}},
      {"slice", [](const In& x) { return tg::slice(x[0] * x[0], 1, 0, 3, 2); }, {m}},
      {"concat", [](const In& x) { return tg::concat(In{x[0] * x[1], x[1]}, 0); }, {m, m}},
      {"pad", [](const In& x) { return tg::pad(x[0] * x[0], {{1, 0}, {0, 2}}, 3.0); }, {m}},
      {"conv2d", [](const In& x) { return tg::conv2d(x[0], x[1], x[2], 2, 1); }, {img, {3, 2, 3, 3}, {3}}},
      {"avg_pool2d", [](const In& x) { return tg::avg_pool2d(x[0] * x[0], 2); }, {{1, 2, 4, 4}}},
      {"avg_pool2d (stride, padding)", [](const In& x) { return tg::avg_pool2d(x[0] * x[0], 2, 1, 1); }, {img}},
      {"max_pool2d", [](const In& x) { return tg::max_pool2d(x[0] * x[0], 2); }, {{1, 2, 4, 4}}},
      {"max_pool2d (stride)", [](const In& x) { return tg::max_pool2d(tg::exp(x[0]), 3, 1); }, {img}},
      {"max_pool2d (padding)", [](const In& x) { return tg::max_pool2d(x[0] * x[0], 3, 2, 1); }, {img}},
      {"index_select", [](const In& x) { return tg::index_select(x[0] * x[0], 1, {2, 0, 2, -1}); }, {m}},
      {"take_along_axis (broadcast)", [](const In& x) { return tg::take_along_axis(x[0] * x[0], tg::Index{{2, 0, 1, 2}}, 1); }, {m}},
      {"gather", [](const In& x) { return tg::gather(tg::exp(x[0]), 0, tg::Index{{1, 0, 1}}); }, {m}},
      {"where (broadcast)", [](const In& x) { return tg::where(xt::xarray<bool>{true, false, true}, x[0] * x[0], x[1]); },
       {m, {2, 1}}},
      {"cumsum", [](const In& x) { return tg::cumsum(x[0] * x[0], 1); }, {m}},
      {"stack", [](const In& x) { return tg::stack(In{x[0] * x[1], x[1]}, 1); }, {m, m}},
      {"split", [](const In& x) { const auto p = tg::split(x[0] * x[0], {1, 2}, 1); return p[0] * p[1]; }, {m}},
      {"lstm_recurrence", [](const In& x) { return tg::lstm_recurrence(x[0], x[1], x[2], x[3]); },
       {{3, 2, 8}, {8, 2}, {2, 2}, {2, 2}}},
      {"lstm_recurrence (rows)", [](const In& x) { return tg::lstm_recurrence(x[0], x[1], x[2], x[3]); },
       {{4, 8}, {8, 2}, {2, 2}, {2, 2}}},
      {"im2col", [](const In& x) { return tg::im2col(x[0] * x[0], 3, 1, 1); }, {{1, 2, 3, 3}}},
      {"col2im", [](const In& x) { return tg::col2im(x[0] * x[0], {1, 2, 3, 3}, 3, 1, 1); }, {{1, 18, 9}}},
  };
}

#endif
