// The GradBench tool (bench/gradbench): the worked examples of bench/gradbench/README.md, finite
// differences of every objective, and the protocol, message by message.
#include "helpers.hpp"

#include <array>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xview.hpp>

#include "evals.hpp"
#include "protocol.hpp"

namespace gb = gradbench;
using gb::Array;
using json = nlohmann::json;

namespace {

// |actual - expected| <= tol * max(1, |expected|), element by element, shapes equal.
void check_close(const Array& actual, const Array& expected, double tol) {
  REQUIRE(actual.shape() == expected.shape());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    INFO("element ", i, ": ", actual.flat(i), " vs ", expected.flat(i));
    CHECK(std::abs(actual.flat(i) - expected.flat(i)) <= tol * std::max(1.0, std::abs(expected.flat(i))));
  }
}

void check_close(double actual, double expected, double tol) { check_close(Array(actual), Array(expected), tol); }

// Central differences of f at x, coordinate by coordinate, against `gradient`.
void check_finite_differences(const std::function<double(const Array&)>& f, const Array& x, const Array& gradient) {
  REQUIRE(gradient.shape() == x.shape());
  for (std::size_t j = 0; j < x.size(); ++j) {
    const double h = 1e-6 * std::max(1.0, std::abs(x.flat(j)));
    Array plus = x, minus = x;
    plus.flat(j) += h;
    minus.flat(j) -= h;
    const double numeric = (f(plus) - f(minus)) / (2 * h);
    INFO("coordinate ", j, ": autodiff ", gradient.flat(j), ", finite differences ", numeric);
    CHECK(std::abs(numeric - gradient.flat(j)) <= 1e-6 * std::max(1.0, std::abs(numeric)));
  }
}

// A (n, 1) array: Array{{a}, {b}} is ambiguous to xtensor.
Array column(std::initializer_list<double> values) {
  Array a = Array::from_shape({values.size(), 1});
  std::copy(values.begin(), values.end(), a.begin());
  return a;
}

gb::GmmInput gmm_d2() {
  return {Array{{0.1, -0.2}, {0.5, 0.3}, {-0.4, 0.8}}, Array{0.2, -0.1}, Array{{0.0, 0.1}, {0.3, -0.2}},
          Array{{0.1, -0.3}, {0.2, 0.05}}, column({0.4, -0.6}), 0, 1.0};
}

gb::GmmInput gmm_d4() {
  return {Array{{0.3, -0.1, 0.7, 0.2}, {-0.5, 0.4, 0.0, 0.9}},
          Array{0.1, 0.4},
          Array{{0.2, 0.0, 0.5, -0.3}, {0.1, 0.6, -0.2, 0.4}},
          Array{{0.1, -0.2, 0.3, 0.0}, {-0.1, 0.2, 0.05, -0.3}},
          Array{{0.5, -0.4, 0.3, 0.2, -0.1, 0.6}, {-0.3, 0.1, 0.4, -0.5, 0.2, 0.7}},
          2,
          0.5};
}

gb::LstmInput lstm_example() {
  return {Array{{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, {-0.1, 0.0, 0.1, 0.2, -0.2, 0.3, -0.3, 0.4}},
          Array{{0.9, 1.1}, {0.7, -0.5}, {0.05, -0.05}}, Array{{0.2, -0.1}, {0.3, 0.4}},
          Array{{1.0, 0.0}, {0.0, 1.0}, {1.0, 1.0}}};
}

// The parameters of a GMM as one vector (alpha, mu, q, l), and back.
Array pack(const gb::GmmInput& g) {
  Array out = Array::from_shape({g.alpha.size() + g.mu.size() + g.q.size() + g.l.size()});
  auto it = std::copy(g.alpha.begin(), g.alpha.end(), out.begin());
  it = std::copy(g.mu.begin(), g.mu.end(), it);
  it = std::copy(g.q.begin(), g.q.end(), it);
  std::copy(g.l.begin(), g.l.end(), it);
  return out;
}

gb::GmmInput unpack(gb::GmmInput g, const Array& v) {
  auto it = v.begin();
  for (Array* a : {&g.alpha, &g.mu, &g.q, &g.l})
    for (double& x : *a) x = *it++;
  return g;
}

Array pack(const gb::GmmJacobian& j) { return pack(gb::GmmInput{Array(), j.alpha, j.mu, j.q, j.l, 0, 1}); }

// Runs a whole session through the tool; returns its exit status, the responses, and stderr.
struct Session {
  int status;
  std::vector<json> responses;
  std::string errors;
};

Session run_session(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  std::istringstream in(text);
  std::ostringstream out, err;
  Session s{gb::serve(in, out, err), {}, err.str()};
  std::istringstream replies(out.str());
  for (std::string line; std::getline(replies, line);) s.responses.push_back(json::parse(line));
  return s;
}

}  // namespace

TEST_CASE("gradbench: worked examples of lse, llsq and ode") {
  check_close(gb::lse_primal(gb::Tensor(Array{1, 2, 3})), 3.4076059644443806, 1e-12);
  check_close(gb::lse_gradient(gb::Tensor(Array{1, 2, 3})), Array{0.09003057317038045, 0.2447284710547976, 0.6652409557748218}, 1e-12);
  // A leaf that requires grad (as the protocol gives it) is differentiated directly, and keeps no gradient.
  const gb::Tensor leaf(Array{1, 2, 3}, true);
  check_close(gb::lse_gradient(leaf), Array{0.09003057317038045, 0.2447284710547976, 0.6652409557748218}, 1e-12);
  check_close(gb::lse_primal(leaf), 3.4076059644443806, 1e-12);
  CHECK_FALSE(leaf.has_grad());
  check_close(gb::llsq_primal(gb::Tensor(Array{0.5, -0.25, 1.0}), 5), 5.765625, 1e-12);
  check_close(gb::llsq_gradient(gb::Tensor(Array{0.5, -0.25, 1.0}), 5), Array{5.0, -3.625, 3.375}, 1e-12);
  check_close(gb::ode_primal(gb::Tensor(Array{0.5, 1.0, 1.5, 2.0}), 2), Array{1.0, 1.0, 1.0, 1.0}, 1e-12);
  check_close(gb::ode_gradient(gb::Tensor(Array{0.5, 1.0, 1.5, 2.0}), 2), Array{2.0, 1.0, 0.6666666666666666, 0.5}, 1e-12);
  // n > 4s: the last component and its RK4 gradient are exactly zero.
  check_close(gb::ode_primal(gb::Tensor(Array{0.5, 1.0, 1.5, 2.0, 2.5, 3.0}), 1), Array{1.0, 1.0, 1.0, 1.0, 0.0, 0.0}, 1e-12);
  check_close(gb::ode_gradient(gb::Tensor(Array{0.5, 1.0, 1.5, 2.0, 2.5, 3.0}), 1), Array(xt::zeros<double>({6})), 0);
  // lse is shift-stable: exp(1000) would overflow.
  check_close(gb::lse_primal(gb::Tensor(Array{1000, 1000})), 1000 + std::log(2.0), 1e-15);
}

