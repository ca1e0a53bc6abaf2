#include "check.hpp"

#include <cmath>
#include <functional>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>
#include <tuple>

#include "../core/diagnose.hpp"
#include "../core/gradcheck.hpp"
#include "../layers/init.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/nn.hpp"
#include "../ops/shape.hpp"
#include "avg_pool.hpp"
#include "convolution.hpp"
#include "fully_connected.hpp"
#include "softmax_output.hpp"

namespace tapegrad::notes {

namespace {

using TD = Tensor<double>;

// Tolerances: the hand value against the autodiff (both exact up to rounding) and against
// central differences (truncation and rounding error of the differences).
constexpr double exact_rtol = 1e-8, exact_atol = 1e-10;
constexpr double numeric_rtol = 1e-5, numeric_atol = 1e-7;

Array uniform(const Shape& shape, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  Array a = Array::from_shape(shape);
  for (auto& v : a) v = u(rng);
  return a;
}

Array reshaped(Array a, const Shape& shape) {
  a.reshape(shape);
  return a;
}

// One random case of one formula: the three values on the same inputs, and what a diagnosis may
// test the hand value against.
struct Sample {
  Array hand, autodiff, numeric;
  DiagnosisCandidates candidates;
};

FormulaCheck evaluate(const std::string& id, const std::vector<Sample>& samples, std::string* diagnosis) {
  FormulaCheck c;
  c.cases = samples.size();
  bool holds = true, consistent = true;
  Diagnosis first;
  for (const Sample& s : samples) {
    if (!detail::all_close(s.autodiff, s.numeric, numeric_rtol, numeric_atol))
      throw std::runtime_error("notes_check: " + id + ": the autodiff disagrees with finite differences");
    c.max_abs_error = std::max(c.max_abs_error, double(xt::amax(xt::abs(s.hand - s.autodiff))()));
    const bool ok = detail::all_close(s.hand, s.autodiff, exact_rtol, exact_atol) &&
                      detail::all_close(s.hand, s.numeric, numeric_rtol, numeric_atol);
    if (!ok && diagnosis) {
      // The pattern must explain every failing case, not only the first.
      const Diagnosis d = diagnose(s.hand, s.autodiff, s.candidates, exact_rtol, exact_atol);
      if (holds) {
        first = d;
      } else if (d.pattern != first.pattern) {
        consistent = false;
      }
    }
    holds = holds && ok;
  }
  if (!holds && diagnosis)
    *diagnosis = consistent ? first.str() : "no single pattern explains every case (first case: " + first.str() + ")";
  c.verdict = holds ? "holds" : "fails";
  return c;
}

// ---- Section 1: softmax output with squared error ---------------------------------------------

struct SoftmaxCase {
  Array l, o, dE_da, dE_dl, diag_J, num_dE_da, num_dE_dl, num_diag_J, n7_l, dE_db, num_dE_db;
};

SoftmaxCase softmax_case(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  SoftmaxCase c;
  const TD a(uniform({n}, rng, -2, 2), true), o(uniform({n}, rng, 0, 1));
  c.o = o.value();
  {
    Tape tape;
    const SoftmaxOutput s(a, o);
    c.l = s.l.value();
    const auto g = grad(s.E, {a, s.l});
    c.dE_da = g[0].value();
    c.dE_dl = g[1].value();
    c.diag_J = xt::zeros<double>({n});
    for (std::size_t i = 0; i < n; ++i) {
      Array e = xt::zeros<double>({n});
      e(i) = 1;
      c.diag_J(i) = grad(s.l, {a}, e)[0].value()(i);
    }
  }
  c.num_dE_da = numeric_gradient([&] { NoGrad ng; return SoftmaxOutput(a, o).E.item(); }, a);
  // N3's variable is l itself: E(l) = 1/2 sum (l - o)^2 with l as the input.
  const TD l(c.l, true);
  c.num_dE_dl = numeric_gradient([&] { NoGrad ng; return (mse_loss(l, o, Reduction::sum) * 0.5).item(); }, l);
  c.num_diag_J = xt::zeros<double>({n});
  for (std::size_t i = 0; i < n; ++i) {
    const Array column = numeric_gradient([&] { NoGrad ng; return softmax(a, 0).value()(i); }, a);
    c.num_diag_J(i) = column(i);
  }
  // N7: a = z + b with a bias b.
  const TD z(uniform({n}, rng, -2, 2)), b(uniform({n}, rng, -1, 1), true);
  {
    Tape tape;
    const TD pre = z + b;
    const SoftmaxOutput s(pre, o);
    c.dE_db = grad(s.E, {b})[0].value();
    c.n7_l = s.l.value();
  }
  c.num_dE_db = numeric_gradient([&] { NoGrad ng; return SoftmaxOutput(z + b, o).E.item(); }, b);
  return c;
}

DiagnosisCandidates softmax_candidates(const SoftmaxCase& c) {
  DiagnosisCandidates d;
  d.other_gradients = {{"∂E/∂l_i", c.dE_dl}};
  d.factors = {{"∂l_i/∂a_i", c.diag_J}, {"l_i", c.l}};
  d.diagonal_only = {{"∂E/∂l_i · ∂l_i/∂a_i", Array(c.dE_dl * c.diag_J)}};
  return d;
}

// The first element of every array: N5 states dE/da_1 only.
Sample first_element(const Array& hand, const SoftmaxCase& c) {
  const DiagnosisCandidates all = softmax_candidates(c);
  DiagnosisCandidates d;
  auto first = [](const NamedArrays& list) {
    NamedArrays out;
    for (const auto& [name, v] : list) out.emplace_back(name, Array{v(0)});
    return out;
  };
  d.other_gradients = first(all.other_gradients);
  d.factors = first(all.factors);
  d.diagonal_only = first(all.diagonal_only);
  return {hand, Array{c.dE_da(0)}, Array{c.num_dE_da(0)}, d};
}

// ---- Section 2: fully connected ----------------------------------------------------------------

struct FcCase {
  Array a, l, w, f_prime, dE_da, dE_dl, dE_dc, dE_dd, dE_dw, dE_db, num_dE_da, num_dE_dw, num_dE_db;
  Array hand_dE_dc, hand_dE_dl;   // the upstream gradients by hand, from the forward values
};

FcCase fc_case(std::size_t m, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ManualSeed init(seed);
  FullyConnected fc(m, n);
  FcCase c;
  const TD a(uniform({m}, rng, -1.5, 1.5), true), o(uniform({n}, rng, 0, 1));
  const TD W = fc.layer.weight(), B = fc.layer.bias();
  {
    Tape tape;
    fc.forward(a, o);
    const auto g = grad(fc.E, {a, fc.l, fc.c, fc.d, W, B});
    c.dE_da = g[0].value();
    c.dE_dl = g[1].value();
    c.dE_dc = g[2].value();
    c.dE_dd = g[3].value();
    c.dE_dw = g[4].value();
    c.dE_db = g[5].value();
    c.l = fc.l.value();
    c.hand_dE_dc = FullyConnected::dE_dc(fc.d.value(), o.value());
  }
  auto E = [&] {
    NoGrad ng;
    fc.forward(a, o);
    return fc.E.item();
  };
  c.num_dE_da = numeric_gradient(E, a);
  c.num_dE_dw = numeric_gradient(E, W);
  c.num_dE_db = numeric_gradient(E, B);
  c.a = a.value();
  c.w = W.value();
  c.f_prime = FullyConnected::f_prime(c.a);
  c.hand_dE_dl = FullyConnected::dE_dl(c.hand_dE_dc, c.w);
  return c;
}

// Candidates of the shape of `like`: the section's other gradients and its activations' derivatives.
DiagnosisCandidates fc_candidates(const FcCase& c, const Array& like) {
  DiagnosisCandidates d;
  const std::vector<std::pair<std::string, const Array*>> grads{
      {"∂E/∂a_i", &c.dE_da}, {"∂E/∂l_i", &c.dE_dl}, {"∂E/∂c_j", &c.dE_dc}, {"∂E/∂d_j", &c.dE_dd}};
  for (const auto& [name, g] : grads)
    if (g->shape() == like.shape()) d.other_gradients.emplace_back(name, *g);
  if (c.f_prime.shape() == like.shape()) d.factors.emplace_back("f'(a_i)", c.f_prime);
  return d;
}

// ---- Section 3: average pooling ----------------------------------------------------------------

struct PoolCase {
  std::size_t H, W;
  Array dE_da, hand_dE_db, num_dE_da;
};

PoolCase pool_case(std::size_t H, std::size_t W, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const TD a(uniform({H, W}, rng, -1, 1), true), o(uniform({H / 2, W / 2}, rng, -1, 1));
  PoolCase c{H, W, {}, {}, {}};
  {
    Tape tape;
    const AveragePooling p(a, o);
    c.dE_da = grad(p.E, {a})[0].value();
    c.hand_dE_db = p.b.value() - o.value();   // E = 1/2 sum (b - o)^2
  }
  c.num_dE_da = numeric_gradient([&] { NoGrad ng; return AveragePooling(a, o).E.item(); }, a);
  return c;
}

// ---- Section 4: convolution with an untied bias --------------------------------------------------

struct ConvCase {
  Array a, k, hand_dE_dc, dE_da, dE_dk, dE_db, num_dE_da, num_dE_dk, num_dE_db;
};

ConvCase conv_case(std::size_t H, std::size_t W, std::size_t K, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ManualSeed init(seed);
  Convolution cv(H, W, K);
  const std::size_t Ho = H - K + 1, Wo = W - K + 1;
  const TD a(uniform({H, W}, rng, -1, 1), true), o(uniform({Ho, Wo}, rng, -1, 1));
  const TD kernel = cv.kernel(), bias = cv.bias();
  ConvCase c;
  {
    Tape tape;
    cv.forward(a, o);
    const auto g = grad(cv.E, {a, kernel, bias});
    c.dE_da = g[0].value();
    c.dE_dk = reshaped(g[1].value(), {K, K});
    c.dE_db = reshaped(g[2].value(), {Ho, Wo});
    c.hand_dE_dc = cv.c.value() - o.value();   // E = 1/2 sum (c - o)^2
  }
  auto E = [&] {
    NoGrad ng;
    cv.forward(a, o);
    return cv.E.item();
  };
  c.num_dE_da = numeric_gradient(E, a);
  c.num_dE_dk = reshaped(numeric_gradient(E, kernel), {K, K});
  c.num_dE_db = reshaped(numeric_gradient(E, bias), {Ho, Wo});
  c.a = a.value();
  c.k = reshaped(kernel.value(), {K, K});
  return c;
}

// ---- The cases every formula is checked on ---------------------------------------------------

struct Cases {
  std::vector<SoftmaxCase> softmax;   // n classes
  std::vector<FcCase> fc;             // m x n layers
  std::vector<FcCase> fc_square;      // m = n: where N10's indices i and j range alike
  std::vector<PoolCase> pool;         // H x W inputs (odd sizes drop the last row or column)
  std::vector<ConvCase> conv;         // H x W inputs, K x K kernels, a bias per output element
};

Cases random_cases(std::size_t seeds) {
  Cases cases;
  for (std::size_t n : {3, 5, 10})
    for (std::size_t s = 0; s < seeds; ++s) cases.softmax.push_back(softmax_case(n, 100 * n + s));
  for (auto [m, n] : std::vector<std::pair<std::size_t, std::size_t>>{{3, 2}, {4, 3}, {3, 3}, {5, 5}})
    for (std::size_t s = 0; s < seeds; ++s) {
      cases.fc.push_back(fc_case(m, n, 1000 + 10 * m + n + 100 * s));
      if (m == n) cases.fc_square.push_back(cases.fc.back());
    }
  for (auto [H, W] : std::vector<std::pair<std::size_t, std::size_t>>{{4, 4}, {6, 8}, {5, 7}})
    for (std::size_t s = 0; s < seeds; ++s) cases.pool.push_back(pool_case(H, W, 2000 + 10 * H + W + 100 * s));
  for (auto [H, W, K] : std::vector<std::tuple<std::size_t, std::size_t, std::size_t>>{{4, 4, 2}, {6, 5, 3}, {5, 7, 2}})
    for (std::size_t s = 0; s < seeds; ++s) cases.conv.push_back(conv_case(H, W, K, 3000 + 100 * H + 10 * W + K + 1000 * s));
  return cases;
}

using Samples = std::vector<Sample>;

// What a diagnosis may test a hand value against, from its case.
template <class Case>
using CandidatesOf = DiagnosisCandidates (*)(const Case&, const Array& hand);

// One sample per case: the hand value, the autodiff's and the differences' (members of the case).
template <class Case, class Hand>
Samples samples(const std::vector<Case>& cases, Hand hand, Array Case::*autodiff, Array Case::*numeric,
                CandidatesOf<Case> candidates = nullptr) {
  Samples out;
  for (const Case& c : cases) {
    Array h = hand(c);
    DiagnosisCandidates d = candidates ? candidates(c, h) : DiagnosisCandidates();
    out.push_back({std::move(h), c.*autodiff, c.*numeric, std::move(d)});
  }
  return out;
}

DiagnosisCandidates softmax_all(const SoftmaxCase& c, const Array&) { return softmax_candidates(c); }
DiagnosisCandidates fc_all(const FcCase& c, const Array& hand) { return fc_candidates(c, hand); }

// N5 states ∂E/∂a1 only: the first element of every value.
template <class Hand>
Samples first_elements(const std::vector<SoftmaxCase>& cases, Hand hand) {
  Samples out;
  for (const SoftmaxCase& c : cases) out.push_back(first_element(Array{hand(c)}, c));
  return out;
}

// ---- The table: one row per formula of the notes -----------------------------------------------

const char* const section_softmax = "1. softmax output";
const char* const section_fc = "2. fully connected";
const char* const section_pool = "3. average pooling";
const char* const section_conv = "4. convolution";

// A formula as the notes write it, what had to be read into it to compute it, its samples (hand
// function against the autodiff and the differences; null when it leaves nothing to compute), and
// for a formula that fails, the corrected formula and its samples.
struct FormulaRow {
  const char* id;
  const char* section;
  const char* formula;
  const char* reading;
  Samples (*as_written)(const Cases&);
  const char* corrected_formula = nullptr;
  Samples (*corrected)(const Cases&) = nullptr;
};

using SC = SoftmaxCase;
using FC = FcCase;
using PC = PoolCase;
using CC = ConvCase;

const FormulaRow formulas[] = {
    {"N3", section_softmax, "∂E/∂l_i = o_i − l_i", "",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n3_dE_dl(s.l, s.o); }, &SC::dE_dl, &SC::num_dE_dl,
                      +[](const SC& s, const Array&) {
                        DiagnosisCandidates d;
                        d.other_gradients = {{"∂E/∂a_i", s.dE_da}};
                        return d;
                      });
     },
     "∂E/∂l_i = l_i − o_i",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n3_dE_dl_corrected(s.l, s.o); }, &SC::dE_dl, &SC::num_dE_dl);
     }},
    {"N4", section_softmax, "∂l1/∂a1 = l1 (1 − l1)", "for every i: the diagonal entries ∂l_i/∂a_i of the softmax Jacobian",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n4_dl_da_diagonal(s.l); }, &SC::diag_J, &SC::num_diag_J);
     }},
    {"N5", section_softmax, "∂E/∂a1 = ∂E/∂l1 · ∂l1/∂a1 = (o1 − l1) l1 (1 − l1)", "",
     [](const Cases& c) { return first_elements(c.softmax, [](const SC& s) { return n5_dE_da1(s.l, s.o); }); },
     "∂E/∂a1 = Σ_j ∂E/∂l_j · ∂l_j/∂a1 = l1 ((l1 − o1) − Σ_j (l_j − o_j) l_j)",
     [](const Cases& c) { return first_elements(c.softmax, [](const SC& s) { return n5_dE_da1_corrected(s.l, s.o); }); }},
    {"N6", section_softmax, "∂E/∂a_i = ∂E/∂l_i · ∂l_i/∂a_i = (o_i − l_i) l1 (1 − l_i)", "",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n6_dE_da(s.l, s.o); }, &SC::dE_da, &SC::num_dE_da, softmax_all);
     },
     "∂E/∂a_i = Σ_j ∂E/∂l_j · ∂l_j/∂a_i = l_i ((l_i − o_i) − Σ_j (l_j − o_j) l_j)",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n6_dE_da_corrected(s.l, s.o); }, &SC::dE_da, &SC::num_dE_da);
     }},
    {"N7", section_softmax, "∂E/∂b_i = ∂E/∂a_i", "a_i = z_i + b_i; ∂E/∂a_i by hand (corrected N6)",
     [](const Cases& c) {
       return samples(c.softmax, [](const SC& s) { return n7_dE_db(n6_dE_da_corrected(s.n7_l, s.o)); }, &SC::dE_db,
                      &SC::num_dE_db);
     }},
    {"N9", section_fc,
     "∂E/∂a1 = ∂E/∂c1 · ∂c1/∂l1 · ∂l1/∂a1 + ∂E/∂c2 · ∂c2/∂l1 · ∂l1/∂a1, with "
     "∂c2/∂l1 = w_12, ∂c1/∂l1 = w_11, ∂l1/∂a1 = f'(a1)",
     "for every i and n outputs: Σ_j ∂E/∂c_j w_ij f'(a_i); ∂E/∂c_j = (d_j − o_j) d_j (1 − d_j) by hand",
     [](const Cases& c) {
       return samples(c.fc, [](const FC& f) { return n9_dE_da(f.hand_dE_dc, f.w, f.f_prime); }, &FC::dE_da,
                      &FC::num_dE_da, fc_all);
     }},
    {"N10", section_fc, "∂E/∂b_j = ∂E/∂l_i",
     "i stands for j (computable for m = n), b_j is the bias b'_j; ∂E/∂l_i = Σ_j ∂E/∂c_j w_ij by hand",
     [](const Cases& c) {
       return samples(c.fc_square, [](const FC& f) { return n10_dE_db(f.hand_dE_dl); }, &FC::dE_db, &FC::num_dE_db, fc_all);
     },
     "∂E/∂b'_j = ∂E/∂c_j",
     [](const Cases& c) {
       return samples(c.fc, [](const FC& f) { return n10_dE_db_corrected(f.hand_dE_dc); }, &FC::dE_db, &FC::num_dE_db);
     }},
    {"N11", section_fc, "∂E/∂w_ij = ∂E/∂c_j · l_i", "∂E/∂c_j by hand",
     [](const Cases& c) {
       return samples(c.fc, [](const FC& f) { return n11_dE_dw(f.hand_dE_dc, f.l); }, &FC::dE_dw, &FC::num_dE_dw, fc_all);
     }},
    {"N12", section_fc, "∂E/∂a_i = ∂E/∂c1 · w_i1 + ∂E/∂c2 · w_i2", "for n outputs: Σ_j ∂E/∂c_j w_ij; ∂E/∂c_j by hand",
     [](const Cases& c) {
       return samples(c.fc, [](const FC& f) { return n12_dE_da(f.hand_dE_dc, f.w); }, &FC::dE_da, &FC::num_dE_da, fc_all);
     },
     "∂E/∂a_i = f'(a_i) Σ_j ∂E/∂c_j · w_ij",
     [](const Cases& c) {
       return samples(c.fc, [](const FC& f) { return n12_dE_da_corrected(f.hand_dE_dc, f.w, f.f_prime); }, &FC::dE_da,
                      &FC::num_dE_da);
     }},
    {"N14", section_pool, "∂E/∂a_ij = 1/4 · ∂E/∂b_kl where k = ⌊i/2⌋ and l = ⌊j/2⌋",
     "H × W input; for odd sizes the dropped last row or column reads ∂E/∂b_kl = 0; ∂E/∂b_kl = b_kl − o_kl by hand",
     [](const Cases& c) {
       return samples(c.pool, [](const PC& p) { return n14_dE_da(p.hand_dE_db, p.H, p.W); }, &PC::dE_da, &PC::num_dE_da);
     }},
    {"N16", section_conv, "∂E/∂b_ij = ∂E/∂c_ij", "∂E/∂c_ij = c_ij − o_ij by hand",
     [](const Cases& c) {
       return samples(c.conv, [](const CC& v) { return n16_dE_db(v.hand_dE_dc); }, &CC::dE_db, &CC::num_dE_db);
     }},
    {"N17", section_conv, "∂E/∂k_ij = Σ_{p=0..2} Σ_{l=0..2} ∂E/∂c_kl · a_{i+p, j+l}",
     "c_kl is c_pl; the bound 2 is the last output index (Ho − 1, Wo − 1); ∂E/∂c_pl = c_pl − o_pl by hand",
     [](const Cases& c) {
       return samples(c.conv, [](const CC& v) { return n17_dE_dk(v.hand_dE_dc, v.a, v.k.shape(0)); }, &CC::dE_dk,
                      &CC::num_dE_dk);
     }},
    {"N18", section_conv,
     "∂E/∂a_ij = Σ_{k = max(0, k_size−1)}^{min(k_size, dim_input−j)} "
     "Σ_{l = max(0, k_size−1)}^{min(k_size, dim_input−k)} (…)",
     "the summand is left empty in the notes: nothing to compute", nullptr,
     "∂E/∂a_ij = Σ_{p,q} ∂E/∂c_{i−p, j−q} · k_pq over 0 ≤ i−p < Ho, 0 ≤ j−q < Wo",
     [](const Cases& c) {
       return samples(c.conv, [](const CC& v) { return n18_dE_da_corrected(v.hand_dE_dc, v.k, v.a.shape(0), v.a.shape(1)); },
                      &CC::dE_da, &CC::num_dE_da);
     }},
};

}  // namespace

