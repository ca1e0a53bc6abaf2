// Float against double: every op's values and gradients, and the layers', computed in float agree
// with the same computation in double to float's precision, on every SIMD kernel table this CPU
// runs (ops/vector_math.hpp), not only the one chosen at start-up.
#include "every_op.hpp"
#include "helpers.hpp"

#include <tapegrad/ops/vector_math.hpp>

namespace {

using FloatInputs = std::vector<TF>;

xt::xarray<float> to_float(const Arr& a) { return xt::cast<float>(a); }

// max_i |f_i - d_i| / (|d_i| + 1e-3 max_j |d_j|): relative to each element, with a floor that keeps
// elements which cancel to almost nothing (where float has no relative digits left) from counting.
double mismatch(const Arr& d, const xt::xarray<float>& f) {
  REQUIRE(d.shape() == f.shape());
  const double floor = 1e-3 * (d.size() ? double(xt::amax(xt::abs(d))()) : 0.0);
  double worst = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (double(f.data()[i]) == d.data()[i]) continue;   // equal infinities too
    const double err = std::abs(double(f.data()[i]) - d.data()[i]);
    if (!std::isfinite(err)) return INFINITY;   // a NaN or an infinity on one side only
    worst = std::max(worst, err / (std::abs(d.data()[i]) + floor));
  }
  return worst;
}

// Float's tolerance: its unit roundoff is 6e-8; a few hundred roundings in a row stay below 1e-5,
// and an error of 1e-4 (0.01 %) in any one element of a float path fails.
constexpr double float_tolerance = 2e-5;

}  // namespace

TEST_CASE("every op in float: values and gradients within float's precision of double, on every kernel table") {
  const auto tables = tg::detail::vector_math_tables();
  REQUIRE(!tables.empty());
  double overall = 0;
  for (const auto& table : tables) {
    const tg::detail::VectorMathOverride kernels(table.table);
    const std::string kernel_table = table.name;
    unsigned seed = 5000;
    const auto float_ops = every_op<float>();
    const auto double_ops = every_op<double>();
    REQUIRE(float_ops.size() == double_ops.size());
    for (std::size_t c = 0; c < double_ops.size(); ++c) {
      const std::string name = double_ops[c].name;
      CAPTURE(kernel_table);
      CAPTURE(name);
      Inputs xd;
      FloatInputs xf;
      for (const tg::Shape& s : double_ops[c].shapes) {
        // Values exact in float, so both runs start from the same numbers.
        const Arr a = xt::cast<double>(to_float(random_array(s, ++seed, double_ops[c].lo, double_ops[c].hi)));
        xd.push_back(TD(a, true));
        xf.push_back(TF(to_float(a), true));
      }
      tg::Tape tape;
      const TD yd = double_ops[c].f(xd);
      const TF yf = float_ops[c].f(xf);
      const double values = mismatch(yd.value(), yf.value());
      CHECK(values <= float_tolerance);
      const Arr v = xt::cast<double>(to_float(random_array(yd.shape(), ++seed)));
      const Inputs gd = tg::grad(yd, xd, v);
      const FloatInputs gf = tg::grad(yf, xf, xt::xarray<float>(to_float(v)));
      for (std::size_t i = 0; i < gd.size(); ++i) {
        CAPTURE(i);
        const double g = mismatch(gd[i].value(), gf[i].value());
        CHECK(g <= float_tolerance);
        overall = std::max({overall, values, g});
      }
    }
  }
  MESSAGE("float against double, every op, worst relative difference: ", overall);
}

