#include "fully_connected.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/nn.hpp"

namespace tapegrad::notes {

namespace {
// sum_j g_j w_ij
Array weighted_rows(const Array& g, const Array& w) {
  Array out = xt::zeros<double>({w.shape(0)});
  for (std::size_t i = 0; i < w.shape(0); ++i)
    for (std::size_t j = 0; j < w.shape(1); ++j) out(i) += g(j) * w(i, j);
  return out;
}
}  // namespace

void FullyConnected::forward(const Tensor<double>& a, const Tensor<double>& o) {
  l = tanh(a);
  c = layer(l);
  d = sigmoid(c);
  E = mse_loss(d, o, Reduction::sum) * 0.5;
}

Array FullyConnected::f_prime(const Array& a) {
  const Array t = xt::tanh(a);
  return 1.0 - t * t;
}

Array FullyConnected::dE_dc(const Array& d, const Array& o) { return (d - o) * d * (1.0 - d); }

Array FullyConnected::dE_dl(const Array& dE_dc, const Array& w) { return weighted_rows(dE_dc, w); }

Array n9_dE_da(const Array& dE_dc, const Array& w, const Array& f_prime_a) {
  return weighted_rows(dE_dc, w) * f_prime_a;
}

Array n10_dE_db(const Array& dE_dl) { return dE_dl; }

Array n11_dE_dw(const Array& dE_dc, const Array& l) {
  Array out = xt::zeros<double>({l.size(), dE_dc.size()});
  for (std::size_t i = 0; i < l.size(); ++i)
    for (std::size_t j = 0; j < dE_dc.size(); ++j) out(i, j) = dE_dc(j) * l(i);
  return out;
}

Array n12_dE_da(const Array& dE_dc, const Array& w) { return weighted_rows(dE_dc, w); }

Array n10_dE_db_corrected(const Array& dE_dc) { return dE_dc; }

Array n12_dE_da_corrected(const Array& dE_dc, const Array& w, const Array& f_prime_a) {
  return n9_dE_da(dE_dc, w, f_prime_a);
}

}  // namespace tapegrad::notes
