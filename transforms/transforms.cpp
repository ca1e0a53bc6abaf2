#include "transforms.hpp"

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

// Identity seeds for a batch over all the elements of `shapes`, in order: seed k is 1 at the k-th
// element (counting through every shape) and 0 elsewhere; tangent i has shape (total, shapes[i]...).
template <class T>
Tensors<T> identity_seeds(const std::vector<Shape>& shapes, std::size_t& total) {
  total = 0;
  for (const Shape& s : shapes) total += elements(s);
  Tensors<T> seeds;
  std::size_t offset = 0;
  for (const Shape& s : shapes) {
    Shape batched = s;
    batched.insert(batched.begin(), total);
    xt::xarray<T> e = xt::zeros<T>(batched);
    const std::size_t n = elements(s);
    for (std::size_t k = 0; k < n; ++k) e.data()[(offset + k) * n + k] = T(1);
    offset += n;
    seeds.push_back(Tensor<T>(std::move(e)));
  }
  return seeds;
}

template <class T>
std::vector<Shape> shapes_of(const Tensors<T>& ts) {
  std::vector<Shape> shapes;
  for (const Tensor<T>& t : ts) shapes.push_back(t.shape());
  return shapes;
}

// f's outputs at the primals, evaluated without recording (their shapes size jacrev's seeds).
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

}  // namespace

template <class T>
std::vector<Tensors<T>> jacrev(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacrev", "the function is empty");
  check_primals("jacrev", primals);
  // J^T c is linear in the cotangents c: forward mode over the reverse-mode gradient with respect
  // to c, all the unit cotangents at once as one batch, gives every row in one backward pass.
  const std::vector<Shape> out_shapes = shapes_of(outputs_of(f, primals));
  std::size_t rows = 0;
  const Tensors<T> seeds = identity_seeds<T>(out_shapes, rows);
  std::vector<Tensors<T>> jacobian(out_shapes.size());
  if (rows == 0 || primals.empty()) {
    for (std::size_t j = 0; j < out_shapes.size(); ++j)
      for (const Tensor<T>& p : primals) jacobian[j].push_back(Tensor<T>(block<T>(out_shapes[j], p.shape())));
    return jacobian;
  }
  const Tensors<T> values = detached(primals);
  const Function<T> pullback = [&f, &values, &out_shapes](const Tensors<T>& cotangents) {
    Tape tape;
    const Tensors<T> xs = leaves_of(values);
    const Tensors<T> ys = f(xs);
    if (ys.size() != out_shapes.size())
      throw_usage_error("jacrev", "the function returned " + std::to_string(ys.size()) + " outputs, then " +
                                      std::to_string(out_shapes.size()));
    Tensor<T> total;
    for (std::size_t j = 0; j < ys.size(); ++j) {
      if (!ys[j].requires_grad()) continue;   // a constant: zero rows
      const Tensor<T> term = sum(ys[j] * cotangents[j]);
      total = total.defined() ? total + term : term;
    }
    if (!total.defined()) {
      Tensors<T> zeros;
      for (const Tensor<T>& x : xs) zeros.push_back(Tensor<T>(xt::xarray<T>(xt::zeros<T>(x.shape()))));
      return zeros;
    }
    return grad(total, xs, /*create_graph=*/true);
  };
  Tensors<T> zero_cotangents;
  for (const Shape& s : out_shapes) zero_cotangents.push_back(Tensor<T>(xt::xarray<T>(xt::zeros<T>(s))));
  const JvpResult<T> r = detail::batched_jvp<T>(pullback, zero_cotangents, seeds, rows);
  // Tangent i is (rows, primal i...): output j's rows are a contiguous run of it.
  std::size_t offset = 0;
  for (std::size_t j = 0; j < out_shapes.size(); ++j) {
    const std::size_t n = elements(out_shapes[j]);
    for (std::size_t i = 0; i < primals.size(); ++i) {
      xt::xarray<T> b = block<T>(out_shapes[j], primals[i].shape());
      const T* t = r.tangents[i].value().data() + offset * primals[i].size();
      std::copy(t, t + b.size(), b.data());
      jacobian[j].push_back(Tensor<T>(std::move(b)));
    }
    offset += n;
  }
  return jacobian;
}

