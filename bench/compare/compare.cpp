// Workloads (a)-(d) and (f) of issue 6, tapegrad against LibTorch in one process: each repetition
// runs one tapegrad step then one LibTorch step (alternating), after a warm-up. Prints one JSON
// object per workload and precision on stdout; bench/compare/run turns them into the table.
//   compare [--threads N] [--reps R] [--only NAME]       workloads (a)-(d)
//   compare --gradcheck [--reps R]                       tapegrad's side of (e)
//   compare --memory tapegrad|libtorch [--steps N]       (f): peak RSS of N LeNet steps
//   compare --profile tapegrad|libtorch [--only X]       one side only, untimed (for perf)
//   compare --side tapegrad|libtorch [...]               one side only, timed (the other side's
//                                                        fields are 0)
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "../lenet_epoch/common.hpp"

namespace tg = tapegrad;

namespace {

using Clock = std::chrono::steady_clock;

// With --profile SIDE, workloads run only that side's step (for perf), untimed; with --side SIDE,
// only that side's, timed (one process per side: the runner alternates processes at --threads > 1,
// where each side's idle threads would spin on the cores the other side needs).
std::string profile_side, only_side;

// --threads N: tapegrad splits its batched kernels over N threads (tg::Parallel), LibTorch runs N
// intra-op threads, and OpenBLAS, which both call in this one process, stays on one thread so
// that nothing oversubscribes the cores.
int threads = 1;

double micros(const std::function<void()>& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

struct Stats {
  double min = 0, median = 0;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2]};
}

// One workload: both sides' step functions, alternated. `same` is the relative difference of a
// value both sides computed from the same parameters and data before timing (a loss, a sum): the
// two sides do the same work.
void compare(const std::string& name, const char* dtype, int reps, double divisor, double flops, double same,
             const std::function<void()>& tapegrad_step, const std::function<void()>& libtorch_step) {
  if (!profile_side.empty()) {
    for (int i = 0; i < reps; ++i) (profile_side == "tapegrad" ? tapegrad_step : libtorch_step)();
    return;
  }
  const bool run_t = only_side != "libtorch", run_l = only_side != "tapegrad";
  for (int i = 0; i < std::max(3, reps / 10); ++i) {   // warm-up: caches, allocator, lazy init
    if (run_t) tapegrad_step();
    if (run_l) libtorch_step();
  }
  std::vector<double> t{0}, l{0};
  if (run_t) t.clear();
  if (run_l) l.clear();
  for (int i = 0; i < reps; ++i) {
    if (run_t) t.push_back(micros(tapegrad_step) / divisor);
    if (run_l) l.push_back(micros(libtorch_step) / divisor);
  }
  const Stats a = stats(t), b = stats(l);
  std::printf("{\"workload\": \"%s\", \"dtype\": \"%s\", \"reps\": %d, \"unit\": \"%s\", "
              "\"tapegrad_min\": %.4f, \"tapegrad_median\": %.4f, \"libtorch_min\": %.4f, \"libtorch_median\": %.4f, "
              "\"ratio\": %.3f, \"tapegrad_gflops\": %.2f, \"libtorch_gflops\": %.2f, \"same_result_rel_diff\": %.2e}\n",
              name.c_str(), dtype, reps, divisor > 1 ? "us/op" : "us", a.min, a.median, b.min, b.median,
              a.median > 0 && b.median > 0 ? a.median / b.median : 0.0,
              flops > 0 && a.median > 0 ? flops / (a.median * 1e3) : 0.0,
              flops > 0 && b.median > 0 ? flops / (b.median * 1e3) : 0.0,
              same);
  std::fflush(stdout);
}

template <class T>
torch::Dtype torch_dtype() {
  return sizeof(T) == 4 ? torch::kFloat32 : torch::kFloat64;
}

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

template <class T>
xt::xarray<T> uniform(const tg::Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = T(u(rng));
  return a;
}

template <class T>
torch::Tensor to_torch(const xt::xarray<T>& a) {
  std::vector<long> shape(a.shape().begin(), a.shape().end());
  return torch::from_blob(const_cast<T*>(a.data()), shape, torch_dtype<T>()).clone();
}

