// Run under mpirun -np 2 (ctest does): 50 SGD steps of a small model on 2 ranks × batch 16 must
// give the parameters of 1 process × batch 32 (computed by every rank on its own, without MPI),
// to 1e-10 in float64 and 1e-5 in float32; and after every step the ranks' parameters must be
// bitwise equal; and bad use of the API throws on every rank with the message expected. Exits 0
// only if every check passes; prints what it compared.
#include <tapegrad/distributed/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <iostream>
#include <random>

namespace tg = tapegrad;
namespace dist = tapegrad::distributed;

namespace {

constexpr std::size_t samples = 320, features = 6, classes = 3, global_batch = 32, steps = 50;

template <class T>
tg::Sequential<T> make_model() {
  tg::ManualSeed seed(7);
  tg::Sequential<T> model;
  model.add(std::make_shared<tg::Linear<T>>(features, 10))
      .add(std::make_shared<tg::Tanh<T>>())
      .add(std::make_shared<tg::Linear<T>>(10, classes));
  return model;
}

struct Data {
  xt::xarray<double> x;
  std::vector<std::size_t> labels;
};

Data make_data() {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  Data d{xt::xarray<double>::from_shape({samples, features}), std::vector<std::size_t>(samples)};
  for (double& v : d.x) v = normal(rng);
  for (std::size_t i = 0; i < samples; ++i) d.labels[i] = rng() % classes;
  return d;
}

// One SGD step on the samples `rows`, with the loss averaged over them.
template <class T>
void step(tg::Sequential<T>& model, tg::SGD<T>& opt, const Data& data, const std::vector<std::size_t>& rows,
          dist::GradientAverager<T>* averager) {
  xt::xarray<T> x = xt::xarray<T>::from_shape({rows.size(), features});
  std::vector<std::size_t> labels;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t f = 0; f < features; ++f) x(r, f) = static_cast<T>(data.x(rows[r], f));
    labels.push_back(data.labels[rows[r]]);
  }
  tg::Tape tape;
  const tg::Tensor<T> loss = tg::cross_entropy(model(tg::Tensor<T>(x)), labels);
  opt.zero_grad();
  loss.backward();
  if (averager) averager->average();
  opt.step();
}

std::vector<std::size_t> global_batch_at(std::size_t s) {
  const std::size_t per_epoch = samples / global_batch, epoch = s / per_epoch, b = (s % per_epoch) * global_batch;
  const std::vector<std::size_t> order = tg::shuffled_indices(samples, 1000 + epoch);
  return std::vector<std::size_t>(order.begin() + static_cast<std::ptrdiff_t>(b),
                                  order.begin() + static_cast<std::ptrdiff_t>(b + global_batch));
}

template <class T>
bool run(const dist::Environment& mpi, const Data& data, double tolerance, const char* name) {
  tg::Sequential<T> reference = make_model<T>(), model = make_model<T>();
  tg::SGD<T> reference_opt(reference.parameters(), 0.1, 0.9), opt(model.parameters(), 0.1, 0.9);
  // Different starting values on rank 1, to show that the broadcast makes them rank 0's.
  if (mpi.rank() != 0)
    for (auto p : model.parameters()) p.mutable_value() += T(1);
  dist::broadcast_parameters(model.parameters());
  // Small buckets, so that the gradients are packed into several.
  dist::GradientAverager<T> averager(model.parameters(), 128);
  bool ok = true;
  std::size_t equal_steps = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    const std::vector<std::size_t> batch = global_batch_at(s);
    step<T>(reference, reference_opt, data, batch, nullptr);
    step<T>(model, opt, data, dist::shard(batch, mpi.rank(), mpi.size()), &averager);
    equal_steps += dist::same_on_all_ranks(model.parameters()) ? 1 : 0;
  }
  ok = equal_steps == steps;
  double worst = 0;
  const auto p = model.parameters(), q = reference.parameters();
  for (std::size_t i = 0; i < p.size(); ++i)
    for (std::size_t j = 0; j < p[i].size(); ++j)
      worst = std::max(worst, std::abs(double(p[i].value().flat(j)) - double(q[i].value().flat(j))));
  ok = ok && worst <= tolerance;
  std::cout << "rank " << mpi.rank() << " " << name << ": " << steps << " steps, " << mpi.size() << " ranks x batch "
            << global_batch / std::size_t(mpi.size()) << " against 1 process x batch " << global_batch << ": max |diff| "
            << worst << " (tolerance " << tolerance << "); " << averager.buckets()
            << " buckets; parameters bitwise equal on all ranks after " << equal_steps << " of " << steps << " steps"
            << (ok ? "  ok" : "  FAILED")
            << std::endl;
  return ok;
}

