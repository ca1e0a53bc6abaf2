// LeNet-5 on Fashion-MNIST: configuration, command line, and the training run.
#ifndef TAPEGRAD_EXAMPLES_FASHION_MNIST_TRAINER_HPP
#define TAPEGRAD_EXAMPLES_FASHION_MNIST_TRAINER_HPP

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace fashion {

struct Config {
  std::size_t epochs = 1;
  std::size_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  std::uint64_t seed = 1;
  int threads = 1;
  std::string data = tapegrad::fashion_mnist_default_dir;
  std::string out = "runs/fashion_mnist";
  std::size_t limit = 0;          // first N training images (0: all)
  std::size_t check_images = 4;   // images in the gradient check before training (0: skip it)
  bool distributed = false;       // data-parallel over MPI ranks (run under mpirun)
  std::size_t checkpoint_every = 0;  // steps between checkpoints (0: at each epoch's end only)
  bool resume = false;            // continue from resume_from, or from <out>/checkpoint.npz if it exists
  std::string resume_from;        // --resume PATH (empty: <out>/checkpoint.npz)
  std::size_t stop_after = 0;     // stop after this many steps of the run, as if killed (tests)
};

// How this process takes part in data-parallel training. The default is a team of one; with
// --distributed, main() joins the MPI job (join_mpi_team). Rank 0 alone prints and writes.
class Team {
 public:
  virtual ~Team() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // This rank's part of a global batch of indices.
  virtual std::vector<std::size_t> shard(std::vector<std::size_t> batch) const { return batch; }
  // Makes every rank's parameters rank 0's.
  virtual void broadcast(const std::vector<tapegrad::Tensor<float>>&) {}
  // Averages the parameters' gradients over the ranks, after backward.
  virtual void average_gradients(const std::vector<tapegrad::Tensor<float>>&) {}
  // Seconds all average_gradients calls so far spent (packing and communication).
  virtual double averaging_seconds() const { return 0; }
  // True on every rank when `ok` is true on every rank.
  virtual bool all(bool ok) { return ok; }
  // Whether every rank's parameters equal rank 0's, bit for bit.
  virtual bool same_everywhere(const std::vector<tapegrad::Tensor<float>>&) { return true; }
  // Called with the error that stops this rank: the MPI team ends every rank (MPI_Abort), so
  // that none waits for it forever. The team of one returns, and main reports the error.
  virtual void fail(const std::string&) {}
};

// The MPI team (team_mpi.cpp, where CMake found MPI; elsewhere team_none.cpp, which throws).
std::unique_ptr<Team> join_mpi_team(int& argc, char**& argv);

// Parses the command line. Returns the configuration, or nothing when the program should stop
// (after --help, exit_code 0; after a bad flag or value, exit_code 2 and a message on err).
std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code, std::ostream& out,
                                   std::ostream& err);

// conv 5x5 1->6 (padding 2), ReLU, AvgPool 2, conv 5x5 6->16, ReLU, AvgPool 2, Flatten,
// Linear 400->120, ReLU, Linear 120->84, ReLU, Linear 84->10; initialised from `seed`.
template <class T>
tapegrad::Sequential<T> lenet5(std::uint64_t seed);

struct EpochResult {
  double train_loss = 0, test_loss = 0, test_accuracy = 0, seconds = 0;
  // Memory at the end of the epoch: the process's peak resident set so far, and tapegrad's live
  // tensors and tape entries (the same after every epoch when nothing leaks).
  double peak_rss_mb = 0;
  std::size_t live_tensors = 0, tape_entries = 0;
};

struct RunResult {
  bool gradcheck_ok = true;
  double first_loss = 0;           // the first batch's loss
  std::vector<EpochResult> epochs; // the epochs this run finished
  std::size_t first_epoch = 1, first_step = 0;   // where this run began (after --resume)
  std::size_t steps = 0;           // steps this run took
};

// Gradient check, training, evaluation and outputs (metrics.csv, loss.dat, checkpoint.npz,
// parameters/*.npy, loss.png, graph.dot, graph.svg in config.out). metrics.csv and loss.dat grow
// row by row as measured; checkpoint.npz (tg::save_checkpoint: the model, SGD's momenta, the
// position in the data, the running loss) is replaced at each epoch's end and every
// checkpoint_every steps. With config.resume the run continues from a checkpoint, bitwise as if
// never stopped; the gradient check is then skipped. Progress goes to `out`. Throws tapegrad::IoError for bad
// data and std::runtime_error when the gradient check fails. In a team of N, each step takes a
// global batch of N × batch_size images and each rank trains on its own batch_size of them
// (a last global batch that does not split evenly is cut to a multiple of N); rank 0 alone
// checks the gradients, evaluates, prints and writes; every rank resumes from its checkpoint.
RunResult run(const Config& config, std::ostream& out);
RunResult run(const Config& config, std::ostream& out, Team& team);

}  // namespace fashion

#endif
