#include "evals.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>
#include <xtensor/xview.hpp>

namespace gradbench {

namespace tg = tapegrad;
using Tensor = tg::Tensor<double>;

namespace {

const double pi = 3.14159265358979323846;

void expect_rank(const char* eval, const char* field, const Array& a, std::size_t rank, std::size_t min_size) {
  const tg::Shape s(a.shape().begin(), a.shape().end());
  if (s.size() != rank)
    tg::throw_shape_error(eval, std::string(field) + " must be " + std::to_string(rank) + "-D, got shape " +
                                    tg::shape_str(s));
  for (std::size_t d : s)
    if (d < min_size)
      tg::throw_shape_error(eval, std::string(field) + " has shape " + tg::shape_str(s) + ": every dimension must be >= " +
                                      std::to_string(min_size));
}

// The value of a scalar objective, computed without recording.
template <class F>
double primal(F objective) {
  tg::NoGrad no_tape;
  return objective().item();
}

// --- lse ------------------------------------------------------------------------------------

// log(sum(exp(x))), tapegrad's op (computed as a + log(sum(exp(x - a))) with a = max(x)).
Tensor lse(const Tensor& x) { return tg::logsumexp(x, 0); }

void check_lse(const Array& x) { expect_rank("lse", "x", x, 1, 1); }

// --- llsq -----------------------------------------------------------------------------------

// r = s - T x with T[i][j] = t_i^j and s_i = sign(t_i); y = 1/2 r.r
Tensor llsq(const Tensor& x, std::size_t n) {
  const std::size_t m = x.size();
  Array powers = Array::from_shape({n, m}), sign = Array::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    const double t = -1.0 + static_cast<double>(i * 2) / static_cast<double>(n - 1);
    sign(i) = t > 0 ? 1.0 : (t < 0 ? -1.0 : 0.0);
    double p = 1.0;
    for (std::size_t j = 0; j < m; ++j, p *= t) powers(i, j) = p;
  }
  const Tensor r = Tensor(std::move(sign)) - tg::matmul(Tensor(std::move(powers)), x);
  return tg::sum(r * r) * 0.5;
}

void check_llsq(const Array& x, std::size_t n) {
  expect_rank("llsq", "x", x, 1, 1);
  if (n < 2) tg::throw_value_error("llsq", "n must be >= 2 (t_i divides by n - 1), got " + std::to_string(n));
}

// --- ode ------------------------------------------------------------------------------------

// f(y)_0 = x_0, f(y)_i = x_i y_{i-1}: x times y shifted down by one with a 1 in front.
Tensor ode(const Tensor& x, std::size_t steps) {
  const std::size_t n = x.size();
  const double h = 2.0 / static_cast<double>(steps);
  const auto f = [&](const Tensor& y) {
    return n == 1 ? x : x * tg::pad(tg::slice(y, 0, 0, static_cast<std::ptrdiff_t>(n - 1)), {{1, 0}}, 1.0);
  };
  Tensor y(Array(xt::zeros<double>({n})));
  for (std::size_t s = 0; s < steps; ++s) {
    const Tensor k1 = f(y);
    const Tensor k2 = f(y + k1 * (h / 2));
    const Tensor k3 = f(y + k2 * (h / 2));
    const Tensor k4 = f(y + k3 * h);
    y = y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6);
  }
  return y;
}

void check_ode(const Array& x, std::size_t steps) {
  expect_rank("ode", "x", x, 1, 1);
  if (steps < 1) tg::throw_value_error("ode", "s (the number of steps) must be >= 1, got 0");
}

// --- gmm ------------------------------------------------------------------------------------

struct GmmSizes {
  std::size_t n, d, k;
};