TEST_CASE("gradbench: worked examples of gmm (d=2, and d=4 with m=2, gamma=0.5)") {
  check_close(gb::gmm_objective(gmm_d2()), -13.8119512745, 1e-9);
  const gb::GmmJacobian j2 = gb::gmm_jacobian(gmm_d2());
  check_close(j2.alpha, Array{-0.0627504777028, 0.0627504777028}, 1e-9);
  check_close(j2.mu, Array{{0.0898549302254, 0.250982055939}, {-0.635241930342, 0.683190127158}}, 1e-9);
  check_close(j2.q, Array{{0.151960888048, 0.929570720928}, {-0.395520053404, -0.261662310692}}, 1e-9);
  check_close(j2.l, column({-0.359108562587, 0.817536630479}), 1e-9);

  // Packing l row by row instead of column by column gives -78.9606, and wrong prior constants
  // move the value too.
  check_close(gb::gmm_objective(gmm_d4()), -79.0250413775218, 1e-9);
  const gb::GmmJacobian j4 = gb::gmm_jacobian(gmm_d4());
  check_close(j4.alpha, Array{0.341083718334, -0.341083718334}, 1e-9);
  check_close(j4.mu,
              Array{{-0.0626461631012, -0.100645388464, 0.506470554645, 0.782602991669},
                    {-0.0322486925567, -0.484039452503, 0.634632602487, 0.170872460711}},
              1e-9);
  check_close(j4.q,
              Array{{2.62322931763, 3.02574749293, 2.60287228161, 2.35760680794},
                    {2.42596857273, 2.24383993387, 2.21157704485, 2.63604744225}},
              1e-9);
  check_close(j4.l,
              Array{{-0.129247219352, -0.0097634100152, 0.0676429933363, 0.0196274818212, -0.0348042586476, -0.113230217393},
                    {0.0953838033641, 0.000134574393037, -0.0401082680122, 0.368097239531, 0.0451935427438,
                     -0.289818664156}},
              1e-9);
}

TEST_CASE("gradbench: worked example of lstm (l=1, b=2, c=3)") {
  check_close(gb::lstm_objective(lstm_example()), 1.10076735291, 1e-9);
  check_close(gb::lstm_jacobian(lstm_example()),
              Array{0.000196234852219, 0.00412211335776, 6.41476813065e-05, 0.000424804846856, 0.000508329544794,
                    0.00727458311869,  -0.00033155481428, -0.000392949978134, -0.000360324678089, 0.0117658263183,
                    0.00232397245534,  0.0113225205281,  0.00281612639689,  0.0163838387636,   -0.0163281513372,
                    0.0565885439911,   0.000304209175132, 0.00471742958434, 0.00829253078015,  -0.0872215212355,
                    -0.04874381151,    -0.339910556616},
              1e-9);
}

TEST_CASE("gradbench: every gradient agrees with finite differences on random inputs") {
  const Array x = random_array({7}, 1, -2, 2);
  check_finite_differences([](const Array& v) { return gb::lse_primal(gb::Tensor(v)); }, x, gb::lse_gradient(gb::Tensor(x)));
  const Array c = random_array({6}, 2, 0, 1);
  check_finite_differences([](const Array& v) { return gb::llsq_primal(gb::Tensor(v), 9); }, c, gb::llsq_gradient(gb::Tensor(c), 9));
  // n <= 4s, so the last component depends on every x_i; ode's RK4 gradient is what is checked.
  const Array o = random_array({5}, 3, 0.5, 1.5);
  check_finite_differences([](const Array& v) { return gb::ode_primal(gb::Tensor(v), 3)(4); }, o, gb::ode_gradient(gb::Tensor(o), 3));

  gb::GmmInput g{random_array({6, 3}, 4, -1, 1), random_array({2}, 5, -1, 1), random_array({2, 3}, 6, 0, 1),
                 random_array({2, 3}, 7, -0.5, 0.5), random_array({2, 3}, 8, -1, 1), 1, 1.5};
  check_finite_differences([&](const Array& v) { return gb::gmm_objective(unpack(g, v)); }, pack(g),
                           pack(gb::gmm_jacobian(g)));

  gb::LstmInput s{random_array({4, 12}, 9, 0, 1), random_array({3, 3}, 10, 0, 1), random_array({4, 3}, 11, 0, 1),
                  random_array({5, 3}, 12, 0, 1)};
  for (double& v : s.sequence) v = v > 0.5 ? 1.0 : 0.0;
  const Array jacobian = gb::lstm_jacobian(s);
  REQUIRE(jacobian.size() == 8 * 2 * 3 + 3 * 3);
  Array params = Array::from_shape({jacobian.size()});
  std::copy(s.extra_params.begin(), s.extra_params.end(),
            std::copy(s.main_params.begin(), s.main_params.end(), params.begin()));
  check_finite_differences(
      [&](const Array& v) {
        gb::LstmInput t = s;
        std::copy(v.begin(), v.begin() + 48, t.main_params.begin());
        std::copy(v.begin() + 48, v.end(), t.extra_params.begin());
        return gb::lstm_objective(t);
      },
      params, jacobian);
}

