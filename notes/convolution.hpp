// Notes, section 4: back-propagation of a convolutional layer with a bias per output element.
//   N15 (as written) c_ij = b_ij + sum_{0 <= k,l <= 1} k_kl c_{i+k, j+l}
//   Reading: the c inside the sum is the layer's input a (c on both sides would define c by
//   itself): c_ij = b_ij + sum_{k,l} k_kl a_{i+k, j+l}, a correlation with a K x K kernel
//   (the notes' 2 x 2), input a (H, W), output c and bias b (H - K + 1, W - K + 1).
#ifndef TAPEGRAD_NOTES_CONVOLUTION_HPP
#define TAPEGRAD_NOTES_CONVOLUTION_HPP

#include "../core/tape.hpp"
#include "../layers/layers.hpp"

namespace tapegrad::notes {

using Array = xt::xarray<double>;

// The layer from primitives: Conv2d(1, 1, K) with the notes' untied bias b_ij, E = 1/2 sum (c - o)^2.
struct Convolution {
  Conv2d<double> layer;
  Tensor<double> c, E;
  Convolution(std::size_t H, std::size_t W, std::size_t K);
  void forward(const Tensor<double>& a, const Tensor<double>& o);   // a (H, W), o (Ho, Wo)
  Tensor<double> kernel() const;                                   // the layer's weight (1, 1, K, K)
  Tensor<double> bias() const;                                     // b (1, Ho, Wo)
};

// N16 dE/db_ij = dE/dc_ij
Array n16_dE_db(const Array& dE_dc);
// N17 dE/dk_ij = sum_{p=0}^{2} sum_{l=0}^{2} dE/dc_kl a_{i+p, j+l}
//     Readings: the summand's c_kl is c_pl (k is not a summation variable; p is); the upper bound 2
//     is the last output index of the notes' example, Ho - 1 and Wo - 1 in general.
Array n17_dE_dk(const Array& dE_dc, const Array& a, std::size_t K);
// N18 dE/da_ij = sum_{k=max(0, K-1)}^{min(K, H-j)} sum_{l=max(0, K-1)}^{min(K, H-k)} (...)
//     The summand is left empty: incomplete, nothing to compute as written.

// Corrected N18: dE/da_ij = sum_{p,q} dE/dc_{i-p, j-q} k_pq over 0 <= i-p < Ho, 0 <= j-q < Wo
// (a full convolution of dE/dc with the kernel).
Array n18_dE_da_corrected(const Array& dE_dc, const Array& k, std::size_t H, std::size_t W);

}  // namespace tapegrad::notes

#endif
