// Notes, section 1: back-propagation through the last layer, softmax with squared error.
//   N1 l_i = e^{a_i} / sum_j e^{a_j}        N2 E = 1/2 sum_i (l_i - o_i)^2
// The hand-derived formulas exactly as the notes write them (for n classes instead of 3), and the
// corrected ones where a check found them wrong. Arrays are 1-D of n elements.
#ifndef TAPEGRAD_NOTES_SOFTMAX_OUTPUT_HPP
#define TAPEGRAD_NOTES_SOFTMAX_OUTPUT_HPP

#include "../core/tape.hpp"

namespace tapegrad::notes {

using Array = xt::xarray<double>;

// The layer from primitives: E = 1/2 sum (softmax(a) - o)^2, with the softmax as its own tensor.
struct SoftmaxOutput {
  Tensor<double> l, E;
  SoftmaxOutput(const Tensor<double>& a, const Tensor<double>& o);
};

// N3  dE/dl_i = o_i - l_i
Array n3_dE_dl(const Array& l, const Array& o);
// N4  dl_1/da_1 = l_1 (1 - l_1), for every i: the diagonal entries dl_i/da_i
Array n4_dl_da_diagonal(const Array& l);
// N5  dE/da_1 = dE/dl_1 . dl_1/da_1 = (o_1 - l_1) l_1 (1 - l_1)   (the notes' index 1 is element 0)
double n5_dE_da1(const Array& l, const Array& o);
// N6  dE/da_i = dE/dl_i . dl_i/da_i = (o_i - l_i) l_1 (1 - l_i), computed as written, l_1 included
//     (its middle term dE/dl_i . dl_i/da_i says l_i was meant: see n6_dE_da_index_fixed).
Array n6_dE_da(const Array& l, const Array& o);
// N6 with its l_1 read as l_i: (o_i - l_i) l_i (1 - l_i), the step between N6 and its correction.
Array n6_dE_da_index_fixed(const Array& l, const Array& o);
// N7  dE/db_i = dE/da_i, where a_i = z_i + b_i: returns dE/da as the formula says.
Array n7_dE_db(const Array& dE_da);

// Corrected. dE/dl_i = l_i - o_i.
Array n3_dE_dl_corrected(const Array& l, const Array& o);
// dE/da_1 = sum_j dE/dl_j dl_j/da_1 = l_1 ((l_1 - o_1) - sum_j (l_j - o_j) l_j)
double n5_dE_da1_corrected(const Array& l, const Array& o);
// dE/da_i = sum_j (l_j - o_j) l_j (delta_ij - l_i) = l_i ((l_i - o_i) - sum_j (l_j - o_j) l_j)
Array n6_dE_da_corrected(const Array& l, const Array& o);

}  // namespace tapegrad::notes

#endif