double relative_difference(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

std::vector<std::size_t> random_labels(std::size_t n, std::size_t classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> labels(n);
  for (auto& l : labels) l = rng() % classes;
  return labels;
}
torch::Tensor to_torch(const std::vector<std::size_t>& labels) {
  return torch::tensor(std::vector<long>(labels.begin(), labels.end()), torch::kLong);
}

// Copies the tapegrad model's parameters into the LibTorch model's, in order (same shapes up to a
// transpose for Linear, whose weight tapegrad keeps as (in, out) as in the notes).
template <class T>
void copy_parameters(const tg::Module<T>& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const auto ours = from.parameters();
  auto theirs = to.parameters();
  for (std::size_t i = 0; i < ours.size(); ++i) {
    torch::Tensor p = to_torch(ours[i].value());
    if (p.dim() == 2 && theirs[i].dim() == 2) p = p.t();
    theirs[i].copy_(p.reshape(theirs[i].sizes()));
  }
}

// (a) 1,000 elementwise ops, x * 1.0001 + 0.0001 then tanh, forward and backward, per op.
template <class T>
void elementwise_chain(int reps, std::size_t n) {
  constexpr int units = 333;   // 3 ops each, + the final sum = 1,000 ops
  const tg::Tensor<T> tx(xt::xarray<T>(xt::ones<T>({n}) * T(0.5)), true);
  const torch::Tensor lx = torch::full({long(n)}, 0.5, torch_dtype<T>()).requires_grad_(true);
  double ours = 0, theirs = 0;
  {
    tg::NoGrad no_grad;
    tg::Tensor<T> y = tx;
    for (int i = 0; i < units; ++i) y = tg::tanh(y * T(1.0001) + T(0.0001));
    ours = double(tg::sum(y).item());
    torch::NoGradGuard no_grad_torch;
    torch::Tensor z = lx;
    for (int i = 0; i < units; ++i) z = torch::tanh(z * 1.0001 + 0.0001);
    theirs = z.sum().item<double>();
  }
  compare("a. elementwise chain, " + std::to_string(n) + " element" + (n > 1 ? "s" : ""), dtype_name<T>(),
          reps, 1000, 0, relative_difference(ours, theirs),
          [&] {
            tg::Tape tape;
            tg::Tensor<T> y = tx;
            for (int i = 0; i < units; ++i) y = tg::tanh(y * T(1.0001) + T(0.0001));
            tg::sum(y).backward();
          },
          [&] {
            torch::Tensor y = lx;
            for (int i = 0; i < units; ++i) y = torch::tanh(y * 1.0001 + 0.0001);
            y.sum().backward();
          });
}

// One training step of a classifier, cross-entropy and SGD, on each side: what (b), (c) and (f)
// time or measure.
template <class T>
void tapegrad_step(tg::Sequential<T>& model, tg::SGD<T>& opt, const tg::Tensor<T>& x,
                   const std::vector<std::size_t>& labels) {
  tg::Tape tape;
  const tg::Tensor<T> loss = tg::cross_entropy(model(x), labels);
  opt.zero_grad();
  loss.backward();
  opt.step();
}
void libtorch_step(torch::nn::Sequential& model, torch::optim::SGD& opt, const torch::Tensor& x, const torch::Tensor& y) {
  const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
  opt.zero_grad();
  loss.backward();
  opt.step();
}

// (b), (c): the tapegrad model and the LibTorch one, given tapegrad's parameters, stepped on the
// same batch with SGD (lr, momentum 0.9).
template <class T>
void classifier_step(const std::string& name, int reps, double flops, tg::Sequential<T>& model,
                     torch::nn::Sequential lmodel, double lr, const xt::xarray<T>& x,
                     const std::vector<std::size_t>& labels) {
  tg::SGD<T> opt(model.parameters(), lr, 0.9);
  lmodel->to(torch_dtype<T>());
  copy_parameters(model, *lmodel);
  torch::optim::SGD lopt(lmodel->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
  const torch::Tensor lx = to_torch(x), ly = to_torch(labels);
  const tg::Tensor<T> tx(x);   // made once, as LibTorch's input is
  const double same = relative_difference(double(tg::cross_entropy(model(tx), labels).item()),
                                          torch::nn::functional::cross_entropy(lmodel->forward(lx), ly).item<double>());
  compare(name, dtype_name<T>(), reps, 1, flops, same, [&] { tapegrad_step(model, opt, tx, labels); },
          [&] { libtorch_step(lmodel, lopt, lx, ly); });
}

// (b) MLP 784-256-10, ReLU, cross-entropy, batch 64: one SGD step.
template <class T>
void mlp_step(int reps) {
  tg::ManualSeed seed(1);
  tg::Sequential<T> model(tg::Linear<T>(784, 256), tg::ReLU<T>(), tg::Linear<T>(256, 10));
  const double b = 64, flops = 2 * b * 784 * 256 * 2 + 2 * b * 256 * 10 * 3;
  classifier_step("b. MLP 784-256-10 step, batch 64", reps, flops, model,
                  torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(), torch::nn::Linear(256, 10)), 0.01,
                  uniform<T>({64, 784}, 2, 0, 1), random_labels(64, 10, 3));
}

template <class T>
tg::Sequential<T> lenet() {
  return tg::Sequential<T>(tg::Conv2d<T>(1, 6, 5, 1, 2), tg::ReLU<T>(), tg::AvgPool2d<T>(2), tg::Conv2d<T>(6, 16, 5),
                           tg::ReLU<T>(), tg::AvgPool2d<T>(2), tg::Flatten<T>(), tg::Linear<T>(400, 120), tg::ReLU<T>(),
                           tg::Linear<T>(120, 84), tg::ReLU<T>(), tg::Linear<T>(84, 10));
}
torch::nn::Sequential torch_lenet() {
  return torch::nn::Sequential(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)), torch::nn::ReLU(), torch::nn::AvgPool2d(2),
      torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)), torch::nn::ReLU(), torch::nn::AvgPool2d(2),
      torch::nn::Flatten(), torch::nn::Linear(400, 120), torch::nn::ReLU(), torch::nn::Linear(120, 84), torch::nn::ReLU(),
      torch::nn::Linear(84, 10));
}
// Multiply-adds of one LeNet-5 forward pass per image: conv1, conv2, then the three Linear layers.
constexpr double conv1_macs = 6.0 * 28 * 28 * 25, conv2_macs = 16.0 * 10 * 10 * 150;
constexpr double linear_macs = 400.0 * 120 + 120 * 84 + 84 * 10;