TEST_CASE("gradbench: kmeans against naive loops") {
  // n points in [0, 1)^d, the centroids the last k of them (as the eval makes them: every cluster
  // has a point).
  const std::size_t n = 300, d = 3, k = 7;
  const Array points = random_array({n, d}, 20, 0, 1);
  const Array centroids = xt::view(points, xt::range(n - k, n), xt::all());
  double cost = 0;
  Array sum_gradient = xt::zeros<double>({k, d}), count = xt::zeros<double>({k});
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = 0;
    double best_distance = 0;
    for (std::size_t j = 0; j < k; ++j) {
      double distance = 0;
      for (std::size_t c = 0; c < d; ++c) distance += (centroids(j, c) - points(i, c)) * (centroids(j, c) - points(i, c));
      if (j == 0 || distance < best_distance) best = j, best_distance = distance;
    }
    cost += best_distance;
    count(best) += 1;
    for (std::size_t c = 0; c < d; ++c) sum_gradient(best, c) += 2 * (centroids(best, c) - points(i, c));
  }
  // J ./ diag(H): the gradient over the Hessian's diagonal, 2 per point of the cluster.
  Array dir = Array::from_shape({k, d});
  for (std::size_t j = 0; j < k; ++j)
    for (std::size_t c = 0; c < d; ++c) dir(j, c) = sum_gradient(j, c) / (2 * count(j));
  const gb::KmeansInput in{points, centroids};
  check_close(gb::kmeans_cost(in), cost, 1e-13);
  check_close(gb::kmeans_dir(in), dir, 1e-13);
}

namespace {
// The determinant by Gaussian elimination with partial pivoting: another algorithm than
// expansion by minors.
double eliminated_det(Array a, std::size_t ell) {
  a.reshape({ell, ell});
  double det = 1;
  for (std::size_t c = 0; c < ell; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < ell; ++r)
      if (std::abs(a(r, c)) > std::abs(a(pivot, c))) pivot = r;
    if (pivot != c) {
      for (std::size_t j = 0; j < ell; ++j) std::swap(a(c, j), a(pivot, j));
      det = -det;
    }
    det *= a(c, c);
    for (std::size_t r = c + 1; r < ell; ++r) {
      const double factor = a(r, c) / a(c, c);
      for (std::size_t j = c; j < ell; ++j) a(r, j) -= factor * a(c, j);
    }
  }
  return det;
}
}  // namespace

TEST_CASE("gradbench: det against elimination, its gradient against finite differences") {
  // The determinant is linear in each element: central differences are exact but for rounding.
  for (std::size_t ell = 1; ell <= 7; ++ell) {
    CAPTURE(ell);
    const Array a = random_array({ell * ell}, 30 + unsigned(ell), 0, 1);
    check_close(gb::det_primal(a, ell), eliminated_det(a, ell), 1e-12);
    check_finite_differences([ell](const Array& v) { return gb::det_primal(v, ell); }, a, gb::det_gradient(a, ell));
  }
  // A permutation matrix's determinant is its sign; the gradient is its cofactors.
  check_close(gb::det_primal(Array{0, 1, 0, 0, 0, 1, 1, 0, 0}, 3), 1.0, 0);
  check_close(gb::det_primal(Array{0, 1, 0, 1, 0, 0, 0, 0, 1}, 3), -1.0, 0);
  check_close(gb::det_gradient(Array{1, 2, 3, 4}, 2), Array{4, -3, -2, 1}, 0);
}

namespace {
// The particle eval's objective simulated independently: the force -grad p written out,
// -(x - c) / |x - c|^3 summed over the charges, instead of differentiated.
double particle_miss(double w) {
  double x = 0, y = 8, vx = 0.75, vy = 0;
  const double charges[2][2] = {{10, 10 - w}, {10, 0}};
  for (;;) {
    double ax = 0, ay = 0;
    for (const auto& c : charges) {
      const double dx = x - c[0], dy = y - c[1], r = std::sqrt(dx * dx + dy * dy);
      ax += dx / (r * r * r);
      ay += dy / (r * r * r);
    }
    x += 0.1 * vx;
    y += 0.1 * vy;
    if (y <= 0) {
      const double at = x - y / vy * vx;
      return at * at;
    }
    vx += 0.1 * ax;
    vy += 0.1 * ay;
  }
}
}  // namespace

TEST_CASE("gradbench: particle and saddle, every variant, against closed forms and GradBench's expected values") {
  // The nested derivatives, each variant: saddle's d/dx max_y f(x, y) = 2x (the ascent in y does
  // not depend on x); particle's d/dw of the squared miss against central differences of the
  // independent simulation (and the objective against it).
  const Array x{0.7, -0.4}, from{1.0, 1.0};
  for (const char* v : {"ff", "fr", "rf", "rr"}) {
    CAPTURE(v);
    check_close(gb::saddle_max_gradient(x, from, gb::modes_of("saddle", v)), Array(2.0 * x), 1e-12);
    for (const double w : {0.0, 0.15, 0.3}) {
      CAPTURE(w);
      const gb::Modes modes = gb::modes_of("particle", v);
      check_close(gb::particle_objective(w, modes.inner), particle_miss(w), 1e-12);
      const double h = 1e-6, numeric = (particle_miss(w + h) - particle_miss(w - h)) / (2 * h);
      check_close(gb::particle_derivative(w, modes), numeric, 1e-7);
    }
  }
  // Whole runs from GradBench's inputs, against the values its evals expect (the faster variant
  // of each: the others take the same steps on the derivatives checked above).
  check_close(gb::saddle_point(from, gb::modes_of("saddle", "rr")),
              Array{8.246324826140356e-06, 8.246324826140356e-06, 8.246324826140356e-06, 8.246324826140356e-06},
              1e-12);
  check_close(gb::particle_argmin(0.0, gb::modes_of("particle", "rf")), 0.2071918746486116, 1e-12);
}

