// Elementwise ops with NumPy broadcasting. Gradients are reduced back to each input's shape.
#ifndef TAPEGRAD_OPS_ELEMENTWISE_HPP
#define TAPEGRAD_OPS_ELEMENTWISE_HPP

#include "../core/tape.hpp"

namespace tapegrad {

template <class T> Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
// a * b + c, broadcast as the two ops would be; one recorded op where the three have one shape
// (the common case of a gate u * w + bias, or c * f + g), else mul then add. The one op saves its
// three inputs (its VJP reads a and b): changing c in place before backward is an error too.
template <class T> Tensor<T> mul_add(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c);
template <class T> Tensor<T> add(const Tensor<T>& a, scalar_t<T> s);
template <class T> Tensor<T> mul(const Tensor<T>& a, scalar_t<T> s);
// s / x
template <class T> Tensor<T> rdiv(scalar_t<T> s, const Tensor<T>& x);

template <class T> Tensor<T> neg(const Tensor<T>& x);
template <class T> Tensor<T> exp(const Tensor<T>& x);
template <class T> Tensor<T> log(const Tensor<T>& x);
template <class T> Tensor<T> sqrt(const Tensor<T>& x);
template <class T> Tensor<T> pow(const Tensor<T>& x, scalar_t<T> p);
template <class T> Tensor<T> abs(const Tensor<T>& x);
template <class T> Tensor<T> tanh(const Tensor<T>& x);
template <class T> Tensor<T> sigmoid(const Tensor<T>& x);
template <class T> Tensor<T> relu(const Tensor<T>& x);
template <class T> Tensor<T> sin(const Tensor<T>& x);
template <class T> Tensor<T> cos(const Tensor<T>& x);
// log(1 + x) and exp(x) - 1, accurate near 0
template <class T> Tensor<T> log1p(const Tensor<T>& x);
template <class T> Tensor<T> expm1(const Tensor<T>& x);
// log(1 + exp(x)), without overflow
template <class T> Tensor<T> softplus(const Tensor<T>& x);
// x where x > 0, else slope x
template <class T> Tensor<T> leaky_relu(const Tensor<T>& x, scalar_t<T> slope = scalar_t<T>(0.01));
// x where x > 0, else alpha (exp(x) - 1)
template <class T> Tensor<T> elu(const Tensor<T>& x, scalar_t<T> alpha = scalar_t<T>(1));
template <class T> Tensor<T> erf(const Tensor<T>& x);
// x Phi(x), Phi the standard normal's distribution function (the erf form, not tanh's approximation)
template <class T> Tensor<T> gelu(const Tensor<T>& x);
// Elementwise maximum and minimum of two tensors (broadcast); a tie splits the gradient evenly,
// a NaN propagates.
template <class T> Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b);
// x limited to [lo, hi] (lo <= hi); the gradient passes where lo <= x <= hi
template <class T> Tensor<T> clamp(const Tensor<T>& x, scalar_t<T> lo, scalar_t<T> hi);

template <class T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }
template <class T> Tensor<T> operator+(const Tensor<T>& a, scalar_t<T> s) { return add(a, s); }
template <class T> Tensor<T> operator+(scalar_t<T> s, const Tensor<T>& a) { return add(a, s); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, scalar_t<T> s) { return add(a, -s); }
template <class T> Tensor<T> operator-(scalar_t<T> s, const Tensor<T>& a) { return add(neg(a), s); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, scalar_t<T> s) { return mul(a, s); }
template <class T> Tensor<T> operator*(scalar_t<T> s, const Tensor<T>& a) { return mul(a, s); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, scalar_t<T> s) { return mul(a, T(1) / s); }
template <class T> Tensor<T> operator/(scalar_t<T> s, const Tensor<T>& a) { return rdiv(s, a); }

}  // namespace tapegrad

#endif
