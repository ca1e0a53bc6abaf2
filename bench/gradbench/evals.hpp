// GradBench's six evals written with tapegrad ops, the way a user would write them
// (bench/gradbench/README.md, "The evals"). Each objective is written once, as a function of tensors: the
// primal runs it without recording, the gradient records it on a fresh tape, runs backward and
// copies the gradient into a plain array. Shapes are checked first: bad input is a
// tapegrad::ShapeError or ValueError naming the eval and the field.
#ifndef TAPEGRAD_BENCH_GRADBENCH_EVALS_HPP
#define TAPEGRAD_BENCH_GRADBENCH_EVALS_HPP

#include <cstddef>
#include <cstdint>
#include <vector>
#include <string>

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/index.hpp>
#include <xtensor/xarray.hpp>

namespace gradbench {

using Array = xt::xarray<double>;
// lse, llsq and ode take x as a constant tensor, made once per input outside the timed runs (as
// the PyTorch tool makes its torch.tensor): the primal reads it without a copy, the gradient
// copies it into a fresh leaf each run.
using Tensor = tapegrad::Tensor<double>;

// Shared by the evals: x[i:i+1] along the first axis; a ShapeError "<eval>: <field> has shape
// (...), expected (...)" unless a has the expected shape.
Tensor slice_at(const Tensor& x, std::size_t i);
void expect_shape(const char* eval, const char* field, const Array& a, const tapegrad::Shape& expected);

// hello: x^2 and its derivative 2x.
double hello_square(double x);
double hello_double(double x);

// lse: log(sum(exp(x))) of a vector, shifted by its maximum; the gradient is softmax(x).
double lse_primal(const Tensor& x);
Array lse_gradient(const Tensor& x);

// llsq: 1/2 sum_i (sign(t_i) - sum_j x_j t_i^j)^2 with t_i = -1 + 2i/(n-1), i < n.
double llsq_primal(const Tensor& x, std::size_t n);
Array llsq_gradient(const Tensor& x, std::size_t n);

// ode: y after s RK4 steps from y(0) = 0 to t = 2 of y'_0 = x_0, y'_i = x_i y_{i-1}; the
// gradient is that of the last component of y with respect to x.
Array ode_primal(const Tensor& x, std::size_t s);
Array ode_gradient(const Tensor& x, std::size_t s);

// gmm: the log-posterior of a Gaussian mixture with a Wishart prior (README.md, gmm).
struct GmmInput {
  Array x;       // (n, d) points, a constant
  Array alpha;   // (k) mixture weights (log, unnormalised)
  Array mu;      // (k, d) means
  Array q;       // (k, d) log-diagonals of the precision factors Q_k
  Array l;       // (k, d(d-1)/2) their strictly lower parts, column by column
  double m = 0;  // extra Wishart degrees of freedom
  double gamma = 1;
};
struct GmmJacobian {
  Array alpha, mu, q, l;   // the gradient, each of its parameter's shape
};
double gmm_objective(const GmmInput& in);
// The objective as a tensor of the four parameters (in's own alpha, mu, q and l are not read): for
// the function transforms (bench/transforms).
Tensor gmm_tensor(const Tensor& alpha, const Tensor& mu, const Tensor& q, const Tensor& l, const GmmInput& in);
GmmJacobian gmm_jacobian(const GmmInput& in);

// lstm: ADBench's diagonal LSTM loss (README.md, lstm); the jacobian is the gradient with
// respect to main_params then extra_params, each flattened row after row.
struct LstmInput {
  Array main_params;   // (2l, 4b): per layer a row of weights then a row of biases
  Array extra_params;  // (3, b): input weight, output weight, output bias
  Array state;         // (2l, b): per layer the initial hidden then cell state, a constant
  Array sequence;      // (c, b): the encoded text, a constant
};
double lstm_objective(const LstmInput& in);
Array lstm_jacobian(const LstmInput& in);

// kmeans: sum over the points of the squared distance to the closest centroid; dir is the
// gradient with respect to the centroids divided elementwise by the Hessian's diagonal (H 1, one
// Hessian-vector product: H is diagonal).
struct KmeansInput {
  Array points;      // (n, d), a constant
  Array centroids;   // (k, d)
};
double kmeans_cost(const KmeansInput& in);
Array kmeans_dir(const KmeansInput& in);

// det: the determinant of the ell x ell matrix A (row after row) by expansion by minors along the
// first row, recursively, as cmpad's det_by_minor; gradient with respect to A, row after row.
double det_primal(const Array& a, std::size_t ell);
Array det_gradient(const Array& a, std::size_t ell);

// ba: ADBench's bundle adjustment. n cameras (11 parameters each: angle-axis rotation, centre,
// focal length, principal point, two radial distortion terms), m points, p observations
// (observation i sees camera i mod n and point i mod m, with weight w_i and feature feat_i).
struct BaInput {
  std::size_t n = 0, m = 0, p = 0;
  Array cams;    // (n, 11)
  Array x;       // (m, 3)
  Array w;       // (p)
  Array feats;   // (p, 2), a constant
};
// The eval's input, one camera, point, weight and feature, replicated n, m, p and p times.
BaInput ba_replicate(std::size_t n, std::size_t m, std::size_t p, const Array& cam, const Array& x, double w,
                     const Array& feat);
struct BaObjective {
  Array reproj_err;   // (p, 2): w_i (projection of point i mod m by camera i mod n - feat_i)
  Array w_err;        // (p): 1 - w_i^2
};
// The Jacobian of (reproj_err row after row, then w_err) with respect to (cams, x, w), in
// compressed rows: row r's entries are cols/vals[rows[r] .. rows[r+1]), columns 11 c + j for
// camera parameters, 11 n + 3 k + j for points, 11 n + 3 m + i for weights.
struct BaJacobian {
  std::vector<std::int64_t> rows, cols;
  std::vector<double> vals;
};
BaObjective ba_objective(const BaInput& in);
BaJacobian ba_jacobian(const BaInput& in);

// ht: ADBench's hand tracking. A hand mesh of 22 bones posed by theta (26 numbers: global
// rotation and translation, then the fingers' angles); the errors between observed points and
// their corresponding model points, 3 per point.
struct HtModel {
  std::vector<std::int64_t> parents;   // per bone, an earlier bone or -1
  Array base_relatives;                // (bones, 4, 4)
  Array inverse_base_absolutes;        // (bones, 4, 4)
  Array base_positions;                // (vertices, 4), homogeneous
  Array weights;                       // (vertices, bones): skinning weights
  tapegrad::Index triangles;           // (triangles, 3) vertex indices
  bool is_mirrored = false;
};
struct HtInput {
  Array theta;                                  // (26)
  HtModel model;
  std::vector<std::int64_t> correspondences;    // per point: a vertex (simple) or a triangle (with us)
  Array points;                                 // (points, 3)
  Array us;                                     // (points, 2) barycentric coordinates, or left 0-D (simple)
};
// The errors, point after point; the Jacobian (errors x [2 us columns with us] + 26 theta columns).
Array ht_objective(const HtInput& in);
Array ht_jacobian(const HtInput& in);

// Nested derivatives, each in four variants: the outer and the inner derivative taken by forward
// ('f') or reverse ('r') mode, in that order ("fr": forward over reverse).
enum class Mode { forward, reverse };
struct Modes {
  Mode outer, inner;
};
// Modes from "ff", "fr", "rf" or "rr".
Modes modes_of(const char* eval, const std::string& name);

// particle: the control w, from w0, minimising the squared distance from the origin at which a
// charged particle, pushed by the gradient of the potential of two charges (one placed by w),
// crosses the x axis (Euler steps); by GradBench's gradient descent (README.md, particle).
double particle_argmin(double w0, Modes modes);
// Its objective (the squared miss) at w, and the objective's derivative, nested by `modes`.
double particle_objective(double w, Mode inner);
double particle_derivative(double w, Modes modes);

// saddle: min over x of max over y of (x0^2 + x1^2) - (y0^2 + y1^2), both by gradient descent
// from the two numbers `start`; returns (x0, x1, y0, y1).
Array saddle_point(const Array& start, Modes modes);
// The gradient with respect to x of max over y of f(x, y) (y by ascent from `start`), nested by
// `modes`: 2 x where the ascent converges.
Array saddle_max_gradient(const Array& x, const Array& start, Modes modes);

}  // namespace gradbench

#endif
