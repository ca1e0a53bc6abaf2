// The diagnosis of wrong hand-written gradients, on deliberately wrong gradients of functions that
// are not in the notes.
#include "helpers.hpp"

namespace {
using Hand = std::function<Arr(const Inputs&)>;

// Three-way gradcheck of a scalar f of one input with a hand-written gradient; the diagnosis text.
std::string diagnosis_of(const tg::GradcheckFunction& f, const TD& x, const Hand& hand,
                         const tg::DiagnosisCandidates& candidates = {}) {
  tg::GradcheckOptions o;
  o.candidates = {candidates};
  const auto report = tg::gradcheck(f, {x}, [&](const Inputs& in, const Arr& seed) {
    return std::vector<Arr>{Arr(hand(in) * seed())};
  }, o);
  INFO(report.str());
  REQUIRE(report.comparisons.size() == 3);
  CHECK(report.comparisons[0].ok());   // the autodiff agrees with finite differences
  const auto& hand_vs_auto = report.comparisons[2];
  if (hand_vs_auto.ok()) return "";
  CHECK(report.str().find("diagnosis: " + hand_vs_auto.diagnosis) != std::string::npos);
  return hand_vs_auto.diagnosis;
}
}  // namespace

TEST_CASE("a correct hand-written gradient gets no diagnosis") {
  const TD x = leaf({4}, 900);
  CHECK(diagnosis_of([](const Inputs& in) { return tg::sum(in[0] * in[0] * in[0]); }, x,
                     [](const Inputs& in) { return Arr(3.0 * in[0].value() * in[0].value()); }) == "");
}

TEST_CASE("sign flipped and scaled by a constant") {
  const TD x = leaf({2, 3}, 901, 0.5, 1.5);
  auto f = [](const Inputs& in) { return tg::sum(tg::log(in[0]) * 2.0); };
  CHECK(diagnosis_of(f, x, [](const Inputs& in) { return Arr(-2.0 / in[0].value()); }) ==
        "sign flipped (hand = -1 x reference)");
  CHECK(diagnosis_of(f, x, [](const Inputs& in) { return Arr(1.0 / in[0].value()); }) ==
        "scaled by a constant (hand = 0.5 x reference)");
}

TEST_CASE("indices transposed or shifted") {
  // f(X) = sum(X * A): the gradient is A; handing back A^T is a transposition.
  const Arr a = random_array({3, 3}, 902);
  const TD x = leaf({3, 3}, 903);
  CHECK(diagnosis_of([&](const Inputs& in) { return tg::sum(in[0] * TD(a)); }, x,
                     [&](const Inputs&) { return Arr(xt::transpose(a)); }) ==
        "indices transposed (hand[i, j] = reference[j, i])");
  // f(x) = sum(w * x^2): the gradient 2 w x read one index off.
  const Arr w = random_array({6}, 904, 1, 2);
  const TD v = leaf({6}, 905);
  const std::string shifted = diagnosis_of(
      [&](const Inputs& in) { return tg::sum(TD(w) * in[0] * in[0]); }, v, [&](const Inputs& in) {
        const Arr g = 2.0 * w * in[0].value();
        Arr h = xt::zeros<double>({6});
        for (std::size_t i = 0; i + 1 < 6; ++i) h(i) = g(i + 1);
        return h;
      });
  CHECK(shifted.rfind("indices shifted", 0) == 0);
}

TEST_CASE("only the diagonal of a Jacobian: a vector output, and a chain rule through softmax") {
  // The Jacobian of softmax checked as a whole: a diagonal-only hand VJP.
  const TD x = leaf({4}, 906);
  tg::GradcheckOptions o;
  const auto report = tg::gradcheck([](const Inputs& in) { return tg::softmax(in[0], 0); }, {x},
                                    [](const Inputs& in, const Arr& seed) {
                                      const Arr s = tg::softmax(in[0], 0).value();
                                      return std::vector<Arr>{Arr(seed * s * (1.0 - s))};
                                    }, o);
  INFO(report.str());
  REQUIRE_FALSE(report.ok());
  CHECK(report.comparisons[2].diagnosis ==
        "only the diagonal of a Jacobian (equals diag(J) ⊙ v: the cross terms of the chain rule are missing)");
  // Through a scalar loss: E = sum(r * softmax(x)); the diagonal-only chain is r_i s_i (1 - s_i).
  const Arr r = random_array({4}, 907);
  auto diagonal_chain = [&](const Inputs& in) {
    const Arr s = tg::softmax(in[0], 0).value();
    return Arr(r * s * (1.0 - s));
  };
  tg::DiagnosisCandidates c;
  c.diagonal_only = {{"dE/ds_i * ds_i/dx_i", diagonal_chain({x})}};
  CHECK(diagnosis_of([&](const Inputs& in) { return tg::sum(TD(r) * tg::softmax(in[0], 0)); }, x, diagonal_chain, c) ==
        "only the diagonal of a Jacobian (equals dE/ds_i * ds_i/dx_i: the cross terms of the chain rule are missing)");
}

