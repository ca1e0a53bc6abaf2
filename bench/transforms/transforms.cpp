// The function transforms timed: jacrev, jacfwd, hessian and hvp, and the gradient hvp is measured
// against, on an MLP, a softmax with cross-entropy, GradBench's gmm objective (d=2, k=5, n=1000)
// and a wide map R^16 -> R^4096 (where forward mode should win). tapegrad's side;
// transforms_torch.py is PyTorch's, on the same functions and the same values (filled by formula),
// in double, one thread. One JSON object per line: workload, transform, variant, median ms, and a
// checksum of the result that the report compares across the two sides.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "evals.hpp"

namespace tg = tapegrad;
using TD = tg::Tensor<double>;
using Inputs = std::vector<TD>;
using Arr = xt::xarray<double>;

namespace {

// a[i] = scale * sin(1.7 i + seed): the same values in transforms_torch.py.
Arr fill(const tg::Shape& shape, double seed, double scale = 0.5) {
  Arr a = Arr::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = scale * std::sin(1.7 * double(i) + seed);
  return a;
}

double total(const std::vector<TD>& ts) {
  double s = 0;
  for (const TD& t : ts) s += xt::sum(t.value())();
  return s;
}
double total(const std::vector<std::vector<TD>>& blocks) {
  double s = 0;
  for (const auto& row : blocks) s += total(row);
  return s;
}

struct Workload {
  std::string name;
  Inputs primals;
  tg::Function<double> f;                       // for jacrev and jacfwd
  std::function<TD(const Inputs&)> scalar;      // for the gradient, hessian and hvp (or none)
};

// Median milliseconds per call of run() over at least 5 calls and 0.25 s, after one warm-up call;
// the checksum of its last result is computed outside the timed calls.
template <class F>
void report(const std::string& workload, const std::string& transform, F run) {
  auto result = run();
  std::vector<double> times;
  double seconds = 0;
  while ((times.size() < 5 || seconds < 0.25) && times.size() < 2000) {
    const auto start = std::chrono::steady_clock::now();
    result = run();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    times.push_back(s * 1e3);
    seconds += s;
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  std::printf("{\"side\": \"tapegrad\", \"workload\": \"%s\", \"transform\": \"%s\", \"variant\": \"\", \"ms\": %.6g, "
              "\"checksum\": %.12e}\n",
              workload.c_str(), transform.c_str(), times[times.size() / 2], total(result));
  std::fflush(stdout);
}

void measure(const Workload& w) {
  if (w.f) {
    report(w.name, "jacrev", [&] { return tg::jacrev<double>(w.f, w.primals); });
    report(w.name, "jacfwd", [&] { return tg::jacfwd<double>(w.f, w.primals); });
  }
  if (!w.scalar) return;
  report(w.name, "grad", [&] {
    tg::Tape tape;
    Inputs xs;
    for (const TD& p : w.primals) xs.push_back(TD(p.value(), true));
    return tg::grad(w.scalar(xs), xs);
  });
  Inputs vs;
  for (std::size_t i = 0; i < w.primals.size(); ++i) vs.push_back(TD(fill(w.primals[i].shape(), 20.0 + double(i))));
  report(w.name, "hvp", [&] { return tg::hvp<double>(w.scalar, w.primals, vs); });
  report(w.name, "hessian", [&] { return tg::hessian<double>(w.scalar, w.primals); });
}

}  // namespace

// Usage: transforms [WORKLOAD]: all four, or the one named.
int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";
  std::vector<Workload> workloads;

  // MLP R^16 -> R^16, one hidden layer of 64: f(x) = W2 tanh(W1 x + b1) + b2; s = logsumexp(f).
  const TD w1(fill({64, 16}, 2, 0.25)), b1(fill({64, 1}, 3)), w2(fill({16, 64}, 4, 0.25)), b2(fill({16, 1}, 5));
  const auto mlp = [=](const Inputs& x) { return tg::matmul(w2, tg::tanh(tg::matmul(w1, x[0]) + b1)) + b2; };
  workloads.push_back({"mlp", {TD(fill({16, 1}, 1))}, [=](const Inputs& x) { return Inputs{mlp(x)}; },
                       [=](const Inputs& x) { return tg::sum(tg::logsumexp(mlp(x), 0)); }});

  // Softmax of 8 rows of 10 logits; cross-entropy against fixed labels.
  std::vector<std::size_t> labels;
  for (std::size_t i = 0; i < 8; ++i) labels.push_back(i * 3 % 10);
  workloads.push_back({"softmax_ce", {TD(fill({8, 10}, 6, 2.0))},
                       [](const Inputs& z) { return Inputs{tg::softmax(z[0], 1)}; },
                       [labels](const Inputs& z) { return tg::cross_entropy(z[0], labels); }});

  // GradBench's gmm objective, d = 2, k = 5, n = 1000: a function of alpha, mu, q and l.
  gradbench::GmmInput gmm;
  gmm.x = fill({1000, 2}, 7, 1.0);
  const Inputs gmm_params{TD(fill({5}, 8)), TD(fill({5, 2}, 9)), TD(fill({5, 2}, 10)), TD(fill({5, 1}, 11))};
  const auto gmm_objective = [gmm](const Inputs& p) { return gradbench::gmm_tensor(p[0], p[1], p[2], p[3], gmm); };
  workloads.push_back({"gmm", gmm_params, [=](const Inputs& p) { return Inputs{gmm_objective(p)}; }, gmm_objective});

  // R^16 -> R^4096: f(x) = tanh(W x + b).
  const TD w(fill({4096, 16}, 13, 0.25)), b(fill({4096, 1}, 14));
  workloads.push_back({"wide", {TD(fill({16, 1}, 12))},
                       [=](const Inputs& x) { return Inputs{tg::tanh(tg::matmul(w, x[0]) + b)}; }, nullptr});

  for (const Workload& wl : workloads)
    if (only.empty() || wl.name == only) measure(wl);
}
