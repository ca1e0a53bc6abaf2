// The MPI team of fashion_mnist --distributed, on tapegrad::distributed (built where CMake found
// MPI; team_none.cpp otherwise).
#include <tapegrad/distributed/distributed.hpp>

#include "trainer.hpp"

namespace fashion {

namespace {

namespace dist = tapegrad::distributed;

class MpiTeam : public Team {
 public:
  MpiTeam(int& argc, char**& argv) : environment_(argc, argv) {}
  int rank() const override { return environment_.rank(); }
  int size() const override { return environment_.size(); }
  std::vector<std::size_t> shard(std::vector<std::size_t> batch) const override {
    return dist::shard(batch, rank(), size());
  }
  void broadcast(const std::vector<tapegrad::Tensor<float>>& parameters) override {
    dist::broadcast_parameters(parameters);
  }
  void average_gradients(const std::vector<tapegrad::Tensor<float>>& parameters) override {
    if (!averager_) averager_ = std::make_unique<dist::GradientAverager<float>>(parameters);
    averager_->average();
    averaging_seconds_ += averager_->last_seconds();
  }
  double averaging_seconds() const override { return averaging_seconds_; }
  bool all(bool ok) override { return dist::all_ranks(ok); }
  bool same_everywhere(const std::vector<tapegrad::Tensor<float>>& parameters) override {
    return dist::same_on_all_ranks(parameters);
  }
  void fail(const std::string& message) override { dist::abort_all(message); }

 private:
  dist::Environment environment_;
  std::unique_ptr<dist::GradientAverager<float>> averager_;
  double averaging_seconds_ = 0;
};

}  // namespace

std::unique_ptr<Team> join_mpi_team(int& argc, char**& argv) { return std::make_unique<MpiTeam>(argc, argv); }

}  // namespace fashion
