// Data in batches: a seeded sampler of index batches, datasets that make a batch from indices,
// and a loader that runs through a dataset's batches epoch by epoch.
#ifndef TAPEGRAD_LAYERS_DATA_HPP
#define TAPEGRAD_LAYERS_DATA_HPP

#include <cstdint>
#include <vector>

#include "../core/tensor.hpp"

namespace tapegrad {

struct DataLoaderOptions {
  std::size_t batch_size = 32;
  bool shuffle = true;        // a new order every epoch, from the seed and the epoch
  std::uint64_t seed = 0;
  bool drop_last = false;     // drop a last batch smaller than batch_size
};

// Indices 0 .. size - 1 in batches. Epoch e's order is shuffled_indices(size, seed * 1000003 + e)
// (the same on every host), or 0 .. size - 1 without shuffling.
class BatchSampler {
 public:
  BatchSampler(std::size_t size, DataLoaderOptions options);
  std::size_t size() const { return size_; }
  // Batches per epoch.
  std::size_t batch_count() const;
  std::vector<std::size_t> order(std::size_t epoch) const;
  std::vector<std::vector<std::size_t>> batches(std::size_t epoch) const;
  const DataLoaderOptions& options() const { return options_; }

 private:
  std::size_t size_;
  DataLoaderOptions options_;
};

// A data set that gathers a batch of its examples from their indices.
template <class Batch>
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  virtual Batch batch(const std::vector<std::size_t>& indices) const = 0;
};

// Inputs (N, ...) with one integer label each.
template <class T>
struct LabeledBatch {
  xt::xarray<T> inputs;
  std::vector<std::int64_t> labels;
};

// Examples held in memory: inputs (N, ...) and N labels; a batch copies their rows.
template <class T>
class TensorDataset : public Dataset<LabeledBatch<T>> {
 public:
  TensorDataset(xt::xarray<T> inputs, std::vector<std::int64_t> labels);
  std::size_t size() const override { return labels_.size(); }
  LabeledBatch<T> batch(const std::vector<std::size_t>& indices) const override;

 private:
  xt::xarray<T> inputs_;
  std::vector<std::int64_t> labels_;
};

// A dataset's batches, epoch by epoch: for (const auto& batch : loader.epoch(e)) { ... }. Each
// batch is gathered when the iteration reaches it.
template <class Batch>
class DataLoader {
 public:
  // The loader reads the dataset where it is: it must outlive the loader (a temporary does not).
  DataLoader(const Dataset<Batch>& data, DataLoaderOptions options) : data_(data), sampler_(data.size(), options) {}
  DataLoader(const Dataset<Batch>&& data, DataLoaderOptions options) = delete;
  const BatchSampler& sampler() const { return sampler_; }
  std::size_t batch_count() const { return sampler_.batch_count(); }

  class Epoch {
   public:
    class iterator {
     public:
      iterator(const Epoch& epoch, std::size_t at) : epoch_(&epoch), at_(at) {}
      Batch operator*() const { return epoch_->data_.batch(epoch_->batches_[at_]); }
      iterator& operator++() {
        ++at_;
        return *this;
      }
      bool operator!=(const iterator& other) const { return at_ != other.at_; }

     private:
      const Epoch* epoch_;
      std::size_t at_;
    };
    iterator begin() const { return {*this, 0}; }
    iterator end() const { return {*this, batches_.size()}; }
    std::size_t size() const { return batches_.size(); }

   private:
    friend class DataLoader;
    Epoch(const Dataset<Batch>& data, std::vector<std::vector<std::size_t>> batches)
        : data_(data), batches_(std::move(batches)) {}
    const Dataset<Batch>& data_;
    std::vector<std::vector<std::size_t>> batches_;
  };
  Epoch epoch(std::size_t e) const { return Epoch(data_, sampler_.batches(e)); }

 private:
  const Dataset<Batch>& data_;
  BatchSampler sampler_;
};

extern template class TensorDataset<float>;
extern template class TensorDataset<double>;

}  // namespace tapegrad

#endif