TEST_CASE("missing factor and wrong variable") {
  // E = sum(tanh(w * x)): dE/dx = w (1 - tanh^2); a hand gradient without the tanh' factor.
  const Arr w = random_array({5}, 911, 0.5, 2.0);
  const TD x = leaf({5}, 908);
  auto f = [&](const Inputs& in) { return tg::sum(tg::tanh(TD(w) * in[0])); };
  const Arr t = xt::tanh(w * x.value());
  tg::DiagnosisCandidates c;
  c.factors = {{"(1 + x)", Arr(1.0 + x.value())}, {"tanh'(w x)", Arr(1.0 - t * t)}};
  CHECK(diagnosis_of(f, x, [&](const Inputs&) { return w; }, c) == "missing factor (missing tanh'(w x))");
  // The gradient with respect to the intermediate z = w x instead of x.
  c.other_gradients = {{"dE/dz", Arr(1.0 - t * t)}};
  CHECK(diagnosis_of(f, x, [&](const Inputs&) { return Arr(1.0 - t * t); }, c) == "wrong variable (equals dE/dz)");
  // Sign flipped on top of a pattern.
  CHECK(diagnosis_of(f, x, [&](const Inputs&) { return Arr(t * t - 1.0); }, c) ==
        "sign flipped, and wrong variable (equals dE/dz)");
}

TEST_CASE("no pattern: an arbitrary wrong gradient is reported as unexplained") {
  const TD x = leaf({5}, 909);
  CHECK(diagnosis_of([](const Inputs& in) { return tg::sum(tg::exp(in[0])); }, x,
                     [](const Inputs& in) { return Arr(in[0].value() * 0.0 + random_array({5}, 910)); }) ==
        "no simple pattern explains the difference");
  CHECK_THROWS_WITH_AS(tg::diagnose(Arr{1., 2.}, Arr{1., 2., 3.}),
                       "diagnose: hand-written shape (2) and reference shape (3) differ", tg::ShapeError);
}

TEST_CASE("no false patterns: constant gradients are not 'shifted', tiny hands are not 'scaled'") {
  // Half a constant gradient missing: not an index shift.
  CHECK_FALSE(tg::diagnose(Arr{3., 3., 0., 0.}, Arr{3., 3., 3., 3.}).found());
  CHECK_FALSE(tg::diagnose(Arr{1., 1., 1., 1., 0.}, Arr{1., 1., 1., 1., 1.}).found());
  // A negligible hand value is a multiple of anything: not "scaled", but zero.
  CHECK(tg::diagnose(Arr{1e-9, -2e-9, 1e-9}, Arr{0.3, 0.1, 0.2}, {}, 1e-4, 1e-7).pattern == "zero");
  // A square gradient holding only its diagonal is not a Jacobian unless the caller says so.
  const Arr r{{1., 2.}, {3., 4.}}, h{{1., 0.}, {0., 4.}};
  CHECK_FALSE(tg::diagnose(h, r).found());
  tg::DiagnosisCandidates jac;
  jac.jacobian = true;
  CHECK(tg::diagnose(h, r, jac).pattern == "only the diagonal of a Jacobian");
  // A shift of a varying gradient is one.
  CHECK(tg::diagnose(Arr{2., 3., 4., 5., 0.}, Arr{1., 2., 3., 4., 5.}).pattern == "indices shifted");
}

TEST_CASE("the caller's candidates come before generic patterns: a wrong variable that is also a multiple") {
  // E = sum(tanh(2x)): dE/dz = (1 - tanh^2) is dE/dx / 2, both "scaled" and "wrong variable".
  const Arr x{0.1, -0.4, 0.7}, t = xt::tanh(2.0 * x);
  tg::DiagnosisCandidates c;
  c.other_gradients = {{"dE/dz", Arr(1.0 - t * t)}};
  CHECK(tg::diagnose(Arr(1.0 - t * t), Arr(2.0 * (1.0 - t * t)), c).str() == "wrong variable (equals dE/dz)");
  CHECK(tg::diagnose(Arr(1.0 - t * t), Arr(2.0 * (1.0 - t * t))).str() == "scaled by a constant (hand = 0.5 x reference)");
}

TEST_CASE("gradcheck diagnoses in projections mode too, for a scalar output") {
  const TD x = leaf({40, 30}, 912, 0.5, 1.5);
  tg::GradcheckOptions o;
  o.mode = tg::GradcheckOptions::Mode::projections;
  const auto report = tg::gradcheck([](const Inputs& in) { return tg::sum(tg::log(in[0])); }, {x},
                                    [](const Inputs& in, const Arr& seed) {
                                      return std::vector<Arr>{Arr(-seed() / in[0].value())};
                                    }, o);
  INFO(report.str());
  REQUIRE(report.comparisons.size() == 3);
  CHECK(report.comparisons[2].diagnosis == "sign flipped (hand = -1 x reference)");
}

