#include "elementwise.hpp"

#include <algorithm>
#include <cmath>

#include "kernels.hpp"
#include "../core/forward.hpp"
#include "../core/parallel.hpp"
#include "reduce.hpp"
#include "shape.hpp"
#include "vector_math.hpp"

namespace tapegrad {

namespace {

using detail::shape_of;

using detail::OutputState;

// An output of x's shape with f applied to every element.
template <class T, class F>
OutputState<T> map(const xt::xarray<T>& x, F f) {
  OutputState<T> out = detail::new_output<T>(x.shape());
  const T* src = x.data();
  T* dst = out->value.data();
  detail::parallel_elements(x.size(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) dst[i] = f(src[i]);
  });
  return out;
}

// An output of x's shape from an array kernel (vector_math.hpp).
template <class T>
OutputState<T> map_n(const xt::xarray<T>& x, void (*kernel)(const T*, T*, std::size_t)) {
  OutputState<T> out = detail::new_output<T>(x.shape());
  const T* src = x.data();
  T* dst = out->value.data();
  detail::parallel_elements(x.size(), [&](std::size_t begin, std::size_t end) { kernel(src + begin, dst + begin, end - begin); });
  return out;
}

// f(a, b) over the broadcast shape of a and b, checked first.
template <class T, class F>
OutputState<T> zip(const char* op, const xt::xarray<T>& a, const xt::xarray<T>& b, F f) {
  if (detail::same_shape(a.shape(), b.shape())) {
    OutputState<T> out = detail::new_output<T>(a.shape());
    const T* pa = a.data();
    const T* pb = b.data();
    T* po = out->value.data();
    detail::parallel_elements(a.size(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) po[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  const Shape sa = shape_of(a), sb = shape_of(b);
  const Shape out_shape = detail::broadcast_shapes(op, sa, sb);
  OutputState<T> out = detail::new_output<T>(out_shape);
  if (out->value.size() == 0) return out;
  const detail::Strides full_a = detail::broadcast_strides(sa, out_shape);
  const detail::Strides full_b = detail::broadcast_strides(sb, out_shape);
  // Adjacent axes that a and b each step through as one (the outer axis's stride is the inner's
  // times the inner's size; 0 and 0 for a broadcast) merged, innermost first: longer rows below
  // ((batch, k, n, 2) * (k, n, 2) is one row of k n 2 per batch element, not k n rows of 2).
  Shape shape{out_shape.back()};
  detail::Strides stride_a{full_a.back()}, stride_b{full_b.back()};
  for (std::size_t k = out_shape.size() - 1; k-- > 0;) {
    if (full_a[k] == stride_a.front() * static_cast<std::ptrdiff_t>(shape.front()) &&
        full_b[k] == stride_b.front() * static_cast<std::ptrdiff_t>(shape.front())) {
      shape.front() *= out_shape[k];
    } else {
      shape.insert(shape.begin(), out_shape[k]);
      stride_a.insert(stride_a.begin(), full_a[k]);
      stride_b.insert(stride_b.begin(), full_b[k]);
    }
  }
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out->value.data();
  // Rows of the last axis, each with its own tight loop: a and b advance by 1 or stay (stride 0).
  const std::size_t inner = shape.back();
  const std::ptrdiff_t step_a = stride_a.back(), step_b = stride_b.back();
  const Shape rows(shape.begin(), shape.end() - 1);
  const detail::Strides row_a(stride_a.begin(), stride_a.end() - 1), row_b(stride_b.begin(), stride_b.end() - 1);
  std::size_t o = 0;
  // Walk a's offsets as "src" and b's as "dst"; the output is written in row-major order.
  detail::strided_loop(rows, row_a, 0, row_b, 0, [&](std::ptrdiff_t ia, std::ptrdiff_t ib) {
    const T* ra = pa + ia;
    const T* rb = pb + ib;
    T* ro = po + o;
    if (step_a != 0 && step_b != 0) {
      for (std::size_t i = 0; i < inner; ++i) ro[i] = f(ra[i], rb[i]);
    } else if (step_a != 0) {
      for (std::size_t i = 0; i < inner; ++i) ro[i] = f(ra[i], *rb);
    } else if (step_b != 0) {
      for (std::size_t i = 0; i < inner; ++i) ro[i] = f(*ra, rb[i]);
    } else {
      std::fill(ro, ro + inner, f(*ra, *rb));
    }
    o += inner;
  });
  return out;
}

template <class T>
using Grads = Gradients<T>;

// record() for an output built in place by map, map_n or zip, the inputs passed by pointer: the
// same recording, without moving the value or copying the input handles.
template <class T, class F, class J = std::nullptr_t>
Tensor<T> record_output(std::string_view op, std::initializer_list<const Tensor<T>*> inputs, OutputState<T>&& out,
                        F&& vjp, Saved saved = Saved::inputs, J&& jvp = nullptr) {
  return detail::record_lambda<T>(op, {inputs.begin(), inputs.size()}, std::move(out), std::forward<F>(vjp), saved,
                                  std::forward<J>(jvp));
}

// The JVP rule of a one-input elementwise op: its Jacobian is diagonal, so J t = J^T t, its own
// VJP with the tangent as the seed (each op's comment gives ty).
template <class T>
constexpr detail::JvpPointer<T> diagonal = &detail::diagonal_jvp<T>;

// Input i's tangent, a batch of them lifted to the output's rank (so that products with the
// inputs broadcast as the op did).
template <class T>
Tensor<T> tangent(const JvpArgs<T>& j, std::size_t i) {
  return j.batch > 0 ? detail::lift_batch(j.tangents[i], j.output.dim()) : j.tangents[i];
}

// A binary op's output tangent from its inputs' terms (undefined: zero), broadcast to the output
// (a batch of them: to (batch, output shape...)).
template <class T>
Tensor<T> tangent_sum(const Tensor<T>& a, const Tensor<T>& b, const JvpArgs<T>& j) {
  Tensor<T> t = a.defined() && b.defined() ? a + b : a.defined() ? a : b;
  const Shape shape = detail::with_batch(j.output.shape(), j.batch);
  return t.shape() == shape ? t : broadcast_to(t, shape);
}

// A gradient of the output's shape summed down to input i's recorded shape (broadcasting undone).
template <class T>
Tensor<T> to_input(Tensor<T> grad, const VjpArgs<T>& g, std::size_t i) {
  if (detail::same_shape(grad.value().shape(), g.input_shape(i))) return grad;
  return sum_to(grad, g.input_shape(i));
}

}  // namespace

// y = a + b;  da = sum_to(grad, a.shape),  db = sum_to(grad, b.shape);  ty = ta + tb
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "add";
  check_defined<T>(op, {&a, &b});
  return record_output<T>(op, {&a, &b}, zip(op, a.value(), b.value(), std::plus<T>()),
                   [](const VjpArgs<T>& g) {
                     return Grads<T>{g.needs_grad(0) ? to_input(g.grad, g, 0) : Tensor<T>(),
                                     g.needs_grad(1) ? to_input(g.grad, g, 1) : Tensor<T>()};
                   }, Saved::nothing,
                   takes_batch([](const JvpArgs<T>& j) {
                     return tangent_sum(j.has_tangent(0) ? tangent(j, 0) : Tensor<T>(),
                                        j.has_tangent(1) ? tangent(j, 1) : Tensor<T>(), j);
                   }));
}

// y = a - b;  da = sum_to(grad, a.shape),  db = -sum_to(grad, b.shape);  ty = ta - tb
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "sub";
  check_defined<T>(op, {&a, &b});
  return record_output<T>(op, {&a, &b}, zip(op, a.value(), b.value(), std::minus<T>()),
                   [](const VjpArgs<T>& g) {
                     return Grads<T>{g.needs_grad(0) ? to_input(g.grad, g, 0) : Tensor<T>(),
                                     g.needs_grad(1) ? neg(to_input(g.grad, g, 1)) : Tensor<T>()};
                   }, Saved::nothing,
                   takes_batch([](const JvpArgs<T>& j) {
                     return tangent_sum(j.has_tangent(0) ? tangent(j, 0) : Tensor<T>(),
                                        j.has_tangent(1) ? neg(tangent(j, 1)) : Tensor<T>(), j);
                   }));
}

// y = a * b;  da = sum_to(grad * b, a.shape),  db = sum_to(grad * a, b.shape);  y = x * x: dx = grad * 2x;
//   ty = ta * b + a * tb
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "mul";
  check_defined<T>(op, {&a, &b});
  return record_output<T>(op, {&a, &b}, zip(op, a.value(), b.value(), std::multiplies<T>()),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& a = g.input(0);
                     const Tensor<T>& b = g.input(1);
                     // x * x: one gradient 2 x grad, given to the first input only, instead of two
                     // equal products that backward would then add.
                     if (a.impl() == b.impl()) return Grads<T>{g.grad * (a * T(2)), Tensor<T>()};
                     return Grads<T>{g.needs_grad(0) ? to_input(g.grad * b, g, 0) : Tensor<T>(),
                                     g.needs_grad(1) ? to_input(g.grad * a, g, 1) : Tensor<T>()};
                   }, Saved::inputs,
                   takes_batch([](const JvpArgs<T>& j) {
                     return tangent_sum(j.has_tangent(0) ? tangent(j, 0) * j.inputs[1] : Tensor<T>(),
                                        j.has_tangent(1) ? j.inputs[0] * tangent(j, 1) : Tensor<T>(), j);
                   }));
}

