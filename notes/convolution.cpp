#include "convolution.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/nn.hpp"
#include "../ops/shape.hpp"

namespace tapegrad::notes {

namespace {
Conv2dOptions untied(std::size_t Ho, std::size_t Wo) {
  Conv2dOptions o;
  o.bias = ConvBias::untied;
  o.output_size = {Ho, Wo};
  return o;
}
}  // namespace

Convolution::Convolution(std::size_t H, std::size_t W, std::size_t K)
    : layer(1, 1, K, untied(H - K + 1, W - K + 1)) {}

void Convolution::forward(const Tensor<double>& a, const Tensor<double>& o) {
  const Shape s = a.shape();
  const Tensor<double> out = layer(reshape(a, {1, 1, s[0], s[1]}));
  c = reshape(out, {out.shape()[2], out.shape()[3]});
  E = mse_loss(c, o, Reduction::sum) * 0.5;
}

Tensor<double> Convolution::kernel() const { return layer.weight(); }
Tensor<double> Convolution::bias() const { return layer.bias(); }

Array n16_dE_db(const Array& dE_dc) { return dE_dc; }

Array n17_dE_dk(const Array& dE_dc, const Array& a, std::size_t K) {
  Array out = xt::zeros<double>({K, K});
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j)
      for (std::size_t p = 0; p < dE_dc.shape(0); ++p)
        for (std::size_t l = 0; l < dE_dc.shape(1); ++l) out(i, j) += dE_dc(p, l) * a(i + p, j + l);
  return out;
}

Array n18_dE_da_corrected(const Array& dE_dc, const Array& k, std::size_t H, std::size_t W) {
  Array out = xt::zeros<double>({H, W});
  const std::size_t Ho = dE_dc.shape(0), Wo = dE_dc.shape(1);
  for (std::size_t i = 0; i < H; ++i)
    for (std::size_t j = 0; j < W; ++j)
      for (std::size_t p = 0; p < k.shape(0); ++p)
        for (std::size_t q = 0; q < k.shape(1); ++q)
          if (i >= p && i - p < Ho && j >= q && j - q < Wo) out(i, j) += dE_dc(i - p, j - q) * k(p, q);
  return out;
}

}  // namespace tapegrad::notes