TEST_CASE("gradbench: ba's sparse Jacobian against finite differences, entry by entry") {
  // Every parameter distinct (not GradBench's replicated input); observation i sees camera
  // i mod n and point i mod m. Once with every camera rotating, once with camera 1 not
  // (Rodrigues' first-order branch).
  for (const bool one_still : {false, true}) {
  CAPTURE(one_still);
  const std::size_t n = 3, m = 2, p = 5;
  gb::BaInput in{n, m, p, random_array({n, 11}, 40, -0.5, 0.5), random_array({m, 3}, 41, -1, 1),
                 random_array({p}, 42, 0.5, 1.5), random_array({p, 2}, 43, -1, 1)};
  for (std::size_t c = 0; c < n; ++c) {
    in.cams(c, 5) = 4 + double(c);   // the camera centres behind the points along z
    in.cams(c, 6) = 1.5;             // focal length
  }
  if (one_still)
    for (std::size_t j = 0; j < 3; ++j) in.cams(1, j) = 0;
  const gb::BaJacobian jac = gb::ba_jacobian(in);
  REQUIRE(jac.rows.size() == 3 * p + 1);
  REQUIRE(jac.cols.size() == jac.vals.size());
  // The parameters as one vector: cams, then points, then weights (the Jacobian's columns).
  const std::size_t columns = 11 * n + 3 * m + p;
  const auto with = [&](std::size_t column, double delta) {
    gb::BaInput t = in;
    if (column < 11 * n) t.cams.flat(column) += delta;
    else if (column < 11 * n + 3 * m) t.x.flat(column - 11 * n) += delta;
    else t.w(column - 11 * n - 3 * m) += delta;
    const gb::BaObjective o = gb::ba_objective(t);
    Array all = Array::from_shape({3 * p});
    std::copy(o.reproj_err.begin(), o.reproj_err.end(), all.begin());
    std::copy(o.w_err.begin(), o.w_err.end(), all.begin() + 2 * p);
    return all;
  };
  Array dense = xt::zeros<double>({3 * p, columns});
  for (std::size_t r = 0; r < 3 * p; ++r)
    for (std::int64_t e = jac.rows[r]; e < jac.rows[r + 1]; ++e) dense(r, std::size_t(jac.cols[std::size_t(e)])) += jac.vals[std::size_t(e)];
  std::size_t checked = 0;
  for (std::size_t c = 0; c < columns; ++c) {
    const double h = 1e-6;
    const Array numeric = (with(c, h) - with(c, -h)) / (2 * h);
    for (std::size_t r = 0; r < 3 * p; ++r) {
      INFO("row ", r, ", column ", c, ": Jacobian ", dense(r, c), ", finite differences ", numeric(r));
      CHECK(std::abs(dense(r, c) - numeric(r)) <= 1e-6 * std::max(1.0, std::abs(numeric(r))));
      ++checked;
    }
  }
  CHECK(checked == 3 * p * columns);
  // Each error row holds its camera's 11 columns, its point's 3 and its weight's, in that order.
  CHECK(jac.cols[15] == 11 * 0 + 0);
  CHECK(jac.cols[30 + 11] == 11 * 3 + 3 * 1 + 0);
  CHECK(jac.cols.back() == std::int64_t(columns - 1));
  }
}

namespace {
// A small hand: 22 bones in a chain of fingers (bone 0 the root, 1 its child, each finger's four
// bones a chain from bone 1), 7 vertices, random transforms and weights.
gb::HtInput small_hand(bool with_us) {
  gb::HtInput in;
  in.theta = random_array({26}, 50, -0.6, 0.6);
  const std::size_t bones = 22, vertices = 7;
  for (std::size_t b = 0; b < bones; ++b)
    in.model.parents.push_back(b == 0 ? -1 : (b < 2 || (b - 2) % 4 == 0) ? (b == 1 ? 0 : 1) : std::int64_t(b - 1));
  in.model.base_relatives = random_array({bones, 4, 4}, 51, -0.3, 0.3);
  in.model.inverse_base_absolutes = random_array({bones, 4, 4}, 52, -0.3, 0.3);
  for (std::size_t b = 0; b < bones; ++b)
    for (std::size_t k = 0; k < 4; ++k) {
      in.model.base_relatives(b, 3, k) = in.model.inverse_base_absolutes(b, 3, k) = k == 3 ? 1.0 : 0.0;
      if (k < 3) in.model.base_relatives(b, k, k) += 1.0, in.model.inverse_base_absolutes(b, k, k) += 1.0;
    }
  in.model.base_positions = random_array({vertices, 4}, 53, -1, 1);
  xt::view(in.model.base_positions, xt::all(), 3) = 1.0;
  in.model.weights = random_array({vertices, bones}, 54, 0, 1);
  in.model.triangles = tg::Index{{0, 1, 2}, {2, 3, 4}, {4, 5, 6}, {6, 0, 3}};
  in.model.is_mirrored = true;
  in.correspondences = with_us ? std::vector<std::int64_t>{0, 3, 1, 2, 3} : std::vector<std::int64_t>{6, 0, 2, 5, 1};
  in.points = random_array({5, 3}, 55, -1, 1);
  if (with_us) in.us = random_array({5, 2}, 56, 0, 0.5);
  return in;
}

using Mat = std::vector<std::vector<double>>;
Mat product(const Mat& a, const Mat& b) {
  Mat c(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t k = 0; k < b.size(); ++k)
      for (std::size_t j = 0; j < b[0].size(); ++j) c[i][j] += a[i][k] * b[k][j];
  return c;
}

// ht's errors by scalar loops, from the definition (bench/gradbench/README.md, "ht"): a second
// implementation.
std::vector<double> naive_ht(const gb::HtInput& in) {
  const std::size_t bones = 22, vertices = in.model.base_positions.shape(0);
  // Euler angles per bone, (x, z, y), from theta.
  std::vector<std::array<double, 3>> angles(bones, {0, 0, 0});
  std::size_t next = 6;
  for (std::size_t f = 0; f < 5; ++f)
    for (std::size_t k = 0; k < 3; ++k) {
      angles[2 + 4 * f + k][0] = in.theta(next++);
      if (k == 0) angles[2 + 4 * f + k][1] = in.theta(next++);
    }
  std::vector<Mat> absolute(bones);
  for (std::size_t b = 0; b < bones; ++b) {
    const double tx = angles[b][0], tz = angles[b][1], ty = angles[b][2];
    const Mat rx{{1, 0, 0}, {0, std::cos(tx), -std::sin(tx)}, {0, std::sin(tx), std::cos(tx)}};
    const Mat ry{{std::cos(ty), 0, std::sin(ty)}, {0, 1, 0}, {-std::sin(ty), 0, std::cos(ty)}};
    const Mat rz{{std::cos(tz), -std::sin(tz), 0}, {std::sin(tz), std::cos(tz), 0}, {0, 0, 1}};
    const Mat r = product(product(rz, ry), rx);
    Mat tr{{r[0][0], r[0][1], r[0][2], 0}, {r[1][0], r[1][1], r[1][2], 0}, {r[2][0], r[2][1], r[2][2], 0}, {0, 0, 0, 1}};
    Mat base(4, std::vector<double>(4));
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 4; ++j) base[i][j] = in.model.base_relatives(b, i, j);
    const Mat relative = product(base, tr);
    absolute[b] = in.model.parents[b] < 0 ? relative : product(absolute[std::size_t(in.model.parents[b])], relative);
  }
  Mat positions(vertices, std::vector<double>(3, 0.0));
  for (std::size_t b = 0; b < bones; ++b) {
    Mat inverse(4, std::vector<double>(4));
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 4; ++j) inverse[i][j] = in.model.inverse_base_absolutes(b, i, j);
    const Mat transform = product(absolute[b], inverse);
    for (std::size_t v = 0; v < vertices; ++v)
      for (std::size_t i = 0; i < 3; ++i) {
        double moved = 0;
        for (std::size_t k = 0; k < 4; ++k) moved += transform[i][k] * in.model.base_positions(v, k);
        positions[v][i] += moved * in.model.weights(v, b);
      }
  }
  // Mirrored in x; then the global rotation (Rodrigues, the angle-axis theta[0:3]) and translation.
  const double ax = in.theta(0), ay = in.theta(1), az = in.theta(2), norm = std::sqrt(ax * ax + ay * ay + az * az);
  const double x = ax / norm, y = ay / norm, z = az / norm, s = std::sin(norm), c = std::cos(norm);
  const Mat rg{{x * x + (1 - x * x) * c, x * y * (1 - c) - z * s, x * z * (1 - c) + y * s},
               {x * y * (1 - c) + z * s, y * y + (1 - y * y) * c, y * z * (1 - c) - x * s},
               {x * z * (1 - c) - y * s, z * y * (1 - c) + x * s, z * z + (1 - z * z) * c}};
  for (auto& p : positions) {
    p[0] = -p[0];
    const std::vector<double> q = p;
    for (std::size_t i = 0; i < 3; ++i) p[i] = rg[i][0] * q[0] + rg[i][1] * q[1] + rg[i][2] * q[2] + in.theta(3 + i);
  }
  std::vector<double> err;
  for (std::size_t i = 0; i < in.correspondences.size(); ++i) {
    const std::size_t at = std::size_t(in.correspondences[i]);
    for (std::size_t j = 0; j < 3; ++j) {
      double model = positions[at][j];
      if (in.us.dimension() == 2) {
        const double u0 = in.us(i, 0), u1 = in.us(i, 1);
        model = u0 * positions[std::size_t(in.model.triangles(at, 0))][j] + u1 * positions[std::size_t(in.model.triangles(at, 1))][j] +
                (1 - u0 - u1) * positions[std::size_t(in.model.triangles(at, 2))][j];
      }
      err.push_back(in.points(i, j) - model);
    }
  }
  return err;
}
}  // namespace