// y = a * b + c;  da = grad * b,  db = grad * a,  dc = grad;  ty = ta * b + a * tb + tc. One entry
// for three inputs of one shape (two fewer tensors and one fewer entry than mul then add); with
// broadcasting, mul then add.
template <class T>
Tensor<T> mul_add(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c) {
  constexpr char op[] = "mul_add";
  check_defined<T>(op, {&a, &b, &c});
  const auto& va = a.value();
  const auto& vb = b.value();
  const auto& vc = c.value();
  if (!detail::same_shape(va.shape(), vb.shape()) || !detail::same_shape(va.shape(), vc.shape())) {
    try {
      detail::broadcast_shapes(op, detail::broadcast_shapes(op, shape_of(va), shape_of(vb)), shape_of(vc));
    } catch (const ShapeError&) {   // the message names the three inputs, not a*b's intermediate shape
      throw_shape_error(op, "a shape " + shape_str(shape_of(va)) + ", b shape " + shape_str(shape_of(vb)) +
                                " and c shape " + shape_str(shape_of(vc)) + " do not broadcast together");
    }
    return a * b + c;
  }
  OutputState<T> out = detail::new_output<T>(va.shape());
  const T* pa = va.data();
  const T* pb = vb.data();
  const T* pc = vc.data();
  T* po = out->value.data();
  detail::parallel_elements(va.size(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) po[i] = pa[i] * pb[i] + pc[i];
  });
  return record_output<T>(op, {&a, &b, &c}, std::move(out),
                   [](const VjpArgs<T>& g) {
                     return Grads<T>{g.needs_grad(0) ? g.grad * g.input(1) : Tensor<T>(),
                                     g.needs_grad(1) ? g.grad * g.input(0) : Tensor<T>(),
                                     g.needs_grad(2) ? g.grad : Tensor<T>()};
                   }, Saved::inputs,
                   takes_batch([](const JvpArgs<T>& j) {
                     // The inputs' shapes are the output's: the terms need no broadcasting.
                     Tensor<T> t;
                     const auto plus = [&t](const Tensor<T>& term) { t = t.defined() ? t + term : term; };
                     if (j.has_tangent(0)) plus(tangent(j, 0) * j.inputs[1]);
                     if (j.has_tangent(1)) plus(j.inputs[0] * tangent(j, 1));
                     if (j.has_tangent(2)) plus(tangent(j, 2));
                     return t;
                   }));
}

