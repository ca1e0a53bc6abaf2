#include "diagnose.hpp"

#include <algorithm>
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

// The frozen-index test tries every index of every factor: for small tensors only.
constexpr std::size_t max_frozen_index_elements = 64;

std::string axes_str(const std::vector<std::size_t>& axes) {
  std::string s;
  for (std::size_t a : axes) s += (s.empty() ? "" : ", ") + std::to_string(a);
  return axes.size() == 1 ? "axis " + s : "axes (" + s + ")";
}

// Where each element of the hand value reads the reference, on the tensor's own axes: hand axis k
// reads reference axis `axis[k]`, reversed if `flip[k]`, then moved by `shift[k]`. Elements that
// read outside the reference are not compared (a shift).
struct AxisMap {
  std::vector<std::size_t> axis;
  std::vector<char> flip;
  std::vector<std::ptrdiff_t> shift;
  std::string pattern, detail;   // what it is called when it explains the difference

  explicit AxisMap(std::size_t rank) : axis(rank), flip(rank, 0), shift(rank, 0) {
    for (std::size_t k = 0; k < rank; ++k) axis[k] = k;
  }
};

// hand ≈ scale x reference read through `map`, with the scale fitted (least squares over the
// compared elements) unless `fixed` is given. It must compare at least half the elements, two of
// them above the tolerance, and read the reference differently from where it is.
struct MapMatch {
  bool found = false;
  double scale = 1;
};

MapMatch match_through(const Array& h, const Array& r, const AxisMap& map, const double* fixed, double rtol,
                       double atol) {
  const Shape shape = shape_of(r);
  const std::size_t rank = shape.size(), n = r.size();
  std::vector<std::ptrdiff_t> stride(rank);
  for (std::size_t k = rank, s = 1; k-- > 0;) {
    stride[k] = static_cast<std::ptrdiff_t>(s);
    s *= shape[k];
  }
  // Visits (hand flat index, reference flat index) for every compared element; stops when visit
  // returns false.
  auto walk = [&](auto visit) {
    std::vector<std::size_t> index(rank, 0);
    for (std::size_t i = 0; i < n; ++i) {
      std::ptrdiff_t j = 0;
      bool inside = true;
      for (std::size_t k = 0; k < rank && inside; ++k) {
        const auto extent = static_cast<std::ptrdiff_t>(shape[map.axis[k]]);
        std::ptrdiff_t at = map.flip[k] ? extent - 1 - std::ptrdiff_t(index[k]) : std::ptrdiff_t(index[k]);
        at += map.shift[k];
        inside = at >= 0 && at < extent;
        j += at * stride[map.axis[k]];
      }
      if (inside && !visit(i, std::size_t(j))) return false;
      for (std::size_t k = rank; k-- > 0;) {
        if (++index[k] < shape[k]) break;
        index[k] = 0;
      }
    }
    return true;
  };
  const double* hp = h.data();
  const double* rp = r.data();
  // A first guess of the scale from the first element above the tolerance, checked loosely, so
  // that the many maps that do not fit are rejected after a few elements.
  double guess = fixed ? *fixed : 0;
  bool guessed = fixed != nullptr;
  const bool rough = walk([&](std::size_t i, std::size_t j) {
    if (!guessed) {
      if (std::abs(rp[j]) <= atol) return std::abs(hp[i]) <= 2 * atol;
      guess = hp[i] / rp[j];
      guessed = true;
    }
    return close(hp[i], guess * rp[j], 4 * rtol, 2 * atol);
  });
  if (!rough || !guessed) return {};
  double hr = 0, rr = 0;
  std::size_t compared = 0, informative = 0;
  bool moves = false;
  walk([&](std::size_t i, std::size_t j) {
    hr += hp[i] * rp[j];
    rr += rp[j] * rp[j];
    ++compared;
    informative += std::abs(rp[j]) > atol;
    moves = moves || !close(rp[i], rp[j], rtol, atol);
    return true;
  });
  if (rr <= 0 || 2 * compared < n || informative < 2) return {};
  const bool identity = map.pattern.empty();
  if (!identity && !moves) return {};
  const double scale = fixed ? *fixed : hr / rr;
  if (!walk([&](std::size_t i, std::size_t j) { return close(hp[i], scale * rp[j], rtol, atol); })) return {};
  return {true, scale};
}

