// GradBench's ba eval (ADBench's bundle adjustment) written with tapegrad ops (README.md, "ba"):
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

// The layout: one column per observation, one row per coordinate ((3, p) for a point), so that
// a coordinate is a contiguous row.

// Column by column a x b of two (3, p) tensors.
Tensor cross(const Tensor& a, const Tensor& b) {
  const Tensor a0 = slice_at(a, 0), a1 = slice_at(a, 1), a2 = slice_at(a, 2);
  const Tensor b0 = slice_at(b, 0), b1 = slice_at(b, 1), b2 = slice_at(b, 2);
  return tg::concat(std::vector<Tensor>{a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0}, 0);
}

// pt rotated by the angle-axis vector rot (Rodrigues' formula), column by column; where rot = 0,
// to first order: pt + rot x pt.
Tensor rodrigues(const Tensor& rot, const Tensor& pt) {
  const Tensor squared = tg::sum(rot * rot, {0}, true);                     // (1, p)
  const xt::xarray<bool> turns = xt::not_equal(squared.value(), 0.0);
  const bool all_turn = xt::all(turns);
  // theta = |rot|, taken as 1 where rot = 0 so that the branch not taken stays finite.
  const Tensor theta = tg::sqrt(all_turn ? squared : tg::where(turns, squared, Tensor(Array{1.0})));
  const Tensor cos = tg::cos(theta), axis = rot / theta;
  const Tensor along = tg::sum(axis * pt, {0}, true) * (1.0 - cos);
  const Tensor rotated = pt * cos + cross(axis, pt) * tg::sin(theta) + axis * along;
  return all_turn ? rotated : tg::where(turns, rotated, pt + cross(rot, pt));
}

// Each observation's parameters, a column each: camera i mod n's rotation r (3), centre C (3),
// focal length f (1), principal point (2) and distortion k (2); point i mod m (3); w_i; feat_i (2).
struct Observations {
  Tensor rot, centre, focal, principal, distortion, x, w, feat;
};
Observations observations(const BaInput& in, bool differentiable) {
  const std::size_t p = in.p;
  const auto gathered = [&](const Array& from, std::size_t first, std::size_t rows, std::size_t count) {
    Array a = Array::from_shape({rows, p});
    const std::size_t width = from.shape(1);
    for (std::size_t i = 0; i < p; ++i) {
      const double* source = from.data() + (i % count) * width + first;
      for (std::size_t r = 0; r < rows; ++r) a(r, i) = source[r];
    }
    return Tensor(std::move(a), differentiable);
  };
  Array feat = xt::transpose(in.feats);
  return {gathered(in.cams, 0, 3, in.n), gathered(in.cams, 3, 3, in.n), gathered(in.cams, 6, 1, in.n),
          gathered(in.cams, 7, 2, in.n), gathered(in.cams, 9, 2, in.n), gathered(in.x, 0, 3, in.m),
          Tensor(Array(xt::reshape_view(in.w, {std::size_t(1), p})), differentiable), Tensor(std::move(feat))};
}

// w (proj - feat) per observation (2, p), with proj = distort(Xcam[:2] / Xcam[2]) f + (u0, v0),
// Xcam = R(r) (X - C), distort(q) = q (1 + k1 |q|^2 + k2 |q|^4).
Tensor reprojection_error(const Observations& o) {
  const Tensor xcam = rodrigues(o.rot, o.x - o.centre);
  Tensor proj = tg::slice(xcam, 0, 0, 2) / slice_at(xcam, 2);
  const Tensor rsq = tg::sum(proj * proj, {0}, true);
  proj = proj * (1.0 + slice_at(o.distortion, 0) * rsq + slice_at(o.distortion, 1) * rsq * rsq);
  return o.w * (proj * o.focal + o.principal - o.feat);
}

}  // namespace