// y = a / b;  da = sum_to(grad / b, a.shape),  db = -sum_to(grad * a / (b * b), b.shape);  ty = (ta - y tb) / b
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "div";
  check_defined<T>(op, {&a, &b});
  return record_output<T>(op, {&a, &b}, zip(op, a.value(), b.value(), std::divides<T>()),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& a = g.input(0);
                     const Tensor<T>& b = g.input(1);
                     return Grads<T>{g.needs_grad(0) ? to_input(g.grad / b, g, 0) : Tensor<T>(),
                                     g.needs_grad(1) ? neg(to_input(g.grad * a / (b * b), g, 1)) : Tensor<T>()};
                   }, Saved::inputs,
                   takes_batch([](const JvpArgs<T>& j) {
                     const Tensor<T>& b = j.inputs[1];
                     return tangent_sum(j.has_tangent(0) ? tangent(j, 0) / b : Tensor<T>(),
                                        j.has_tangent(1) ? neg(j.output * tangent(j, 1) / b) : Tensor<T>(), j);
                   }));
}

// y = x + s;  dx = grad;  ty = t
template <class T>
Tensor<T> add(const Tensor<T>& x, scalar_t<T> s) {
  constexpr char op[] = "add_scalar";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [s](T v) { return v + s; }),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad}; }, Saved::nothing, diagonal<T>);
}

