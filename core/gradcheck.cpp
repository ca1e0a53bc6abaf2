#include "gradcheck.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>
#include <random>
#include <sstream>

#include "gradcheck_internals.hpp"

namespace tapegrad {

namespace {

using Array = xt::xarray<double>;
using detail::shape_of;
using detail::unit_random;
using Problem = detail::GradcheckProblem;
// A Jacobian block: rows are output elements, columns the elements of one input.
using Matrix = std::vector<std::vector<double>>;

std::string multi_index(std::size_t flat, const Shape& shape) { return shape_str(unravel_index(flat, shape)); }

// v^T J from a hand-written gradient, for the inputs listed in `vars`.
std::vector<std::vector<Array>> hand_vjps(const HandGradient& hand, const std::vector<Tensor<double>>& inputs,
                                          const std::vector<std::size_t>& vars, const std::vector<std::string>& names,
                                          const std::vector<Array>& seeds) {
  std::vector<std::vector<Array>> result;
  for (const Array& seed : seeds) {
    std::vector<Array> all = hand(inputs, seed);
    if (all.size() != inputs.size())
      throw_value_error("gradcheck", "the hand-written gradient returned " + std::to_string(all.size()) +
                                         " arrays for " + std::to_string(inputs.size()) + " inputs");
    std::vector<Array> row;
    for (std::size_t k = 0; k < vars.size(); ++k) {
      Array& g = all[vars[k]];
      const Shape expected = inputs[vars[k]].shape(), got = shape_of(g);
      if (got != expected) {
        // The same dimensions in another order: most likely a transpose missing or a broadcast
        // taken the wrong way.
        const bool permuted = std::is_permutation(got.begin(), got.end(), expected.begin(), expected.end());
        throw_shape_error("gradcheck", "the hand-written gradient for " + names[k] + " has shape " + shape_str(got) +
                                           ", expected " + shape_str(expected) +
                                           (permuted ? " (the same dimensions in another order: indices transposed?)" : ""));
      }
      row.push_back(std::move(g));
    }
    result.push_back(std::move(row));
  }
  return result;
}

// `where()` gives the element's (input index, output index) strings: built only for failures, as
// formatting them for every passing element cost more than the comparisons.
template <class Where>
void compare(GradcheckComparison& c, const Where& where, double analytic, double numeric, const GradcheckOptions& o) {
  const double abs_error = std::abs(analytic - numeric);
  const double scale = std::max(std::abs(analytic), std::abs(numeric));
  const double rel_error = scale > 0 ? abs_error / scale : 0.0;
  ++c.checked;
  c.max_abs_error = std::max(c.max_abs_error, abs_error);
  c.max_rel_error = std::max(c.max_rel_error, rel_error);
  // A NaN on either side fails.
  if (!(abs_error <= o.atol + o.rtol * std::abs(numeric))) {
    ++c.failed;
    auto [index, output_index] = where();
    c.worst.push_back({std::move(index), std::move(output_index), analytic, numeric, abs_error, rel_error});
  }
}

void keep_worst(GradcheckComparison& c, std::size_t n) {
  std::stable_sort(c.worst.begin(), c.worst.end(), [](const GradcheckElement& a, const GradcheckElement& b) {
    return a.abs_error > b.abs_error || (std::isnan(a.abs_error) && !std::isnan(b.abs_error));
  });
  if (c.worst.size() > n) c.worst.resize(n);
}

// Random seeds a non-scalar output's hand-written v^T J is diagnosed on.
constexpr std::size_t diagnosis_seed_count = 3;

// hand(seeds) gives a hand-written v^T J per seed for each checked tensor, or is empty.
using HandRows = std::function<std::vector<std::vector<Array>>(const std::vector<Array>& seeds)>;

// The Taylor tests of GradcheckOptions::taylor: the autodiff's gradient, and the hand-written one.
std::vector<TaylorTest> taylor_tests(const Problem& p, const HandRows& hand, const GradcheckOptions& o) {
  std::mt19937_64 rng(o.seed + 4);
  const Array v = p.out_shape.empty() ? Array(xt::ones<double>(p.out_shape)) : unit_random(p.out_shape, rng);
  const auto F = [&](const std::vector<Array>& values) { return double(xt::sum(v * p.value(values))()); };
  const double F0 = F(p.values);
  const auto autodiff = p.autodiff({v})[0];
  const auto by_hand = hand ? hand({v})[0] : std::vector<Array>();
  std::vector<TaylorTest> tests;
  for (std::size_t k = 0; k < p.values.size(); ++k) {
    const Array u = unit_random(shape_of(p.values[k]), rng);
    std::vector<double> steps, moved;
    for (std::size_t j = 0; j < o.taylor_steps; ++j) {
      const double h = o.taylor_step / double(std::size_t(1) << j);
      std::vector<Array> values = p.values;
      values[k] += h * u;
      steps.push_back(h);
      moved.push_back(F(values));
    }
    auto test = [&](const char* what, const Array& g) {
      TaylorTest t;
      t.input = p.names[k];
      t.what = what;
      t.steps = steps;
      const double slope_g = xt::sum(g * u)();
      std::vector<double> lx, ly;
      for (std::size_t j = 0; j < steps.size(); ++j) {
        const double r = std::abs(moved[j] - F0 - steps[j] * slope_g);
        t.residuals.push_back(r);
        // Above what rounding leaves in F(x + h u) - F(x).
        if (r > 1e-12 * (1 + std::abs(F0))) {
          lx.push_back(std::log(steps[j]));
          ly.push_back(std::log(r));
        }
      }
      // The asymptotic slope: over the four smallest steps left, where the lowest-order term of the
      // residual dominates.
      if (lx.size() > 4) {
        lx.erase(lx.begin(), lx.end() - 4);
        ly.erase(ly.begin(), ly.end() - 4);
      }
      if (lx.size() < 3) {
        t.slope = std::numeric_limits<double>::quiet_NaN();
      } else {
        const double n = double(lx.size());
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (std::size_t j = 0; j < lx.size(); ++j) {
          sx += lx[j];
          sy += ly[j];
          sxx += lx[j] * lx[j];
          sxy += lx[j] * ly[j];
        }
        t.slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
      }
      tests.push_back(std::move(t));
    };
    test("autodiff", autodiff[k]);
    if (hand) test("hand-written", by_hand[k]);
  }
  return tests;
}

GradcheckReport run(Problem p, const HandRows& hand, const GradcheckOptions& o,
                    const std::vector<DiagnosisCandidates>& candidates = {}) {
  if (!(o.eps > 0)) throw_value_error("gradcheck", "eps must be > 0, got " + number_str(o.eps));
  const Array y0 = p.value(p.values);
  p.out_shape = shape_of(y0);
  const std::size_t m = y0.size();
  std::size_t n = 0;
  for (const Array& v : p.values) n += v.size();
  const bool full = o.mode == GradcheckOptions::Mode::full ||
                    (o.mode == GradcheckOptions::Mode::automatic && m * n <= o.full_limit);

  GradcheckReport report;
  std::ostringstream summary;
  summary << (full ? "full Jacobian" : "random projections") << ", " << m << " output x " << n
          << " input elements, eps=" << o.eps << (o.richardson ? " (Richardson)" : "") << " atol=" << o.atol << " rtol=" << o.rtol;
  report.summary = summary.str();

  auto comparison = [&](const char* what, std::size_t k) {
    GradcheckComparison c;
    c.what = what;
    c.input = p.names[k];
    c.input_shape = shape_of(p.values[k]);
    return c;
  };
  // The diagnosis of checked tensor k's hand-written gradient, set below for the mode.
  std::function<Diagnosis(std::size_t)> diagnosis;
  // The candidates for checked tensor k's diagnosis with this seed, in two tiers: the caller's
  // (all of them for a scalar output's gradient; for v^T J only the elementwise factors, which do
  // not depend on the seed), then what the recorded computation offers (detail::tape_candidates).
  using Tiers = std::array<DiagnosisCandidates, 2>;
  auto candidates_of = [&](std::size_t k, bool scalar, const Array& seed) {
    Tiers c{k < candidates.size() ? candidates[k] : DiagnosisCandidates(), detail::tape_candidates(p, k, seed)};
    if (!scalar) {
      c[0].other_gradients.clear();
      c[0].diagonal_only.clear();
    }
    return c;
  };
  // Random seeds of the output's shape for a diagnosis of v^T J.
  auto diagnosis_seeds = [&] {
    std::mt19937_64 rng(o.seed + 1);
    std::normal_distribution<double> normal;
    std::vector<Array> seeds;
    for (std::size_t q = 0; q < diagnosis_seed_count; ++q) {
      Array v = xt::zeros<double>(p.out_shape);
      for (auto& x : v) x = normal(rng);
      seeds.push_back(std::move(v));
    }
    return seeds;
  };
  // One pattern must explain every seed's difference, or none is named.
  auto diagnose_all = [&](const std::vector<Array>& hands, const std::vector<Array>& autos,
                          const std::vector<Tiers>& cands) {
    Diagnosis first;
    for (std::size_t q = 0; q < hands.size(); ++q) {
      const Diagnosis d = detail::diagnose_tiers(hands[q], autos[q], {&cands[q][0], &cands[q][1]}, o.rtol, o.atol);
      if (q == 0) {
        first = d;
      } else if (d.str() != first.str()) {
        return Diagnosis{"", "no single pattern explains every seed (seed 1: " + first.str() + "; seed " +
                                 std::to_string(q + 1) + ": " + d.str() + ")"};
      }
    }
    return first;
  };
  // The three sources on the same elements: autodiff (a), hand-written (h), numeric (num).
  auto add_comparisons = [&](std::size_t k, const std::function<void(GradcheckComparison&, GradcheckComparison&,
                                                                     GradcheckComparison&)>& fill) {
    GradcheckComparison auto_num = comparison("autodiff vs finite differences", k);
    GradcheckComparison hand_num = comparison("hand-written vs finite differences", k);
    GradcheckComparison hand_auto = comparison("hand-written vs autodiff", k);
    fill(auto_num, hand_num, hand_auto);
    if (hand && !hand_auto.ok() && diagnosis) {
      hand_auto.diagnosis = diagnosis(k).str();
      hand_num.diagnosis = hand_auto.diagnosis;
    }
    for (GradcheckComparison* c : {&auto_num, &hand_num, &hand_auto}) {
      if (c->checked == 0 && c != &auto_num) continue;
      keep_worst(*c, o.worst);
      report.comparisons.push_back(std::move(*c));
    }
  };

  if (full) {
    std::vector<Array> seeds;
    for (std::size_t j = 0; j < m; ++j) {
      Array e = xt::zeros<double>(y0.shape());
      e.data()[j] = 1.0;
      seeds.push_back(std::move(e));
    }
    const auto auto_rows = p.autodiff(seeds);
    const auto hand_rows = hand ? hand(seeds) : std::vector<std::vector<Array>>();
    // v^T J for random seeds v, from the rows already computed (a VJP is linear in its seed), and
    // for an output of the input's size, what the diagonal of the Jacobian alone gives.
    diagnosis = [&](std::size_t k) {
      if (m == 1)
        return diagnose_all({hand_rows[0][k]}, {auto_rows[0][k]}, {candidates_of(k, true, xt::ones<double>(p.out_shape))});
      std::vector<Array> hands, autos;
      std::vector<Tiers> cands;
      for (const Array& v : diagnosis_seeds()) {
        Array h = xt::zeros<double>(p.values[k].shape()), a = h;
        for (std::size_t j = 0; j < m; ++j) {
          h += v.data()[j] * hand_rows[j][k];
          a += v.data()[j] * auto_rows[j][k];
        }
        Tiers c = candidates_of(k, false, v);
        if (p.values[k].size() == m) {
          Array diagonal = xt::zeros<double>(p.values[k].shape());
          for (std::size_t i = 0; i < m; ++i) diagonal.data()[i] = auto_rows[i][k].data()[i] * v.data()[i];
          c[0].diagonal_only.emplace_back("diag(J) ⊙ v", std::move(diagonal));
        }
        hands.push_back(std::move(h));
        autos.push_back(std::move(a));
        cands.push_back(std::move(c));
      }
      return diagnose_all(hands, autos, cands);
    };
    for (std::size_t k = 0; k < p.values.size(); ++k) {
      const Shape shape = shape_of(p.values[k]);
      const std::size_t nk = p.values[k].size();
      Matrix numeric(m, std::vector<double>(nk));
      std::vector<Array> scratch = p.values;
      for (std::size_t e = 0; e < nk; ++e) {
        const Array column = p.column(k, e, o, scratch);
        for (std::size_t j = 0; j < m; ++j) numeric[j][e] = column.data()[j];
      }
      add_comparisons(k, [&](GradcheckComparison& an, GradcheckComparison& hn, GradcheckComparison& ha) {
        for (std::size_t j = 0; j < m; ++j) {
          for (std::size_t e = 0; e < nk; ++e) {
            auto where = [&] {
              return std::make_pair(multi_index(e, shape),
                                    m == 1 && p.out_shape.empty() ? std::string() : multi_index(j, p.out_shape));
            };
            const double a = auto_rows[j][k].data()[e];
            compare(an, where, a, numeric[j][e], o);
            if (hand) {
              const double h = hand_rows[j][k].data()[e];
              compare(hn, where, h, numeric[j][e], o);
              compare(ha, where, h, a, o);
            }
          }
        }
      });
    }
  } else {
    std::mt19937_64 rng(o.seed);
    for (std::size_t k = 0; k < p.values.size(); ++k) {
      std::vector<Array> us, vs;
      for (std::size_t q = 0; q < o.projections; ++q) {
        us.push_back(unit_random(shape_of(p.values[k]), rng));
        vs.push_back(unit_random(p.out_shape, rng));
      }
      const auto auto_rows = p.autodiff(vs);
      const auto hand_rows = hand ? hand(vs) : std::vector<std::vector<Array>>();
      // The whole gradient (scalar output) or v^T J for a few random seeds: one reverse walk and one
      // call of the hand-written gradient each, whatever the sizes.
      diagnosis = [&](std::size_t kk) {
        const std::vector<Array> seeds = m == 1 ? std::vector<Array>{Array(xt::ones<double>(p.out_shape))} : diagnosis_seeds();
        const auto hands = hand(seeds), autos = p.autodiff(seeds);
        std::vector<Array> h, a;
        for (std::size_t q = 0; q < seeds.size(); ++q) {
          h.push_back(hands[q][kk]);
          a.push_back(autos[q][kk]);
        }
        std::vector<Tiers> cands;
        for (const Array& seed : seeds) cands.push_back(candidates_of(kk, m == 1, seed));
        return diagnose_all(h, a, cands);
      };
      add_comparisons(k, [&](GradcheckComparison& an, GradcheckComparison& hn, GradcheckComparison& ha) {
        for (std::size_t q = 0; q < o.projections; ++q) {
          const double num = xt::sum(vs[q] * p.directional(k, us[q], o))();
          const double a = xt::sum(auto_rows[q][k] * us[q])();
          auto where = [q] { return std::make_pair("projection " + std::to_string(q), std::string()); };
          compare(an, where, a, num, o);
          if (hand) {
            const double h = xt::sum(hand_rows[q][k] * us[q])();
            compare(hn, where, h, num, o);
            compare(ha, where, h, a, o);
          }
        }
      });
    }
  }
  if (o.forward) {
    // <v, J u> by forward mode against central differences and against reverse mode <J^T v, u>.
    std::mt19937_64 rng(o.seed + 5);
    for (std::size_t k = 0; k < p.values.size(); ++k) {
      GradcheckComparison vs_numeric = comparison("forward mode vs finite differences", k);
      GradcheckComparison vs_reverse = comparison("forward mode vs reverse mode", k);
      std::vector<Array> us, vs;
      for (std::size_t q = 0; q < o.projections; ++q) {
        us.push_back(unit_random(shape_of(p.values[k]), rng));
        vs.push_back(unit_random(p.out_shape, rng));
      }
      // All the projections' tangents at once, as a batch.
      const std::vector<double> fwd = o.projections > 0 ? detail::forward_projections(p, k, us, vs) : std::vector<double>();
      for (std::size_t q = 0; q < o.projections; ++q) {
        const double num = xt::sum(vs[q] * p.directional(k, us[q], o))();
        const double rev = xt::sum(p.autodiff({vs[q]})[0][k] * us[q])();
        auto where = [q] { return std::make_pair("projection " + std::to_string(q), std::string()); };
        compare(vs_numeric, where, fwd[q], num, o);
        compare(vs_reverse, where, fwd[q], rev, o);
      }
      for (GradcheckComparison* c : {&vs_numeric, &vs_reverse}) {
        keep_worst(*c, o.worst);
        report.comparisons.push_back(std::move(*c));
      }
    }
  }
  if (o.taylor) report.taylor = taylor_tests(p, hand, o);
  const bool autodiff_wrong = std::any_of(report.comparisons.begin(), report.comparisons.end(), [](const auto& c) {
    return c.what == "autodiff vs finite differences" && !c.ok();
  });
  if (autodiff_wrong && o.localize) report.culprits = detail::localize(p, o);
  return report;
}

}  // namespace

std::string TaylorTest::str() const {
  std::ostringstream os;
  os << input << ", " << what << ": Taylor test ";
  if (std::isnan(slope)) {
    os << "residuals at rounding level (F is linear along the direction and the gradient right)";
    return os.str();
  }
  os << "slope " << std::fixed << std::setprecision(2) << slope;
  if (std::abs(slope - 2) <= 0.25)
    os << ": right (2 expected)";
  else if (std::abs(slope - 1) <= 0.25)
    os << ": wrong (1: the gradient misses a first-order term)";
  else
    os << ": neither 2 (right) nor 1 (wrong); try another taylor_step";
  return os.str();
}

std::string GradcheckCulprit::str() const {
  std::string s = "#" + std::to_string(position) + " '" + op + "'" + (label.empty() ? "" : " (label '" + label + "')") +
                  ": the gradient of its output agrees with finite differences, the gradient of its input " +
                  std::to_string(input) + " (shape " + shape_str(input_shape) + ") does not: its VJP is wrong";
  return diagnosis.empty() ? s : s + "; diagnosis: " + diagnosis;
}

bool GradcheckReport::ok() const {
  return std::all_of(comparisons.begin(), comparisons.end(), [](const auto& c) { return c.ok(); });
}

std::string GradcheckReport::str() const {
  std::ostringstream os;
  os << "gradcheck " << (ok() ? "passed" : "FAILED") << ": " << summary << '\n';
  for (const auto& c : comparisons) {
    os << "  " << c.input << " shape " << shape_str(c.input_shape) << ", " << c.what << ": ";
    if (c.ok())
      os << "ok";
    else
      os << c.failed << " of " << c.checked << " out of tolerance";
    os << " (max abs err " << std::setprecision(3) << c.max_abs_error << ", max rel err " << c.max_rel_error
       << ")\n";
    if (!c.diagnosis.empty()) os << "    diagnosis: " << c.diagnosis << '\n';
    if (c.worst.empty()) continue;
    const bool with_output = std::any_of(c.worst.begin(), c.worst.end(),
                                         [](const auto& e) { return !e.output_index.empty(); });
    os << "    " << std::left << std::setw(16) << "index";
    if (with_output) os << std::setw(14) << "output";
    os << std::right << std::setw(16) << (c.what.rfind("hand", 0) == 0 ? "hand-written" : "analytic")
       << std::setw(16) << (c.what.find("vs autodiff") != std::string::npos ? "autodiff" : "numeric")
       << std::setw(12) << "abs err" << std::setw(12) << "rel err" << '\n';
    for (const auto& e : c.worst) {
      os << "    " << std::left << std::setw(16) << e.index;
      if (with_output) os << std::setw(14) << e.output_index;
      os << std::right << std::setprecision(8) << std::setw(16) << e.analytic << std::setw(16) << e.numeric
         << std::setprecision(3) << std::setw(12) << e.abs_error << std::setw(12) << e.rel_error << '\n';
    }
  }
  for (const auto& t : taylor) os << "  " << t.str() << '\n';
  if (!culprits.empty()) {
    os << "  where the autodiff goes wrong:\n";
    for (const auto& c : culprits) os << "    " << c.str() << '\n';
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const GradcheckReport& report) { return os << report.str(); }

namespace {

std::string input_name(const GradcheckOptions& o, std::size_t i) {
  return i < o.names.size() ? "'" + o.names[i] + "'" : "input " + std::to_string(i);
}

GradcheckReport check_inputs(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                             const HandGradient* hand, const GradcheckOptions& o) {
  if (!f) throw_usage_error("gradcheck", "the function is empty");
  std::vector<Tensor<double>> originals;
  std::vector<std::size_t> vars;
  Problem p;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw_usage_error("gradcheck", "input " + std::to_string(i) + " is undefined");
    originals.push_back(inputs[i].detach().set_requires_grad(inputs[i].requires_grad()));
    if (!inputs[i].requires_grad()) continue;
    vars.push_back(i);
    p.values.push_back(inputs[i].value());
    p.names.push_back(input_name(o, i));
  }
  if (vars.empty())
    throw_value_error("gradcheck", "no input requires grad: mark the inputs to check with requires_grad");
  p.forward = [&f, originals, vars](const std::vector<Array>& values, std::vector<Tensor<double>>& wrt,
                                     const detail::Tangent* tangent) {
    std::vector<Tensor<double>> leaves = originals;
    for (std::size_t k = 0; k < vars.size(); ++k) {
      leaves[vars[k]] = Tensor<double>(values[k], true);
      wrt.push_back(leaves[vars[k]]);
    }
    detail::set_tangent(tangent, wrt);
    for (std::size_t i = 0; i < leaves.size(); ++i)
      if (!leaves[i].requires_grad()) leaves[i] = leaves[i].detach();   // fresh, in case f changes it
    return f(leaves);
  };
  HandRows rows;
  if (hand)
    rows = [hand, &originals, &vars, names = p.names](const std::vector<Array>& seeds) {
      return hand_vjps(*hand, originals, vars, names, seeds);
    };
  std::vector<DiagnosisCandidates> candidates;
  for (std::size_t i : vars) candidates.push_back(i < o.candidates.size() ? o.candidates[i] : DiagnosisCandidates());
  return run(std::move(p), rows, o, candidates);
}

}  // namespace

GradcheckReport gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options) {
  return check_inputs(f, inputs, nullptr, options);
}

