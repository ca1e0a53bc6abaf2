// Diagnosis of a hand-written gradient that disagrees with a reference (the autodiff): which
// simple pattern, if any, explains the difference.
#ifndef TAPEGRAD_CORE_DIAGNOSE_HPP
#define TAPEGRAD_CORE_DIAGNOSE_HPP

#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad {

using NamedArrays = std::vector<std::pair<std::string, xt::xarray<double>>>;

// Quantities the patterns are tested against, all of the reference's shape. The caller computes
// them (typically with the autodiff) for the layer at hand; the diagnosis decides from the numbers.
struct DiagnosisCandidates {
  // Gradients of the same output with respect to other quantities, e.g. {"dE/dc", ...}:
  // "wrong variable" when the hand value equals one of them.
  NamedArrays other_gradients;
  // Elementwise factors a formula may have dropped or added, e.g. {"f'(a_i)", ...}: "missing
  // factor" when hand * factor equals the reference, "extra factor" when hand equals reference *
  // factor.
  NamedArrays factors;
  // What the chain rule gives when a Jacobian in it is replaced by its diagonal, e.g. for
  // E(l(a)): dE/dl_i * dl_i/da_i. "only the diagonal of a Jacobian" when the hand value equals it.
  // For a 2-D (Jacobian-shaped) reference the diagonal test needs no candidate.
  NamedArrays diagonal_only;
  // Gradients reduced over another axis than the right one, e.g. {"dE/dy summed over axis 1", ...}:
  // "wrong reduction axis" when the hand value equals one of them.
  NamedArrays wrong_reductions;
  // The right gradient computed with another input rearranged, e.g. {"with input 1 transposed
  // (axes 0 and 1)", ...}: "operand rearranged" when the hand value equals one of them.
  NamedArrays operands_rearranged;
  // The arrays are Jacobians (output elements x input elements): a hand value holding only their
  // diagonal is "only the diagonal of a Jacobian" without a candidate.
  bool jacobian = false;
};

struct Diagnosis {
  std::string pattern;   // "sign flipped", "zero", "scaled by a constant", "only the diagonal of a Jacobian",
                         // "missing factor", "extra factor", "wrong variable", "wrong reduction axis",
                         // "operand rearranged", "indices transposed", "indices flipped",
                         // "indices shifted", "indices flipped and shifted", and these after
                         // "sign flipped, and " or "scaled by a constant, and ";
                         // empty when no pattern explains the difference
  std::string detail;    // e.g. "hand = -1 x reference", "missing f'(a_i)", "equals dE/dl"
  bool found() const { return !pattern.empty(); }
  // "sign flipped (hand = -1 x reference)", or "no simple pattern explains the difference"
  // (or, without a pattern, the detail saying why none could be tested).
  std::string str() const;
};

// Tests the patterns in a fixed order: sign flipped; zero (the hand value negligible); then the
// candidates, zero ones skipped (only the diagonal, missing or extra factor, wrong variable, wrong
// reduction axis, operand rearranged), which name
// what went wrong, each with the hand value's sign as given and flipped ("sign flipped, and ...");
// then scaled by a constant; then the reference's elements rearranged on its own axes (transposes
// of two axes of one extent, flips of any set of axes, shifts along one axis by up to half its
// extent, a flip with a shift), with a fitted scale; then the diagonal of a Jacobian; last (up to
// 64 elements), "an index frozen": a factor candidate read at one index for every element, alone or
// on top of a candidate pattern. A pattern is named only when the hand value, recomputed through
// it, matches the reference.
// Two arrays "match" when every element satisfies |x - y| <= atol + rtol * |y|.
Diagnosis diagnose(const xt::xarray<double>& hand, const xt::xarray<double>& reference,
                   const DiagnosisCandidates& candidates = {}, double rtol = 1e-4, double atol = 1e-7);

namespace detail {
// diagnose() with tiers of candidates: each tier's candidates are tried (with both signs) before
// the next tier's, all before the generic patterns. gradcheck puts the caller's first, then what
// the recorded computation offers.
Diagnosis diagnose_tiers(const xt::xarray<double>& hand, const xt::xarray<double>& reference,
                         const std::vector<const DiagnosisCandidates*>& tiers, double rtol, double atol);
// Same shape, and |x - y| <= atol + rtol * |y| for every element: what "match" means above.
bool all_close(const xt::xarray<double>& x, const xt::xarray<double>& y, double rtol, double atol);
}  // namespace detail

}  // namespace tapegrad

#endif
