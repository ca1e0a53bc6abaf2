#include "trainer.hpp"

#include "run_tools.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <xtensor/xview.hpp>

namespace tg = tapegrad;
namespace fs = std::filesystem;

namespace fashion {

using run_tools::positive;
using run_tools::whole;
using run_tools::Clock;
using run_tools::seconds_since;

std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code, std::ostream& out,
                                   std::ostream& err) {
  Config c;
  CLI::App app("Trains LeNet-5 on Fashion-MNIST with tapegrad, after checking its gradients.", "fashion_mnist");
  app.add_option("--epochs", c.epochs, "passes over the training set")->check(positive)->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "images per step")->check(positive)->capture_default_str();
  app.add_option("--lr", c.lr, "SGD learning rate")->check(positive)->capture_default_str();
  app.add_option("--momentum", c.momentum, "SGD momentum, in [0, 1)")->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  app.add_option("--seed", c.seed, "seeds the initial weights and the shuffling")->check(whole)->capture_default_str();
  app.add_option("--threads", c.threads, "threads (tg::Parallel): the same numbers for any count")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--data", c.data, "directory holding the four Fashion-MNIST .gz files")->capture_default_str();
  app.add_option("--out", c.out, "directory for metrics, parameters and plots")->capture_default_str();
  app.add_option("--limit", c.limit, "use only the first N training images (0: all)")->check(whole)->capture_default_str();
  app.add_flag("--distributed", c.distributed, "train data-parallel over the ranks of an MPI job (under mpirun)");
  app.add_option("--check-images", c.check_images, "images in the gradient check before training (0: skip, at most 64)")
      ->check(whole & CLI::Range(0, 64))
      ->capture_default_str();
  CLI::Option* resume = run_tools::add_checkpoint_flags(app, c.checkpoint_every, c.resume_from, c.stop_after);
  if (!run_tools::parse(app, argc, argv, exit_code, out, err)) return std::nullopt;
  c.resume = resume->count() > 0;
  return c;
}

template <class T>
tg::Sequential<T> lenet5(std::uint64_t seed) {
  tg::ManualSeed init(seed);
  return tg::Sequential<T>(tg::Conv2d<T>(1, 6, 5, 1, 2), tg::ReLU<T>(), tg::AvgPool2d<T>(2), tg::Conv2d<T>(6, 16, 5),
                           tg::ReLU<T>(), tg::AvgPool2d<T>(2), tg::Flatten<T>(), tg::Linear<T>(400, 120), tg::ReLU<T>(),
                           tg::Linear<T>(120, 84), tg::ReLU<T>(), tg::Linear<T>(84, 10));
}
template tg::Sequential<float> lenet5<float>(std::uint64_t);
template tg::Sequential<double> lenet5<double>(std::uint64_t);

namespace {

// The whole model's gradients in double on a few training images, by random projections.
bool check_gradients(const Config& c, const tg::ImageDataset& train, std::ostream& out) {
  const std::size_t n = std::min(c.check_images, train.labels.size());
  tg::Sequential<double> model = lenet5<double>(c.seed);
  const tg::Tensor<double> x(xt::xarray<double>(xt::cast<double>(xt::view(train.images, xt::range(0, n)))));
  const std::vector<std::size_t> labels(train.labels.begin(), train.labels.begin() + std::ptrdiff_t(n));
  tg::GradcheckOptions o;
  o.mode = tg::GradcheckOptions::Mode::projections;
  o.projections = 3;
  o.seed = c.seed;
  const auto report =
      tg::gradcheck_parameters([&] { return tg::cross_entropy(model(x), labels); }, model.named_parameters(), o);
  out << "gradient check (float64, " << n << " images, random projections), worst relative error per tensor:";
  for (const auto& comparison : report.comparisons)
    out << ' ' << comparison.input.substr(1, comparison.input.size() - 2) << ' ' << std::setprecision(1)
        << std::scientific << comparison.max_rel_error;
  out << std::defaultfloat << std::setprecision(6) << (report.ok() ? "  -> passed" : "  -> FAILED") << std::endl;
  if (!report.ok()) out << report.str();
  return report.ok();
}

// Mean loss and accuracy on a data set, without recording.
std::pair<double, double> evaluate(tg::Sequential<float>& model, const tg::TensorDataset<float>& d) {
  tg::NoGrad no_grad;
  double loss = 0;
  std::size_t correct = 0;
  const tg::DataLoader<tg::LabeledBatch<float>> batches(d, {1000, /*shuffle=*/false});
  for (const tg::LabeledBatch<float>& batch : batches.epoch(0)) {
    const tg::Tensor<float> logits = model(tg::Tensor<float>(batch.inputs));
    loss += double(tg::cross_entropy(logits, batch.labels, tg::Reduction::sum).item());
    const tg::Index predicted = tg::argmax(logits, 1);
    for (std::size_t i = 0; i < batch.labels.size(); ++i) correct += predicted(i) == batch.labels[i];
  }
  return {loss / double(d.size()), double(correct) / double(d.size())};
}

// Images (N, 1, 28, 28) with their labels, as a dataset.
tg::TensorDataset<float> dataset(tg::ImageDataset&& d) {
  return tg::TensorDataset<float>(std::move(d.images), std::vector<std::int64_t>(d.labels.begin(), d.labels.end()));
}

}  // namespace