// The rearrangements tried, on the tensor's own axes: transposes of two axes of one extent, flips
// of any set of axes, shifts along one axis by up to half its extent, and a flip with a shift.
std::vector<AxisMap> rearrangements(const Shape& shape) {
  const std::size_t rank = shape.size();
  std::vector<AxisMap> maps;
  for (std::size_t a = 0; a < rank; ++a)
    for (std::size_t b = a + 1; b < rank; ++b)
      if (shape[a] == shape[b] && shape[a] > 1) {
        AxisMap m(rank);
        std::swap(m.axis[a], m.axis[b]);
        m.pattern = "indices transposed";
        m.detail = rank == 2 ? "hand[i, j] = reference[j, i]"
                             : "axes " + std::to_string(a) + " and " + std::to_string(b) + " swapped";
        maps.push_back(std::move(m));
      }
  std::vector<std::size_t> flippable;
  for (std::size_t k = 0; k < rank; ++k)
    if (shape[k] > 1) flippable.push_back(k);
  std::vector<AxisMap> flips;
  if (flippable.size() <= 6)
    for (std::size_t set = 1; set < (std::size_t(1) << flippable.size()); ++set) {
      AxisMap m(rank);
      std::vector<std::size_t> axes;
      for (std::size_t q = 0; q < flippable.size(); ++q)
        if (set >> q & 1) {
          m.flip[flippable[q]] = 1;
          axes.push_back(flippable[q]);
        }
      m.pattern = "indices flipped";
      m.detail = "hand[.., i, ..] = reference[.., n - 1 - i, ..] along " + axes_str(axes);
      flips.push_back(std::move(m));
    }
  maps.insert(maps.end(), flips.begin(), flips.end());
  auto shifts_of = [&](const AxisMap& base) {
    std::vector<AxisMap> out;
    for (std::size_t k = 0; k < rank; ++k) {
      const auto n = static_cast<std::ptrdiff_t>(shape[k]);
      if (n < 3) continue;
      for (std::ptrdiff_t size = 1; size <= n / 2; ++size)
        for (std::ptrdiff_t s : {size, -size}) {
          AxisMap m = base;
          m.shift[k] = s;
          const std::string by = "reference[.., i" + std::string(s > 0 ? " + " : " - ") + std::to_string(std::abs(s)) +
                                 ", ..] along axis " + std::to_string(k);
          m.pattern = base.pattern.empty() ? "indices shifted" : "indices flipped and shifted";
          m.detail = base.pattern.empty() ? "hand[.., i, ..] = " + by : base.detail + ", then read at " + by;
          out.push_back(std::move(m));
        }
    }
    return out;
  };
  const std::vector<AxisMap> plain_shifts = shifts_of(AxisMap(rank));
  maps.insert(maps.end(), plain_shifts.begin(), plain_shifts.end());
  if (rank <= 4)
    for (const AxisMap& f : flips) {
      const std::vector<AxisMap> s = shifts_of(f);
      maps.insert(maps.end(), s.begin(), s.end());
    }
  return maps;
}

// The patterns that name what went wrong from the caller's candidates, on h (the hand value,
// possibly negated) against r.
Diagnosis candidate_pattern(const Array& h, const Array& r, const DiagnosisCandidates& c, double rtol, double atol) {
  // A candidate that is zero says nothing (the gradient at an op the output does not read).
  const auto names = [&](const Array& value) { return !negligible(value, atol) && matches(h, value, rtol, atol) &&
                                                      !matches(r, value, rtol, atol); };
  for (const auto& [name, value] : c.diagonal_only)
    if (names(value))
      return {"only the diagonal of a Jacobian", "equals " + name + ": the cross terms of the chain rule are missing"};
  for (const auto& [name, factor] : c.factors) {
    if (matches(Array(h * factor), r, rtol, atol)) return {"missing factor", "missing " + name};
    if (matches(h, Array(r * factor), rtol, atol)) return {"extra factor", "times " + name};
  }
  for (const auto& [name, value] : c.other_gradients)
    if (names(value)) return {"wrong variable", "equals " + name};
  for (const auto& [name, value] : c.wrong_reductions)
    if (names(value)) return {"wrong reduction axis", "equals " + name};
  for (const auto& [name, value] : c.operands_rearranged)
    if (names(value)) return {"operand rearranged", "equals the gradient " + name};
  return {};
}

// "sign flipped, and <pattern>" for a scale of -1, "scaled by a constant, and <pattern>" for
// another, the pattern alone for 1.
Diagnosis scaled(const AxisMap& map, double scale) {
  if (std::abs(scale - 1) <= 1e-3) return {map.pattern, map.detail};
  if (std::abs(scale + 1) <= 1e-3) return {"sign flipped, and " + map.pattern, map.detail};
  return {"scaled by a constant, and " + map.pattern, map.detail + "; hand = " + number(scale) + " x that"};
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
  return detail::diagnose_tiers(hand, reference, {&candidates}, rtol, atol);
}

