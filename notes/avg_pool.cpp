#include "avg_pool.hpp"

#include "../layers/layers.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/nn.hpp"
#include "../ops/shape.hpp"

namespace tapegrad::notes {

AveragePooling::AveragePooling(const Tensor<double>& a, const Tensor<double>& o) {
  const Shape s = a.shape();
  AvgPool2d<double> pool(2);
  const Tensor<double> pooled = pool(reshape(a, {1, 1, s[0], s[1]}));
  b = reshape(pooled, {pooled.shape()[2], pooled.shape()[3]});
  E = mse_loss(b, o, Reduction::sum) * 0.5;
}

Array n14_dE_da(const Array& dE_db, std::size_t H, std::size_t W) {
  Array out = xt::zeros<double>({H, W});
  for (std::size_t i = 0; i < H; ++i)
    for (std::size_t j = 0; j < W; ++j) {
      const std::size_t k = i / 2, l = j / 2;
      if (k < dE_db.shape(0) && l < dE_db.shape(1)) out(i, j) = 0.25 * dE_db(k, l);
    }
  return out;
}

}  // namespace tapegrad::notes