std::vector<FormulaResult> check_notes(std::size_t seeds) {
  const Cases cases = random_cases(seeds);
  std::vector<FormulaResult> results;
  for (const FormulaRow& row : formulas) {
    FormulaResult r;
    r.id = row.id;
    r.section = row.section;
    r.formula = row.formula;
    r.reading = row.reading;
    if (row.as_written) {
      r.check = evaluate(r.id, row.as_written(cases), &r.diagnosis);
      if (r.check.verdict == "holds") r.diagnosis.clear();
    } else {
      r.check.verdict = "incomplete";
      r.check.max_abs_error = std::numeric_limits<double>::quiet_NaN();
    }
    if (row.corrected) {
      r.has_corrected = true;
      r.corrected_formula = row.corrected_formula;
      r.corrected = evaluate(r.id + " corrected", row.corrected(cases), nullptr);
    }
    results.push_back(r);
  }
  return results;
}

namespace {

std::string scientific(double v) {
  if (std::isnan(v)) return "-";
  std::ostringstream os;
  os << std::setprecision(2) << std::scientific << v;
  return os.str();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

}  // namespace

std::string notes_table(const std::vector<FormulaResult>& results) {
  std::ostringstream os;
  os << "| id | section | formula (as written) | verdict | max abs error | diagnosis | corrected formula | corrected verdict |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    os << "| " << r.id << " | " << r.section << " | `" << r.formula << "` | " << r.check.verdict << " | "
       << scientific(r.check.max_abs_error) << " | " << (r.diagnosis.empty() ? "-" : r.diagnosis) << " | "
       << (r.has_corrected ? "`" + r.corrected_formula + "`" : "-") << " | "
       << (r.has_corrected ? r.corrected.verdict + " (" + scientific(r.corrected.max_abs_error) + ")" : "-") << " |\n";
  }
  return os.str();
}

