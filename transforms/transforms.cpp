#include "transforms.hpp"

#include <algorithm>

#include "../ops/elementwise.hpp"
#include "../ops/reduce.hpp"

namespace tapegrad {

namespace {

template <class T>
using Tensors = std::vector<Tensor<T>>;

template <class T>
void check_primals(const char* op, const Tensors<T>& primals) {
  for (std::size_t i = 0; i < primals.size(); ++i)
    if (!primals[i].defined()) throw_usage_error(op, "primal " + std::to_string(i) + " is undefined");
}

// Leaves holding the primals' values, requiring grad, on no tape.
template <class T>
Tensors<T> leaves_of(const Tensors<T>& primals) {
  Tensors<T> xs;
  for (const Tensor<T>& p : primals) xs.push_back(Tensor<T>(p.value(), true));
  return xs;
}

template <class T>
Tensors<T> detached(const Tensors<T>& ts) {
  Tensors<T> out;
  for (const Tensor<T>& t : ts) out.push_back(t.detach());
  return out;
}

// Zeros of shape (a..., b...): a Jacobian block.
template <class T>
xt::xarray<T> block(const Shape& a, const Shape& b) {
  Shape s = a;
  s.insert(s.end(), b.begin(), b.end());
  return xt::zeros<T>(s);
}

}  // namespace

template <class T>
Tensors<T> grad(const Tensors<T>& ys, const Tensors<T>& xs, const std::vector<xt::xarray<T>>& seeds, bool create_graph) {
  if (ys.size() != seeds.size())
    throw_value_error("grad", "got " + std::to_string(seeds.size()) + " seeds for " + std::to_string(ys.size()) + " outputs");
  Tensor<T> total;
  // An output that is one of the xs itself, not recorded: its seed goes to that x directly.
  std::vector<xt::xarray<T>> direct(xs.size());
  std::vector<char> has_direct(xs.size(), 0);
  for (std::size_t j = 0; j < ys.size(); ++j) {
    if (!ys[j].defined()) throw_usage_error("grad", "output " + std::to_string(j) + " is undefined");
    if (detail::shape_of(seeds[j]) != ys[j].shape())
      throw_shape_error("grad", "seed " + std::to_string(j) + " has shape " + shape_str(detail::shape_of(seeds[j])) +
                                    " and output " + std::to_string(j) + " shape " + shape_str(ys[j].shape()));
    if (ys[j].requires_grad() && !ys[j].is_leaf()) {
      const Tensor<T> term = sum(ys[j] * Tensor<T>(seeds[j]));
      total = total.defined() ? total + term : term;
      continue;
    }
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (ys[j].impl() == xs[i].impl()) {
        direct[i] = has_direct[i] ? xt::xarray<T>(direct[i] + seeds[j]) : seeds[j];
        has_direct[i] = 1;
      }
  }
  Tensors<T> out;
  if (total.defined()) {
    out = grad(total, xs, create_graph);
  } else {
    for (const Tensor<T>& x : xs) out.push_back(Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape()))));
  }
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (has_direct[i]) out[i] = out[i] + Tensor<T>(direct[i]);
  return out;
}

template <class T>
VjpResult<T> vjp(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("vjp", "the function is empty");
  check_primals("vjp", primals);
  VjpResult<T> r;
  {
    NoGrad no_grad;
    r.outputs = detached(f(detached(primals)));
  }
  r.pullback = [f, primals = detached(primals)](const std::vector<xt::xarray<T>>& cotangents) {
    Tape tape;
    const Tensors<T> xs = leaves_of(primals);
    return detached(grad(f(xs), xs, cotangents));
  };
  return r;
}