GradcheckReport gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const HandGradient& hand, const GradcheckOptions& options) {
  if (!hand) throw_usage_error("gradcheck", "the hand-written gradient function is empty");
  return check_inputs(f, inputs, &hand, options);
}

Array numeric_gradient(const std::function<double()>& f, Tensor<double> x, double eps) {
  if (!f) throw_usage_error("numeric_gradient", "the function is empty");
  if (!(eps > 0)) throw_value_error("numeric_gradient", "eps must be > 0, got " + number_str(eps));
  const Array base = x.value();
  struct Restore {
    Tensor<double>& x;
    const Array& base;
    ~Restore() { x.assign(base); }
  } restore{x, base};
  Array g = xt::zeros<double>(base.shape());
  Array p = base;
  for (std::size_t i = 0; i < base.size(); ++i) {
    g.data()[i] = detail::finite_difference(
        [&](double t) {
          p.data()[i] = base.data()[i] + t;
          x.assign(p);
          return f();
        },
        eps, false);
    p.data()[i] = base.data()[i];
  }
  return g;
}

GradcheckReport gradcheck_parameters(const std::function<Tensor<double>()>& f,
                                     const std::vector<std::pair<std::string, Tensor<double>>>& parameters,
                                     const GradcheckOptions& options) {
  if (!f) throw_usage_error("gradcheck_parameters", "the function is empty");
  if (parameters.empty()) throw_value_error("gradcheck_parameters", "no parameters to check");
  Problem p;
  std::vector<Tensor<double>> params;
  for (const auto& [name, t] : parameters) {
    if (!t.defined()) throw_usage_error("gradcheck_parameters", "parameter '" + name + "' is undefined");
    if (!t.is_leaf()) throw_usage_error("gradcheck_parameters", "parameter '" + name + "' is not a leaf tensor");
    params.push_back(t);
    p.values.push_back(t.value());
    p.names.push_back("'" + name + "'");
  }
  // The parameters are perturbed in place; their values (and requires_grad) are restored after.
  struct Restore {
    std::vector<Tensor<double>>& params;
    std::vector<Array> values;
    std::vector<bool> flags;
    ~Restore() {
      for (std::size_t k = 0; k < params.size(); ++k) {
        params[k].assign(values[k]);
        params[k].set_requires_grad(flags[k]);
      }
    }
  } restore{params, p.values, {}};
  for (auto& t : params) {
    restore.flags.push_back(t.requires_grad());
    t.set_requires_grad(true);
  }
  p.forward = [&f, &params](const std::vector<Array>& values, std::vector<Tensor<double>>& wrt,
                             const detail::Tangent* tangent) {
    for (std::size_t k = 0; k < params.size(); ++k) {
      params[k].assign(values[k]);
      wrt.push_back(params[k]);
    }
    detail::set_tangent(tangent, wrt);
    return f();
  };
  return run(std::move(p), HandRows(), options);
}