// y = x * s;  dx = grad * s;  ty = t * s
template <class T>
Tensor<T> mul(const Tensor<T>& x, scalar_t<T> s) {
  constexpr char op[] = "mul_scalar";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [s](T v) { return v * s; }),
                   [s](const VjpArgs<T>& g) { return Grads<T>{g.grad * s}; }, Saved::nothing, diagonal<T>);
}

// y = s / x;  dx = -grad * s / (x * x);  ty = -t * s / (x * x)
template <class T>
Tensor<T> rdiv(scalar_t<T> s, const Tensor<T>& x) {
  constexpr char op[] = "rdiv_scalar";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [s](T v) { return s / v; }),
                   [s](const VjpArgs<T>& g) {
                     const Tensor<T>& x = g.input(0);
                     return Grads<T>{g.grad * (-s) / (x * x)};
                   }, Saved::inputs, diagonal<T>);
}

// y = -x;  dx = -grad;  ty = -t
template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  constexpr char op[] = "neg";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return -v; }),
                   [](const VjpArgs<T>& g) { return Grads<T>{neg(g.grad)}; }, Saved::nothing, diagonal<T>);
}

// y = exp(x);  dx = grad * y;  ty = t * y
template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  constexpr char op[] = "exp";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map_n(x.value(), &detail::vector_exp<T>),
      [](const VjpArgs<T>& g) { return Grads<T>{g.grad * g.output}; }, Saved::output, diagonal<T>);
}

// y = log(x);  dx = grad / x;  ty = t / x
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  constexpr char op[] = "log";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map_n(x.value(), &detail::vector_log<T>),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad / g.input(0)}; }, Saved::inputs, diagonal<T>);
}

// y = sqrt(x);  dx = grad / (2 y);  ty = t / (2 y)
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  constexpr char op[] = "sqrt";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::sqrt(v); }),
      [](const VjpArgs<T>& g) { return Grads<T>{g.grad / (g.output * T(2))}; }, Saved::output, diagonal<T>);
}

// y = x^p;  dx = grad * p * x^(p-1)   (p = 0: dx = 0);  ty = t * p * x^(p-1)
template <class T>
Tensor<T> pow(const Tensor<T>& x, scalar_t<T> p) {
  constexpr char op[] = "pow";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [p](T v) { return std::pow(v, p); }),
                   [p](const VjpArgs<T>& g) {
                     if (p == T(0)) return Grads<T>{g.grad * T(0)};
                     if (p == T(1)) return Grads<T>{g.grad};
                     return Grads<T>{g.grad * (pow(g.input(0), p - T(1)) * p)};
                   }, Saved::inputs, diagonal<T>);
}

// y = |x|;  dx = grad * sign(x)   (sign(0) = 0);  ty = t * sign(x)
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  constexpr char op[] = "abs";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::abs(v); }),
                   [](const VjpArgs<T>& g) {
                     Tensor<T> sign(map(g.input(0).value(), [](T v) { return T((v > 0) - (v < 0)); }));
                     return Grads<T>{g.grad * sign};
                   }, Saved::inputs, diagonal<T>);
}

