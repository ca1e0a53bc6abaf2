// GradBench's particle and saddle evals: gradient descent whose objective contains a derivative,
// differentiated through (README.md, particle and saddle). Each derivative is taken by forward
// mode (tg::jvp, one unit tangent per input) or reverse mode (tg::grad), the inner one
// differentiable in turn: recorded with create_graph on the outer tape (reverse over reverse),
// carrying the outer jvp's tangents (forward over reverse, forward over forward), or recorded by a
// jvp on the outer tape (tg::record_on_tape: reverse over forward).
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "evals.hpp"

namespace gradbench {

namespace tg = tapegrad;

namespace {

using Scalar = std::function<Tensor(const Tensor&)>;

Tensor unit(std::size_t n, std::size_t i) {
  Array e = xt::zeros<double>({n});
  e(i) = 1.0;
  return Tensor(std::move(e));
}

// The gradient of the scalar f at x by `mode`, differentiable where an outer derivative is being
// taken: what the caller's tape records, or what carries an outer jvp's tangents. Taken where no
// tape records and no jvp runs, it is the outer derivative itself: a constant.
Tensor gradient(const Scalar& f, Tensor x, Mode mode) {
  const std::size_t n = x.size();
  if (mode == Mode::forward) {
    std::vector<Tensor> parts;
    for (std::size_t i = 0; i < n; ++i)
      parts.push_back(tg::reshape(tg::jvp<double>([&f](const std::vector<Tensor>& in) { return f(in[0]); }, {x},
                                                  {unit(n, i)}, tg::record_on_tape)
                                      .second,
                                  {1}));
    return tg::concat(parts, 0);
  }
  // Reverse mode: on the caller's tape, recording the backward pass, where one records (an outer
  // derivative); on a tape of its own otherwise.
  const bool outer = tg::is_recording();
  std::unique_ptr<tg::Tape> own;
  if (!outer) own = std::make_unique<tg::Tape>();
  if (!x.requires_grad()) {
    x = x * 1.0;   // a leaf of its own to differentiate by (the caller's stays as it is), its outer tangent carried
    x.set_requires_grad(true);
  }
  return tg::grad(f(x), {x}, /*create_graph=*/outer)[0];
}

// GradBench's gradient descent (cpp/gradbench/gd.hpp in its repository, by which the particle and
// saddle evals are defined), on tensors so that an outer derivative can see through it: from x,
// step x - eta g with eta = 1e-5 at first; a step that lowers f is taken, and after ten taken in a
// row eta doubles; one that does not halves eta. Stops when |g| <= 1e-5 or a step would move x by
// <= 1e-5. `sign` -1 climbs instead (argmax). The values decide; the tensors carry derivatives.
Tensor descend(const Scalar& f, const Scalar& g, Tensor x, double sign, const char* eval) {
  const auto value = [&](const Tensor& at) { return sign * f(at).item(); };
  double fx = value(x);
  Tensor gx = g(x) * sign;
  double eta = 1e-5;
  for (std::size_t taken = 0, iterations = 0;; ++iterations) {
    if (iterations == 10'000'000)
      tg::throw_value_error(eval, "gradient descent did not converge in 10,000,000 iterations (eta " +
                                      tg::number_str(eta) + ")");
    if (std::sqrt(xt::sum(gx.value() * gx.value())()) <= 1e-5) return x;
    if (taken == 10) {
      eta *= 2;
      taken = 0;
      continue;
    }
    const Tensor next = x - gx * eta;
    if (std::sqrt(xt::sum(xt::square(x.value() - next.value()))()) <= 1e-5) return x;
    const double f_next = value(next);
    if (f_next < fx) {
      x = next;
      fx = f_next;
      gx = g(x) * sign;
      ++taken;
    } else {
      eta /= 2;
      taken = 0;
    }
  }
}

// --- particle -------------------------------------------------------------------------------

// The squared x at which the particle crosses the x axis, for control w (shape (1)). Charges at
// (10, 10 - w) and (10, 0); potential p(x) = sum 1 / |x - charge|; from x = (0, 8) with velocity
// (0.75, 0), Euler steps of 0.1: acceleration -grad p(x) (by `inner`), then x += dt v; once
// x_1 <= 0 the crossing is interpolated linearly; else v += dt a.
Tensor particle(const Tensor& w, Mode inner) {
  const Tensor far(Array{10.0}), near(Array{10.0, 0.0});
  const Tensor moved = tg::concat(std::vector<Tensor>{far, 10.0 - w}, 0);
  const Scalar potential = [&](const Tensor& x) {
    const Tensor a = x - moved, b = x - near;
    return tg::pow(tg::sum(a * a), -0.5) + tg::pow(tg::sum(b * b), -0.5);
  };
  Tensor x(Array{0.0, 8.0}), v(Array{0.75, 0.0});
  const double dt = 0.1;
  for (std::size_t step = 0; step < 1'000'000; ++step) {
    const Tensor acceleration = -gradient(potential, x, inner);
    x = x + v * dt;
    if (x.value()(1) <= 0) {
      const Tensor to_axis = -slice_at(x, 1) / slice_at(v, 1);
      const Tensor crossing = slice_at(x, 0) + to_axis * slice_at(v, 0);
      return crossing * crossing;
    }
    v = v + acceleration * dt;
  }
  tg::throw_value_error("particle", "the particle does not reach the x axis in 1,000,000 steps");
}

// --- saddle ---------------------------------------------------------------------------------

// f(x, y) = (x0^2 + x1^2) - (y0^2 + y1^2)
Tensor saddle(const Tensor& x, const Tensor& y) { return tg::sum(x * x) - tg::sum(y * y); }

// max over y of f(x, y), y by gradient ascent from `start` (its gradient by `inner`).
Tensor saddle_max(const Tensor& x, const Tensor& start, Mode inner) {
  const Scalar fy = [&x](const Tensor& y) { return saddle(x, y); };
  const Scalar gy = [&fy, inner](const Tensor& y) { return gradient(fy, y, inner); };
  return saddle(x, descend(fy, gy, start, -1, "saddle"));
}

}  // namespace

Modes modes_of(const char* eval, const std::string& name) {
  if (name.size() == 2 && (name[0] == 'f' || name[0] == 'r') && (name[1] == 'f' || name[1] == 'r'))
    return {name[0] == 'f' ? Mode::forward : Mode::reverse, name[1] == 'f' ? Mode::forward : Mode::reverse};
  tg::throw_value_error(eval, "no function '" + name + "' (ff, fr, rf or rr)");
}

double particle_objective(double w, Mode inner) { return particle(Tensor(Array{w}), inner).item(); }

double particle_derivative(double w, Modes modes) {
  return gradient([modes](const Tensor& at) { return particle(at, modes.inner); }, Tensor(Array{w}), modes.outer).value()(0);
}

Array saddle_max_gradient(const Array& x, const Array& start, Modes modes) {
  const Tensor from(start);
  return gradient([&](const Tensor& at) { return saddle_max(at, from, modes.inner); }, Tensor(x), modes.outer).value();
}

double particle_argmin(double w0, Modes modes) {
  if (!std::isfinite(w0)) tg::throw_value_error("particle", "w must be finite, got " + tg::number_str(w0));
  const Scalar objective = [modes](const Tensor& w) { return particle(w, modes.inner); };
  const Scalar derivative = [&](const Tensor& w) { return gradient(objective, w, modes.outer); };
  return descend(objective, derivative, Tensor(Array{w0}), 1, "particle").value()(0);
}

Array saddle_point(const Array& start, Modes modes) {
  if (start.dimension() != 1 || start.size() != 2)
    tg::throw_shape_error("saddle", "start has " + std::to_string(start.size()) + " numbers, expected 2");
  const Tensor from(start);
  // Step 1: x minimising max_y f(x, y), the derivative of that max taken through the ascent.
  const Scalar worst = [&](const Tensor& x) { return saddle_max(x, from, modes.inner); };
  const Scalar worst_gradient = [&](const Tensor& x) { return gradient(worst, x, modes.outer); };
  const Tensor x = descend(worst, worst_gradient, from, 1, "saddle");
  // Step 2: y maximising f(x, y), by the outer mode.
  const Scalar fy = [&x](const Tensor& y) { return saddle(x, y); };
  const Scalar gy = [&](const Tensor& y) { return gradient(fy, y, modes.outer); };
  const Tensor y = descend(fy, gy, from, -1, "saddle");
  return Array{x.value()(0), x.value()(1), y.value()(0), y.value()(1)};
}

}  // namespace gradbench
