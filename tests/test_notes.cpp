// The notes' verdicts and diagnoses, asserted: a regression in the engine or a layer flips them.
#include "helpers.hpp"

#include <map>
#include <tapegrad/notes/notes.hpp>

namespace notes = tapegrad::notes;

namespace {
std::map<std::string, notes::FormulaResult> by_id(const std::vector<notes::FormulaResult>& results) {
  std::map<std::string, notes::FormulaResult> m;
  for (const auto& r : results) m[r.id] = r;
  return m;
}
}  // namespace

TEST_CASE("every formula of the notes gets its verdict and diagnosis") {
  const auto results = notes::check_notes(3);
  std::vector<std::string> ids;
  for (const auto& r : results) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"N3", "N4", "N5", "N6", "N7", "N9", "N10", "N11", "N12", "N14", "N16", "N17", "N18"});
  auto r = by_id(results);
  for (const char* id : {"N4", "N7", "N9", "N11", "N14", "N16", "N17"}) {
    CAPTURE(id);
    CHECK(r[id].check.verdict == "holds");
    CHECK(r[id].check.max_abs_error < 1e-12);
    CHECK(r[id].diagnosis.empty());
    CHECK(r[id].check.cases >= 9);
  }
  CHECK(r["N3"].check.verdict == "fails");
  CHECK(r["N3"].diagnosis == "sign flipped (hand = -1 x reference)");
  CHECK(r["N5"].check.verdict == "fails");
  CHECK(r["N5"].diagnosis.rfind("sign flipped, and only the diagonal of a Jacobian", 0) == 0);
  // N6 as written keeps N5's l_1: three faults at once, each named.
  CHECK(r["N6"].check.verdict == "fails");
  CHECK(r["N6"].diagnosis == "sign flipped, and only the diagonal of a Jacobian, and an index frozen (equals ∂E/∂l_i · ∂l_i/∂a_i: the cross terms of the chain rule are missing; l_i read at flat index 0 for every element)");
  CHECK(r["N10"].check.verdict == "fails");
  CHECK(r["N10"].diagnosis == "wrong variable (equals ∂E/∂l_i)");
  CHECK(r["N12"].check.verdict == "fails");
  CHECK(r["N12"].diagnosis == "missing factor (missing f'(a_i))");
  CHECK(r["N18"].check.verdict == "incomplete");
  for (const auto& f : results) {
    CAPTURE(f.id);
    CHECK(f.has_corrected == (f.check.verdict != "holds"));
    if (f.check.verdict == "fails") CHECK(f.check.max_abs_error > 1e-3);
  }
  CHECK(notes::notes_ok(results));
}

TEST_CASE("the corrected formulas hold at more sizes and seeds") {
  const auto results = notes::check_notes(6);
  for (const auto& r : results) {
    CAPTURE(r.id);
    if (!r.has_corrected) continue;
    CHECK(r.corrected.verdict == "holds");
    CHECK(r.corrected.max_abs_error < 1e-12);
    CHECK(r.corrected.cases >= 12);
  }
}

TEST_CASE("the notes' table and JSON carry every field") {
  const auto results = notes::check_notes(1);
  const std::string table = notes::notes_table(results), json = notes::notes_json(results);
  CHECK(table.find("| N12 | 2. fully connected | `∂E/∂a_i = ∂E/∂c1 · w_i1 + ∂E/∂c2 · w_i2` | fails |") != std::string::npos);
  CHECK(json.find("\"id\": \"N18\"") != std::string::npos);
  CHECK(json.find("\"verdict\": \"incomplete\", \"max_abs_error\": null") != std::string::npos);
  CHECK(json.find("\"diagnosis\": null, \"corrected\": null") != std::string::npos);   // a formula that holds
}

TEST_CASE("the hand formulas as functions: the notes' 3-class and 3x2 examples") {
  // N3 and its correction on the notes' three classes.
  const Arr l{0.2, 0.5, 0.3}, o{0.0, 1.0, 0.0};
  CHECK(all_close(notes::n3_dE_dl(l, o), Arr{-0.2, 0.5, -0.3}, 1e-15));
  CHECK(all_close(notes::n3_dE_dl_corrected(l, o), Arr{0.2, -0.5, 0.3}, 1e-15));
  // The corrected N6 sums to zero over the classes (softmax is shift-invariant).
  CHECK(std::abs(xt::sum(notes::n6_dE_da_corrected(l, o))()) < 1e-15);
  // N14 on a 4x4 input spreads each dE/db_kl over its window.
  const Arr pooled = notes::n14_dE_da(Arr{{4., 8.}, {12., 16.}}, 4, 4);
  CHECK(pooled(1, 1) == 1.0);
  CHECK(pooled(3, 2) == 4.0);
}

TEST_CASE("N6 with its index read as l_i: the pattern of N5") {
  // E = 1/2 sum (softmax(a) - o)^2 on five classes; the diagnosis of the index-fixed N6.
  const Arr a{0.3, -1.2, 0.8, 0.1, -0.4}, o{0.1, 0.6, 0.0, 0.2, 0.1};
  const TD ta(a, true);
  tg::Tape tape;
  const notes::SoftmaxOutput s(ta, TD(o));
  const auto g = tg::grad(s.E, {ta, s.l});
  const Arr l = s.l.value();
  Arr diag = xt::zeros<double>({5});
  for (std::size_t i = 0; i < 5; ++i) {
    Arr e = xt::zeros<double>({5});
    e(i) = 1;
    diag(i) = tg::grad(s.l, {ta}, e)[0].value()(i);
  }
  tg::DiagnosisCandidates c;
  c.diagonal_only = {{"∂E/∂l_i · ∂l_i/∂a_i", Arr(g[1].value() * diag)}};
  const auto d = tg::diagnose(notes::n6_dE_da_index_fixed(l, o), g[0].value(), c, 1e-8, 1e-10);
  CHECK(d.pattern == "sign flipped, and only the diagonal of a Jacobian");
  CHECK(all_close(notes::n6_dE_da_corrected(l, o), g[0].value(), 1e-14));
}
