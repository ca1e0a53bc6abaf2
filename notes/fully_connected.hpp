// Notes, section 2: back-propagation of a fully connected layer.
//   N8 l_i = f(a_i), c_j = sum_i w_ij l_i + b'_j, d_j = g(c_j)
// For an m x n layer (m inputs, n outputs; the notes have 3 x 2). dE/dc_j and dE/dl_i, which the
// notes take as given, are computed by hand here too (see FullyConnected::dE_dc); f' is the
// derivative of the first activation.
#ifndef TAPEGRAD_NOTES_FULLY_CONNECTED_HPP
#define TAPEGRAD_NOTES_FULLY_CONNECTED_HPP

#include "../core/tape.hpp"
#include "../layers/layers.hpp"

namespace tapegrad::notes {

using Array = xt::xarray<double>;

// The layer from primitives: l = tanh(a), c = Linear (w of shape (m, n), b'), d = sigmoid(c),
// E = 1/2 sum (d - o)^2.
struct FullyConnected {
  Linear<double> layer;
  Tensor<double> l, c, d, E;
  FullyConnected(std::size_t m, std::size_t n) : layer(m, n) {}
  void forward(const Tensor<double>& a, const Tensor<double>& o);
  // f'(a) = 1 - tanh(a)^2
  static Array f_prime(const Array& a);
  // By hand from the forward values: dE/dc_j = (d_j - o_j) g'(c_j) = (d_j - o_j) d_j (1 - d_j)
  static Array dE_dc(const Array& d, const Array& o);
  // dE/dl_i = sum_j dE/dc_j w_ij
  static Array dE_dl(const Array& dE_dc, const Array& w);
};

// N9  dE/da_1 = dE/dc_1 dc_1/dl_1 dl_1/da_1 + dE/dc_2 dc_2/dl_1 dl_1/da_1, dc_j/dl_1 = w_1j,
//     dl_1/da_1 = f'(a_1); for every i and n outputs: dE/da_i = sum_j dE/dc_j w_ij f'(a_i)
Array n9_dE_da(const Array& dE_dc, const Array& w, const Array& f_prime_a);
// N10 dE/db_j = dE/dl_i. Readings: the index i stands for j (computable when m = n), and b_j is
//     the layer's bias b'_j (the only b of the section).
Array n10_dE_db(const Array& dE_dl);
// N11 dE/dw_ij = dE/dc_j l_i
Array n11_dE_dw(const Array& dE_dc, const Array& l);
// N12 dE/da_i = dE/dc_1 w_i1 + dE/dc_2 w_i2, for n outputs: sum_j dE/dc_j w_ij
Array n12_dE_da(const Array& dE_dc, const Array& w);

// Corrected. dE/db'_j = dE/dc_j (c_j = ... + b'_j)
Array n10_dE_db_corrected(const Array& dE_dc);
// dE/da_i = f'(a_i) sum_j dE/dc_j w_ij (N9's form: the f'(a_i) of l_i = f(a_i))
Array n12_dE_da_corrected(const Array& dE_dc, const Array& w, const Array& f_prime_a);

}  // namespace tapegrad::notes

#endif