namespace {

// The backward of tanh as one op of its own (one pass instead of four ops), differentiable again.
// z = grad * (1 - y^2);  dgrad = gz * (1 - y^2),  dy = -2 gz grad y;  tz = tgrad (1 - y^2) - 2 grad y ty
template <class T>
Tensor<T> tanh_backward(const Tensor<T>& grad, const Tensor<T>& y) {
  return record_output<T>("tanh_backward", {&grad, &y},
                   zip("tanh_backward", grad.value(), y.value(), [](T g, T v) { return g * (T(1) - v * v); }),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& grad = g.input(0);
                     const Tensor<T>& y = g.input(1);
                     return Grads<T>{g.needs_grad(0) ? tanh_backward(g.grad, y) : Tensor<T>(),
                                     g.needs_grad(1) ? g.grad * grad * y * T(-2) : Tensor<T>()};
                   }, Saved::inputs, takes_batch([](const JvpArgs<T>& j) {
                     return tangent_sum(j.has_tangent(0) ? tanh_backward(tangent(j, 0), j.inputs[1]) : Tensor<T>(),
                                        j.has_tangent(1) ? j.inputs[0] * j.inputs[1] * tangent(j, 1) * T(-2) : Tensor<T>(),
                                        j);
                   }));
}

// z = grad * y (1 - y);  dgrad = gz * y (1 - y),  dy = gz grad (1 - 2y);  tz = tgrad y (1 - y) + grad (1 - 2y) ty
template <class T>
Tensor<T> sigmoid_backward(const Tensor<T>& grad, const Tensor<T>& y) {
  return record_output<T>("sigmoid_backward", {&grad, &y},
                   zip("sigmoid_backward", grad.value(), y.value(), [](T g, T v) { return g * v * (T(1) - v); }),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& grad = g.input(0);
                     const Tensor<T>& y = g.input(1);
                     return Grads<T>{g.needs_grad(0) ? sigmoid_backward(g.grad, y) : Tensor<T>(),
                                     g.needs_grad(1) ? g.grad * grad * (y * T(-2) + T(1)) : Tensor<T>()};
                   }, Saved::inputs, takes_batch([](const JvpArgs<T>& j) {
                     return tangent_sum(j.has_tangent(0) ? sigmoid_backward(tangent(j, 0), j.inputs[1]) : Tensor<T>(),
                                        j.has_tangent(1) ? j.inputs[0] * (j.inputs[1] * T(-2) + T(1)) * tangent(j, 1)
                                                         : Tensor<T>(),
                                        j);
                   }));
}

// z = grad where y > 0, else 0;  dgrad = gz where y > 0,  dy = 0 (the step has no slope);  tz = tgrad where y > 0
template <class T>
Tensor<T> relu_backward(const Tensor<T>& grad, const Tensor<T>& y) {
  return record_output<T>("relu_backward", {&grad, &y},
                   zip("relu_backward", grad.value(), y.value(), [](T g, T v) { return v > 0 ? g : T(0); }),
                   [](const VjpArgs<T>& g) {
                     return Grads<T>{g.needs_grad(0) ? relu_backward(g.grad, g.input(1)) : Tensor<T>(), Tensor<T>()};
                   }, Saved::inputs, takes_batch([](const JvpArgs<T>& j) {
                     return j.has_tangent(0) ? tangent_sum(relu_backward(tangent(j, 0), j.inputs[1]), Tensor<T>(), j)
                                             : Tensor<T>();
                   }));
}

}  // namespace

// y = tanh(x);  dx = grad * (1 - y^2);  ty = t * (1 - y^2)
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  constexpr char op[] = "tanh";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map_n(x.value(), &detail::vector_tanh<T>),
      [](const VjpArgs<T>& g) { return Grads<T>{tanh_backward(g.grad, g.output)}; }, Saved::output, diagonal<T>);
}

