// Data-parallel training over MPI (Open MPI): the optional component tapegrad::distributed, built
// when CMake finds MPI. The core library never needs MPI.
//
//   tg::distributed::Environment mpi(argc, argv);              // MPI_Init ... MPI_Finalize
//   tg::distributed::broadcast_parameters(model.parameters()); // rank 0's initial values
//   tg::distributed::GradientAverager<float> averager(model.parameters());
//   for each step:  batch = tg::distributed::shard(global batch indices, mpi.rank(), mpi.size())
//                   loss.backward();  averager.average();  opt.step();
#ifndef TAPEGRAD_DISTRIBUTED_DISTRIBUTED_HPP
#define TAPEGRAD_DISTRIBUTED_DISTRIBUTED_HPP

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

namespace tapegrad {
namespace distributed {

// An MPI call that failed: the message names the call and MPI's error string.
class MpiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// MPI for the lifetime of the object (RAII): MPI_Init, and MPI_Finalize at the end. One per
// process. MPI errors are returned to tapegrad, which throws MpiError, instead of aborting.
// Destroyed by an exception leaving its scope, it calls abort_all instead of MPI_Finalize (which
// would wait for the other ranks forever): catch exceptions inside its scope and pass their
// message to abort_all to have it printed.
class Environment {
 public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0;
  int size_ = 1;
  int exceptions_ = 0;   // std::uncaught_exceptions() at construction
};

// Copies rank `root`'s values of every parameter into every rank's (one MPI_Bcast per tensor,
// in place: version() is bumped). Shapes must agree on every rank.
template <class T>
void broadcast_parameters(const std::vector<Tensor<T>>& parameters, int root = 0);

// Averages the parameters' gradients over all ranks after backward. The gradients are packed
// into buckets of at most `bucket_bytes` (a tensor larger than that gets a bucket of its own),
// one MPI_Allreduce per bucket, then divided by the number of ranks. A parameter that backward
// did not reach counts as a zero gradient, so every rank ends with the same gradients.
template <class T>
class GradientAverager {
 public:
  explicit GradientAverager(std::vector<Tensor<T>> parameters, std::size_t bucket_bytes = std::size_t(1) << 20);
  void average();
  std::size_t buckets() const { return buckets_.size(); }
  // Seconds the last average() spent, packing and MPI included.
  double last_seconds() const { return last_seconds_; }

 private:
  std::vector<Tensor<T>> parameters_;
  std::vector<std::pair<std::size_t, std::size_t>> buckets_;   // [first, last) parameter indices
  std::vector<T> buffer_;
  double last_seconds_ = 0;
};

// This rank's part of a global batch: the indices are split into `size` consecutive parts of
// equal length (the batch length must be a multiple of size), and rank r takes part r. With the
// same global order on every rank, N ranks with batch B see exactly the samples one process
// sees with batch N·B.
std::vector<std::size_t> shard(const std::vector<std::size_t>& batch, int rank, int size);

// True on every rank when `ok` is true on every rank (a collective).
bool all_ranks(bool ok);

// Whether every rank's tensors equal rank 0's, bit for bit (a collective; the same answer on
// every rank).
template <class T>
bool same_on_all_ranks(const std::vector<Tensor<T>>& tensors);

// Ends every rank of the job: prints "rank R of N: <message>" on stderr and calls MPI_Abort, so
// that a rank that failed does not leave the others waiting in a collective forever.
[[noreturn]] void abort_all(const std::string& message, int exit_code = 1);

}  // namespace distributed
}  // namespace tapegrad

#endif