// (c) LeNet-5, batch 64: one SGD step.
template <class T>
void lenet_step(int reps) {
  tg::ManualSeed seed(1);
  tg::Sequential<T> model = lenet<T>();
  // Forward, weight gradients, input gradients (none for conv1, whose input needs none).
  const double flops = 64 * 2 * ((conv1_macs + conv2_macs + linear_macs) * 2 + conv2_macs + linear_macs);
  classifier_step("c. LeNet-5 step, batch 64", reps, flops, model, torch_lenet(), 0.05,
                  uniform<T>({64, 1, 28, 28}, 4, 0, 1), random_labels(64, 10, 5));
}

// (d) The LeNet conv blocks (conv, ReLU, pool, twice), forward and backward to the weights.
template <class T>
void conv_blocks(int reps) {
  tg::ManualSeed seed(1);
  tg::Sequential<T> blocks(tg::Conv2d<T>(1, 6, 5, 1, 2), tg::ReLU<T>(), tg::AvgPool2d<T>(2), tg::Conv2d<T>(6, 16, 5),
                           tg::ReLU<T>(), tg::AvgPool2d<T>(2));
  torch::nn::Sequential lblocks(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)), torch::nn::ReLU(),
                                torch::nn::AvgPool2d(2), torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)),
                                torch::nn::ReLU(), torch::nn::AvgPool2d(2));
  lblocks->to(torch_dtype<T>());
  copy_parameters(blocks, *lblocks);
  const xt::xarray<T> x = uniform<T>({64, 1, 28, 28}, 6, 0, 1);
  const torch::Tensor lx = to_torch(x);
  const tg::Tensor<T> tx(x);
  const double flops = 64 * 2 * ((conv1_macs + conv2_macs) * 2 + conv2_macs);
  const double same = relative_difference(double(tg::sum(blocks(tg::Tensor<T>(x))).item()),
                                          lblocks->forward(lx).sum().item<double>());
  compare("d. LeNet conv blocks fwd+bwd, batch 64", dtype_name<T>(), reps, 1, flops, same,
          [&] {
            blocks.zero_grad();
            tg::Tape tape;
            tg::sum(blocks(tx)).backward();
          },
          [&] {
            lblocks->zero_grad();
            lblocks->forward(lx).sum().backward();
          });
}