template <class T>
std::vector<Tensors<T>> jacfwd(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacfwd", "the function is empty");
  check_primals("jacfwd", primals);
  std::size_t columns = 0;
  const Tensors<T> seeds = identity_seeds<T>(shapes_of(primals), columns);
  if (columns == 0) {   // no input element: empty Jacobians
    const Tensors<T> outs = outputs_of(f, primals);
    std::vector<Tensors<T>> jacobian(outs.size());
    for (std::size_t j = 0; j < outs.size(); ++j)
      for (const Tensor<T>& p : primals) jacobian[j].push_back(Tensor<T>(block<T>(outs[j].shape(), p.shape())));
    return jacobian;
  }
  // All the unit tangents at once, as one batch: one forward-mode evaluation.
  const JvpResult<T> r = detail::batched_jvp<T>(f, primals, seeds, columns);
  std::vector<Tensors<T>> jacobian(r.outputs.size());
  for (std::size_t j = 0; j < r.outputs.size(); ++j) {
    const T* t = r.tangents[j].value().data();   // (columns, output j...)
    const std::size_t rows = r.outputs[j].size();
    std::size_t offset = 0;
    for (const Tensor<T>& p : primals) {
      xt::xarray<T> b = block<T>(r.outputs[j].shape(), p.shape());
      for (std::size_t o = 0; o < rows; ++o)
        for (std::size_t e = 0, n = p.size(); e < n; ++e) b.data()[o * n + e] = t[(offset + e) * rows + o];
      offset += p.size();
      jacobian[j].push_back(Tensor<T>(std::move(b)));
    }
  }
  return jacobian;
}

template <class T>
Tensors<T> hvp(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals, const Tensors<T>& vs) {
  if (!f) throw_usage_error("hvp", "the function is empty");
  check_primals("hvp", primals);
  // The reverse-mode gradient, with jvp's tangents carried through its forward and its backward.
  return jvp<T>(gradient_of(f, "hvp"), primals, vs).tangents;
}

template <class T>
std::vector<Tensors<T>> hessian(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("hessian", "the function is empty");
  check_primals("hessian", primals);
  std::size_t columns = 0;
  const Tensors<T> seeds = identity_seeds<T>(shapes_of(primals), columns);
  std::vector<Tensors<T>> h(primals.size());
  if (columns == 0) {
    for (std::size_t i = 0; i < primals.size(); ++i)
      for (const Tensor<T>& p : primals) h[i].push_back(Tensor<T>(block<T>(primals[i].shape(), p.shape())));
    return h;
  }
  // Every Hessian-vector product with a unit vector at once, as one batch: one evaluation of the
  // gradient under forward mode. Tangent i is (columns, primal i...): H[i][k][o, e] is its row
  // (offset of k) + e, element o.
  const JvpResult<T> r = detail::batched_jvp<T>(gradient_of(f, "hessian"), primals, seeds, columns);
  for (std::size_t i = 0; i < primals.size(); ++i) {
    const T* t = r.tangents[i].value().data();
    const std::size_t rows = primals[i].size();
    std::size_t offset = 0;
    for (const Tensor<T>& p : primals) {
      xt::xarray<T> b = block<T>(primals[i].shape(), p.shape());
      for (std::size_t o = 0; o < rows; ++o)
        for (std::size_t e = 0, n = p.size(); e < n; ++e) b.data()[o * n + e] = t[(offset + e) * rows + o];
      offset += p.size();
      h[i].push_back(Tensor<T>(std::move(b)));
    }
  }
  return h;
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