namespace {
// A custom op with a wrong VJP: y = x^2, its gradient given as grad * x (a factor 2 missing).
TD bad_square(const TD& x) {
  return tg::record<double>("bad_square", {x}, Arr(x.value() * x.value()),
                            [](const tg::VjpArgs<double>& g) { return tg::Gradients<double>{g.grad * g.input(0)}; });
}

// 44 recorded ops, one of them bad_square under the label "block", or a correct x * x there.
TD thirty_ops(const TD& x, bool broken) {
  TD h = x;
  for (int i = 0; i < 14; ++i) h = (i % 2 ? tg::tanh(h) : h * 0.9 + 0.1);
  {
    tg::Label label("block");
    h = broken ? bad_square(h) : h * h;
  }
  for (int i = 0; i < 14; ++i) h = (i % 2 ? tg::tanh(h) : h * 1.1 - 0.2);
  return tg::sum(h);
}
}  // namespace

TEST_CASE("gradcheck names the recorded op whose VJP is wrong, with its label and diagnosis") {
  const TD x = leaf({2, 3}, 920);
  const auto broken = tg::gradcheck([](const Inputs& in) { return thirty_ops(in[0], true); }, {x});
  INFO(broken.str());
  REQUIRE_FALSE(broken.ok());
  REQUIRE(broken.culprits.size() == 1);
  const auto& c = broken.culprits[0];
  CHECK(c.op == "bad_square");
  CHECK(c.position == 21);   // after 7 affine steps (2 ops each) and 7 tanh
  CHECK(c.label == "block");
  CHECK(c.input == 0);
  CHECK(c.input_shape == tg::Shape{2, 3});
  CHECK(c.diagnosis == "scaled by a constant (hand = 0.5 x reference)");
  CHECK(broken.str().find("#21 'bad_square' (label 'block'): the gradient of its output agrees") != std::string::npos);
  // The same function with a correct op there: nothing to localise.
  const auto fine = tg::gradcheck([](const Inputs& in) { return thirty_ops(in[0], false); }, {x});
  CHECK(fine.ok());
  CHECK(fine.culprits.empty());
  // A non-scalar output, and the culprit's input an intermediate of another shape.
  const auto wide = tg::gradcheck([](const Inputs& in) { return bad_square(tg::sum(in[0], {1})) * 3.0; }, {x});
  INFO(wide.str());
  REQUIRE(wide.culprits.size() == 1);
  CHECK(wide.culprits[0].op == "bad_square");
  CHECK(wide.culprits[0].input_shape == tg::Shape{2});
}

TEST_CASE("a diagnosis at a million elements, in projections mode, from a bounded number of passes") {
  const TD x = leaf({1000, 1000}, 930);
  const Arr w = random_array({1000, 1000}, 931, 0.5, 1.5);
  int evaluations = 0;
  auto f = [&](const Inputs& in) {
    ++evaluations;
    return tg::sum(TD(w) * tg::tanh(in[0]));
  };
  tg::GradcheckOptions o;   // automatic: projections at this size
  const auto report = tg::gradcheck(f, {x}, [&](const Inputs&, const Arr& s) {
    return std::vector<Arr>{Arr(s() * w)};   // tanh' dropped
  }, o);
  INFO(report.str());
  REQUIRE(report.comparisons.size() == 3);
  CHECK(report.summary.rfind("random projections", 0) == 0);
  CHECK(report.comparisons[2].diagnosis == "missing factor (missing (1 - y^2) of #0 'tanh')");
  MESSAGE("a million-element diagnosis: ", evaluations, " evaluations of the function in all");
  CHECK(evaluations <= 50);
  // A million-element output too: the hand function as the op's VJP, diagnosed on v^T J.
  evaluations = 0;
  auto g = [&](const Inputs& in) {
    ++evaluations;
    return tg::sigmoid(in[0]) * TD(w);
  };
  const auto wide = tg::gradcheck(g, {x}, [&](const Inputs& in, const Arr& v) {
    const Arr s = 1.0 / (1.0 + xt::exp(-in[0].value()));
    return std::vector<Arr>{Arr(v * w * s)};   // sigmoid's (1 - y) dropped
  }, o);
  INFO(wide.str());
  REQUIRE(wide.comparisons.size() == 3);
  CHECK(wide.comparisons[2].diagnosis == "missing factor (missing (1 - y) of #0 'sigmoid')");
  MESSAGE("a million-element output: ", evaluations, " evaluations of the function in all");
  CHECK(evaluations <= 50);
}

TEST_CASE("a zero hand gradient is called zero, and a transposed shape is pointed out") {
  const TD x = leaf({2, 3}, 950);
  auto f = [](const Inputs& in) { return tg::sum(tg::tanh(in[0]) * 2.0); };
  CHECK(diagnosis_of(f, x, [](const Inputs& in) { return Arr(xt::zeros<double>(in[0].value().shape())); }) ==
        "zero (the hand-written gradient is zero (within atol) where the reference is not)");
  CHECK_THROWS_WITH_AS(
      tg::gradcheck(f, {x}, [](const Inputs&, const Arr&) { return std::vector<Arr>{Arr(xt::zeros<double>({3, 2}))}; }),
      "gradcheck: the hand-written gradient for input 0 has shape (3, 2), expected (2, 3) (the same dimensions in "
      "another order: indices transposed?)",
      tg::ShapeError);
}