// (e), tapegrad's side: gradcheck of conv2d on x (2, 3, 8, 8), w (4, 3, 3, 3) in double.
void gradcheck_conv(int reps) {
  using TD = tg::Tensor<double>;
  const std::vector<TD> inputs = {TD(uniform<double>({2, 3, 8, 8}, 7), true), TD(uniform<double>({4, 3, 3, 3}, 8), true)};
  const tg::GradcheckFunction f = [](const std::vector<TD>& in) { return tg::conv2d(in[0], in[1], TD()); };
  for (const bool full : {true, false}) {
    tg::GradcheckOptions options;
    options.mode = full ? tg::GradcheckOptions::Mode::full : tg::GradcheckOptions::Mode::projections;
    options.projections = 1;
    bool ok = true;
    std::vector<double> t;
    for (int i = 0; i < reps + 2; ++i) {
      const double us = micros([&] {
        tg::Tape tape;
        ok = ok && tg::gradcheck(f, inputs, options).ok();
      });
      if (i >= 2) t.push_back(us);
    }
    const Stats s = stats(t);
    std::printf("{\"workload\": \"e. gradcheck conv2d x(2,3,8,8) w(4,3,3,3), %s\", \"dtype\": \"float64\", \"side\": "
                "\"tapegrad\", \"reps\": %d, \"min\": %.2f, \"median\": %.2f, \"ok\": %s}\n",
                full ? "full Jacobian" : "random projection", reps, s.min, s.median, ok ? "true" : "false");
  }
}

// (f) 200 LeNet-5 training steps on one side; prints the process's peak resident set.
void memory(const std::string& side, int steps) {
  const xt::xarray<float> x = uniform<float>({64, 1, 28, 28}, 4, 0, 1);
  const auto labels = random_labels(64, 10, 5);
  if (side == "tapegrad") {
    tg::ManualSeed seed(1);
    tg::Sequential<float> model = lenet<float>();
    tg::SGD<float> opt(model.parameters(), 0.05, 0.9);
    for (int i = 0; i < steps; ++i) tapegrad_step(model, opt, tg::Tensor<float>(x), labels);
  } else {
    torch::nn::Sequential model = torch_lenet();
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    const torch::Tensor lx = to_torch(x), ly = to_torch(labels);
    for (int i = 0; i < steps; ++i) libtorch_step(model, opt, lx, ly);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"workload\": \"f. peak RSS, %d LeNet-5 steps\", \"side\": \"%s\", \"peak_rss_mb\": %.1f}\n", steps,
              side.c_str(), double(usage.ru_maxrss) / 1024.0);
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "compare: %s\n", message.c_str());
  std::exit(2);
}

int parse_int(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (!*text || *end || v < 1 || v > 1000000) usage_error(flag + " needs a positive integer, got '" + text + "'");
  return int(v);
}

}  // namespace

int main(int argc, char** argv) {
  bench::same_allocator_settings();
  int reps = 0, steps = 200;
  std::string only, memory_side;
  bool gradcheck = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--gradcheck") {
      gradcheck = true;
      continue;
    }
    if (i + 1 >= argc) usage_error("unknown flag or missing value: " + flag);
    const char* value = argv[++i];
    if (flag == "--threads") threads = parse_int(flag, value);
    else if (flag == "--reps") reps = parse_int(flag, value);
    else if (flag == "--steps") steps = parse_int(flag, value);
    else if (flag == "--only") only = value;
    else if (flag == "--memory") memory_side = value;
    else if (flag == "--profile") profile_side = value;
    else if (flag == "--side") only_side = value;
    else usage_error("unknown flag: " + flag);
  }
  torch::set_num_threads(threads);
  tg::set_num_threads(1);
  std::optional<tg::Parallel> parallel;
  if (threads > 1) parallel.emplace(threads);
  if (!memory_side.empty()) {
    if (memory_side != "tapegrad" && memory_side != "libtorch") usage_error("--memory takes tapegrad or libtorch");
    memory(memory_side, steps);
    return 0;
  }
  if (gradcheck) {
    gradcheck_conv(reps ? reps : 20);
    return 0;
  }
  auto wanted = [&](const std::string& key) { return only.empty() || only == key; };
  if (wanted("a")) {
    elementwise_chain<float>(reps ? reps : 200, 1);
    elementwise_chain<float>(reps ? reps : 200, 16);
    elementwise_chain<double>(reps ? reps : 200, 1);
    elementwise_chain<double>(reps ? reps : 200, 16);
  }
  if (wanted("b")) {
    mlp_step<float>(reps ? reps : 300);
    mlp_step<double>(reps ? reps : 200);
  }
  if (wanted("c")) {
    lenet_step<float>(reps ? reps : 100);
    lenet_step<double>(reps ? reps : 60);
  }
  if (wanted("d")) {
    conv_blocks<float>(reps ? reps : 100);
    conv_blocks<double>(reps ? reps : 60);
  }
  return 0;
}