// y = 1 / (1 + exp(-x));  dx = grad * y * (1 - y);  ty = t * y * (1 - y)
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  constexpr char op[] = "sigmoid";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map_n(x.value(), &detail::vector_sigmoid<T>),
      [](const VjpArgs<T>& g) { return Grads<T>{sigmoid_backward(g.grad, g.output)}; }, Saved::output, diagonal<T>);
}

// y = max(x, 0);  dx = grad * (x > 0);  ty = t * (x > 0)
template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  constexpr char op[] = "relu";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return v > 0 ? v : T(0); }),
      [](const VjpArgs<T>& g) { return Grads<T>{relu_backward(g.grad, g.output)}; }, Saved::output, diagonal<T>);
}

// y = sin(x);  dx = grad * cos(x);  ty = t * cos(x)
template <class T>
Tensor<T> sin(const Tensor<T>& x) {
  constexpr char op[] = "sin";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::sin(v); }),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad * cos(g.input(0))}; }, Saved::inputs, diagonal<T>);
}

// y = cos(x);  dx = -grad * sin(x);  ty = -t * sin(x)
template <class T>
Tensor<T> cos(const Tensor<T>& x) {
  constexpr char op[] = "cos";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::cos(v); }),
                   [](const VjpArgs<T>& g) { return Grads<T>{neg(g.grad * sin(g.input(0)))}; }, Saved::inputs,
                   diagonal<T>);
}

// y = log(1 + x), accurate near 0;  dx = grad / (1 + x);  ty = t / (1 + x)
template <class T>
Tensor<T> log1p(const Tensor<T>& x) {
  constexpr char op[] = "log1p";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::log1p(v); }),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad / (g.input(0) + T(1))}; }, Saved::inputs,
                   diagonal<T>);
}

// y = exp(x) - 1, accurate near 0;  dx = grad * (y + 1);  ty = t * (y + 1)
template <class T>
Tensor<T> expm1(const Tensor<T>& x) {
  constexpr char op[] = "expm1";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::expm1(v); }),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad * (g.output + T(1))}; }, Saved::output,
                   diagonal<T>);
}

// y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)) (no overflow);  dx = grad * sigmoid(x);
//   ty = t * sigmoid(x)
template <class T>
Tensor<T> softplus(const Tensor<T>& x) {
  constexpr char op[] = "softplus";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x},
                   map(x.value(), [](T v) { return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v))); }),
                   [](const VjpArgs<T>& g) { return Grads<T>{g.grad * sigmoid(g.input(0))}; }, Saved::inputs,
                   diagonal<T>);
}

// y = x where x > 0, else slope x;  dx = grad * (1 where x > 0, else slope);  ty likewise of t
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, scalar_t<T> slope) {
  constexpr char op[] = "leaky_relu";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [slope](T v) { return v > 0 ? v : slope * v; }),
                   [slope](const VjpArgs<T>& g) {
                     Tensor<T> factor(map(g.input(0).value(), [slope](T v) { return v > 0 ? T(1) : slope; }));
                     return Grads<T>{g.grad * factor};
                   }, Saved::inputs, diagonal<T>);
}

// y = x where x > 0, else alpha (exp(x) - 1);  dx = grad * (1 where x > 0, else y + alpha);
//   ty likewise of t
template <class T>
Tensor<T> elu(const Tensor<T>& x, scalar_t<T> alpha) {
  constexpr char op[] = "elu";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [alpha](T v) { return v > 0 ? v : alpha * std::expm1(v); }),
                   [alpha](const VjpArgs<T>& g) {
                     // 1 where x > 0; else y + alpha, through the output (differentiable again).
                     Tensor<T> above(map(g.input(0).value(), [](T v) { return v > 0 ? T(1) : T(0); }));
                     Tensor<T> below(map(g.input(0).value(), [](T v) { return v > 0 ? T(0) : T(1); }));
                     return Grads<T>{g.grad * (above + below * (g.output + alpha))};
                   }, Saved::inputs_and_output, diagonal<T>);
}

