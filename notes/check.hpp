// The notes' formulas checked three ways: hand-derived (as written) vs the autodiff vs central
// finite differences, in double, on several random inputs and sizes.
#ifndef TAPEGRAD_NOTES_CHECK_HPP
#define TAPEGRAD_NOTES_CHECK_HPP

#include <string>
#include <vector>

namespace tapegrad::notes {

struct FormulaCheck {
  std::string verdict;        // "holds", "fails" or "incomplete"
  double max_abs_error = 0;   // max |hand - autodiff| over all cases (NaN when incomplete)
  std::size_t cases = 0;      // random inputs and sizes checked
};

struct FormulaResult {
  std::string id;             // "N3" ... "N18", as in docs/derivations.md
  std::string section;
  std::string formula;        // as the notes write it
  std::string reading;        // what had to be read into it to compute it, if anything
  FormulaCheck check;
  std::string diagnosis;      // for a formula that fails: the pattern found (tg::diagnose)
  bool has_corrected = false;
  std::string corrected_formula;
  FormulaCheck corrected;
};

// Every formula that states a derivative: N3-N7, N9-N12, N14, N16-N18, in that order.
// `seeds` random inputs per size.
std::vector<FormulaResult> check_notes(std::size_t seeds = 3);

// A plain-text table: id, section, formula, verdict, max abs error, diagnosis, corrected formula
// and its verdict.
std::string notes_table(const std::vector<FormulaResult>& results);
// A JSON array, one object per formula:
// {"id", "section", "formula", "verdict", "max_abs_error", "diagnosis"|null,
//  "corrected": {"formula", "verdict", "max_abs_error"}|null}
std::string notes_json(const std::vector<FormulaResult>& results);
// True when every formula has a verdict and every corrected formula holds.
bool notes_ok(const std::vector<FormulaResult>& results);

}  // namespace tapegrad::notes

#endif