// Runs f, which must throw an E whose message is `want`, on this rank; prints what differed.
template <class E, class F>
bool throws(const dist::Environment& mpi, const char* what, F f, const std::string& want) {
  try {
    f();
  } catch (const E& e) {
    if (e.what() == want) return true;
    std::cout << "rank " << mpi.rank() << " " << what << ": message '" << e.what() << "', expected '" << want << "'\n";
    return false;
  } catch (const std::exception& e) {
    std::cout << "rank " << mpi.rank() << " " << what << ": wrong exception type: " << e.what() << "\n";
    return false;
  }
  std::cout << "rank " << mpi.rank() << " " << what << ": did not throw\n";
  return false;
}

// Bad use of the distributed API: an error on every rank, the same message, and the job goes on.
bool errors(dist::Environment& mpi, int& argc, char**& argv) {
  const std::vector<std::size_t> five{0, 1, 2, 3, 4};
  bool ok = throws<tg::ValueError>(mpi, "shard", [&] { dist::shard(five, mpi.rank(), 2); },
                                   "distributed::shard: a batch of 5 indices cannot be split into 2 equal parts (make the "
                                   "global batch a multiple of the ranks)");
  ok &= throws<tg::ValueError>(mpi, "shard", [&] { dist::shard(five, 2, 2); }, "distributed::shard: rank 2 is not in [0, 2)");
  const tg::Tensor<double> a(xt::xarray<double>{1.0, 2.0, 3.0}, true);
  ok &= throws<tg::ValueError>(mpi, "GradientAverager", [&] { dist::GradientAverager<double>({a}, 4); },
                               "distributed::GradientAverager: bucket_bytes must hold at least one element, got 4");
  // The ranks disagree on the model: rank 1 passes one tensor more, then a tensor of another size.
  std::vector<tg::Tensor<double>> more{a};
  if (mpi.rank() == 1) more.push_back(a);
  ok &= throws<tg::ValueError>(mpi, "broadcast_parameters", [&] { dist::broadcast_parameters(more); },
                               "distributed::broadcast_parameters: the ranks pass different numbers of tensors (between 1 and 2)");
  const tg::Tensor<double> other(xt::xarray<double>::from_shape({mpi.rank() == 1 ? 4u : 3u}), true);
  ok &= throws<tg::ValueError>(mpi, "GradientAverager", [&] { dist::GradientAverager<double>({other}); },
                               "distributed::GradientAverager: tensor 0 has between 3 and 4 elements on different ranks "
                               "(the models differ)");
  ok &= throws<tg::UsageError>(mpi, "Environment", [&] { dist::Environment again(argc, argv); },
                               "distributed::Environment: MPI is already initialised: create one Environment per process");
  std::cout << "rank " << mpi.rank() << " error paths: " << (ok ? "ok" : "FAILED") << std::endl;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  try {
    if (mpi.size() != 2) {
      std::cerr << "distributed_equality: run with mpirun -np 2 (got " << mpi.size() << " ranks)\n";
      return 2;
    }
    const Data data = make_data();
    const bool ok = run<double>(mpi, data, 1e-10, "float64") & run<float>(mpi, data, 1e-5, "float32") &
                    errors(mpi, argc, argv);
    return dist::all_ranks(ok) ? 0 : 1;
  } catch (const std::exception& e) {
    dist::abort_all(e.what());
  }
}
