#include "init.hpp"

#include <cmath>

namespace tapegrad {

namespace {
template <class T>
xt::xarray<T> uniform_array(const Shape& shape, double bound, Generator& gen) {
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = static_cast<T>(gen.uniform(-bound, bound));
  return a;
}
}  // namespace

std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  Generator gen(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[gen.next() % i]);
  return order;
}

template <class T>
xt::xarray<T> init_weight(const Shape& shape, Init init, std::size_t fan_in, std::size_t fan_out, Generator& gen) {
  const double bound = init == Init::kaiming_uniform ? std::sqrt(6.0 / double(std::max<std::size_t>(fan_in, 1)))
                                                     : std::sqrt(6.0 / double(std::max<std::size_t>(fan_in + fan_out, 1)));
  return uniform_array<T>(shape, bound, gen);
}

template <class T>
xt::xarray<T> init_bias(const Shape& shape, std::size_t fan_in, Generator& gen) {
  return uniform_array<T>(shape, 1.0 / std::sqrt(double(std::max<std::size_t>(fan_in, 1))), gen);
}

template xt::xarray<float> init_weight(const Shape&, Init, std::size_t, std::size_t, Generator&);
template xt::xarray<double> init_weight(const Shape&, Init, std::size_t, std::size_t, Generator&);
template xt::xarray<float> init_bias(const Shape&, std::size_t, Generator&);
template xt::xarray<double> init_bias(const Shape&, std::size_t, Generator&);

}  // namespace tapegrad