TEST_CASE("gradbench: ht against scalar loops, its Jacobian against finite differences") {
  for (const bool with_us : {false, true}) {
    CAPTURE(with_us);
    const gb::HtInput in = small_hand(with_us);
    const std::vector<double> naive = naive_ht(in);
    check_close(gb::ht_objective(in), Array(xt::adapt(naive, {naive.size()})), 1e-13);
    const Array jac = gb::ht_jacobian(in);
    const std::size_t offset = with_us ? 2 : 0;
    REQUIRE(jac.shape(0) == 15);
    REQUIRE(jac.shape(1) == offset + 26);
    const auto column_by_differences = [&](const std::function<void(gb::HtInput&, double)>& move) {
      gb::HtInput plus = in, minus = in;
      const double h = 1e-6;
      move(plus, h);
      move(minus, -h);
      return Array((gb::ht_objective(plus) - gb::ht_objective(minus)) / (2 * h));
    };
    for (std::size_t c = 0; c < 26; ++c)
      check_close(Array(xt::view(jac, xt::all(), offset + c)),
                  column_by_differences([c](gb::HtInput& t, double h) { t.theta(c) += h; }), 1e-7);
    // Moving every point's u_k at once: each row sees its own point's u only.
    for (std::size_t k = 0; k < offset; ++k)
      check_close(Array(xt::view(jac, xt::all(), k)),
                  column_by_differences([k](gb::HtInput& t, double h) { xt::view(t.us, xt::all(), k) += h; }), 1e-7);
  }
}