BaInput ba_replicate(std::size_t n, std::size_t m, std::size_t p, const Array& cam, const Array& x, double w,
                     const Array& feat) {
  const std::size_t most = 100'000'000;   // ADBench's largest problem has p = 28,975,112
  if (n == 0 || m == 0 || p == 0 || n > most || m > most || p > most)
    tg::throw_value_error("ba", "n, m and p must be in [1, 100000000], got n=" + std::to_string(n) +
                                    ", m=" + std::to_string(m) + ", p=" + std::to_string(p));
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
  const Observations o = observations(in, false);
  return {xt::transpose(reprojection_error(o).value()), xt::reshape_view((1.0 - o.w * o.w).value(), {in.p})};
}

// Row 2i + r (r = 0, 1) of the Jacobian holds d err_i[r] / d(camera i mod n, point i mod m, w_i):
// the gradients of every observation's error at once, by two reverse passes over the rows of
// parameters gathered per observation (seeds selecting r = 0 then r = 1 in every row), no
// observation's parameters shared with another's. Row 2p + i holds d(1 - w_i^2)/d w_i.
BaJacobian ba_jacobian(const BaInput& in) {
  const Observations o = observations(in, true);
  const std::vector<Tensor> parameters{o.rot, o.centre, o.focal, o.principal, o.distortion, o.x, o.w};
  std::vector<Tensor> by_row[2];
  Tensor weight_gradient;
  {
    tg::Tape tape;
    const Tensor err = reprojection_error(o);
    for (std::size_t r = 0; r < 2; ++r) {
      Array seed = xt::zeros<double>({std::size_t(2), in.p});
      xt::view(seed, r, xt::all()) = 1.0;
      by_row[r] = tg::grad(err, parameters, seed);
    }
    weight_gradient = tg::grad(tg::sum(1.0 - o.w * o.w), {o.w})[0];
  }
  // Compressed rows, written in place: each parameter row of each gradient is a contiguous row of p
  // values (the layout (coordinate, p)), read through its pointer.
  const std::size_t per_row = 11 + 3 + 1, nonzeros = 2 * per_row * in.p + in.p, p = in.p;
  const double* rows_of[2][per_row];   // per error row r: the camera's 11, the point's 3, the weight
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t piece = 0, c = 0; piece < 7; ++piece) {
      const Array& g = by_row[r][piece].value();
      for (std::size_t k = 0; k < g.shape(0); ++k, ++c) rows_of[r][c] = g.data() + k * p;
    }
  BaJacobian j;
  j.rows.resize(3 * p + 1);
  j.cols.resize(nonzeros);
  j.vals.resize(nonzeros);
  const std::size_t point_columns = 11 * in.n, weight_columns = point_columns + 3 * in.m;
  std::int64_t* cols = j.cols.data();
  double* vals = j.vals.data();
  for (std::size_t i = 0; i < p; ++i) {
    const std::size_t camera = i % in.n, point = i % in.m;
    for (std::size_t r = 0; r < 2; ++r) {
      const std::size_t row = 2 * i + r, at = row * per_row;
      j.rows[row] = static_cast<std::int64_t>(at);
      for (std::size_t c = 0; c < 11; ++c) cols[at + c] = static_cast<std::int64_t>(11 * camera + c);
      for (std::size_t c = 0; c < 3; ++c) cols[at + 11 + c] = static_cast<std::int64_t>(point_columns + 3 * point + c);
      cols[at + 14] = static_cast<std::int64_t>(weight_columns + i);
      for (std::size_t c = 0; c < per_row; ++c) vals[at + c] = rows_of[r][c][i];
    }
  }
  const double* weight = weight_gradient.value().data();
  for (std::size_t i = 0; i < p; ++i) {
    const std::size_t at = 2 * per_row * p + i;
    j.rows[2 * p + i] = static_cast<std::int64_t>(at);
    cols[at] = static_cast<std::int64_t>(weight_columns + i);
    vals[at] = weight[i];
  }
  j.rows[3 * p] = static_cast<std::int64_t>(nonzeros);
  return j;
}

}  // namespace gradbench