std::string notes_json(const std::vector<FormulaResult>& results) {
  std::ostringstream os;
  os << "[\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    os << "  {\"id\": " << json_string(r.id) << ", \"section\": " << json_string(r.section)
       << ", \"formula\": " << json_string(r.formula) << ", \"reading\": " << json_string(r.reading)
       << ", \"verdict\": " << json_string(r.check.verdict) << ", \"max_abs_error\": " << json_number(r.check.max_abs_error)
       << ", \"cases\": " << r.check.cases
       << ", \"diagnosis\": " << (r.diagnosis.empty() ? "null" : json_string(r.diagnosis)) << ", \"corrected\": ";
    if (r.has_corrected)
      os << "{\"formula\": " << json_string(r.corrected_formula) << ", \"verdict\": " << json_string(r.corrected.verdict)
         << ", \"max_abs_error\": " << json_number(r.corrected.max_abs_error) << "}";
    else
      os << "null";
    os << "}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  os << "]\n";
  return os.str();
}

bool notes_ok(const std::vector<FormulaResult>& results) {
  for (const auto& r : results) {
    if (r.check.verdict != "holds" && r.check.verdict != "fails" && r.check.verdict != "incomplete") return false;
    if (r.check.verdict != "holds" && !r.has_corrected) return false;
    if (r.has_corrected && r.corrected.verdict != "holds") return false;
  }
  return !results.empty();
}

}  // namespace tapegrad::notes
