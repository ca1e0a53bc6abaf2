// GradBench's kmeans and det evals written with tapegrad ops (README.md, kmeans and det).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "evals.hpp"

namespace gradbench {

namespace tg = tapegrad;

namespace {

// --- kmeans ---------------------------------------------------------------------------------

void check_kmeans(const KmeansInput& in) {
  const auto& p = in.points.shape();
  const auto& c = in.centroids.shape();
  if (in.points.dimension() != 2 || p[0] == 0 || p[1] == 0)
    tg::throw_shape_error("kmeans", "points has shape " + tg::shape_str(tg::Shape(p.begin(), p.end())) +
                                        ", expected (n, d) with n, d >= 1");
  if (in.centroids.dimension() != 2 || c[0] == 0 || c[1] != p[1])
    tg::throw_shape_error("kmeans", "centroids has shape " + tg::shape_str(tg::Shape(c.begin(), c.end())) +
                                        ", expected (k, " + std::to_string(p[1]) + ") with k >= 1 (d from points)");
}

// The closest centroid of each point (the first on a tie), chosen on values: the choice has no
// derivative, the distance to the chosen centroid has. |p - c|^2 = |p|^2 - 2 p.c + |c|^2, whose
// first term is the same for every centroid of a point.
std::vector<std::int64_t> closest(const KmeansInput& in) {
  tg::NoGrad choice;
  const Tensor p(in.points), c(in.centroids);
  const std::size_t k = in.centroids.shape(0);
  const Tensor score = tg::reshape(tg::sum(c * c, {1}), {1, k}) - tg::matmul(p, c, false, true) * 2.0;
  const tg::Index a = tg::argmin(score, 1);
  return std::vector<std::int64_t>(a.begin(), a.end());
}

// sum_i min_j |c_j - p_i|^2: each point's squared distance to its closest centroid.
Tensor kmeans(const Tensor& centroids, const Array& points, const std::vector<std::int64_t>& assigned) {
  const Tensor r = tg::index_select(centroids, 0, assigned) - Tensor(points);
  return tg::sum(r * r);
}

// --- det ------------------------------------------------------------------------------------

void check_det(const Array& a, std::size_t ell) {
  if (ell < 1 || ell > 11)
    tg::throw_value_error("det", "ell must be in [1, 11] (the expansion holds ell! products at once: 39,916,800 "
                                 "for 11), got " + std::to_string(ell));
  if (a.dimension() != 1 || a.size() != ell * ell)
    tg::throw_shape_error("det", "A has " + std::to_string(a.size()) + " numbers; ell=" + std::to_string(ell) +
                                     " needs " + std::to_string(ell * ell));
}

// The expansion's structure for an ell x ell matrix, independent of its values. Level k (row k)
// has one minor per ordered choice of columns for rows 0 .. k-1, in lexicographic order; the
// m = ell - k children of a minor (the minors without row k and its j-th remaining column, j in
// increasing column order, as the recursion visits them) sit side by side at level k + 1.
// index[k][child] picks the child's factor from row k followed by its negation: column c_j, plus
// ell where j is odd (the cofactor's sign).
std::vector<std::vector<std::int64_t>> expansion_index(std::size_t ell) {
  std::vector<std::vector<std::int64_t>> index(ell);
  std::vector<std::uint16_t> remaining{static_cast<std::uint16_t>((1u << ell) - 1)}, next;
  for (std::size_t k = 0; k < ell; ++k) {
    next.clear();
    index[k].reserve(remaining.size() * (ell - k));
    for (const std::uint16_t columns : remaining) {
      std::size_t j = 0;
      for (unsigned left = columns; left != 0; left &= left - 1, ++j) {   // the remaining columns, lowest first
        const auto c = static_cast<unsigned>(__builtin_ctz(left));
        index[k].push_back(static_cast<std::int64_t>(c + (j % 2 ? ell : 0)));
        if (k + 1 < ell) next.push_back(static_cast<std::uint16_t>(columns & ~(1u << c)));
      }
    }
    remaining.swap(next);
  }
  return index;
}

// det by minors along the first row, every minor of the recursion computed (ell! products): the
// level of the last row is a selection of its elements; each level above multiplies its children
// by their signed factors and sums each minor's m children.
Tensor det(const Tensor& a, std::size_t ell) {
  const std::vector<std::vector<std::int64_t>> index = expansion_index(ell);
  const auto e = static_cast<std::ptrdiff_t>(ell);
  const auto row = [&](std::size_t k) {
    const auto r = tg::reshape(tg::slice(a, 0, static_cast<std::ptrdiff_t>(k) * e, static_cast<std::ptrdiff_t>(k + 1) * e), {ell});
    return tg::concat(std::vector<Tensor>{r, -r}, 0);
  };
  Tensor minors = tg::index_select(row(ell - 1), 0, index[ell - 1]);
  for (std::size_t k = ell - 1; k-- > 0;) {
    const std::size_t m = ell - k;
    minors = tg::sum(tg::reshape(tg::index_select(row(k), 0, index[k]) * minors, {index[k].size() / m, m}), {1});
  }
  return minors;
}

}  // namespace

double kmeans_cost(const KmeansInput& in) {
  check_kmeans(in);
  tg::NoGrad no_tape;
  return kmeans(Tensor(in.centroids), in.points, closest(in)).item();
}

// J ./ diag(H), with diag(H) = H 1 (H is diagonal): the gradient and its derivative along 1 in
// one evaluation, forward mode over the reverse-mode gradient.
Array kmeans_dir(const KmeansInput& in) {
  check_kmeans(in);
  const std::vector<std::int64_t> assigned = closest(in);
  const auto gradient = [&](const std::vector<Tensor>& xs) {
    Tensor c = xs[0];
    c.set_requires_grad(true);   // jvp's own copy: its tangent stays with it
    tg::Tape tape;
    return tg::grad(kmeans(c, in.points, assigned), {c}, /*create_graph=*/true);
  };
  const tg::JvpResult<double> r =
      tg::jvp<double>(gradient, {Tensor(in.centroids)}, {Tensor(Array(xt::ones<double>(in.centroids.shape())))});
  return r.outputs[0].value() / r.tangents[0].value();
}

double det_primal(const Array& a, std::size_t ell) {
  check_det(a, ell);
  tg::NoGrad no_tape;
  return det(Tensor(a), ell).item();
}

Array det_gradient(const Array& a, std::size_t ell) {
  check_det(a, ell);
  const Tensor x(a, true);
  tg::Tape tape;
  return tg::grad(det(x, ell), {x})[0].value();
}

}  // namespace gradbench