TEST_CASE("gradbench: bad input is an error naming the eval and the field") {
  const auto message = [](auto f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message([] { gb::lse_primal(gb::Tensor(Array())); }).rfind("lse: x must be 1-D", 0) == 0);
  CHECK(message([] { gb::llsq_gradient(gb::Tensor(Array{1.0}), 1); }).find("llsq: n must be >= 2") == 0);
  CHECK(message([] { gb::ode_primal(gb::Tensor(Array{1.0}), 0); }).find("ode: s") == 0);
  gb::GmmInput g = gmm_d4();
  g.l = Array{{0.5, -0.4, 0.3}, {0.1, 0.2, 0.3}};
  CHECK(message([&] { gb::gmm_jacobian(g); }) == "gmm: l has shape (2, 3), expected (2, 6)");
  g = gmm_d4();
  g.gamma = 0;
  CHECK(message([&] { gb::gmm_objective(g); }).find("gmm: gamma must be > 0") == 0);
  gb::LstmInput s = lstm_example();
  s.state = Array{{0.2, -0.1}};
  CHECK(message([&] { gb::lstm_objective(s); }) == "lstm: state has shape (1, 2), expected (2, 2)");
  s = lstm_example();
  s.main_params = Array{{0.1, 0.2, 0.3}};
  CHECK(message([&] { gb::lstm_jacobian(s); }).find("lstm: main_params has shape (1, 3), expected (2l, 4b)") == 0);
  CHECK(message([] { gb::kmeans_cost({Array{{0.5, 0.5}}, Array{{0.5, 0.5, 0.5}}}); }) ==
        "kmeans: centroids has shape (1, 3), expected (k, 2) with k >= 1 (d from points)");
  CHECK(message([] { gb::det_primal(Array{1.0, 2.0, 3.0}, 2); }) == "det: A has 3 numbers; ell=2 needs 4");
  CHECK(message([] { gb::det_gradient(Array{1.0}, 12); }).find("det: ell must be in [1, 11]") == 0);
  CHECK(message([] { gb::saddle_point(Array{1.0}, gb::modes_of("saddle", "rr")); }) ==
        "saddle: start has 1 numbers, expected 2");
  CHECK(message([] { gb::modes_of("particle", "fx"); }) == "particle: no function 'fx' (ff, fr, rf or rr)");
  CHECK(message([] { gb::ba_replicate(2, 6148914691236517206ULL, 3, Array(xt::zeros<double>({11})), Array{0.0, 0.0, 1.0}, 1, Array{0.0, 0.0}); }) ==
        "ba: n, m and p must be in [1, 100000000], got n=2, m=6148914691236517206, p=3");
  CHECK(message([] { gb::ba_replicate(2, 2, 3, Array{1.0}, Array{0.0, 0.0, 1.0}, 1, Array{0.0, 0.0}); }) ==
        "ba: cam, x and feat must hold 11, 3 and 2 numbers, got 1, 3 and 2");
  gb::HtInput hand = small_hand(true);
  hand.correspondences[2] = 4;   // 4 triangles
  CHECK(message([&] { gb::ht_objective(hand); }) == "ht: correspondence 2 is 4, outside [0, 4)");
  hand = small_hand(false);
  hand.theta = Array{0.0};
  CHECK(message([&] { gb::ht_jacobian(hand); }) == "ht: theta has 1 numbers, expected 26");
  hand = small_hand(false);
  hand.model.parents[3] = 5;
  CHECK(message([&] { gb::ht_objective(hand); }) == "ht: bone 3's parent 5 does not come before it");
  hand = small_hand(true);
  hand.model.weights = Array(xt::zeros<double>({7, 21}));
  CHECK(message([&] { gb::ht_objective(hand); }) == "ht: weights has shape (7, 21), expected (7, 22)");
  CHECK(message([] { gb::particle_argmin(std::nan(""), gb::modes_of("particle", "rr")); }) ==
        "particle: w must be finite, got nan");
}

TEST_CASE("gradbench protocol: the hello session, one response per message, each echoing its id") {
  std::vector<std::string> lines{R"({"id":0,"kind":"start","eval":"hello"})", R"({"id":1,"kind":"define","module":"hello"})"};
  // Each output feeds the next call, as the hello eval does.
  const std::vector<std::pair<std::string, double>> calls{{"square", 1}, {"double", 1},   {"square", 2},   {"double", 4},
                                                          {"square", 8}, {"double", 64},  {"square", 128}, {"double", 16384}};
  const std::vector<double> expected{1, 2, 4, 8, 64, 128, 16384, 32768};
  int id = 2;
  for (const auto& [function, input] : calls) {
    lines.push_back(json{{"id", id++}, {"kind", "evaluate"}, {"module", "hello"}, {"function", function}, {"input", input}}.dump());
    lines.push_back(json{{"id", id++}, {"kind", "analysis"}, {"of", id - 2}, {"valid", true}}.dump());
  }
  lines.push_back(R"({"id":99,"kind":"something-new"})");
  const Session s = run_session(lines);
  CHECK(s.status == 0);
  CHECK(s.errors.empty());
  REQUIRE(s.responses.size() == lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) CHECK(s.responses[i]["id"] == json::parse(lines[i])["id"]);
  CHECK(s.responses[0]["tool"] == "tapegrad");
  CHECK(s.responses[1] == json{{"id", 1}, {"success", true}});
  for (std::size_t c = 0; c < calls.size(); ++c) {
    const json& r = s.responses[2 + 2 * c];
    CHECK(r["success"] == true);
    CHECK(r["output"].get<double>() == expected[c]);
    CHECK(s.responses[3 + 2 * c] == json{{"id", 3 + 2 * c}});
  }
  CHECK(s.responses.back() == json{{"id", 99}});
}