GradcheckReport gradgradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                              const GradcheckOptions& options) {
  if (!f) throw_usage_error("gradgradcheck", "the function is empty");
  std::vector<std::size_t> vars;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw_usage_error("gradgradcheck", "input " + std::to_string(i) + " is undefined");
    if (inputs[i].requires_grad()) vars.push_back(i);
  }
  if (vars.empty())
    throw_value_error("gradgradcheck", "no input requires grad: mark the inputs to check with requires_grad");
  Shape out_shape;
  {
    NoGrad no_grad;
    const Tensor<double> y = f(inputs);
    if (!y.defined()) throw_usage_error("gradgradcheck", "the function returned an undefined tensor");
    out_shape = y.shape();
  }
  std::mt19937_64 rng(options.seed + 3);
  const Array v = detail::unit_random(out_shape, rng);
  std::vector<Array> w;
  for (std::size_t i : vars) w.push_back(detail::unit_random(inputs[i].shape(), rng));
  const GradcheckFunction G = [f, vars, v, w](const std::vector<Tensor<double>>& in) {
    std::vector<Tensor<double>> xs;
    for (std::size_t i : vars) xs.push_back(in[i]);
    const std::vector<Tensor<double>> g = grad(f(in), xs, v, /*create_graph=*/true);
    // G = sum_k w_k . g_k, recorded as a custom op (core uses no op): dG/dg_k = w_k.
    double value = 0;
    for (std::size_t k = 0; k < g.size(); ++k) value += xt::sum(w[k] * g[k].value())();
    return record<double>("gradgradcheck_weights", g, Array(value), [w](const VjpArgs<double>& a) {
      Gradients<double> grads;
      for (const Array& wk : w) grads.push_back(Tensor<double>(Array(a.grad.value()() * wk)));
      return grads;
    }, Saved::nothing);
  };
  GradcheckReport report = check_inputs(G, inputs, nullptr, options);
  report.summary = "second derivatives, through v^T df/dx for a fixed random v: " + report.summary;
  return report;
}

}  // namespace tapegrad