namespace {

std::size_t elements(const Shape& shape) {
  std::size_t n = 1;
  for (const std::size_t d : shape) n *= d;
  return n;
}

std::size_t elements(const std::vector<Shape>& shapes) {
  std::size_t n = 0;
  for (const Shape& s : shapes) n += elements(s);
  return n;
}

// Seeds first, ..., first + count - 1 of the unit seeds over all the elements of `shapes`, in
// order (seed k is 1 at the k-th element, counting through every shape, 0 elsewhere), as one
// batch: tangent i has shape (count, shapes[i]...).
template <class T>
Tensors<T> unit_seeds(const std::vector<Shape>& shapes, std::size_t first, std::size_t count) {
  Tensors<T> seeds;
  std::size_t offset = 0;
  for (const Shape& s : shapes) {
    Shape batched = s;
    batched.insert(batched.begin(), count);
    xt::xarray<T> e = xt::zeros<T>(batched);
    const std::size_t n = elements(s);
    for (std::size_t k = std::max(first, offset); k < std::min(first + count, offset + n); ++k)
      e.data()[(k - first) * n + (k - offset)] = T(1);
    offset += n;
    seeds.push_back(Tensor<T>(std::move(e)));
  }
  return seeds;
}

// Seeds per batch: as many as keep a batch of tangents of the inputs' and outputs' size within
// 2^18 elements (a rough measure of the intermediates': 2 MB in double), at least one. The
// tangents of every intermediate value are held at once, `batch` times its size.
std::size_t seeds_per_batch(std::size_t seeds, std::size_t elements_per_seed) {
  constexpr std::size_t budget = std::size_t(1) << 18;
  return std::max<std::size_t>(1, std::min(seeds, budget / std::max<std::size_t>(1, elements_per_seed)));
}

template <class T>
std::vector<Shape> shapes_of(const Tensors<T>& ts) {
  std::vector<Shape> shapes;
  for (const Tensor<T>& t : ts) shapes.push_back(t.shape());
  return shapes;
}

// f's outputs at the primals, evaluated without recording (their shapes size jacfwd's blocks).
template <class T>
Tensors<T> outputs_of(const Function<T>& f, const Tensors<T>& primals) {
  NoGrad no_grad;
  return f(detached(primals));
}

// The reverse-mode gradient of a scalar f, recorded so that forward mode differentiates it.
template <class T>
Function<T> gradient_of(const std::function<Tensor<T>(const Tensors<T>&)>& f, const char* op) {
  return [f, op](const Tensors<T>& xs) {
    for (Tensor<T> x : xs) x.set_requires_grad(true);   // jvp's own copies: their tangents stay with them
    Tape tape;
    const Tensor<T> y = f(xs);
    if (!y.defined() || y.size() != 1)
      throw_shape_error(op, "the function must return a scalar, got shape " +
                                (y.defined() ? shape_str(y.shape()) : std::string("undefined")));
    if (y.requires_grad() && !y.is_leaf()) return grad(y, xs, /*create_graph=*/true);   // nothing more recorded
    return grad(Tensors<T>{y}, xs, {xt::xarray<T>(xt::ones<T>(y.shape()))}, true);     // a constant, or an x
  };
}

// Zero Jacobian blocks: blocks[j][i] of shape (outs[j]..., primal i...).
template <class T>
std::vector<std::vector<xt::xarray<T>>> zero_blocks(const std::vector<Shape>& outs, const Tensors<T>& primals) {
  std::vector<std::vector<xt::xarray<T>>> blocks(outs.size());
  for (std::size_t j = 0; j < outs.size(); ++j)
    for (const Tensor<T>& p : primals) blocks[j].push_back(block<T>(outs[j], p.shape()));
  return blocks;
}

template <class T>
std::vector<Tensors<T>> tensors_of(std::vector<std::vector<xt::xarray<T>>>&& blocks) {
  std::vector<Tensors<T>> jacobian(blocks.size());
  for (std::size_t j = 0; j < blocks.size(); ++j)
    for (auto& b : blocks[j]) jacobian[j].push_back(Tensor<T>(std::move(b)));
  return jacobian;
}

// The Jacobians of f, whose outputs have shapes `outs`, by forward mode: the unit tangents of
// every primal element as batches, one evaluation of f per batch (jacfwd; hessian, of the
// gradient). Tangent j of a batch is (count, output j...): column first + b of each block j.
template <class T>
std::vector<Tensors<T>> forward_jacobian(const char* op, const Function<T>& f, const Tensors<T>& primals,
                                         const std::vector<Shape>& outs) {
  const std::vector<Shape> in_shapes = shapes_of(primals);
  const std::size_t columns = elements(in_shapes);
  std::vector<std::vector<xt::xarray<T>>> blocks = zero_blocks(outs, primals);
  const std::size_t per_batch = seeds_per_batch(columns, std::max(columns, elements(outs)));
  for (std::size_t first = 0; first < columns; first += per_batch) {
    const std::size_t count = std::min(per_batch, columns - first);
    const JvpResult<T> r = detail::batched_jvp<T>(f, primals, unit_seeds<T>(in_shapes, first, count), count);
    if (r.tangents.size() != outs.size())
      throw_usage_error(op, "the function returned " + std::to_string(outs.size()) + " outputs, then " +
                                std::to_string(r.tangents.size()));
    // Seed b is column `column[b]` of primal `primal[b]`'s blocks.
    std::vector<std::size_t> primal(count), column(count);
    for (std::size_t b = 0; b < count; ++b) {
      std::size_t c = first + b, i = 0;
      while (c >= primals[i].size()) c -= primals[i++].size();
      primal[b] = i;
      column[b] = c;
    }
    for (std::size_t j = 0; j < outs.size(); ++j) {
      const T* t = r.tangents[j].value().data();
      const std::size_t rows = elements(outs[j]);
      // A few hundred rows at a time, every seed's column in turn: the rows written stay in cache
      // (a whole column at a time crossed the whole block once per seed).
      constexpr std::size_t band = 256;
      for (std::size_t o0 = 0; o0 < rows; o0 += band)
        for (std::size_t b = 0; b < count; ++b) {
          const std::size_t n = primals[primal[b]].size();
          T* block = blocks[j][primal[b]].data();
          for (std::size_t o = o0; o < std::min(rows, o0 + band); ++o) block[o * n + column[b]] = t[b * rows + o];
        }
    }
  }
  return tensors_of(std::move(blocks));
}

}  // namespace

