// GradBench's ht eval (ADBench's hand tracking) written with tapegrad ops (README.md, "ht"): a
// skinned hand model posed by 26 parameters, its bones' transforms batched as (bones, 4, 4)
// tensors; the Jacobian by forward mode, every column's tangent carried in one evaluation.
#include <algorithm>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>
#include <xtensor/xview.hpp>

#include "evals.hpp"

namespace gradbench {

namespace tg = tapegrad;

namespace {

constexpr std::size_t pose_parameters = 26;

// The complicated variant: barycentric coordinates given (HtInput::us is otherwise left 0-D).
bool has_us(const HtInput& in) { return in.us.dimension() == 2; }

void check_ht(const HtInput& in) {
  const std::size_t bones = in.model.parents.size();
  if (in.theta.size() != pose_parameters)
    tg::throw_shape_error("ht", "theta has " + std::to_string(in.theta.size()) + " numbers, expected 26");
  if (bones != 22)
    tg::throw_shape_error("ht", "the model has " + std::to_string(bones) + " bones; theta poses 22 (5 fingers of 4, 2 more)");
  for (std::size_t b = 0; b < bones; ++b)
    if (in.model.parents[b] >= static_cast<std::int64_t>(b))
      tg::throw_value_error("ht", "bone " + std::to_string(b) + "'s parent " + std::to_string(in.model.parents[b]) +
                                      " does not come before it");
  expect_shape("ht", "base_relatives", in.model.base_relatives, {bones, 4, 4});
  expect_shape("ht", "inverse_base_absolutes", in.model.inverse_base_absolutes, {bones, 4, 4});
  const std::size_t vertices = in.model.base_positions.shape(0);
  expect_shape("ht", "base_positions", in.model.base_positions, {vertices, 4});
  expect_shape("ht", "weights", in.model.weights, {vertices, bones});
  const std::size_t points = in.correspondences.size();
  expect_shape("ht", "points", in.points, {points, 3});
  if (has_us(in)) expect_shape("ht", "us", in.us, {points, 2});
  const std::size_t limit = has_us(in) ? in.model.triangles.shape(0) : vertices;
  for (std::size_t i = 0; i < points; ++i)
    if (in.correspondences[i] < 0 || static_cast<std::size_t>(in.correspondences[i]) >= limit)
      tg::throw_value_error("ht", "correspondence " + std::to_string(i) + " is " + std::to_string(in.correspondences[i]) +
                                      ", outside [0, " + std::to_string(limit) + ")");
  if (has_us(in))
    for (const std::int64_t v : in.model.triangles)
      if (v < 0 || static_cast<std::size_t>(v) >= vertices)
        tg::throw_value_error("ht", "a triangle names vertex " + std::to_string(v) + ", outside [0, " +
                                        std::to_string(vertices) + ")");
}

// 3 x 3 from nine (1)-shaped or (b, 1)-shaped tensors, row after row: (3, 3) or (b, 3, 3).
Tensor matrix3(const std::vector<Tensor>& e) {
  const tg::Shape s = e[0].shape();
  Tensor m = tg::concat(e, s.size() == 1 ? 0 : 1);
  return s.size() == 1 ? tg::reshape(m, {3, 3}) : tg::reshape(m, {s[0], 3, 3});
}

// Each bone's rotation from its Euler angles (b, 3) taken as (x, z, y): Rz Ry Rx.
Tensor euler_rotations(const Tensor& angles) {
  const std::size_t b = angles.shape()[0];
  const Tensor tx = tg::slice(angles, 1, 0, 1), tz = tg::slice(angles, 1, 1, 2), ty = tg::slice(angles, 1, 2, 3);
  const Tensor zero(Array(xt::zeros<double>({b, std::size_t(1)}))), one(Array(xt::ones<double>({b, std::size_t(1)})));
  const Tensor cx = tg::cos(tx), sx = tg::sin(tx), cy = tg::cos(ty), sy = tg::sin(ty), cz = tg::cos(tz), sz = tg::sin(tz);
  const Tensor rx = matrix3({one, zero, zero, zero, cx, -sx, zero, sx, cx});
  const Tensor ry = matrix3({cy, zero, sy, zero, one, zero, -sy, zero, cy});
  const Tensor rz = matrix3({cz, -sz, zero, sz, cz, zero, zero, zero, one});
  return tg::matmul(tg::matmul(rz, ry), rx);
}

// The rotation by the angle-axis vector a (3): the identity where |a| < 1e-4.
Tensor angle_axis_rotation(const Tensor& a) {
  const double norm_value = std::sqrt(xt::sum(a.value() * a.value())());
  if (norm_value < 1e-4) return Tensor(Array(xt::eye<double>(3)));
  const Tensor norm = tg::sqrt(tg::sum(a * a));
  const Tensor u = a / norm, s = tg::sin(norm), c = tg::cos(norm);
  const Tensor x = slice_at(u, 0), y = slice_at(u, 1), z = slice_at(u, 2), one_c = 1.0 - c;
  return matrix3({x * x + (1.0 - x * x) * c, x * y * one_c - z * s, x * z * one_c + y * s,
                  x * y * one_c + z * s, y * y + (1.0 - y * y) * c, y * z * one_c - x * s,
                  x * z * one_c - y * s, z * y * one_c + x * s, z * z + (1.0 - z * z) * c});
}

// The Euler angles of each bone from theta: bones 0 and 1 and each finger's first bone
// unposed; a finger's next three bones take (theta, theta) for the first (x and z), theta (x) for
// the other two, from theta[6] on, finger after finger.
std::vector<std::int64_t> angle_index() {
  const std::int64_t zero = pose_parameters;   // the zero appended to theta
  std::vector<std::int64_t> index(22 * 3, zero);
  std::int64_t next = 6;
  for (std::size_t finger = 0; finger < 5; ++finger)
    for (std::size_t k = 0; k < 3; ++k) {
      const std::size_t bone = 2 + 4 * finger + k;
      index[bone * 3 + 0] = next++;
      if (k == 0) index[bone * 3 + 1] = next++;
    }
  return index;
}

// The posed mesh's vertices (vertices, 3): each bone's transform (its posed chain of relatives
// times its inverse base absolute) applied to the base positions, blended by the skinning
// weights; mirrored in x if the model is; then the global rotation theta[0:3] and translation
// theta[3:6].
Tensor posed_vertices(const Tensor& theta, const HtModel& model) {
  const std::size_t bones = model.parents.size();
  static const std::vector<std::int64_t> index = angle_index();
  const Tensor padded = tg::concat(std::vector<Tensor>{theta, Tensor(Array{0.0})}, 0);
  const Tensor angles = tg::reshape(tg::index_select(padded, 0, index), {bones, 3});
  // [[R, 0], [0, 1]] per bone.
  const Tensor rotation = tg::pad(euler_rotations(angles), {{0, 0}, {0, 1}, {0, 1}}, 0.0);
  Array corner = xt::zeros<double>({std::size_t(1), std::size_t(4), std::size_t(4)});
  corner(0, 3, 3) = 1.0;
  const Tensor relatives = tg::matmul(Tensor(model.base_relatives), rotation + Tensor(std::move(corner)));
  std::vector<Tensor> absolutes(bones);
  for (std::size_t b = 0; b < bones; ++b) {
    const Tensor relative = tg::reshape(slice_at(relatives, b), {4, 4});
    const std::int64_t parent = model.parents[b];
    absolutes[b] = parent < 0 ? relative : tg::matmul(absolutes[static_cast<std::size_t>(parent)], relative);
  }
  const Tensor transforms = tg::matmul(tg::stack(absolutes, 0), Tensor(model.inverse_base_absolutes));   // (b, 4, 4)
  const std::size_t vertices = model.base_positions.shape(0);
  // Linear blend skinning, sum_b w[v][b] (T_b p_v) = (sum_b w[v][b] T_b) p_v: each vertex's blend
  // of the transforms' top three rows (v, 3, 4), then applied to its base position.
  const Tensor top = tg::reshape(tg::slice(transforms, 1, 0, 3), {bones, 12});
  const Tensor blended = tg::reshape(tg::matmul(Tensor(model.weights), top), {vertices, 3, 4});
  const Tensor base(Array(xt::reshape_view(model.base_positions, {vertices, std::size_t(1), std::size_t(4)})));
  Tensor positions = tg::sum(blended * base, {2});   // (v, 3)
  if (model.is_mirrored) positions = positions * Tensor(Array{-1.0, 1.0, 1.0});
  // The global rotation and translation, row by row: p R^T + t.
  return tg::matmul(positions, angle_axis_rotation(tg::slice(theta, 0, 0, 3)), false, true) +
         tg::slice(theta, 0, 3, 6);
}

// points - the model's point for each: the corresponding vertex (simple), or the point
// u0 a + u1 b + (1 - u0 - u1) c of the corresponding triangle (a, b, c) (complicated), row after row.
Tensor ht_errors(const Tensor& theta, const Tensor& us, const HtInput& in) {
  const Tensor vertices = posed_vertices(theta, in.model);
  Tensor model_points;
  if (!has_us(in)) {
    model_points = tg::index_select(vertices, 0, in.correspondences);
  } else {
    std::vector<std::int64_t> corner[3];
    for (const std::int64_t c : in.correspondences)
      for (std::size_t k = 0; k < 3; ++k) corner[k].push_back(in.model.triangles(static_cast<std::size_t>(c), k));
    const Tensor u0 = tg::slice(us, 1, 0, 1), u1 = tg::slice(us, 1, 1, 2);
    model_points = tg::index_select(vertices, 0, corner[0]) * u0 + tg::index_select(vertices, 0, corner[1]) * u1 +
                   tg::index_select(vertices, 0, corner[2]) * (1.0 - u0 - u1);
  }
  return tg::reshape(Tensor(in.points) - model_points, {3 * in.correspondences.size()});
}

}  // namespace

Array ht_objective(const HtInput& in) {
  check_ht(in);
  tg::NoGrad no_tape;
  return ht_errors(Tensor(in.theta), Tensor(in.us), in).value();
}

// Columns: with us (complicated), d err / d u_i0 and d err / d u_i1 (each error row depends on
// its own point's u only, so one tangent moving every u_i0 at once gives the first column
// whole), then the 26 of theta: forward mode, carrying the tangents as a batch.
Array ht_jacobian(const HtInput& in) {
  check_ht(in);
  const std::size_t rows = 3 * in.correspondences.size();
  if (!has_us(in)) {
    const auto jac = tg::jacfwd<double>([&in](const std::vector<Tensor>& p) { return std::vector<Tensor>{ht_errors(p[0], Tensor(), in)}; },
                                        {Tensor(in.theta)});
    return jac[0][0].value();
  }
  // Two evaluations, theta's 26 tangents and then u's 2, rather than one carrying all 28: each
  // tangent is zero along the other's path, and a batch carries every seed wherever it goes.
  const Tensor us(in.us), theta(in.theta);
  const Tensor theta_columns = tg::jacfwd<double>(
      [&](const std::vector<Tensor>& p) { return std::vector<Tensor>{ht_errors(p[0], us, in)}; }, {theta})[0][0];
  const Tensor u_columns = tg::jacfwd<double>(
      [&](const std::vector<Tensor>& p) { return std::vector<Tensor>{ht_errors(theta, us + p[0], in)}; },
      {Tensor(Array{0.0, 0.0})})[0][0];
  // Row by row (xtensor's strided view assignment took a tenth of the largest workload's time).
  Array out = Array::from_shape({rows, 2 + pose_parameters});
  const double* by_u = u_columns.value().data();
  const double* by_theta = theta_columns.value().data();
  for (std::size_t r = 0; r < rows; ++r) {
    double* row = out.data() + r * (2 + pose_parameters);
    std::copy_n(by_u + 2 * r, 2, row);
    std::copy_n(by_theta + pose_parameters * r, pose_parameters, row + 2);
  }
  return out;
}

}  // namespace gradbench