TEST_CASE("gradbench protocol: min_runs and min_seconds, integer nanoseconds, outputs of every module") {
  const std::string lse = R"({"id":1,"kind":"evaluate","module":"lse","function":"gradient","input":{"x":[1,2,3],)";
  const Session s = run_session({lse + R"("min_runs":5,"min_seconds":0}})", lse + R"("min_runs":1,"min_seconds":0.05}})"});
  REQUIRE(s.responses.size() == 2);
  const auto evaluate_times = [](const json& r) {
    std::vector<std::int64_t> ns;
    for (const json& t : r["timings"]) {
      CHECK(t["nanoseconds"].is_number_integer());
      CHECK(t["nanoseconds"].get<std::int64_t>() >= 0);
      if (t["name"] == "evaluate") ns.push_back(t["nanoseconds"].get<std::int64_t>());
    }
    return ns;
  };
  CHECK(evaluate_times(s.responses[0]).size() == 5);
  const std::vector<std::int64_t> runs = evaluate_times(s.responses[1]);
  std::int64_t total = 0;
  for (std::int64_t t : runs) total += t;
  CHECK(runs.size() > 1);
  CHECK(total >= 50'000'000);
  CHECK(s.responses[0]["output"].size() == 3);

  // gmm's jacobian has exactly the keys alpha, mu, q, l, nested like the input; lstm's is flat.
  const json gmm_input = json::parse(
      R"({"d":2,"k":2,"n":3,"m":0,"gamma":1.0,"x":[[0.1,-0.2],[0.5,0.3],[-0.4,0.8]],"alpha":[0.2,-0.1],"mu":[[0.0,0.1],[0.3,-0.2]],"q":[[0.1,-0.3],[0.2,0.05]],"l":[[0.4],[-0.6]],"min_runs":1,"min_seconds":0})");
  const json lstm_input = json::parse(
      R"({"main_params":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],[-0.1,0.0,0.1,0.2,-0.2,0.3,-0.3,0.4]],"extra_params":[[0.9,1.1],[0.7,-0.5],[0.05,-0.05]],"state":[[0.2,-0.1],[0.3,0.4]],"sequence":[[1.0,0.0],[0.0,1.0],[1.0,1.0]],"min_runs":1,"min_seconds":0})");
  const Session m = run_session(
      {json{{"id", 1}, {"kind", "evaluate"}, {"module", "gmm"}, {"function", "objective"}, {"input", gmm_input}}.dump(),
       json{{"id", 2}, {"kind", "evaluate"}, {"module", "gmm"}, {"function", "jacobian"}, {"input", gmm_input}}.dump(),
       json{{"id", 3}, {"kind", "evaluate"}, {"module", "lstm"}, {"function", "jacobian"}, {"input", lstm_input}}.dump(),
       R"({"id":4,"kind":"evaluate","module":"llsq","function":"gradient","input":{"x":[0.5,-0.25,1.0],"n":5,"min_runs":1,"min_seconds":0}})",
       R"({"id":5,"kind":"evaluate","module":"ode","function":"primal","input":{"x":[0.5,1.0,1.5,2.0],"s":2,"min_runs":1,"min_seconds":0}})"});
  REQUIRE(m.responses.size() == 5);
  CHECK(m.responses[0]["output"].get<double>() == doctest::Approx(-13.8119512745).epsilon(1e-11));
  const json& j = m.responses[1]["output"];
  CHECK(j.size() == 4);
  for (const char* key : {"alpha", "mu", "q", "l"}) CHECK(j.contains(key));
  CHECK(j["mu"].size() == 2);
  CHECK(j["mu"][1].size() == 2);
  CHECK(j["l"][1].size() == 1);
  CHECK(j["l"][1][0].get<double>() == doctest::Approx(0.817536630479).epsilon(1e-11));
  CHECK(m.responses[2]["output"].size() == 22);
  CHECK(m.responses[3]["output"] == json{5.0, -3.625, 3.375});
  CHECK(m.responses[4]["output"] == json{1.0, 1.0, 1.0, 1.0});
}

namespace {
// An array as nested JSON lists.
json nested(const Array& a) {
  if (a.dimension() == 1) return json(std::vector<double>(a.begin(), a.end()));
  json out = json::array();
  for (std::size_t i = 0; i < a.shape(0); ++i) out.push_back(nested(Array(xt::view(a, i))));
  return out;
}
}  // namespace

