// GradBench's ba eval (ADBench's bundle adjustment) written with tapegrad ops (README.md, ba):
// every observation's reprojection error computed at once, as tensors with a row per observation.
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>
#include <xtensor/xoperation.hpp>
#include <xtensor/xview.hpp>

#include "evals.hpp"

namespace gradbench {

namespace tg = tapegrad;

namespace {

Tensor columns(const Tensor& a, std::ptrdiff_t first, std::ptrdiff_t last) { return tg::slice(a, 1, first, last); }
Tensor column(const Tensor& a, std::ptrdiff_t j) { return columns(a, j, j + 1); }

// Row by row a x b of two (p, 3) tensors.
Tensor cross(const Tensor& a, const Tensor& b) {
  const Tensor a0 = column(a, 0), a1 = column(a, 1), a2 = column(a, 2);
  const Tensor b0 = column(b, 0), b1 = column(b, 1), b2 = column(b, 2);
  return tg::concat(std::vector<Tensor>{a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0}, 1);
}

// pt rotated by the angle-axis vector rot (Rodrigues' formula), row by row; where rot = 0, to
// first order: pt + rot x pt.
Tensor rodrigues(const Tensor& rot, const Tensor& pt) {
  const Tensor squared = tg::sum(rot * rot, {1}, true);                     // (p, 1)
  const xt::xarray<bool> turns = xt::not_equal(squared.value(), 0.0);
  // theta = |rot|, taken as 1 where rot = 0 so that the branch not taken stays finite.
  const Tensor theta = tg::sqrt(tg::where(turns, squared, Tensor(Array(xt::ones<double>({std::size_t(1), std::size_t(1)})))));
  const Tensor cos = tg::cos(theta), axis = rot / theta;
  const Tensor along = tg::sum(axis * pt, {1}, true) * (1.0 - cos);
  const Tensor rotated = pt * cos + cross(axis, pt) * tg::sin(theta) + axis * along;
  return tg::where(turns, rotated, pt + cross(rot, pt));
}

// w (proj - feat) per observation, with cam = [r (3), C (3), f, u0, v0, k1, k2] and
// proj = distort(Xcam[:2] / Xcam[2]) f + (u0, v0), Xcam = R(r) (X - C),
// distort(q) = q (1 + k1 |q|^2 + k2 |q|^4).
Tensor reprojection_error(const Tensor& cam, const Tensor& x, const Tensor& w, const Tensor& feat) {
  const Tensor xcam = rodrigues(columns(cam, 0, 3), x - columns(cam, 3, 6));
  Tensor proj = columns(xcam, 0, 2) / column(xcam, 2);
  const Tensor rsq = tg::sum(proj * proj, {1}, true);
  proj = proj * (1.0 + column(cam, 9) * rsq + column(cam, 10) * rsq * rsq);
  proj = proj * column(cam, 6) + columns(cam, 7, 9);
  return tg::reshape(w, {w.size(), 1}) * (proj - feat);
}

// Each observation's camera, point, weight and feature, one row each (the observation i sees
// camera i mod n and point i mod m). Built on values, outside any tape.
struct Observations {
  Tensor cam, x, w, feat;
};
Observations observations(const BaInput& in) {
  std::vector<std::int64_t> camera(in.p), point(in.p);
  for (std::size_t i = 0; i < in.p; ++i) {
    camera[i] = static_cast<std::int64_t>(i % in.n);
    point[i] = static_cast<std::int64_t>(i % in.m);
  }
  tg::NoGrad values;
  return {tg::index_select(Tensor(in.cams), 0, camera), tg::index_select(Tensor(in.x), 0, point), Tensor(in.w),
          Tensor(in.feats)};
}

}  // namespace

BaInput ba_replicate(std::size_t n, std::size_t m, std::size_t p, const Array& cam, const Array& x, double w,
                     const Array& feat) {
  if (n == 0 || m == 0 || p == 0)
    tg::throw_value_error("ba", "n, m and p must be >= 1, got n=" + std::to_string(n) + ", m=" + std::to_string(m) +
                                    ", p=" + std::to_string(p));
  if (cam.size() != 11 || x.size() != 3 || feat.size() != 2)
    tg::throw_shape_error("ba", "cam, x and feat must hold 11, 3 and 2 numbers, got " + std::to_string(cam.size()) +
                                    ", " + std::to_string(x.size()) + " and " + std::to_string(feat.size()));
  BaInput in{n, m, p, Array::from_shape({n, 11}), Array::from_shape({m, 3}), Array::from_shape({p}),
             Array::from_shape({p, 2})};
  for (std::size_t i = 0; i < n; ++i) std::copy(cam.begin(), cam.end(), in.cams.begin() + static_cast<std::ptrdiff_t>(i * 11));
  for (std::size_t i = 0; i < m; ++i) std::copy(x.begin(), x.end(), in.x.begin() + static_cast<std::ptrdiff_t>(i * 3));
  in.w.fill(w);
  for (std::size_t i = 0; i < p; ++i) std::copy(feat.begin(), feat.end(), in.feats.begin() + static_cast<std::ptrdiff_t>(i * 2));
  return in;
}

BaObjective ba_objective(const BaInput& in) {
  tg::NoGrad no_tape;
  const Observations o = observations(in);
  return {reprojection_error(o.cam, o.x, o.w, o.feat).value(), (1.0 - o.w * o.w).value()};
}

// Row 2i + r (r = 0, 1) of the Jacobian holds d err_i[r] / d(camera i mod n, point i mod m, w_i):
// the gradients of every observation's error at once, by two reverse passes over the rows of
// parameters gathered per observation (seeds selecting r = 0 then r = 1 in every row), no
// observation's parameters shared with another's. Row 2p + i holds d(1 - w_i^2)/d w_i.
BaJacobian ba_jacobian(const BaInput& in) {
  const Observations gathered = observations(in);
  const Tensor cam = gathered.cam.detach().set_requires_grad(true), x = gathered.x.detach().set_requires_grad(true),
               w = gathered.w.detach().set_requires_grad(true);
  std::vector<Tensor> by_row[2];
  Tensor weight_gradient;
  {
    tg::Tape tape;
    const Tensor err = reprojection_error(cam, x, w, gathered.feat);
    for (std::size_t r = 0; r < 2; ++r) {
      Array seed = xt::zeros<double>({in.p, std::size_t(2)});
      xt::view(seed, xt::all(), r) = 1.0;
      by_row[r] = tg::grad(err, {cam, x, w}, seed);
    }
    weight_gradient = tg::grad(tg::sum(1.0 - w * w), {w})[0];
  }
  const std::size_t per_row = 11 + 3 + 1, nonzeros = 2 * per_row * in.p + in.p;
  BaJacobian j;
  j.rows.reserve(3 * in.p + 1);
  j.cols.reserve(nonzeros);
  j.vals.reserve(nonzeros);
  j.rows.push_back(0);
  const std::size_t point_columns = 11 * in.n, weight_columns = point_columns + 3 * in.m;
  for (std::size_t i = 0; i < in.p; ++i) {
    const std::size_t camera = i % in.n, point = i % in.m;
    for (std::size_t r = 0; r < 2; ++r) {
      const double* dcam = by_row[r][0].value().data() + i * 11;
      const double* dx = by_row[r][1].value().data() + i * 3;
      for (std::size_t c = 0; c < 11; ++c) j.cols.push_back(static_cast<std::int64_t>(11 * camera + c)), j.vals.push_back(dcam[c]);
      for (std::size_t c = 0; c < 3; ++c)
        j.cols.push_back(static_cast<std::int64_t>(point_columns + 3 * point + c)), j.vals.push_back(dx[c]);
      j.cols.push_back(static_cast<std::int64_t>(weight_columns + i));
      j.vals.push_back(by_row[r][2].value()(i));
      j.rows.push_back(j.rows.back() + static_cast<std::int64_t>(per_row));
    }
  }
  for (std::size_t i = 0; i < in.p; ++i) {
    j.cols.push_back(static_cast<std::int64_t>(weight_columns + i));
    j.vals.push_back(weight_gradient.value()(i));
    j.rows.push_back(j.rows.back() + 1);
  }
  return j;
}

}  // namespace gradbench