// y = erf(x);  dx = grad * 2/sqrt(pi) exp(-x^2);  ty = t * 2/sqrt(pi) exp(-x^2)
template <class T>
Tensor<T> erf(const Tensor<T>& x) {
  constexpr char op[] = "erf";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x}, map(x.value(), [](T v) { return std::erf(v); }),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& v = g.input(0);
                     return Grads<T>{g.grad * (exp(v * v * T(-1)) * T(1.1283791670955126))};
                   }, Saved::inputs, diagonal<T>);
}

// y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (the erf form);  dx = grad * (Phi(x) + x phi(x)),
//   phi(x) = exp(-x^2 / 2) / sqrt(2 pi);  ty = t * (Phi(x) + x phi(x))
template <class T>
Tensor<T> gelu(const Tensor<T>& x) {
  constexpr char op[] = "gelu";
  check_defined<T>(op, {&x});
  return record_output<T>(op, {&x},
                   map(x.value(), [](T v) { return v * (T(1) + std::erf(v * T(0.7071067811865476))) * T(0.5); }),
                   [](const VjpArgs<T>& g) {
                     const Tensor<T>& v = g.input(0);
                     const Tensor<T> cdf = (erf(v * T(0.7071067811865476)) + T(1)) * T(0.5);
                     const Tensor<T> pdf = exp(v * v * T(-0.5)) * T(0.3989422804014327);
                     return Grads<T>{g.grad * (cdf + v * pdf)};
                   }, Saved::inputs, diagonal<T>);
}

namespace {

// Where maximum(a, b) (or minimum) takes a: 1, or 1/2 on a tie (the gradient split evenly, as
// PyTorch does); the NaN side wins. Of the broadcast shape; b's share is this one's complement.
template <class T>
Tensor<T> share_of_first(const char* op, const Tensor<T>& a, const Tensor<T>& b, bool maximum) {
  return Tensor<T>(zip(op, a.value(), b.value(), [maximum](T x, T y) {
    if (std::isnan(x)) return T(1);
    if (std::isnan(y)) return T(0);
    if (x == y) return T(0.5);
    return (maximum ? x > y : x < y) ? T(1) : T(0);
  }));
}

// maximum or minimum, recorded: both share one VJP and one rule, through the share of a.
template <class T>
Tensor<T> extremum(const char* op, const Tensor<T>& a, const Tensor<T>& b, bool maximum) {
  check_defined<T>(op, {&a, &b});
  OutputState<T> out = zip(op, a.value(), b.value(), [maximum](T x, T y) {
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? x : y;   // NaN propagates
    return (maximum ? x > y : x < y) ? x : y;
  });
  const auto vjp = [op, maximum](const VjpArgs<T>& g) {
    const Tensor<T> first = share_of_first(op, g.input(0), g.input(1), maximum);
    return Grads<T>{g.needs_grad(0) ? to_input(g.grad * first, g, 0) : Tensor<T>(),
                    g.needs_grad(1) ? to_input(g.grad * (T(1) - first), g, 1) : Tensor<T>()};
  };
  const auto jvp = takes_batch([op, maximum](const JvpArgs<T>& j) {
    const Tensor<T> first = share_of_first(op, j.inputs[0], j.inputs[1], maximum);
    return tangent_sum(j.has_tangent(0) ? tangent(j, 0) * first : Tensor<T>(),
                       j.has_tangent(1) ? tangent(j, 1) * (T(1) - first) : Tensor<T>(), j);
  });
  return record_output<T>(op, {&a, &b}, std::move(out), vjp, Saved::inputs, jvp);
}

}  // namespace

// y = max(a, b) elementwise (broadcast);  da = sum_to(grad * s, a.shape), db = sum_to(grad * (1 - s), b.shape)
//   with s = 1 where a > b, 1/2 on a tie, 0 where a < b;  ty = ta s + tb (1 - s)
template <class T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b) {
  return extremum("maximum", a, b, true);
}

// y = min(a, b) elementwise (broadcast);  as maximum with s = 1 where a < b
template <class T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b) {
  return extremum("minimum", a, b, false);
}

