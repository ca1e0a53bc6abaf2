#include "distributed.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>

#include "../core/errors.hpp"

namespace tapegrad {
namespace distributed {

namespace {

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw MpiError(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

int world_size() {
  int size = 1;
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  return size;
}

// Throws on every rank, the same message, if the ranks disagree on the tensors' sizes: a
// collective with mismatched counts would hang or corrupt memory instead.
template <class T>
void check_same_sizes(const char* op, const std::vector<Tensor<T>>& tensors) {
  const auto range = [](std::vector<long long> v) {
    std::vector<long long> low = v, high = std::move(v);
    check(MPI_Allreduce(MPI_IN_PLACE, low.data(), static_cast<int>(low.size()), MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD),
          "MPI_Allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, high.data(), static_cast<int>(high.size()), MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD),
          "MPI_Allreduce");
    return std::make_pair(low, high);
  };
  const auto [fewest, most] = range({static_cast<long long>(tensors.size())});
  if (fewest[0] != most[0])
    throw_value_error(op, "the ranks pass different numbers of tensors (between " + std::to_string(fewest[0]) +
                              " and " + std::to_string(most[0]) + ")");
  std::vector<long long> sizes;
  for (const Tensor<T>& t : tensors) sizes.push_back(static_cast<long long>(t.size()));
  const auto [low, high] = range(sizes);
  for (std::size_t i = 0; i < sizes.size(); ++i)
    if (low[i] != high[i])
      throw_value_error(op, "tensor " + std::to_string(i) + " has between " + std::to_string(low[i]) + " and " +
                                std::to_string(high[i]) + " elements on different ranks (the models differ)");
}

}  // namespace

Environment::Environment(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    throw_usage_error("distributed::Environment", "MPI is already initialised: create one Environment per process");
  exceptions_ = std::uncaught_exceptions();
  check(MPI_Init(&argc, &argv), "MPI_Init");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (std::uncaught_exceptions() > exceptions_)
    abort_all("an exception is leaving the scope of distributed::Environment: stopping every rank");
  MPI_Finalize();
}

template <class T>
void broadcast_parameters(const std::vector<Tensor<T>>& parameters, int root) {
  check_same_sizes("distributed::broadcast_parameters", parameters);
  for (const Tensor<T>& p : parameters) {
    Tensor<T> target = p;
    check(MPI_Bcast(target.mutable_value().data(), static_cast<int>(p.size()), mpi_type<T>(), root, MPI_COMM_WORLD),
          "MPI_Bcast");
  }
}

template <class T>
GradientAverager<T>::GradientAverager(std::vector<Tensor<T>> parameters, std::size_t bucket_bytes)
    : parameters_(std::move(parameters)) {
  if (bucket_bytes < sizeof(T))
    throw_value_error("distributed::GradientAverager",
                      "bucket_bytes must hold at least one element, got " + std::to_string(bucket_bytes));
  check_same_sizes("distributed::GradientAverager", parameters_);
  std::size_t first = 0, bytes = 0, largest = 0;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const std::size_t b = parameters_[i].size() * sizeof(T);
    if (i > first && bytes + b > bucket_bytes) {
      buckets_.emplace_back(first, i);
      first = i;
      bytes = 0;
    }
    bytes += b;
  }
  if (first < parameters_.size()) buckets_.emplace_back(first, parameters_.size());
  for (const auto& [begin, end] : buckets_) {
    std::size_t n = 0;
    for (std::size_t i = begin; i < end; ++i) n += parameters_[i].size();
    largest = std::max(largest, n);
  }
  buffer_.resize(largest);
}

template <class T>
void GradientAverager<T>::average() {
  const auto start = std::chrono::steady_clock::now();
  const T scale = T(1) / static_cast<T>(world_size());
  for (const auto& [begin, end] : buckets_) {
    T* out = buffer_.data();
    for (std::size_t i = begin; i < end; ++i) {
      const Tensor<T>& p = parameters_[i];
      if (p.has_grad())
        out = std::copy(p.grad().begin(), p.grad().end(), out);
      else
        out = std::fill_n(out, p.size(), T(0));
    }
    const auto n = static_cast<int>(out - buffer_.data());
    check(MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), n, mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    const T* in = buffer_.data();
    for (std::size_t i = begin; i < end; ++i) {
      auto& impl = *parameters_[i].impl();
      if (!impl.grad) impl.grad = std::make_unique<xt::xarray<T>>(xt::xarray<T>::from_shape(impl.value.shape()));
      for (T& g : *impl.grad) g = *in++ * scale;
    }
  }
  last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<std::size_t> shard(const std::vector<std::size_t>& batch, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw_value_error("distributed::shard", "rank " + std::to_string(rank) + " is not in [0, " + std::to_string(size) + ")");
  const auto parts = static_cast<std::size_t>(size);
  if (batch.size() % parts != 0)
    throw_value_error("distributed::shard", "a batch of " + std::to_string(batch.size()) +
                                                " indices cannot be split into " + std::to_string(size) +
                                                " equal parts (make the global batch a multiple of the ranks)");
  const std::size_t length = batch.size() / parts, first = length * static_cast<std::size_t>(rank);
  return std::vector<std::size_t>(batch.begin() + static_cast<std::ptrdiff_t>(first),
                                  batch.begin() + static_cast<std::ptrdiff_t>(first + length));
}

bool all_ranks(bool ok) {
  int all = ok ? 1 : 0;
  check(MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  return all == 1;
}

template <class T>
bool same_on_all_ranks(const std::vector<Tensor<T>>& tensors) {
  check_same_sizes("distributed::same_on_all_ranks", tensors);
  bool same = true;
  for (const Tensor<T>& t : tensors) {
    xt::xarray<T> rank0 = t.value();
    check(MPI_Bcast(rank0.data(), static_cast<int>(rank0.size()), mpi_type<T>(), 0, MPI_COMM_WORLD), "MPI_Bcast");
    same = same && std::equal(rank0.begin(), rank0.end(), t.value().begin());
  }
  return all_ranks(same);
}

void abort_all(const std::string& message, int exit_code) {
  int initialized = 0, finalized = 0, rank = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  // One write for the whole line: written piece by piece (std::cerr is unbuffered), it reached
  // the terminal cut in two by Open MPI's abort banner.
  const std::string line = "rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + message + "\n";
  std::cerr << line << std::flush;
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

template void broadcast_parameters(const std::vector<Tensor<float>>&, int);
template void broadcast_parameters(const std::vector<Tensor<double>>&, int);
template bool same_on_all_ranks(const std::vector<Tensor<float>>&);
template bool same_on_all_ranks(const std::vector<Tensor<double>>&);
template class GradientAverager<float>;
template class GradientAverager<double>;

}  // namespace distributed
}  // namespace tapegrad
