#include "data.hpp"

#include <algorithm>

#include "init.hpp"

namespace tapegrad {

BatchSampler::BatchSampler(std::size_t size, DataLoaderOptions options) : size_(size), options_(options) {
  if (options.batch_size == 0) throw_value_error("BatchSampler", "batch_size must be >= 1, got 0");
}

std::size_t BatchSampler::batch_count() const {
  const std::size_t b = options_.batch_size;
  return options_.drop_last ? size_ / b : (size_ + b - 1) / b;
}

std::vector<std::size_t> BatchSampler::order(std::size_t epoch) const {
  if (options_.shuffle) return shuffled_indices(size_, options_.seed * 1000003 + epoch);
  std::vector<std::size_t> all(size_);
  for (std::size_t i = 0; i < size_; ++i) all[i] = i;
  return all;
}

std::vector<std::vector<std::size_t>> BatchSampler::batches(std::size_t epoch) const {
  const std::vector<std::size_t> all = order(epoch);
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t b = 0; b < batch_count(); ++b) {
    const std::size_t first = b * options_.batch_size, last = std::min(size_, first + options_.batch_size);
    out.emplace_back(all.begin() + std::ptrdiff_t(first), all.begin() + std::ptrdiff_t(last));
  }
  return out;
}

template <class T>
TensorDataset<T>::TensorDataset(xt::xarray<T> inputs, std::vector<std::int64_t> labels)
    : inputs_(std::move(inputs)), labels_(std::move(labels)) {
  const Shape s = detail::shape_of(inputs_);
  if (s.empty() || s[0] != labels_.size())
    throw_shape_error("TensorDataset", "inputs of shape " + shape_str(s) + " do not have one row per label (" +
                                           std::to_string(labels_.size()) + " labels)");
}

template <class T>
LabeledBatch<T> TensorDataset<T>::batch(const std::vector<std::size_t>& indices) const {
  Shape s = detail::shape_of(inputs_);
  const std::size_t row = s[0] == 0 ? 0 : inputs_.size() / s[0];
  s[0] = indices.size();
  LabeledBatch<T> b{xt::xarray<T>::from_shape(s), {}};
  b.labels.reserve(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= labels_.size())
      throw_value_error("TensorDataset", "index " + std::to_string(indices[i]) + " at position " + std::to_string(i) +
                                             " is out of range for " + std::to_string(labels_.size()) + " examples");
    std::copy_n(inputs_.data() + indices[i] * row, row, b.inputs.data() + i * row);
    b.labels.push_back(labels_[indices[i]]);
  }
  return b;
}

template class TensorDataset<float>;
template class TensorDataset<double>;

}  // namespace tapegrad