template <class T>
std::vector<Tensors<T>> jacrev(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacrev", "the function is empty");
  check_primals("jacrev", primals);
  // One recording: the outputs' shapes, and the tape that the per-row walks below use.
  Tape tape;
  const Tensors<T> xs = leaves_of(primals);
  const Tensors<T> ys = f(xs);
  const std::vector<Shape> out_shapes = shapes_of(ys);
  const std::size_t rows = elements(out_shapes), columns = elements(shapes_of(primals));
  std::vector<std::vector<xt::xarray<T>>> blocks = zero_blocks(out_shapes, primals);
  if (rows == 0 || primals.empty()) return tensors_of(std::move(blocks));
  // Batches pay where the ops are small (their per-op cost is shared by the batch). Where there
  // are few rows, or each row's walk already works on thousands of elements, one walk per row over
  // one recording does the same arithmetic without evaluating f and its backward again per batch.
  if (rows <= 4 || std::max(rows, columns) > 1024) {
    for (std::size_t j = 0; j < ys.size(); ++j) {
      const bool recorded = ys[j].requires_grad() && !ys[j].is_leaf();
      for (std::size_t e = 0; e < ys[j].size(); ++e) {
        xt::xarray<T> unit = xt::zeros<T>(ys[j].shape());
        unit.data()[e] = T(1);
        const Tensors<T> row = recorded ? grad(ys[j], xs, unit) : grad(Tensors<T>{ys[j]}, xs, {unit});
        for (std::size_t i = 0; i < xs.size(); ++i)
          std::copy(row[i].value().begin(), row[i].value().end(), blocks[j][i].data() + e * xs[i].size());
      }
    }
    return tensors_of(std::move(blocks));
  }
  // J^T c is linear in the cotangents c: forward mode over the reverse-mode gradient with respect
  // to c, the unit cotangents as batches, gives many rows per backward pass.
  const Tensors<T> values = detached(primals);
  const Function<T> pullback = [&f, &values, &out_shapes](const Tensors<T>& cotangents) {
    Tape own;
    const Tensors<T> leaves = leaves_of(values);
    const Tensors<T> outs = f(leaves);
    if (outs.size() != out_shapes.size())
      throw_usage_error("jacrev", "the function returned " + std::to_string(out_shapes.size()) + " outputs, then " +
                                      std::to_string(outs.size()));
    Tensor<T> total;
    for (std::size_t j = 0; j < outs.size(); ++j) {
      if (!outs[j].requires_grad()) continue;   // a constant: zero rows
      const Tensor<T> term = sum(outs[j] * cotangents[j]);
      total = total.defined() ? total + term : term;
    }
    if (!total.defined()) {
      Tensors<T> zeros;
      for (const Tensor<T>& x : leaves) zeros.push_back(Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape()))));
      return zeros;
    }
    return grad(total, leaves, /*create_graph=*/true);
  };
  Tensors<T> zero_cotangents;
  for (const Shape& s : out_shapes) zero_cotangents.push_back(Tensor<T>(xt::xarray<T>(xt::zeros<T>(s))));
  const std::size_t per_batch = seeds_per_batch(rows, std::max(rows, columns));
  for (std::size_t first = 0; first < rows; first += per_batch) {
    const std::size_t count = std::min(per_batch, rows - first);
    const JvpResult<T> r = detail::batched_jvp<T>(pullback, zero_cotangents, unit_seeds<T>(out_shapes, first, count), count);
    // Tangent i is (count, primal i...): row first + b of the stacked outputs' Jacobian.
    for (std::size_t b = 0; b < count; ++b) {
      std::size_t row = first + b, j = 0;
      while (row >= elements(out_shapes[j])) row -= elements(out_shapes[j++]);
      for (std::size_t i = 0; i < primals.size(); ++i) {
        const std::size_t n = primals[i].size();
        const T* t = r.tangents[i].value().data() + b * n;
        std::copy(t, t + n, blocks[j][i].data() + row * n);
      }
    }
  }
  return tensors_of(std::move(blocks));
}

