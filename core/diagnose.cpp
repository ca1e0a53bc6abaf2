#include "diagnose.hpp"

#include <cmath>
#include <sstream>

#include "errors.hpp"
#include "tensor.hpp"

namespace tapegrad {

namespace {

using Array = xt::xarray<double>;
using detail::shape_of;

bool close(double x, double y, double rtol, double atol) { return std::abs(x - y) <= atol + rtol * std::abs(y); }

bool matches(const Array& x, const Array& y, double rtol, double atol) { return detail::all_close(x, y, rtol, atol); }

double dot(const Array& a, const Array& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}

bool negligible(const Array& a, double atol) {
  for (double v : a)
    if (std::abs(v) > atol) return false;
  return true;
}

std::string number(double v) {
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

// h[i] = r[i + s] along `axis` for every i where both exist, the overlap covering most of the axis.
bool shifted_match(const Array& h, const Array& r, std::size_t axis, std::ptrdiff_t s, double rtol, double atol) {
  const Shape shape = shape_of(h);
  const auto n = static_cast<std::ptrdiff_t>(shape[axis]);
  if (n < 3 || std::abs(s) >= n - 1) return false;
  std::size_t inner = 1, outer = 1;
  for (std::size_t k = axis + 1; k < shape.size(); ++k) inner *= shape[k];
  for (std::size_t k = 0; k < axis; ++k) outer *= shape[k];
  bool informative = false, changes = false;
  for (std::size_t o = 0; o < outer; ++o)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const std::ptrdiff_t j = i + s;
      if (j < 0 || j >= n) continue;
      for (std::size_t q = 0; q < inner; ++q) {
        const double hv = h.data()[(o * std::size_t(n) + std::size_t(i)) * inner + q];
        const double rv = r.data()[(o * std::size_t(n) + std::size_t(j)) * inner + q];
        if (!close(hv, rv, rtol, atol)) return false;
        informative = informative || std::abs(rv) > atol;
        const double own = r.data()[(o * std::size_t(n) + std::size_t(i)) * inner + q];
        changes = changes || !close(own, rv, rtol, atol);
      }
    }
  // A reference that reads the same shifted (a constant gradient) says nothing about indices.
  return informative && changes;
}

// The single-pattern tests on h (the hand value, possibly negated) against r.
Diagnosis single_pattern(const Array& h, const Array& r, const DiagnosisCandidates& c, double rtol, double atol,
                         bool allow_scale) {
  const Shape shape = shape_of(r);
  for (const auto& [name, value] : c.diagonal_only)
    if (matches(h, value, rtol, atol) && !matches(r, value, rtol, atol))
      return {"only the diagonal of a Jacobian", "equals " + name + ": the cross terms of the chain rule are missing"};
  for (const auto& [name, factor] : c.factors)
    if (matches(Array(h * factor), r, rtol, atol)) return {"missing factor", "missing " + name};
  for (const auto& [name, value] : c.other_gradients)
    if (matches(h, value, rtol, atol) && !matches(r, value, rtol, atol)) return {"wrong variable", "equals " + name};
  // One number is always a multiple of another, and a negligible hand value a multiple of anything:
  // the scale test needs two elements and a hand value above the tolerance.
  if (allow_scale && r.size() > 1 && !negligible(h, atol)) {
    const double rr = dot(r, r);
    if (rr > 0) {
      const double scale = dot(h, r) / rr;
      if (std::abs(scale - 1) > 1e-3 && matches(h, Array(scale * r), rtol, atol))
        return {"scaled by a constant", "hand = " + number(scale) + " x reference"};
    }
  }
  if (shape.size() == 2 && shape[0] == shape[1] && shape[0] > 1 && matches(h, Array(xt::transpose(r)), rtol, atol))
    return {"indices transposed", "hand[i, j] = reference[j, i]"};
  for (std::size_t axis = 0; axis < shape.size(); ++axis)
    for (std::ptrdiff_t s : {-1, 1, -2, 2})
      if (shifted_match(h, r, axis, s, rtol, atol))
        return {"indices shifted", "hand[.., i, ..] = reference[.., i" + std::string(s > 0 ? " + " : " - ") +
                                       std::to_string(std::abs(s)) + ", ..] along axis " + std::to_string(axis)};
  if (c.jacobian && shape.size() == 2 && shape[0] == shape[1] && shape[0] > 1) {
    Array diag = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < shape[0]; ++i) diag(i, i) = r(i, i);
    if (matches(h, diag, rtol, atol) && !matches(r, diag, rtol, atol))
      return {"only the diagonal of a Jacobian", "the off-diagonal (cross) terms are missing"};
  }
  return {};
}

}  // namespace

std::string Diagnosis::str() const {
  if (!found()) return detail.empty() ? "no simple pattern explains the difference" : detail;
  return detail.empty() ? pattern : pattern + " (" + detail + ")";
}

bool detail::all_close(const xt::xarray<double>& x, const xt::xarray<double>& y, double rtol, double atol) {
  if (shape_of(x) != shape_of(y)) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!close(x.data()[i], y.data()[i], rtol, atol)) return false;
  return true;
}

Diagnosis diagnose(const Array& hand, const Array& reference, const DiagnosisCandidates& candidates, double rtol,
                   double atol) {
  if (shape_of(hand) != shape_of(reference))
    throw_shape_error("diagnose", "hand-written shape " + shape_str(shape_of(hand)) + " and reference shape " +
                                      shape_str(shape_of(reference)) + " differ");
  for (const NamedArrays* list : {&candidates.other_gradients, &candidates.factors, &candidates.diagonal_only})
    for (const auto& [name, value] : *list)
      if (shape_of(value) != shape_of(reference))
        throw_shape_error("diagnose", "candidate '" + name + "' has shape " + shape_str(shape_of(value)) +
                                          ", the reference " + shape_str(shape_of(reference)));
  if (matches(hand, reference, rtol, atol) || negligible(reference, atol)) return {};
  const Array flipped = -hand;
  if (matches(flipped, reference, rtol, atol)) return {"sign flipped", "hand = -1 x reference"};
  Diagnosis d = single_pattern(hand, reference, candidates, rtol, atol, true);
  if (d.found()) return d;
  d = single_pattern(flipped, reference, candidates, rtol, atol, false);
  if (d.found()) return {"sign flipped, and " + d.pattern, d.detail};
  return {};
}

}  // namespace tapegrad
