// Batches of data: the sampler's orders and batch sizes, datasets, the loader.
#include "helpers.hpp"

#include <algorithm>

TEST_CASE("BatchSampler: every index once per epoch, in batches, a seeded order per epoch") {
  tg::BatchSampler sampler(10, {4, true, 7});
  CHECK(sampler.batch_count() == 3);
  const auto epoch1 = sampler.batches(1), epoch2 = sampler.batches(2);
  REQUIRE(epoch1.size() == 3);
  CHECK(epoch1[0].size() == 4);
  CHECK(epoch1[2].size() == 2);   // the last partial batch kept
  std::vector<std::size_t> seen;
  for (const auto& b : epoch1) seen.insert(seen.end(), b.begin(), b.end());
  std::sort(seen.begin(), seen.end());
  for (std::size_t i = 0; i < 10; ++i) CHECK(seen[i] == i);
  CHECK(sampler.order(1) == tg::shuffled_indices(10, 7 * 1000003 + 1));
  CHECK(sampler.order(1) != sampler.order(2));
  CHECK(tg::BatchSampler(10, {4, true, 7}).batches(2) == epoch2);   // the same seed, the same order
  CHECK(tg::BatchSampler(10, {4, true, 8}).order(1) != sampler.order(1));
  const tg::BatchSampler dropping(10, {4, true, 7, /*drop_last=*/true});
  CHECK(dropping.batch_count() == 2);
  CHECK(dropping.batches(1).size() == 2);
  const tg::BatchSampler in_order(5, {2, /*shuffle=*/false});
  CHECK(in_order.batches(3) == std::vector<std::vector<std::size_t>>{{0, 1}, {2, 3}, {4}});
  CHECK(tg::BatchSampler(0, {4}).batch_count() == 0);
  CHECK_THROWS_WITH_AS(tg::BatchSampler(5, {0}), "BatchSampler: batch_size must be >= 1, got 0", tg::ValueError);
}

TEST_CASE("TensorDataset and DataLoader: batches of rows with their labels, epoch by epoch") {
  const Arr inputs = random_array({7, 2, 3}, 3500);
  const std::vector<std::int64_t> labels{0, 1, 2, 3, 4, 5, 6};
  const tg::TensorDataset<double> data(inputs, labels);
  const tg::LabeledBatch<double> b = data.batch({6, 0, 6});
  REQUIRE(b.inputs.shape(0) == 3);
  CHECK(b.labels == std::vector<std::int64_t>{6, 0, 6});
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t k = 0; k < 3; ++k) CHECK(b.inputs(i, j, k) == inputs(static_cast<std::size_t>(b.labels[i]), j, k));

  const tg::DataLoader<tg::LabeledBatch<double>> loader(data, {3, true, 1});
  CHECK(loader.batch_count() == 3);
  std::vector<std::int64_t> all;
  std::size_t batches = 0;
  for (const auto& batch : loader.epoch(1)) {
    ++batches;
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      all.push_back(batch.labels[i]);
      CHECK(batch.inputs(i, 1, 2) == inputs(static_cast<std::size_t>(batch.labels[i]), 1, 2));
    }
  }
  CHECK(batches == 3);
  std::sort(all.begin(), all.end());
  CHECK(all == labels);
  CHECK_THROWS_WITH_AS(data.batch({7}), "TensorDataset: index 7 at position 0 is out of range for 7 examples", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::TensorDataset<double>(inputs, {0, 1}),
                       "TensorDataset: inputs of shape (7, 2, 3) do not have one row per label (2 labels)", tg::ShapeError);
}
