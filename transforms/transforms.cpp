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

// e_k of this shape.
template <class T>
xt::xarray<T> unit(const Shape& shape, std::size_t k) {
  xt::xarray<T> u = xt::zeros<T>(shape);
  u.data()[k] = T(1);
  return u;
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

template <class T>
std::vector<Tensors<T>> jacrev(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacrev", "the function is empty");
  check_primals("jacrev", primals);
  Tape tape;
  const Tensors<T> xs = leaves_of(primals);
  const Tensors<T> ys = f(xs);
  std::vector<Tensors<T>> jacobian(ys.size());
  for (std::size_t j = 0; j < ys.size(); ++j) {
    std::vector<xt::xarray<T>> blocks;
    for (const Tensor<T>& x : xs) blocks.push_back(block<T>(ys[j].shape(), x.shape()));
    // A recorded output: a seeded walk of the tape, which records nothing (the tape stays as f
    // left it, so each walk costs the same). Else (a constant, or one of the xs) the general grad.
    const bool recorded = ys[j].requires_grad() && !ys[j].is_leaf();
    for (std::size_t e = 0; e < ys[j].size(); ++e) {
      const Tensors<T> row = recorded ? grad(ys[j], xs, unit<T>(ys[j].shape(), e))
                                      : grad(Tensors<T>{ys[j]}, xs, {unit<T>(ys[j].shape(), e)});
      for (std::size_t i = 0; i < xs.size(); ++i)
        std::copy(row[i].value().begin(), row[i].value().end(), blocks[i].data() + e * xs[i].size());
    }
    for (auto& b : blocks) jacobian[j].push_back(Tensor<T>(std::move(b)));
  }
  return jacobian;
}

template <class T>
std::vector<Tensors<T>> jacfwd(const Function<T>& f, const Tensors<T>& primals) {
  if (!f) throw_usage_error("jacfwd", "the function is empty");
  check_primals("jacfwd", primals);
  std::vector<std::vector<xt::xarray<T>>> blocks;
  for (std::size_t i = 0; i < primals.size(); ++i)
    for (std::size_t e = 0; e < primals[i].size(); ++e) {
      Tensors<T> tangents(primals.size());
      tangents[i] = Tensor<T>(unit<T>(primals[i].shape(), e));
      const JvpResult<T> r = jvp<T>(f, primals, tangents);
      if (blocks.empty()) {
        blocks.resize(r.outputs.size());
        for (std::size_t j = 0; j < r.outputs.size(); ++j)
          for (const Tensor<T>& p : primals) blocks[j].push_back(block<T>(r.outputs[j].shape(), p.shape()));
      }
      for (std::size_t j = 0; j < r.tangents.size(); ++j) {
        const T* t = r.tangents[j].value().data();
        T* b = blocks[j][i].data();
        for (std::size_t o = 0, n = r.tangents[j].size(); o < n; ++o) b[o * primals[i].size() + e] = t[o];
      }
    }
  std::vector<Tensors<T>> jacobian(blocks.size());
  for (std::size_t j = 0; j < blocks.size(); ++j)
    for (auto& b : blocks[j]) jacobian[j].push_back(Tensor<T>(std::move(b)));
  return jacobian;
}

template <class T>
Tensors<T> hvp(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals, const Tensors<T>& vs) {
  if (!f) throw_usage_error("hvp", "the function is empty");
  check_primals("hvp", primals);
  // The reverse-mode gradient, with jvp's tangents carried through its forward and its backward.
  const Function<T> gradient = [&f](const Tensors<T>& xs) {
    for (Tensor<T> x : xs) x.set_requires_grad(true);   // jvp's own copies: their tangents stay with them
    Tape tape;
    const Tensor<T> y = f(xs);
    if (!y.defined() || y.size() != 1)
      throw_shape_error("hvp", "the function must return a scalar, got shape " +
                                   (y.defined() ? shape_str(y.shape()) : std::string("undefined")));
    if (y.requires_grad() && !y.is_leaf()) return grad(y, xs, /*create_graph=*/true);   // nothing more recorded
    return grad(Tensors<T>{y}, xs, {xt::xarray<T>(xt::ones<T>(y.shape()))}, true);     // a constant, or an x
  };
  return jvp<T>(gradient, primals, vs).tangents;
}

template <class T>
std::vector<Tensors<T>> hessian(const std::function<Tensor<T>(const Tensors<T>&)>& f, const Tensors<T>& primals) {
  check_primals("hessian", primals);
  std::vector<std::vector<xt::xarray<T>>> blocks(primals.size());
  for (std::size_t i = 0; i < primals.size(); ++i)
    for (const Tensor<T>& p : primals) blocks[i].push_back(block<T>(primals[i].shape(), p.shape()));
  for (std::size_t k = 0; k < primals.size(); ++k)
    for (std::size_t e = 0; e < primals[k].size(); ++e) {
      Tensors<T> vs(primals.size());
      vs[k] = Tensor<T>(unit<T>(primals[k].shape(), e));
      const Tensors<T> column = hvp<T>(f, primals, vs);
      for (std::size_t i = 0; i < primals.size(); ++i) {
        const T* c = column[i].value().data();
        T* b = blocks[i][k].data();
        for (std::size_t o = 0, n = primals[i].size(); o < n; ++o) b[o * primals[k].size() + e] = c[o];
      }
    }
  std::vector<Tensors<T>> h(primals.size());
  for (std::size_t i = 0; i < primals.size(); ++i)
    for (auto& b : blocks[i]) h[i].push_back(Tensor<T>(std::move(b)));
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