namespace {

// A float module's parameter gradients (and its input's) against those of the same module
// converted to double (exact: every float is a double), for the loss sum(run(m, x) * v).
// A dozen layers deep, float's roundings compound, and the gradients of a batch norm and of a
// softmax subtract nearly equal terms: the layers are held to a looser tolerance than single ops.
constexpr double layer_tolerance = 5e-4;

template <class Double, class Float, class Run>
double check_module_gradients(Float& f, Run run, const Arr& x, unsigned seed) {
  const std::shared_ptr<tg::Module<double>> converted = f.template to<double>();
  auto& d = dynamic_cast<Double&>(*converted);
  const TD xd(x, true);
  const TF xf(to_float(x), true);
  tg::Tape tape;
  const TD yd = run(d, xd);
  const TF yf = run(f, xf);
  double worst = mismatch(yd.value(), yf.value());
  CHECK(worst <= float_tolerance);
  const Arr v = xt::cast<double>(to_float(random_array(yd.shape(), seed)));
  std::vector<TD> wrt_d{xd};
  std::vector<TF> wrt_f{xf};
  std::vector<std::string> names{"input"};
  for (const auto& [name, p] : d.named_parameters()) {
    wrt_d.push_back(p);
    names.push_back(name);
  }
  for (const auto& [name, p] : f.named_parameters()) wrt_f.push_back(p);
  REQUIRE(wrt_d.size() == wrt_f.size());
  const auto gd = tg::grad(yd, wrt_d, v);
  const auto gf = tg::grad(yf, wrt_f, xt::xarray<float>(to_float(v)));
  for (std::size_t i = 0; i < gd.size(); ++i) {
    CAPTURE(names[i]);
    const double g = mismatch(gd[i].value(), gf[i].value());
    CHECK(g <= layer_tolerance);
    worst = std::max(worst, g);
  }
  return worst;
}

}  // namespace

TEST_CASE("every layer in float: outputs and parameter gradients within float's precision of double") {
  tg::ManualSeed seed(41);
  double worst = 0;
  for (const auto& table : tg::detail::vector_math_tables()) {
    const tg::detail::VectorMathOverride kernels(table.table);
    CAPTURE(table.name);
    // No bias before the batch norm (its gradient is zero there: only rounding would be compared).
    tg::Conv2dOptions unbiased;
    unbiased.padding = 1;
    unbiased.bias = tg::ConvBias::none;
    tg::Conv2dOptions strided;
    strided.stride = 2;
    // Training mode: the batch norm normalizes by the batch's own statistics.
    tg::Sequential<float> net(tg::Conv2d<float>(2, 4, 3, unbiased), tg::BatchNorm2d<float>(4), tg::ReLU<float>(),
                              tg::Conv2d<float>(4, 3, 2, strided), tg::MaxPool2d<float>(2, 1), tg::AvgPool2d<float>(2),
                              tg::Flatten<float>(), tg::Linear<float>(3, 6), tg::LayerNorm<float>({6}),
                              tg::Sigmoid<float>(), tg::Linear<float>(6, 5), tg::Tanh<float>(), tg::Softmax<float>(1));
    const auto call = [](auto& m, const auto& x) { return m(x); };
    worst = std::max(worst, check_module_gradients<tg::Sequential<double>>(net, call, random_array({3, 2, 8, 8}, 5100), 5101));
    tg::LSTM<float> lstm(3, 4, 2);
    const auto sequence = [](auto& m, const auto& x) { return m(x).output; };
    worst = std::max(worst, check_module_gradients<tg::LSTM<double>>(lstm, sequence, random_array({5, 2, 3}, 5102), 5103));
    tg::GRU<float> gru(3, 4);
    const auto from_zero = [](auto& m, const auto& x) {
      using T = typename std::decay_t<decltype(x)>::value_type;
      return m(x, tg::Tensor<T>(xt::xarray<T>(xt::zeros<T>({std::size_t(1), x.shape()[1], std::size_t(4)})))).output;
    };
    worst = std::max(worst, check_module_gradients<tg::GRU<double>>(gru, from_zero, random_array({5, 2, 3}, 5104), 5105));
    tg::Embedding<float> embed(6, 3);
    const auto lookup = [](auto& m, const auto& x) { return m(tg::Index{{4, 0}, {5, 4}}) * x; };
    worst = std::max(worst, check_module_gradients<tg::Embedding<double>>(embed, lookup, random_array({2, 2, 3}, 5106), 5107));
  }
  MESSAGE("float against double, layers, worst relative difference: ", worst);
}