RunResult run(const Config& c, std::ostream& out) {
  Team alone;
  return run(c, out, alone);
}

RunResult run(const Config& c, std::ostream& all_out, Team& team) {
  // The work of each step split over the threads in pieces fixed by the shapes, OpenBLAS on one
  // thread: any thread count gives the bits of one (a guard of one thread runs everything inline).
  tg::Parallel parallel(c.threads);
  const bool lead = team.rank() == 0;
  std::ostream null_stream(nullptr);
  std::ostream& out = lead ? all_out : null_stream;
  const fs::path dir(c.out), checkpoint = dir / "checkpoint.npz";
  if (lead) {
    fs::create_directories(dir / "parameters");
    run_tools::remove_partial_files(checkpoint);
  }
  // --resume without a path starts afresh where there is no checkpoint yet (a run killed before
  // its first), so that one command both starts and continues a run.
  const fs::path resume_from = c.resume_from.empty() ? checkpoint : fs::path(c.resume_from);
  // Every rank resumes, or none: one that sees no checkpoint where another does is an error.
  const bool sees_checkpoint = c.resume && (!c.resume_from.empty() || fs::exists(checkpoint));
  const bool resuming = team.all(sees_checkpoint);
  if (sees_checkpoint != resuming)
    tg::throw_value_error("fashion_mnist", "--resume: rank " + std::to_string(team.rank()) + " sees " +
                                               resume_from.string() + " but another rank does not");
  // A fresh run replaces an earlier run's checkpoint, which a --resume would otherwise continue.
  if (lead && !resuming) fs::remove(checkpoint);
  tg::ImageDataset train = tg::load_fashion_mnist(c.data, true, c.limit);
  const tg::TensorDataset<float> test = dataset(tg::load_fashion_mnist(c.data, false));
  out << "Fashion-MNIST: " << train.labels.size() << " training and " << test.size() << " test images from "
      << c.data << (team.size() > 1 ? ", " + std::to_string(team.size()) + " ranks" : std::string()) << std::endl;

  RunResult result;
  if (c.check_images > 0 && !resuming) {   // a resumed run's model was checked when the run began
    result.gradcheck_ok = team.all(lead ? check_gradients(c, train, out) : true);
    if (!result.gradcheck_ok) throw std::runtime_error("the gradient check of the model failed: not training");
  }

  const tg::TensorDataset<float> train_set = dataset(std::move(train));
  tg::Sequential<float> model = lenet5<float>(c.seed);
  team.broadcast(model.parameters());
  tg::SGD<float> opt(model.parameters(), c.lr, c.momentum);
  const bool terminal = ::isatty(::fileno(stdout)) && &out == &std::cout;
  const std::size_t ranks = static_cast<std::size_t>(team.size()), global_batch = c.batch_size * ranks;
  // In a team, the images left over after the largest multiple of the ranks are not used.
  const std::size_t n = train_set.size() / ranks * ranks;
  if (n == 0)
    tg::throw_value_error("fashion_mnist", std::to_string(train_set.size()) +
                                               " training images cannot be shared by " + std::to_string(ranks) + " ranks");
  // Global batches of the first n images, shuffled anew every epoch from the seed: the epoch and
  // the step within it give the data still to come.
  const tg::BatchSampler sampler(n, {global_batch, /*shuffle=*/true, c.seed});
  const std::size_t steps = sampler.batch_count();

  // What the numbers depend on beside the model and the optimizer: a resumed run has the same.
  tg::RunState settings;
  settings.counters = {{"seed", c.seed}, {"batch_size", c.batch_size}, {"ranks", ranks}, {"training_images", n}};
  settings.values = {{"lr", c.lr}, {"momentum", c.momentum}};
  std::size_t first_epoch = 1, first_step = 0, global_step = 0;
  double running = 0, epoch_sum = 0, seconds_before = 0;
  std::optional<run_tools::RowFile> metrics, curve;
  const std::string metrics_header = "split,epoch,step,loss,accuracy,time,peak_rss_mb",
                    curve_header = "# step, training loss (running mean)";
  if (resuming) {
    // Every rank reads the checkpoint rank 0 wrote.
    const tg::RunState saved = tg::load_checkpoint(resume_from.string(), model, opt);
    run_tools::check_resumable("fashion_mnist", saved, settings,
                               {"epoch", "step", "global_step", "metrics_bytes", "curve_bytes"},
                               {"running_loss", "epoch_loss_sum", "first_loss", "seconds"});
    first_epoch = saved.counters.at("epoch");
    first_step = saved.counters.at("step");
    global_step = saved.counters.at("global_step");
    running = saved.values.at("running_loss");
    epoch_sum = saved.values.at("epoch_loss_sum");
    result.first_loss = saved.values.at("first_loss");
    seconds_before = saved.values.at("seconds");
    if (first_step >= steps)
      tg::throw_value_error("fashion_mnist", "--resume: the checkpoint is at step " + std::to_string(first_step) +
                                                 " of an epoch of " + std::to_string(steps));
    team.broadcast(model.parameters());   // the same on every rank, whatever each rank read
    if (lead) {
      metrics.emplace(dir / "metrics.csv", saved.counters.at("metrics_bytes"), metrics_header);
      curve.emplace(dir / "loss.dat", saved.counters.at("curve_bytes"), curve_header);
    }
    if (first_epoch > c.epochs)
      out << "resumed from " << resume_from.string() << ": its run finished " << first_epoch - 1
          << " epochs; nothing to train (--epochs " << c.epochs << ")" << std::endl;
    else
      out << "resumed from " << resume_from.string() << " at epoch " << first_epoch << ", step " << first_step << " of "
          << steps << std::endl;
  } else {
    if (c.resume) out << "no checkpoint in " << dir.string() << ": starting from the beginning" << std::endl;
    if (lead) {
      metrics.emplace(dir / "metrics.csv", metrics_header);
      curve.emplace(dir / "loss.dat", curve_header);
    }
  }
  result.first_epoch = first_epoch;
  result.first_step = first_step;
  const auto start = Clock::now();
  const auto elapsed = [&] { return seconds_before + seconds_since(start); };
  // Rank 0 writes the checkpoint after the step's gradient average: every rank holds the same
  // parameters and momenta then.
  const auto save = [&](std::size_t epoch, std::size_t step) {
    if (!lead) return;
    metrics->sync();
    curve->sync();
    tg::RunState state = settings;
    state.counters.insert({{"epoch", epoch}, {"step", step}, {"global_step", global_step},
                           {"metrics_bytes", metrics->size()}, {"curve_bytes", curve->size()}});
    state.values.insert({{"running_loss", running}, {"epoch_loss_sum", epoch_sum}, {"first_loss", result.first_loss},
                         {"seconds", elapsed()}});
    tg::save_checkpoint(checkpoint.string(), model, opt, state);
  };

  for (std::size_t epoch = first_epoch; epoch <= c.epochs; ++epoch) {
    const std::vector<std::vector<std::size_t>> global_batches = sampler.batches(epoch);
    const std::size_t from = epoch == first_epoch ? first_step : 0;
    if (from == 0) running = epoch_sum = 0;
    const auto epoch_start = Clock::now();
    run_tools::Progress progress(out, terminal, epoch, c.epochs, steps - from, "img");
    for (std::size_t step = from; step < steps; ++step) {
      // This rank's share of the global batch (all of it in a team of one).
      const tg::LabeledBatch<float> batch = train_set.batch(team.shard(global_batches[step]));
      double loss = 0;
      {
        tg::Tape tape;
        const tg::Tensor<float> l = tg::cross_entropy(model(tg::Tensor<float>(batch.inputs)), batch.labels);
        opt.zero_grad();
        l.backward();
        team.average_gradients(model.parameters());
        opt.step();
        loss = l.item();
        if (global_step == 0) {
          result.first_loss = loss;
          if (lead) run_tools::write_text(dir / "graph.dot", tape.dot());
        }
      }
      running = step == 0 ? loss : 0.98 * running + 0.02 * loss;
      epoch_sum += loss;
      if (lead && global_step % 20 == 0) curve->append(std::to_string(global_step) + ' ' + run_tools::exact(running));
      if (lead && global_step % 100 == 0)
        metrics->append("train," + std::to_string(epoch) + ',' + std::to_string(global_step) + ',' +
                        run_tools::exact(running) + ",," + run_tools::fixed(elapsed(), 3) + ',');
      ++global_step;
      ++result.steps;
      progress.update(step - from, running, double(std::min(n, (step + 1) * global_batch) - from * global_batch),
                      double(n - from * global_batch));
      if (c.checkpoint_every > 0 && (step + 1) % c.checkpoint_every == 0 && step + 1 < steps) save(epoch, step + 1);
      if (c.stop_after > 0 && result.steps == c.stop_after) {
        progress.finish();
        out << "stopped after " << result.steps << " steps (--stop-after)" << std::endl;
        return result;
      }
    }
    EpochResult r;
    r.seconds = seconds_since(epoch_start);
    r.train_loss = epoch_sum / double(steps);
    if (lead) std::tie(r.test_loss, r.test_accuracy) = evaluate(model, test);
    r.peak_rss_mb = run_tools::peak_rss_mb();
    const tg::MemoryStats memory = tg::memory_stats();
    r.live_tensors = memory.live_tensors;
    r.tape_entries = memory.tape_entries;
    progress.finish();
    // The epoch's row, then the checkpoint that counts it: a run killed in between redoes the
    // epoch's last steps and writes the row again in its place.
    if (lead)
      metrics->append("test," + std::to_string(epoch) + ',' + std::to_string(global_step) + ',' +
                      run_tools::exact(r.test_loss) + ',' + run_tools::exact(r.test_accuracy) + ',' +
                      run_tools::fixed(elapsed(), 3) + ',' + run_tools::fixed(r.peak_rss_mb, 1));
    save(epoch + 1, 0);
    out << "epoch " << epoch << ": train loss " << std::fixed << std::setprecision(4) << r.train_loss << ", test loss "
        << r.test_loss << ", test accuracy " << std::setprecision(2) << 100 * r.test_accuracy << "%, "
        << std::setprecision(1) << r.seconds << " s (" << std::setprecision(0) << double(n - from * global_batch) / r.seconds
        << " img/s), peak RSS " << r.peak_rss_mb << " MB" << std::defaultfloat << std::setprecision(6) << std::endl;
    result.epochs.push_back(r);
  }

  if (!team.same_everywhere(model.parameters()))
    throw std::runtime_error("the ranks' parameters differ after training");
  if (team.size() > 1)
    out << "parameters identical on all " << team.size() << " ranks; gradient averaging: " << std::fixed
        << std::setprecision(3) << team.averaging_seconds() * 1e3 / double(std::max<std::size_t>(global_step, 1))
        << " ms per step" << std::defaultfloat << std::setprecision(6) << std::endl;
  if (!lead) return result;
  for (const auto& [name, p] : model.named_parameters()) tg::save_npy((dir / "parameters" / (name + ".npy")).string(), p.value());
  run_tools::plot(dir,
                  "set terminal pngcairo size 800,450\nset output 'loss.png'\nset xlabel 'step'\nset ylabel "
                  "'training loss (running mean)'\nset grid\nplot 'loss.dat' using 1:2 with lines title 'LeNet-5, "
                  "Fashion-MNIST'\n",
                  "loss.png", out);
  if (run_tools::have("dot")) {
    if (std::system(("dot -Tsvg " + run_tools::shell_quote((dir / "graph.dot").string()) + " -o " +
                     run_tools::shell_quote((dir / "graph.svg").string()))
                        .c_str()) != 0)
      out << "note: dot failed; no graph.svg\n";
  } else {
    out << "note: Graphviz is not installed (apt-get install -y graphviz): no graph.svg\n";
  }
  out << "outputs in " << fs::absolute(dir).string() << ": metrics.csv, parameters/*.npy"
      << (fs::exists(dir / "loss.png") ? ", loss.png" : "") << ", graph.dot"
      << (fs::exists(dir / "graph.svg") ? ", graph.svg" : "") << std::endl;
  return result;
}

}  // namespace fashion