// The parameters given apart from in (the transforms' own), or in's.
GmmSizes check_gmm(const GmmInput& in, const Array& alpha, const Array& mu, const Array& q, const Array& l) {
  expect_rank("gmm", "x", in.x, 2, 1);
  expect_rank("gmm", "alpha", alpha, 1, 1);
  const GmmSizes z{in.x.shape(0), in.x.shape(1), alpha.shape(0)};
  expect_shape("gmm", "mu", mu, {z.k, z.d});
  expect_shape("gmm", "q", q, {z.k, z.d});
  expect_shape("gmm", "l", l, {z.k, z.d * (z.d - 1) / 2});
  if (!(in.gamma > 0)) tg::throw_value_error("gmm", "gamma must be > 0, got " + tg::number_str(in.gamma));
  if (!(in.m >= 0)) tg::throw_value_error("gmm", "m must be >= 0, got " + tg::number_str(in.m));
  return z;
}
GmmSizes check_gmm(const GmmInput& in) { return check_gmm(in, in.alpha, in.mu, in.q, in.l); }

// log of the multivariate gamma function Gamma_d(a).
double log_gamma_d(double a, std::size_t d) {
  double r = static_cast<double>(d * (d - 1)) / 4.0 * std::log(pi);
  for (std::size_t j = 1; j <= d; ++j) r += std::lgamma(a + (1.0 - static_cast<double>(j)) / 2.0);
  return r;
}

// The terms that depend on no parameter: the Gaussians' normalisation and the Wishart's.
double gmm_constant(const GmmSizes& z, double m, double gamma) {
  const double n = static_cast<double>(z.n), d = static_cast<double>(z.d), k = static_cast<double>(z.k);
  const double nu = d + m + 1;
  const double c = nu * d * (std::log(gamma) - 0.5 * std::log(2.0)) - log_gamma_d(nu / 2, z.d);
  return -n * d / 2 * std::log(2 * pi) + k * c;
}

// beta[k][i] = alpha_k + sum_j q_k[j] - 1/2 |Q_k (x_i - mu_k)|^2
// F = sum_i logsumexp_k beta[k][i] - n logsumexp(alpha) - sum_k (gamma^2/2 |Q_k|_F^2 - m sum_j q_k[j]) + constant
Tensor gmm(const Tensor& alpha, const Tensor& mu, const Tensor& q, const Tensor& l, const GmmInput& in,
           const GmmSizes& z) {
  const std::size_t k = z.k, d = z.d;
  const Tensor diagonal = tg::exp(q);
  // Qt[k][c] is column c of Q_k: zeros above the diagonal, exp(q_k[c]) on it, then the next
  // d - c - 1 entries of l_k below it.
  std::vector<Tensor> columns;
  columns.reserve(d);
  std::ptrdiff_t next = 0;
  for (std::size_t c = 0; c < d; ++c) {
    std::vector<Tensor> parts;
    if (c > 0) parts.emplace_back(Array(xt::zeros<double>({k, c})));
    const auto col = static_cast<std::ptrdiff_t>(c);
    parts.push_back(tg::slice(diagonal, 1, col, col + 1));
    const auto below = static_cast<std::ptrdiff_t>(d - c - 1);
    if (below > 0) parts.push_back(tg::slice(l, 1, next, next + below));
    next += below;
    columns.push_back(tg::reshape(tg::concat(parts, 1), {k, 1, d}));
  }
  const Tensor qt = tg::concat(columns, 1);                                   // (k, d, d)
  // Row i of x Q_k^T is (Q_k x_i)^T.
  const Tensor qx = tg::matmul(Tensor(in.x), qt);                             // (k, n, d)
  const Tensor qmu = tg::matmul(tg::reshape(mu, {k, 1, d}), qt);             // (k, 1, d)
  const Tensor r = qx - qmu;
  const Tensor beta = tg::reshape(alpha + tg::sum(q, {1}), {k, 1}) - tg::sum(r * r, {2}) * 0.5;   // (k, n)
  const Tensor data = tg::sum(tg::logsumexp(beta, 0)) - tg::logsumexp(alpha, 0) * static_cast<double>(z.n);
  const Tensor frobenius = tg::sum(diagonal * diagonal) + tg::sum(l * l);
  const Tensor prior = frobenius * (-in.gamma * in.gamma / 2) + tg::sum(q) * in.m;
  return data + prior + gmm_constant(z, in.m, in.gamma);
}

// --- lstm -----------------------------------------------------------------------------------

struct LstmSizes {
  std::size_t layers, b, c;
};