TEST_CASE("gradbench protocol: the messages of kmeans, det, ba, ht, particle and saddle") {
  const json runs = {{"min_runs", 1}, {"min_seconds", 0}};
  const auto evaluate = [&](int id, const char* module, const char* function, json input) {
    input.update(runs);
    return json{{"id", id}, {"kind", "evaluate"}, {"module", module}, {"function", function}, {"input", input}}.dump();
  };
  const json kmeans = {{"points", {{0.1, 0.2}, {0.9, 0.8}, {0.2, 0.1}, {0.8, 0.9}}}, {"centroids", {{0.2, 0.1}, {0.8, 0.9}}}};
  const json det = {{"A", {2.0, 1.0, 1.0, 3.0}}, {"ell", 2}};
  const json ba = {{"n", 2}, {"m", 3}, {"p", 11}, {"cam", {0.1, -0.2, 0.3, 0.5, -0.5, -4.0, 2.0, 0.1, 0.2, 0.01, 0.001}},
                   {"x", {0.3, -0.2, 1.0}}, {"w", 0.8}, {"feat", {0.5, -0.5}}};
  const gb::HtInput hand = small_hand(true);
  json model = {{"bone_count", 22}, {"bone_names", std::vector<std::string>(22, "bone")}, {"parents", hand.model.parents},
                {"base_relatives", nested(hand.model.base_relatives)},
                {"inverse_base_absolutes", nested(hand.model.inverse_base_absolutes)},
                {"base_positions", nested(hand.model.base_positions)}, {"weights", nested(hand.model.weights)},
                {"triangles", {{0, 1, 2}, {2, 3, 4}, {4, 5, 6}, {6, 0, 3}}}, {"is_mirrored", true}};
  const json ht = {{"theta", nested(hand.theta)}, {"us", nested(hand.us)},
                   {"data", {{"model", model}, {"correspondences", hand.correspondences}, {"points", nested(hand.points)}}}};
  json simple_ht = ht;
  simple_ht["us"] = json::array();
  simple_ht["data"]["correspondences"] = {6, 0, 2, 5, 1};
  const Session s = run_session({evaluate(1, "kmeans", "cost", kmeans), evaluate(2, "kmeans", "dir", kmeans),
                                 evaluate(3, "det", "primal", det), evaluate(4, "det", "gradient", det),
                                 evaluate(5, "ba", "objective", ba), evaluate(6, "ba", "jacobian", ba),
                                 evaluate(7, "ht", "objective", ht), evaluate(8, "ht", "jacobian", ht),
                                 evaluate(9, "ht", "jacobian", simple_ht),
                                 evaluate(10, "particle", "rf", {{"w", 0.2071918746486116}}),
                                 evaluate(11, "saddle", "fr", {{"start", {1.0, 1.0}}})});
  REQUIRE(s.responses.size() == 11);
  for (const json& r : s.responses) {
    INFO(r.dump().substr(0, 300));
    CHECK(r["success"] == true);
  }
  CHECK(s.responses[0]["output"].get<double>() == doctest::Approx(0.04).epsilon(1e-12));
  // dir: J ./ diag(H) = c_j - (mean of its cluster) per centroid, as rows.
  CHECK(s.responses[1]["output"].size() == 2);
  CHECK(s.responses[1]["output"][0][0].get<double>() == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(s.responses[2]["output"].get<double>() == doctest::Approx(5.0).epsilon(1e-14));
  CHECK(s.responses[3]["output"] == json{3.0, -1.0, -1.0, 2.0});
  const json& objective = s.responses[4]["output"];
  CHECK(objective["reproj_error"]["elements"].size() == 2);
  CHECK(objective["reproj_error"]["repeated"] == 11);
  CHECK(objective["w_err"]["element"].get<double>() == doctest::Approx(1 - 0.8 * 0.8).epsilon(1e-14));
  CHECK(objective["w_err"]["repeated"] == 11);
  // ba's jacobian, shortened: the first 30 entries and the last of rows, cols and vals.
  const json& jac = s.responses[5]["output"];
  for (const char* key : {"rows", "cols", "vals"}) CHECK(jac[key].size() == 31);
  CHECK(jac["rows"][2] == 30);
  CHECK(jac["rows"][29] == 15 * 22 + 7);   // 22 error rows of 15 entries, then weight rows of 1
  CHECK(jac["rows"][30] == 31 * 11);
  CHECK(jac["cols"][14] == 11 * 2 + 3 * 3);   // observation 0's weight column
  CHECK(jac["cols"][30] == 11 * 2 + 3 * 3 + 10);
  CHECK(jac["vals"][30].get<double>() == doctest::Approx(-1.6).epsilon(1e-14));
  // ht's outputs, parsed from nested lists, equal the functions' on the same input.
  const Array errors = gb::ht_objective(hand), jacobian = gb::ht_jacobian(hand);
  REQUIRE(s.responses[6]["output"].size() == 15);
  for (std::size_t i = 0; i < 15; ++i) CHECK(s.responses[6]["output"][i].get<double>() == errors(i));
  REQUIRE(s.responses[7]["output"].size() == 15);
  REQUIRE(s.responses[7]["output"][0].size() == 28);
  for (std::size_t i = 0; i < 15; ++i)
    for (std::size_t c = 0; c < 28; ++c) CHECK(s.responses[7]["output"][i][c].get<double>() == jacobian(i, c));
  CHECK(s.responses[8]["output"][0].size() == 26);
  // ba's first observation's errors equal the function's on the replicated input.
  const gb::BaObjective direct = gb::ba_objective(gb::ba_replicate(
      2, 3, 11, Array{0.1, -0.2, 0.3, 0.5, -0.5, -4.0, 2.0, 0.1, 0.2, 0.01, 0.001}, Array{0.3, -0.2, 1.0}, 0.8,
      Array{0.5, -0.5}));
  CHECK(objective["reproj_error"]["elements"][0].get<double>() == direct.reproj_err(0, 0));
  CHECK(objective["reproj_error"]["elements"][1].get<double>() == direct.reproj_err(0, 1));
  CHECK(s.responses[9]["output"].get<double>() == doctest::Approx(0.2071918746486116).epsilon(1e-9));
  CHECK(s.responses[10]["output"].size() == 4);
}

TEST_CASE("gradbench protocol: unsupported modules and failures are answered, and the session goes on") {
  const Session s = run_session({
      R"({"id":0,"kind":"define","module":"fft"})",
      R"({"id":1,"kind":"evaluate","module":"lse","function":"hessian","input":{"x":[1]}})",
      R"({"id":2,"kind":"evaluate","module":"lse","function":"primal","input":{"y":[1],"min_runs":1,"min_seconds":0}})",
      R"({"id":3,"kind":"evaluate","module":"lse","function":"primal","input":{"x":[1],"min_runs":0}})",
      R"({"id":4,"kind":"evaluate","module":"llsq","function":"primal","input":{"x":[1e200,1e200],"n":3,"min_runs":1,"min_seconds":0}})",
      R"({"id":5,"kind":"evaluate","module":"gmm","function":"objective","input":{"d":2,"k":1,"n":1,"m":0,"gamma":1,"x":[[1,2],[3]],"alpha":[0],"mu":[[0,0]],"q":[[0,0]],"l":[[0]]}})",
      R"({"id":6,"kind":"analysis","of":4,"valid":false,"error":"mu[0]: 1 != 2"})",
      R"({"id":7,"kind":"evaluate","module":"lse","function":"primal","input":{"x":[1,2,3],"min_runs":1,"min_seconds":0}})",
  });
  CHECK(s.status == 0);
  REQUIRE(s.responses.size() == 8);
  const auto error_of = [&](std::size_t i) {
    CHECK(s.responses[i]["success"] == false);
    CHECK_FALSE(s.responses[i].contains("output"));
    return s.responses[i]["error"].get<std::string>();
  };
  CHECK(error_of(0).find("does not implement the module 'fft'") != std::string::npos);
  CHECK(error_of(1) == "tapegrad does not implement lse.hessian");
  CHECK(error_of(2) == "lse: input has no field 'x'");
  CHECK(error_of(3) == "lse: min_runs must be an integer >= 1, got 0");
  CHECK(error_of(4).find("llsq: the output has a non-finite value") == 0);
  CHECK(error_of(5) == "gmm: field 'x'[1] has 1 numbers, but row 0 has 2 (the rows must be equally long)");
  CHECK(s.responses[6] == json{{"id", 6}});
  CHECK(s.errors.find("evaluate 4 judged invalid: mu[0]: 1 != 2") != std::string::npos);
  CHECK(s.responses[7]["success"] == true);
}

TEST_CASE("gradbench protocol: a malformed line stops the session with exit status 2 and names the line") {
  const std::string start = R"({"id":0,"kind":"start"})";
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"id":1,"kind":"def)", "line 2 is not valid JSON"},
      {R"([1,2])", "line 2: a message must be a JSON object, got array"},
      {R"({"kind":"start"})", "line 2: the message has no integer field 'id'"},
      {R"({"id":"1","kind":"start"})", "line 2: the message has no integer field 'id'"},
      {R"({"id":1})", "line 2: the message has no string field 'kind'"},
      {R"({"id":1,"kind":"define"})", "line 2: the message has no string field 'module'"},
      {R"({"id":1,"kind":"evaluate","module":"lse","function":"primal"})", "line 2: the evaluate message has no field 'input'"},
      {"", "line 2 is not valid JSON"},
  };
  for (const auto& [line, expected] : bad) {
    INFO(line);
    const Session s = run_session({start, line, start});
    CHECK(s.status == 2);
    CHECK(s.responses.size() == 1);   // the first start was answered, nothing after the bad line
    CHECK(s.errors.find("tapegrad-gradbench: " + expected) != std::string::npos);
  }
}