template <class T>
std::vector<Tensors<T>> jacfwd(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacfwd", "the function is empty");
  check_primals("jacfwd", primals);
  return forward_jacobian("jacfwd", f, primals, shapes_of(outputs_of(f, primals)));
}

template <class T>
Tensors<T> hvp(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals, const Tensors<T>& vs) {
  if (!f) throw_usage_error("hvp", "the function is empty");
  check_primals("hvp", primals);
  // The reverse-mode gradient, with jvp's tangents carried through its forward and its backward.
  return detail::batched_jvp<T>(gradient_of(f, "hvp"), primals, vs, 0).tangents;
}

template <class T>
std::vector<Tensors<T>> hessian(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("hessian", "the function is empty");
  check_primals("hessian", primals);
  // The Hessian-vector products with every unit vector, as batches: the Jacobian of the gradient
  // by forward mode (its outputs have the primals' shapes).
  return forward_jacobian("hessian", gradient_of(f, "hessian"), primals, shapes_of(primals));
}

template std::vector<Tensor<float>> grad(const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&,
                                      const std::vector<xt::xarray<float>>&, bool);
template VjpResult<float> vjp(const Function<float>&, const std::vector<Tensor<float>>&);
template std::vector<std::vector<Tensor<float>>> jacrev(const Function<float>&, const std::vector<Tensor<float>>&);
template std::vector<std::vector<Tensor<float>>> jacfwd(const Function<float>&, const std::vector<Tensor<float>>&);
template std::vector<Tensor<float>> hvp(const std::function<Tensor<float>(const std::vector<Tensor<float>>&)>&,
                                     const std::vector<Tensor<float>>&, const std::vector<Tensor<float>>&);
template std::vector<std::vector<Tensor<float>>> hessian(const std::function<Tensor<float>(const std::vector<Tensor<float>>&)>&,
                                                      const std::vector<Tensor<float>>&);
template std::vector<Tensor<double>> grad(const std::vector<Tensor<double>>&, const std::vector<Tensor<double>>&,
                                      const std::vector<xt::xarray<double>>&, bool);
template VjpResult<double> vjp(const Function<double>&, const std::vector<Tensor<double>>&);
template std::vector<std::vector<Tensor<double>>> jacrev(const Function<double>&, const std::vector<Tensor<double>>&);
template std::vector<std::vector<Tensor<double>>> jacfwd(const Function<double>&, const std::vector<Tensor<double>>&);
template std::vector<Tensor<double>> hvp(const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>&,
                                     const std::vector<Tensor<double>>&, const std::vector<Tensor<double>>&);
template std::vector<std::vector<Tensor<double>>> hessian(const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>&,
                                                      const std::vector<Tensor<double>>&);

}  // namespace tapegrad
