// Notes, section 3: back-propagation of 2-D average pooling (2 x 2 windows, stride 2).
//   N13 b_ij = (a_{2i,2j} + a_{2i+1,2j} + a_{2i,2j+1} + a_{2i+1,2j+1}) / 4
#ifndef TAPEGRAD_NOTES_AVG_POOL_HPP
#define TAPEGRAD_NOTES_AVG_POOL_HPP

#include "../core/tape.hpp"

namespace tapegrad::notes {

using Array = xt::xarray<double>;

// The layer from primitives: b = AvgPool2d(2) of a (H, W), E = 1/2 sum (b - o)^2.
struct AveragePooling {
  Tensor<double> b, E;
  AveragePooling(const Tensor<double>& a, const Tensor<double>& o);
};

// N14 dE/da_ij = 1/4 dE/db_kl, k = floor(i/2), l = floor(j/2), for an H x W input.
//     Reading for odd H or W: the last row or column belongs to no window (it is dropped), so
//     b_kl with k = floor(i/2) does not exist there; its dE/db_kl is read as 0.
Array n14_dE_da(const Array& dE_db, std::size_t H, std::size_t W);

}  // namespace tapegrad::notes

#endif