// y = x limited to [lo, hi];  dx = grad where lo <= x <= hi, else 0;  ty = t where lo <= x <= hi
template <class T>
Tensor<T> clamp(const Tensor<T>& x, scalar_t<T> lo, scalar_t<T> hi) {
  constexpr char op[] = "clamp";
  check_defined<T>(op, {&x});
  if (!(lo <= hi))
    throw_value_error(op, "the lower bound " + number_str(lo) + " is above the upper bound " + number_str(hi) +
                              " (or one is NaN)");
  return record_output<T>(op, {&x}, map(x.value(), [lo, hi](T v) { return v < lo ? lo : v > hi ? hi : v; }),
                   [lo, hi](const VjpArgs<T>& g) {
                     Tensor<T> inside(map(g.input(0).value(), [lo, hi](T v) { return lo <= v && v <= hi ? T(1) : T(0); }));
                     return Grads<T>{g.grad * inside};
                   }, Saved::inputs, diagonal<T>);
}

// Explicit instantiations: the kernels compile here once, not in users' code.
template Tensor<float> add(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> sub(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> mul(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> mul_add(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&);
template Tensor<float> div(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> add(const Tensor<float>&, scalar_t<float>);
template Tensor<float> mul(const Tensor<float>&, scalar_t<float>);
template Tensor<float> rdiv(scalar_t<float>, const Tensor<float>&);
template Tensor<float> neg(const Tensor<float>&);
template Tensor<float> exp(const Tensor<float>&);
template Tensor<float> log(const Tensor<float>&);
template Tensor<float> sqrt(const Tensor<float>&);
template Tensor<float> pow(const Tensor<float>&, scalar_t<float>);
template Tensor<float> abs(const Tensor<float>&);
template Tensor<float> tanh(const Tensor<float>&);
template Tensor<float> sigmoid(const Tensor<float>&);
template Tensor<float> relu(const Tensor<float>&);
template Tensor<float> sin(const Tensor<float>&);
template Tensor<float> cos(const Tensor<float>&);
template Tensor<float> log1p(const Tensor<float>&);
template Tensor<float> expm1(const Tensor<float>&);
template Tensor<float> softplus(const Tensor<float>&);
template Tensor<float> leaky_relu(const Tensor<float>&, scalar_t<float>);
template Tensor<float> elu(const Tensor<float>&, scalar_t<float>);
template Tensor<float> erf(const Tensor<float>&);
template Tensor<float> gelu(const Tensor<float>&);
template Tensor<float> maximum(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> minimum(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> clamp(const Tensor<float>&, scalar_t<float>, scalar_t<float>);
template Tensor<double> add(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> sub(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> mul(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> mul_add(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&);
template Tensor<double> div(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> add(const Tensor<double>&, scalar_t<double>);
template Tensor<double> mul(const Tensor<double>&, scalar_t<double>);
template Tensor<double> rdiv(scalar_t<double>, const Tensor<double>&);
template Tensor<double> neg(const Tensor<double>&);
template Tensor<double> exp(const Tensor<double>&);
template Tensor<double> log(const Tensor<double>&);
template Tensor<double> sqrt(const Tensor<double>&);
template Tensor<double> pow(const Tensor<double>&, scalar_t<double>);
template Tensor<double> abs(const Tensor<double>&);
template Tensor<double> tanh(const Tensor<double>&);
template Tensor<double> sigmoid(const Tensor<double>&);
template Tensor<double> relu(const Tensor<double>&);
template Tensor<double> sin(const Tensor<double>&);
template Tensor<double> cos(const Tensor<double>&);
template Tensor<double> log1p(const Tensor<double>&);
template Tensor<double> expm1(const Tensor<double>&);
template Tensor<double> softplus(const Tensor<double>&);
template Tensor<double> leaky_relu(const Tensor<double>&, scalar_t<double>);
template Tensor<double> elu(const Tensor<double>&, scalar_t<double>);
template Tensor<double> erf(const Tensor<double>&);
template Tensor<double> gelu(const Tensor<double>&);
template Tensor<double> maximum(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> minimum(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> clamp(const Tensor<double>&, scalar_t<double>, scalar_t<double>);

}  // namespace tapegrad