Diagnosis detail::diagnose_tiers(const Array& hand, const Array& reference,
                                 const std::vector<const DiagnosisCandidates*>& tiers, double rtol, double atol) {
  if (shape_of(hand) != shape_of(reference))
    throw_shape_error("diagnose", "hand-written shape " + shape_str(shape_of(hand)) + " and reference shape " +
                                      shape_str(shape_of(reference)) + " differ");
  for (const DiagnosisCandidates* candidates : tiers)
    for (const NamedArrays* list : {&candidates->other_gradients, &candidates->factors, &candidates->diagonal_only,
                                    &candidates->wrong_reductions, &candidates->operands_rearranged})
      for (const auto& [name, value] : *list)
        if (shape_of(value) != shape_of(reference))
          throw_shape_error("diagnose", "candidate '" + name + "' has shape " + shape_str(shape_of(value)) +
                                            ", the reference " + shape_str(shape_of(reference)));
  if (matches(hand, reference, rtol, atol) || negligible(reference, atol)) return {};
  const Array flipped = -hand;
  if (matches(flipped, reference, rtol, atol)) return {"sign flipped", "hand = -1 x reference"};
  // Zero is a multiple, a shift, a product of anything: said as it is, and tested against nothing.
  if (negligible(hand, atol)) return {"zero", "the hand-written gradient is zero (within atol) where the reference is not"};
  // The candidates first, tier by tier: they name what went wrong.
  for (const DiagnosisCandidates* candidates : tiers) {
    Diagnosis d = candidate_pattern(hand, reference, *candidates, rtol, atol);
    if (d.found()) return d;
    d = candidate_pattern(flipped, reference, *candidates, rtol, atol);
    if (d.found()) return {"sign flipped, and " + d.pattern, d.detail};
  }
  const bool jacobian = std::any_of(tiers.begin(), tiers.end(), [](const auto* c) { return c->jacobian; });
  const Shape shape = shape_of(reference);
  // Scaled by a constant. One number is always a multiple of another, and a negligible hand value
  // a multiple of anything: the test needs two elements and a hand value above the tolerance.
  if (reference.size() > 1 && !negligible(hand, atol)) {
    const MapMatch m = match_through(hand, reference, AxisMap(shape.size()), nullptr, rtol, atol);
    if (m.found && std::abs(m.scale - 1) > 1e-3) return {"scaled by a constant", "hand = " + number(m.scale) + " x reference"};
  }
  // The reference's elements rearranged on its own axes, possibly scaled or with the sign flipped.
  if (!negligible(hand, atol))
    for (const AxisMap& map : rearrangements(shape)) {
      const MapMatch m = match_through(hand, reference, map, nullptr, rtol, atol);
      if (m.found) return scaled(map, m.scale);
    }
  if (jacobian && shape.size() == 2 && shape[0] == shape[1] && shape[0] > 1) {
    Array diag = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < shape[0]; ++i) diag(i, i) = reference(i, i);
    if (matches(hand, diag, rtol, atol) && !matches(reference, diag, rtol, atol))
      return {"only the diagonal of a Jacobian", "the off-diagonal (cross) terms are missing"};
  }
  // Last, an index frozen: a factor f_i of the formula read at one index k for every i, on top of
  // another pattern. hand * f / f_k is the hand value with f_i restored; it must then match the
  // reference or a candidate (small tensors only: one test per index).
  if (reference.size() <= max_frozen_index_elements)
    for (const DiagnosisCandidates* candidates : tiers)
      for (const auto& [name, f] : candidates->factors)
        for (std::size_t k = 0; k < f.size(); ++k) {
          const double fk = f.data()[k];
          if (std::abs(fk) <= atol) continue;
          const Array restored = hand * f / fk;
          if (matches(restored, hand, rtol, atol)) continue;   // f is constant: nothing frozen
          const std::string frozen = name + " read at flat index " + std::to_string(k) + " for every element";
          if (matches(restored, reference, rtol, atol)) return {"an index frozen", frozen};
          for (double sign : {1.0, -1.0}) {
            const Diagnosis d = candidate_pattern(Array(sign * restored), reference, *candidates, rtol, atol);
            if (d.found())
              return {std::string(sign < 0 ? "sign flipped, and " : "") + d.pattern + ", and an index frozen",
                      d.detail + "; " + frozen};
          }
        }
  return {};
}

}  // namespace tapegrad
