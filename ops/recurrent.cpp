#include "recurrent.hpp"

#include <array>
#include <limits>
#include <memory>

#include "../core/forward.hpp"
#include "elementwise.hpp"
#include "index.hpp"
#include "linalg.hpp"
#include "kernels.hpp"
#include "shape.hpp"
#include "vector_math.hpp"

namespace tapegrad {

namespace {

template <class T>
struct Gates {
  Tensor<T> i, f, g, o;
};

// σ, σ, tanh, σ of the four parts of z (B, 4H).
template <class T>
Gates<T> activate(const Tensor<T>& z, std::size_t hidden) {
  const std::vector<Tensor<T>> part = split(z, {hidden, hidden, hidden, hidden}, 1);
  return {sigmoid(part[0]), sigmoid(part[1]), tanh(part[2]), sigmoid(part[3])};
}

// A sequence (T, B, X) as rows (T B, X); rows already are.
template <class T>
Tensor<T> rows_of(const Tensor<T>& sequence) {
  const Shape s = sequence.shape();
  return s.size() == 3 ? reshape(sequence, {s[0] * s[1], s[2]}) : sequence;
}

// Step t (B, X) of a sequence of rows (T B, X).
template <class T>
Tensor<T> step(const Tensor<T>& rows, std::size_t t, std::size_t batch) {
  return slice(rows, 0, static_cast<std::ptrdiff_t>(t * batch), static_cast<std::ptrdiff_t>((t + 1) * batch));
}

// The sum of the defined terms; undefined if none is.
template <class T>
Tensor<T> sum_of(std::initializer_list<Tensor<T>> terms) {
  Tensor<T> total;
  for (const Tensor<T>& term : terms)
    if (term.defined()) total = total.defined() ? total + term : term;
  return total;
}

// What the VJP multiplies the gradients of h_t and c_t by at step t (all (B, H)):
//   dc_t = gc_t + dh_t ko + dc_{t+1} f_{t+1}
//   dz_t = [dc_t fi, dc_t ff, dc_t fg, dh_t fo],   with
//   ko = o (1 - tanh² c_t),  fi = g i (1 - i),  ff = c_{t-1} f (1 - f),  fg = i (1 - g²),
//   fo = tanh(c_t) o (1 - o).
template <class T>
struct Factors {
  Tensor<T> ko, fi, ff, fg, fo, f;
};
template <class T>
Factors<T> factors_of(const Gates<T>& g, const Tensor<T>& tanh_c, const Tensor<T>& c_before) {
  return {g.o * (T(1) - tanh_c * tanh_c), g.g * g.i * (T(1) - g.i), c_before * g.f * (T(1) - g.f),
          g.i * (T(1) - g.g * g.g), tanh_c * g.o * (T(1) - g.o), g.f};
}

// The state entering and leaving step t, read from the op's output as rows (T B, 2H) and its inputs.
template <class T>
struct StateReader {
  const Tensor<T> &output, &h0, &c0;
  std::size_t batch, hidden;
  Tensor<T> part(std::size_t t, std::size_t which) const {
    const auto h = static_cast<std::ptrdiff_t>(hidden);
    return slice(step(output, t, batch), 1, which * h, (which + 1) * h);
  }
  Tensor<T> h_before(std::size_t t) const { return t == 0 ? h0 : part(t - 1, 0); }
  Tensor<T> c_before(std::size_t t) const { return t == 0 ? c0 : part(t - 1, 1); }
  Tensor<T> c(std::size_t t) const { return part(t, 1); }
};

// The VJP of a backward that records nothing (first order), on the values: per step, from the
// kept factors, dz_t into its rows of dP and dh_{t-1} = dz_t W as one product; then dW as two
// products over all steps (h0's rows, then the output's). The same formulas as the recorded VJP
// below, which is the one differentiated again.
template <class T>
Gradients<T> first_order_vjp(const VjpArgs<T>& a, const std::vector<Factors<T>>& kept, std::size_t steps,
                             std::size_t batch, std::size_t hidden) {
  const std::size_t gates = 4 * hidden, row = 2 * hidden;
  const T* grad = a.grad.value().data();
  const T* w = a.input(1).value().data();
  xt::xarray<T> dp = xt::xarray<T>::from_shape(a.grad.dim() == 3 ? Shape{steps, batch, gates} : Shape{steps * batch, gates});
  xt::xarray<T> dh = xt::zeros<T>({batch, hidden}), dc = xt::zeros<T>({batch, hidden});
  const bool jit = detail::prefers_jit_gemm(false, batch, hidden, gates, sizeof(T));
  for (std::size_t t = steps; t-- > 0;) {
    const Factors<T>& k = kept[t];
    T* dz = dp.data() + t * batch * gates;
    for (std::size_t b = 0; b < batch; ++b) {
      const std::size_t at = b * hidden;
      const T *g_h = grad + (t * batch + b) * row, *g_c = g_h + hidden;
      const T *ko = k.ko.value().data() + at, *fi = k.fi.value().data() + at, *ff = k.ff.value().data() + at,
              *fg = k.fg.value().data() + at, *fo = k.fo.value().data() + at, *f = k.f.value().data() + at;
      T *dh_b = dh.data() + at, *dc_b = dc.data() + at, *dz_b = dz + b * gates;
      for (std::size_t e = 0; e < hidden; ++e) {
        const T dh_t = g_h[e] + dh_b[e];
        const T dc_t = g_c[e] + dh_t * ko[e] + dc_b[e];
        dz_b[e] = dc_t * fi[e];
        dz_b[hidden + e] = dc_t * ff[e];
        dz_b[2 * hidden + e] = dc_t * fg[e];
        dz_b[3 * hidden + e] = dh_t * fo[e];
        dc_b[e] = dc_t * f[e];
      }
    }
    detail::gemm(jit, false, false, batch, hidden, gates, dz, gates, w, hidden, T(0), dh.data(), hidden);
  }
  Tensor<T> dw;
  if (a.needs_grad(1)) {
    // dW = sum_t dz_t^T h_{t-1}: h0 with step 0's rows, the output's h_0 .. h_{T-2} with the rest.
    xt::xarray<T> dw_value = xt::xarray<T>::from_shape({gates, hidden});
    detail::gemm(false, true, false, gates, hidden, batch, dp.data(), gates, a.input(2).value().data(), hidden, T(0),
                 dw_value.data(), hidden);
    if (steps > 1)
      detail::gemm(false, true, false, gates, hidden, (steps - 1) * batch, dp.data() + batch * gates, gates,
                   a.output.value().data(), row, T(1), dw_value.data(), hidden);
    dw = Tensor<T>(std::move(dw_value));
  }
  return {Tensor<T>(std::move(dp)), dw, Tensor<T>(std::move(dh)), Tensor<T>(std::move(dc))};
}

}  // namespace

// z_t = P_t + h_{t-1} W^T;  c_t = σ(z_f) c_{t-1} + σ(z_i) tanh(z_g);  h_t = σ(z_o) tanh(c_t)
//   dz_t from dh_t (+ dh from step t+1) and dc_t (+ dc from t+1);  dP_t = dz_t;  dW = Σ_t dz_t^T h_{t-1}
//   (one product);  dh_{t-1} += dz_t W;  dc_{t-1} += dc_t σ(z_f)
//   tz_t = tP_t + th_{t-1} W^T + h_{t-1} tW^T;  tc_t, th_t by the chain rule through the gates
template <class T>
Tensor<T> lstm_recurrence(const Tensor<T>& projections, const Tensor<T>& weight_hh, const Tensor<T>& h0,
                          const Tensor<T>& c0) {
  const char* op = "lstm_recurrence";
  check_defined<T>(op, {&projections, &weight_hh, &h0, &c0});
  const Shape p = projections.shape(), w = weight_hh.shape(), s0 = h0.shape();
  if (w.size() != 2 || w[0] != 4 * w[1] || w[1] == 0)
    throw_shape_error(op, "weight_hh shape " + shape_str(w) + " is not (4 hidden, hidden) with hidden >= 1");
  const std::size_t hidden = w[1];
  if (s0.size() != 2 || s0[1] != hidden || s0[0] == 0)
    throw_shape_error(op, "h0 shape " + shape_str(s0) + " is not (batch >= 1, hidden=" + std::to_string(hidden) + ")");
  const std::size_t batch = s0[0];
  if (c0.shape() != s0)
    throw_shape_error(op, "c0 shape " + shape_str(c0.shape()) + " differs from h0's " + shape_str(s0));
  const bool rows = p.size() == 2;
  if (!(rows ? p[0] > 0 && p[0] % batch == 0 : p.size() == 3 && p[0] > 0 && p[1] == batch) || p.back() != 4 * hidden)
    throw_shape_error(op, "projections shape " + shape_str(p) + " is neither (time >= 1, batch=" + std::to_string(batch) +
                              ", 4 hidden=" + std::to_string(4 * hidden) + ") nor (time * batch, 4 hidden) for h0 shape " +
                              shape_str(s0) + " and weight_hh shape " + shape_str(w));
  const std::size_t steps = rows ? p[0] / batch : p[0];
  // BLAS takes int dimensions: the products over all steps have steps * batch rows.
  if (steps * batch > std::size_t(std::numeric_limits<int>::max()) || 4 * hidden > std::size_t(std::numeric_limits<int>::max()))
    throw_shape_error(op, "projections shape " + shape_str(p) + " has more rows or columns than a matrix product takes (2^31 - 1)");
  // What the VJP reads is kept only where there will be one.
  const bool keep_factors = is_recording();

  // The forward pass, on the values: z_t = P_t + h_{t-1} W^T as one product into a copy of P_t
  // (W^T laid out once, so that the product's operands are untransposed: the small-product
  // kernels' kind), then the gates and the state element by element, into y.
  xt::xarray<T> y = rows ? xt::xarray<T>::from_shape({steps * batch, 2 * hidden})
                        : xt::xarray<T>::from_shape({steps, batch, 2 * hidden});
  auto kept = std::make_shared<std::vector<Factors<T>>>();
  {
    NoGrad values_only;
    detail::NoTangents no_tangents;
    const std::size_t gates = 4 * hidden, row = 2 * hidden;
    xt::xarray<T> w_t = xt::xarray<T>::from_shape({hidden, gates});
    const T* w = weight_hh.value().data();
    for (std::size_t r = 0; r < gates; ++r)
      for (std::size_t c = 0; c < hidden; ++c) w_t.data()[c * gates + r] = w[r * hidden + c];
    const bool jit = detail::prefers_jit_gemm(false, batch, gates, hidden, sizeof(T));
    const T* p_data = projections.value().data();
    // Per step: z = h_{t-1} W^T, then per row the gates (a, in z's order i, f, g, o) of z + P_t,
    // then per element the state and the factors the VJP reads (factors_of's formulas, without an
    // op per product).
    xt::xarray<T> z = xt::xarray<T>::from_shape({batch, gates}), gate_values = xt::xarray<T>::from_shape({gates});
    T* a = gate_values.data();
    for (std::size_t t = 0; t < steps; ++t) {
      T* y_t = y.data() + t * batch * row;
      const T* h_before = t == 0 ? h0.value().data() : y_t - batch * row;
      const T* c_before = t == 0 ? c0.value().data() : y_t - batch * row + hidden;
      const std::size_t state_stride = t == 0 ? hidden : row;
      detail::gemm(jit, false, false, batch, gates, hidden, h_before, state_stride, w_t.data(), gates, T(0), z.data(), gates);
      std::array<xt::xarray<T>, 6> k;
      for (xt::xarray<T>& factor : k) factor = xt::xarray<T>::from_shape(keep_factors ? Shape{batch, hidden} : Shape{hidden});
      auto& [ko, fi, ff, fg, fo, f_kept] = k;
      for (std::size_t b = 0; b < batch; ++b) {
        T* zb = z.data() + b * gates;
        const T* pb = p_data + (t * batch + b) * gates;
        for (std::size_t e = 0; e < gates; ++e) zb[e] += pb[e];
        detail::vector_sigmoid(zb, a, 2 * hidden);
        detail::vector_tanh(zb + 2 * hidden, a + 2 * hidden, hidden);
        detail::vector_sigmoid(zb + 3 * hidden, a + 3 * hidden, hidden);
        T* h_out = y_t + b * row;
        T* c_out = h_out + hidden;
        const T* c_in = c_before + b * state_stride;
        for (std::size_t e = 0; e < hidden; ++e) c_out[e] = a[hidden + e] * c_in[e] + a[e] * a[2 * hidden + e];
        const std::size_t at = keep_factors ? b * hidden : 0;   // else one row of scratch, rewritten per row
        T* tanh_c = ko.data() + at;   // tanh(c_t) here, then ko in place
        detail::vector_tanh(c_out, tanh_c, hidden);
        T *fi_b = fi.data() + at, *ff_b = ff.data() + at, *fg_b = fg.data() + at, *fo_b = fo.data() + at,
          *f_b = f_kept.data() + at;
        for (std::size_t e = 0; e < hidden; ++e) {
          const T i = a[e], f = a[hidden + e], g = a[2 * hidden + e], o = a[3 * hidden + e], tc = tanh_c[e];
          h_out[e] = o * tc;
          fi_b[e] = g * i * (T(1) - i);
          ff_b[e] = c_in[e] * f * (T(1) - f);
          fg_b[e] = i * (T(1) - g * g);
          fo_b[e] = tc * o * (T(1) - o);
          f_b[e] = f;
          tanh_c[e] = o * (T(1) - tc * tc);
        }
      }
      if (keep_factors)
        kept->push_back({Tensor<T>(std::move(ko)), Tensor<T>(std::move(fi)), Tensor<T>(std::move(ff)), Tensor<T>(std::move(fg)),
                         Tensor<T>(std::move(fo)), Tensor<T>(std::move(f_kept))});
    }
  }

  const auto vjp = [kept, steps, batch, hidden](const VjpArgs<T>& a) -> Gradients<T> {
    // A first-order backward reads the factors the forward pass kept; one that is recorded, or
    // that carries tangents (forward over reverse), computes them again from the inputs and the
    // output with differentiable ops.
    if (!is_recording() && !detail::forward_active()) return first_order_vjp(a, *kept, steps, batch, hidden);
    const Tensor<T>&W = a.input(1), &h0 = a.input(2), &c0 = a.input(3);
    const Tensor<T> output = rows_of(a.output), grad = rows_of(a.grad);
    const StateReader<T> state{output, h0, c0, batch, hidden};
    const auto h = static_cast<std::ptrdiff_t>(hidden);
    // h_{t-1} for every step as rows: h0, then the output's h_0 .. h_{T-2}.
    const auto before_last = static_cast<std::ptrdiff_t>((steps - 1) * batch);
    const Tensor<T> h_before =
        steps == 1 ? h0 : concat(std::vector<Tensor<T>>{h0, slice(slice(output, 0, 0, before_last), 1, 0, h)}, 0);
    const Tensor<T> grad_h = slice(grad, 1, 0, h), grad_c = slice(grad, 1, h, 2 * h);
    const Tensor<T> P = rows_of(a.input(0));
    Tensor<T> dh, dc;   // into step t from step t + 1 (undefined: none yet)
    std::vector<Tensor<T>> dz(steps);
    for (std::size_t t = steps; t-- > 0;) {
      const Factors<T> k = factors_of(activate(step(P, t, batch) + matmul(step(h_before, t, batch), W, false, true), hidden),
                                      tanh(state.c(t)), state.c_before(t));
      const Tensor<T> dh_t = sum_of({step(grad_h, t, batch), dh});
      const Tensor<T> dc_t = sum_of({step(grad_c, t, batch), dh_t * k.ko, dc});
      dz[t] = concat(std::vector<Tensor<T>>{dc_t * k.fi, dc_t * k.ff, dc_t * k.fg, dh_t * k.fo}, 1);
      dc = dc_t * k.f;
      dh = matmul(dz[t], W);
    }
    const Tensor<T> dp = concat(dz, 0);   // (T B, 4H)
    Tensor<T> dw;
    if (a.needs_grad(1)) dw = matmul(dp, h_before, true, false);
    return {a.grad.dim() == 3 ? reshape(dp, {steps, batch, 4 * hidden}) : dp, dw, dh, dc};
  };

  // Tangents may come as a batch (a leading axis of j.batch seeds): the state's tangents are then
  // (seeds, B, H), the products broadcast over the seeds, and the steps are rows of axis 1.
  const auto jvp = [steps, batch, hidden](const JvpArgs<T>& j) -> Tensor<T> {
    const Tensor<T> P = rows_of(j.inputs[0]), &W = j.inputs[1], output = rows_of(j.output);
    const StateReader<T> state{output, j.inputs[2], j.inputs[3], batch, hidden};
    const std::size_t seeds = j.batch;
    const std::ptrdiff_t rows_axis = seeds > 0 ? 1 : 0;
    const auto step_of_tangent = [&](const Tensor<T>& rows, std::size_t t) {
      return slice(rows, rows_axis, static_cast<std::ptrdiff_t>(t * batch), static_cast<std::ptrdiff_t>((t + 1) * batch));
    };
    const Tensor<T> tp_rows =
        j.has_tangent(0) ? reshape(j.tangents[0], detail::with_batch({steps * batch, 4 * hidden}, seeds)) : Tensor<T>();
    Tensor<T> th = j.tangents[2], tc = j.tangents[3];
    std::vector<Tensor<T>> out;
    for (std::size_t t = 0; t < steps; ++t) {
      const Tensor<T> h_before = state.h_before(t), c_before = state.c_before(t);
      const Gates<T> g = activate(step(P, t, batch) + matmul(h_before, W, false, true), hidden);
      const Tensor<T> tanh_c = tanh(state.c(t));
      Tensor<T> tz = sum_of({tp_rows.defined() ? step_of_tangent(tp_rows, t) : Tensor<T>(),
                             th.defined() ? matmul(th, W, false, true) : Tensor<T>(),
                             j.has_tangent(1) ? matmul(h_before, j.tangents[1], false, true) : Tensor<T>()});
      Tensor<T> tc_t = tc.defined() ? g.f * tc : Tensor<T>();
      if (tz.defined()) {
        const std::vector<Tensor<T>> tp = split(tz, {hidden, hidden, hidden, hidden}, -1);
        tc_t = sum_of({tc_t, g.f * (T(1) - g.f) * tp[1] * c_before, g.i * (T(1) - g.i) * tp[0] * g.g,
                       g.i * (T(1) - g.g * g.g) * tp[2]});
        th = g.o * (T(1) - g.o) * tp[3] * tanh_c;
      } else {
        th = Tensor<T>();
      }
      if (!tc_t.defined()) tc_t = Tensor<T>(xt::xarray<T>(xt::zeros<T>(detail::with_batch({batch, hidden}, seeds))));
      th = sum_of({th, g.o * (T(1) - tanh_c * tanh_c) * tc_t});
      tc = tc_t;
      out.push_back(concat(std::vector<Tensor<T>>{th, tc}, -1));
    }
    return reshape(concat(out, rows_axis), detail::with_batch(j.output.shape(), seeds));
  };
  return record<T>(op, {projections, weight_hh, h0, c0}, std::move(y), vjp, Saved::inputs_and_output, takes_batch(jvp));
}

template Tensor<float> lstm_recurrence(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, const Tensor<float>&);
template Tensor<double> lstm_recurrence(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                        const Tensor<double>&);

}  // namespace tapegrad
