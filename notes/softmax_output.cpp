#include "softmax_output.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/nn.hpp"

namespace tapegrad::notes {

SoftmaxOutput::SoftmaxOutput(const Tensor<double>& a, const Tensor<double>& o)
    : l(softmax(a, 0)), E(mse_loss(l, o, Reduction::sum) * 0.5) {}

Array n3_dE_dl(const Array& l, const Array& o) { return o - l; }

Array n4_dl_da_diagonal(const Array& l) { return l * (1.0 - l); }

double n5_dE_da1(const Array& l, const Array& o) { return (o(0) - l(0)) * l(0) * (1.0 - l(0)); }

Array n6_dE_da(const Array& l, const Array& o) { return (o - l) * l(0) * (1.0 - l); }

Array n6_dE_da_index_fixed(const Array& l, const Array& o) { return (o - l) * l * (1.0 - l); }

Array n7_dE_db(const Array& dE_da) { return dE_da; }

Array n3_dE_dl_corrected(const Array& l, const Array& o) { return l - o; }

double n5_dE_da1_corrected(const Array& l, const Array& o) { return n6_dE_da_corrected(l, o)(0); }

Array n6_dE_da_corrected(const Array& l, const Array& o) {
  const double weighted = xt::sum((l - o) * l)();
  return l * ((l - o) - weighted);
}

}  // namespace tapegrad::notes