LstmSizes check_lstm(const LstmInput& in) {
  expect_rank("lstm", "main_params", in.main_params, 2, 1);
  expect_rank("lstm", "sequence", in.sequence, 2, 1);
  const std::size_t rows = in.main_params.shape(0), cols = in.main_params.shape(1);
  if (rows % 2 != 0 || cols % 4 != 0)
    tg::throw_shape_error("lstm", "main_params has shape " + tg::shape_str({rows, cols}) +
                                      ", expected (2l, 4b): an even number of rows and a multiple of 4 columns");
  const LstmSizes z{rows / 2, cols / 4, in.sequence.shape(0)};
  expect_shape("lstm", "extra_params", in.extra_params, {3, z.b});
  expect_shape("lstm", "state", in.state, {2 * z.layers, z.b});
  expect_shape("lstm", "sequence", in.sequence, {z.c, z.b});
  if (z.c < 2) tg::throw_shape_error("lstm", "sequence has " + std::to_string(z.c) + " rows; at least 2 are needed");
  return z;
}

Tensor row(const Tensor& m, std::size_t i) {
  const auto r = static_cast<std::ptrdiff_t>(i);
  const tg::Shape s = m.shape();
  return tg::reshape(tg::slice(m, 0, r, r + 1), {s[1]});
}

// Per time step t < c-1, with u the layer input (first sequence[t] * w_in) and per layer:
//   f = sigmoid(u Wf + Bf), g = sigmoid(h Wi + Bi), o = sigmoid(u Wo + Bo), z = tanh(h Wc + Bc)
//   c = c f + g z,  h = o tanh(c),  u = h
// then yhat_t = u w_out + b_out. Loss = -sum_t sequence[t+1] . (yhat_t - log(2 + sum exp yhat_t)) / ((c-1) b)
Tensor lstm(const Tensor& main_params, const Tensor& extra_params, const LstmInput& in, const LstmSizes& z) {
  const std::size_t b = z.b;
  const auto width = static_cast<std::ptrdiff_t>(b);
  struct Layer {
    Tensor wf, wi, wo, wc, bf, bi, bo, bc, h, c;
  };
  std::vector<Layer> layers(z.layers);
  const Tensor state(in.state);
  for (std::size_t i = 0; i < z.layers; ++i) {
    const Tensor w = row(main_params, 2 * i), bias = row(main_params, 2 * i + 1);
    const auto block = [&](const Tensor& r, std::ptrdiff_t g) { return tg::slice(r, 0, g * width, (g + 1) * width); };
    layers[i] = {block(w, 0),    block(w, 1),    block(w, 2),        block(w, 3),           block(bias, 0),
                 block(bias, 1), block(bias, 2), block(bias, 3), row(state, 2 * i), row(state, 2 * i + 1)};
  }
  const Tensor w_in = row(extra_params, 0), w_out = row(extra_params, 1), b_out = row(extra_params, 2);
  std::vector<Tensor> yhat;
  yhat.reserve(z.c - 1);
  for (std::size_t t = 0; t + 1 < z.c; ++t) {
    Tensor u = Tensor(Array(xt::view(in.sequence, t))) * w_in;
    for (Layer& layer : layers) {
      const Tensor f = tg::sigmoid(tg::mul_add(u, layer.wf, layer.bf));
      const Tensor g = tg::sigmoid(tg::mul_add(layer.h, layer.wi, layer.bi));
      const Tensor o = tg::sigmoid(tg::mul_add(u, layer.wo, layer.bo));
      const Tensor change = tg::tanh(tg::mul_add(layer.h, layer.wc, layer.bc));
      layer.c = tg::mul_add(layer.c, f, g * change);
      layer.h = o * tg::tanh(layer.c);
      u = layer.h;
    }
    yhat.push_back(tg::reshape(tg::mul_add(u, w_out, b_out), {1, b}));
  }
  const Tensor y = tg::concat(yhat, 0);                                        // (c-1, b)
  const Tensor log_norm = tg::log(tg::sum(tg::exp(y), {1}, true) + 2.0);       // (c-1, 1)
  const Tensor next(Array(xt::view(in.sequence, xt::range(1, z.c))));
  return tg::sum(next * (y - log_norm)) * (-1.0 / static_cast<double>((z.c - 1) * b));
}

}  // namespace

void expect_shape(const char* eval, const char* field, const Array& a, const tg::Shape& expected) {
  const tg::Shape s(a.shape().begin(), a.shape().end());
  if (s != expected)
    tg::throw_shape_error(eval, std::string(field) + " has shape " + tg::shape_str(s) + ", expected " +
                                    tg::shape_str(expected));
}

Tensor slice_at(const Tensor& x, std::size_t i) {
  const auto at = static_cast<std::ptrdiff_t>(i);
  return tg::slice(x, 0, at, at + 1);
}

double hello_square(double x) {
  return primal([&] {
    const Tensor t{Array(x)};
    return t * t;
  });
}

double hello_double(double x) {
  tg::Tape tape;
  const Tensor t{Array(x), true};
  (t * t).backward();
  return t.grad()();
}

double lse_primal(const Tensor& x) {
  check_lse(x.value());
  return primal([&] { return lse(x); });
}

Array lse_gradient(const Tensor& x) {
  check_lse(x.value());
  tg::Tape tape;
  if (x.requires_grad()) {   // the gradient returned, not accumulated: nothing of x's size copied
    Tensor g = tg::grad(lse(x), {x})[0];
    return std::move(g.mutable_value());
  }
  const Tensor v(x.value(), true);
  lse(v).backward();
  return v.grad();
}

double llsq_primal(const Tensor& x, std::size_t n) {
  check_llsq(x.value(), n);
  return primal([&] { return llsq(x, n); });
}

Array llsq_gradient(const Tensor& x, std::size_t n) {
  check_llsq(x.value(), n);
  tg::Tape tape;
  const Tensor v(x.value(), true);
  llsq(v, n).backward();
  return v.grad();
}

Array ode_primal(const Tensor& x, std::size_t s) {
  check_ode(x.value(), s);
  tg::NoGrad no_tape;
  return ode(x, s).value();
}

Array ode_gradient(const Tensor& x, std::size_t s) {
  check_ode(x.value(), s);
  tg::Tape tape;
  const Tensor v(x.value(), true);
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  tg::sum(tg::slice(ode(v, s), 0, n - 1, n)).backward();
  return v.grad();
}

double gmm_objective(const GmmInput& in) {
  const GmmSizes z = check_gmm(in);
  return primal([&] { return gmm(Tensor(in.alpha), Tensor(in.mu), Tensor(in.q), Tensor(in.l), in, z); });
}

Tensor gmm_tensor(const Tensor& alpha, const Tensor& mu, const Tensor& q, const Tensor& l, const GmmInput& in) {
  return gmm(alpha, mu, q, l, in, check_gmm(in, alpha.value(), mu.value(), q.value(), l.value()));
}

GmmJacobian gmm_jacobian(const GmmInput& in) {
  const GmmSizes z = check_gmm(in);
  tg::Tape tape;
  const Tensor alpha(in.alpha, true), mu(in.mu, true), q(in.q, true), l(in.l, true);
  gmm(alpha, mu, q, l, in, z).backward();
  return {alpha.grad(), mu.grad(), q.grad(), l.grad()};
}

double lstm_objective(const LstmInput& in) {
  const LstmSizes z = check_lstm(in);
  return primal([&] { return lstm(Tensor(in.main_params), Tensor(in.extra_params), in, z); });
}

Array lstm_jacobian(const LstmInput& in) {
  const LstmSizes z = check_lstm(in);
  tg::Tape tape;
  const Tensor main_params(in.main_params, true), extra_params(in.extra_params, true);
  lstm(main_params, extra_params, in, z).backward();
  Array out = Array::from_shape({main_params.size() + extra_params.size()});
  std::copy(main_params.grad().begin(), main_params.grad().end(), out.begin());
  std::copy(extra_params.grad().begin(), extra_params.grad().end(), out.begin() + main_params.size());
  return out;
}

}  // namespace gradbench
