#include "helpers.hpp"

#include <limits>
#include <memory>

namespace {
// f(p) = 1/2 sum(a * p^2) with gradient a * p: one step from p0 has a closed form.
struct Quadratic {
  Arr a{1.0, 2.0, 0.5}, p0{1.0, -2.0, 3.0};
  TD p{p0, true};
  void gradient() {
    tg::Tape tape;
    p.zero_grad();
    tg::sum(TD(a) * p * p * 0.5).backward();
  }
};
}  // namespace

TEST_CASE("SGD: one step on a quadratic equals the closed-form update") {
  Quadratic q;
  tg::SGD<double> sgd({q.p}, 0.1);
  q.gradient();
  sgd.step();
  CHECK(all_close(q.p.value(), Arr(q.p0 - 0.1 * q.a * q.p0), 1e-15));
}

TEST_CASE("SGD with momentum, Nesterov and weight decay against hand-computed steps") {
  for (bool nesterov : {false, true}) {
    Quadratic q;
    const double lr = 0.1, mu = 0.9, wd = 0.01;
    tg::SGD<double> sgd({q.p}, lr, mu, wd, nesterov);
    Arr p = q.p0, v = xt::zeros<double>({3});
    for (int t = 0; t < 3; ++t) {
      q.gradient();
      sgd.step();
      const Arr g = q.a * p + wd * p;
      v = t == 0 ? g : Arr(mu * v + g);
      p = p - lr * (nesterov ? Arr(g + mu * v) : v);
      CHECK(all_close(q.p.value(), p, 1e-14));
    }
  }
}

TEST_CASE("Adam: bias correction over three steps against hand-computed values") {
  Quadratic q;
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  tg::Adam<double> adam({q.p}, lr, b1, b2, eps);
  // Hand-computed for element 0 (a = 1, p0 = 1): g = p.
  // t=1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2 -> step lr * g / (|g| + eps) = lr (sign g)
  double p = 1.0, m = 0, v = 0;
  for (int t = 1; t <= 3; ++t) {
    q.gradient();
    adam.step();
    const double g = p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
    CHECK(q.p.value()(0) == doctest::Approx(p).epsilon(1e-12));
  }
  // The first step moves every element by lr against its gradient's sign.
  Quadratic fresh;
  tg::Adam<double> one({fresh.p}, lr);
  fresh.gradient();
  one.step();
  CHECK(all_close(fresh.p.value(), Arr(fresh.p0 - lr * xt::sign(fresh.a * fresh.p0)), 1e-9));
}

TEST_CASE("weight decay: Adam's and SGD's steps against closed forms, and equal to the decay's term in the loss") {
  // Adam with weight decay w adds w p to the gradient before the moments (PyTorch's Adam).
  for (const double wd : {0.0, 0.05}) {
    CAPTURE(wd);
    Quadratic q;
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    tg::Adam<double> adam({q.p}, lr, b1, b2, eps, wd);
    Arr p = q.p0, m = xt::zeros<double>({3}), v = m;
    for (int t = 1; t <= 4; ++t) {
      q.gradient();
      adam.step();
      const Arr g = q.a * p + wd * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const Arr mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
      p = p - lr * mhat / (xt::sqrt(vhat) + eps);
      CHECK(all_close(q.p.value(), p, 1e-14));
    }
  }
  // SGD's and Adam's decay are the gradient of (w / 2) |p|^2: a step with decay w equals a step
  // without it on the loss plus that term, its gradient from the autodiff.
  const double wd = 0.1;
  auto run = [&](bool decay_in_optimizer, bool adam) {
    Quadratic q;
    std::unique_ptr<tg::Optimizer<double>> opt;
    const double w = decay_in_optimizer ? wd : 0.0;
    if (adam)
      opt = std::make_unique<tg::Adam<double>>(std::vector<TD>{q.p}, 0.01, 0.9, 0.999, 1e-8, w);
    else
      opt = std::make_unique<tg::SGD<double>>(std::vector<TD>{q.p}, 0.1, 0.9, w);
    for (int t = 0; t < 3; ++t) {
      opt->zero_grad();
      tg::Tape tape;
      TD loss = tg::sum(TD(q.a) * q.p * q.p) * 0.5;
      if (!decay_in_optimizer) loss = loss + tg::sum(q.p * q.p) * (wd / 2);
      loss.backward();
      opt->step();
    }
    return Arr(q.p.value());
  };
  for (const bool adam : {false, true}) {
    CAPTURE(adam);
    CHECK(all_close(run(true, adam), run(false, adam), 1e-13));
    CHECK_FALSE(all_close(run(true, adam), Quadratic().p0, 1e-3));   // it moved
  }
}

TEST_CASE("optimizers skip parameters without a gradient and reject bad settings") {
  TD used(Arr{1.0}, true), unused(Arr{5.0}, true);
  tg::SGD<double> sgd({used, unused}, 0.5);
  {
    tg::Tape tape;
    tg::sum(used * used).backward();
  }
  sgd.step();
  CHECK(used.value()(0) == doctest::Approx(0.0).epsilon(1e-13));
  CHECK(unused.value()(0) == 5.0);
  sgd.zero_grad();
  CHECK_FALSE(used.has_grad());
  // After zero_grad a parameter the loss does not reach is not moved, even with weight decay.
  tg::SGD<double> decaying({used, unused}, 0.5, 0.9, 0.1);
  decaying.zero_grad();
  {
    tg::Tape tape;
    tg::sum(used * 2.0).backward();
  }
  decaying.step();
  CHECK(unused.value()(0) == 5.0);
  CHECK(used.value()(0) == doctest::Approx(-1.0).epsilon(1e-13));
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, -1.0), "SGD: lr must be finite and >= 0, got -1", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, 0.1, 1.0), "SGD: momentum must be in [0, 1), got 1", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, 0.1, 0.0, 0.0, true), "SGD: nesterov needs momentum > 0", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::Adam<double>({used}, 0.1, 1.5), "Adam: beta1 must be in [0, 1), got 1.5", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::Adam<double>({used}, 0.1, 0.9, 0.999, 0.0), doctest::Contains("Adam: eps must be > 0"),
                       tg::ValueError);
}

TEST_CASE("a step whose gradient no longer fits a reshaped parameter changes no parameter") {
  TD a(Arr{1.0, 2.0}, true), b(Arr{3.0, 4.0}, true);
  {
    tg::Tape tape;
    tg::sum(a * b).backward();
  }
  b.mutable_value() = Arr{3.0, 4.0, 5.0};   // reshaped after backward
  tg::SGD<double> sgd({a, b}, 0.1);
  tg::Adam<double> adam({a, b}, 0.1);
  CHECK_THROWS_WITH_AS(sgd.step(), "SGD: parameter 1 of shape (3) no longer matches its gradient's 2 elements",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(adam.step(), "Adam: parameter 1 of shape (3) no longer matches its gradient's 2 elements",
                       tg::ShapeError);
  CHECK(all_close(a.value(), Arr{1.0, 2.0}, 0.0));   // parameter 0 was not stepped either
}

TEST_CASE("learning rates: read, set, per parameter group with a weight decay of its own") {
  Quadratic q;
  TD other(Arr{2.0, -1.0}, true);
  tg::SGD<double> sgd({tg::ParamGroup<double>{{q.p}}, tg::ParamGroup<double>{{other}, 0.01, 0.5}}, 0.1);
  CHECK(sgd.group_count() == 2);
  CHECK(sgd.lr() == 0.1);
  CHECK(sgd.lr(1) == 0.01);
  CHECK(sgd.weight_decay(1) == 0.5);
  {
    tg::Tape tape;
    q.p.zero_grad();
    (tg::sum(TD(q.a) * q.p * q.p * 0.5) + tg::sum(other * other)).backward();
  }
  sgd.step();
  CHECK(all_close(q.p.value(), Arr(q.p0 - 0.1 * q.a * q.p0), 1e-15));
  CHECK(all_close(other.value(), Arr(Arr{2.0, -1.0} - 0.01 * (2.0 * Arr{2.0, -1.0} + 0.5 * Arr{2.0, -1.0})), 1e-15));
  sgd.set_lr(0.2);
  CHECK(sgd.lr(1) == 0.2);
  sgd.set_lr(0, 0.3);
  CHECK(sgd.lr(0) == 0.3);
  CHECK_THROWS_WITH_AS(sgd.set_lr(2, 0.1), "SGD: group 2 is out of range for 2 groups", tg::ValueError);
  CHECK_THROWS_AS(sgd.set_lr(-1.0), tg::ValueError);
}

TEST_CASE("AdamW: decoupled weight decay, against hand-computed steps and against Adam") {
  Quadratic q;
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  tg::AdamW<double> adamw({q.p}, lr, b1, b2, eps, wd);
  Arr p = q.p0, m = xt::zeros<double>({3}), v = xt::zeros<double>({3});
  for (int t = 1; t <= 3; ++t) {
    q.gradient();
    adamw.step();
    const Arr g = q.a * p;   // the gradient at the parameters before the step
    p = p * (1 - lr * wd);
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p = p - lr * (m / (1 - std::pow(b1, t))) / (xt::sqrt(v / (1 - std::pow(b2, t))) + eps);
    CHECK(all_close(q.p.value(), p, 1e-15));
  }
  // With no decay, AdamW is Adam, bit for bit.
  Quadratic x, y;
  tg::AdamW<double> w({x.p}, lr, b1, b2, eps, 0.0);
  tg::Adam<double> a({y.p}, lr, b1, b2, eps);
  for (int t = 0; t < 3; ++t) {
    x.gradient();
    y.gradient();
    w.step();
    a.step();
  }
  CHECK(x.p.value() == y.p.value());
  CHECK(w.name() == "AdamW");
}

TEST_CASE("schedules: step, linear warm-up and cosine rates against their closed forms, resumable") {
  TD p(Arr{1.0}, true);
  tg::SGD<double> sgd({tg::ParamGroup<double>{{p}}, tg::ParamGroup<double>{{}, 0.5}}, 0.2);
  tg::StepLR<double> steps(sgd, 3, 0.5);
  for (std::size_t t = 0; t < 10; ++t) {
    CAPTURE(t);
    CHECK(sgd.lr(0) == doctest::Approx(0.2 * std::pow(0.5, double(t / 3))).epsilon(1e-15));
    CHECK(sgd.lr(1) == doctest::Approx(0.5 * std::pow(0.5, double(t / 3))).epsilon(1e-15));
    steps.step();
  }
  tg::SGD<double> warm_sgd({p}, 1.0);
  tg::LinearWarmup<double> warm(warm_sgd, 4, 0.2);
  const double warm_rates[] = {0.2, 0.4, 0.6, 0.8, 1.0, 1.0};
  for (const double r : warm_rates) {
    CHECK(warm_sgd.lr() == doctest::Approx(r).epsilon(1e-15));
    warm.step();
  }
  tg::SGD<double> cos_sgd({p}, 1.0);
  tg::CosineLR<double> cosine(cos_sgd, 12, 0.1, 2);
  const double pi = 3.14159265358979323846;
  for (std::size_t t = 0; t <= 14; ++t) {
    CAPTURE(t);
    const double expected = t < 2 ? double(t) / 2 : 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * std::min(1.0, double(t - 2) / 10)));
    CHECK(cos_sgd.lr() == doctest::Approx(expected).epsilon(1e-15));
    cosine.step();
  }
  // The position is one number: a schedule set to it gives the same rate.
  tg::SGD<double> again_sgd({p}, 1.0);
  tg::CosineLR<double> again(again_sgd, 12, 0.1, 2);
  again.set_steps(7);
  cosine.set_steps(7);
  CHECK(again_sgd.lr() == cos_sgd.lr());
  CHECK_THROWS_WITH_AS(tg::CosineLR<double>(cos_sgd, 4, 0.0, 5),
                       "CosineLR: needs total_steps >= 1 and warmup_steps <= total_steps, got 4 and 5", tg::ValueError);
  CHECK_THROWS_AS(tg::StepLR<double>(cos_sgd, 0), tg::ValueError);
}

TEST_CASE("gradient clipping in place: by the joint norm and by value") {
  TD a(Arr{3.0, 0.0}, true), b(Arr{4.0}, true), none(Arr{1.0}, true);
  const auto gradients = [&](double scale) {
    tg::Tape tape;
    a.clear_grad();
    b.clear_grad();
    tg::sum((a * a + tg::sum(b * b)) * (0.5 * scale)).backward();   // grads: a = (3, 0), b = (8)
  };
  gradients(1.0);
  const Arr ga = a.grad(), gb = b.grad();
  const double norm = std::sqrt(xt::sum(ga * ga)() + xt::sum(gb * gb)());
  CHECK(tg::clip_grad_norm<double>({a, b, none}, 100.0) == doctest::Approx(norm).epsilon(1e-15));
  CHECK(a.grad() == ga);   // below the limit: untouched
  CHECK(tg::clip_grad_norm<double>({a, b, none}, 1.0) == doctest::Approx(norm).epsilon(1e-15));
  const double scale = 1.0 / (norm + 1e-6);
  CHECK(all_close(a.grad(), Arr(ga * scale), 1e-15));
  CHECK(all_close(b.grad(), Arr(gb * scale), 1e-15));
  CHECK(std::sqrt(xt::sum(a.grad() * a.grad())() + xt::sum(b.grad() * b.grad())()) <= 1.0);
  CHECK_FALSE(none.has_grad());
  // A NaN norm leaves the gradients as they are, and says so.
  b.mutable_grad()(0) = std::numeric_limits<double>::quiet_NaN();
  const Arr before = a.grad();
  CHECK(std::isnan(tg::clip_grad_norm<double>({a, b}, 1.0)));
  CHECK(a.grad() == before);
  gradients(1.0);
  tg::clip_grad_value<double>({a, b}, 2.5);
  CHECK(all_close(a.grad(), Arr(xt::clip(ga, -2.5, 2.5)), 0.0));
  CHECK(all_close(b.grad(), Arr{2.5}, 0.0));
  CHECK_THROWS_WITH_AS(tg::clip_grad_norm<double>({a}, 0.0), "clip_grad_norm: max_norm must be > 0, got 0", tg::ValueError);
  CHECK_THROWS_AS(tg::clip_grad_value<double>({a}, -1.0), tg::ValueError);
  CHECK_THROWS_AS(none.mutable_grad(), tg::UsageError);
}

namespace {
// A small float model trained on fixed data: each step's loss and update depend on everything
// the state holds (Adam's moments and step counts, the schedule's position).
struct Run {
  tg::Sequential<float> model;
  tg::Adam<float> opt;
  tg::CosineLR<float> schedule;
  explicit Run(std::uint64_t seed)
      : model((tg::ManualSeed(seed), tg::Sequential<float>(tg::Linear<float>(4, 8), tg::Tanh<float>(), tg::Linear<float>(8, 3)))),
        opt(model.parameters(), 0.05),
        schedule(opt, 10, 0.001, 2) {}
  void steps(int n, int first) {
    for (int k = first; k < first + n; ++k) {
      tg::Tape tape;
      const tg::Tensor<float> x(xt::xarray<float>(xt::cast<float>(random_array({5, 4}, 3300 + unsigned(k)))));
      opt.zero_grad();
      tg::cross_entropy(model(x), {0, 2, 1, 1, 0}).backward();
      tg::clip_grad_norm(model.parameters(), 0.5);
      opt.step();
      schedule.step();
    }
  }
};
}  // namespace

TEST_CASE("a run resumed from saved model and optimizer state is bitwise the uninterrupted run") {
  TempDir dir;
  Run straight(1);
  straight.steps(7, 0);

  Run first(1);
  first.steps(3, 0);
  tg::save_parameters(first.model, dir / "model.npz");
  tg::save_npz(dir / "optimizer.npz", first.opt.state_dict());
  const std::size_t position = first.schedule.steps();

  Run resumed(99);   // other initial weights, a fresh optimizer: everything comes from the files
  tg::load_parameters(resumed.model, dir / "model.npz");
  const auto loaded = tg::load_npz<double>(dir / "optimizer.npz");
  resumed.opt.load_state_dict(tg::StateDict<double>(loaded.begin(), loaded.end()));
  resumed.schedule.set_steps(position);
  resumed.steps(4, 3);
  const auto want = straight.model.state_dict(), got = resumed.model.state_dict();
  REQUIRE(want.size() == got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(want[i].first);
    CHECK(want[i].second == got[i].second);   // bit for bit
  }
  // Without the optimizer's state the run differs (the test can fail).
  Run forgetful(99);
  tg::load_parameters(forgetful.model, dir / "model.npz");
  forgetful.schedule.set_steps(position);
  forgetful.steps(4, 3);
  CHECK(forgetful.model.state_dict()[0].second != want[0].second);
}

TEST_CASE("optimizer state: names, and a state of another optimizer or shape is an error that changes nothing") {
  Quadratic q;
  tg::Adam<double> adam({q.p}, 0.01);
  q.gradient();
  adam.step();
  const tg::StateDict<double> state = adam.state_dict();
  std::vector<std::string> names;
  for (const auto& [n, v] : state) names.push_back(n);
  CHECK(names == std::vector<std::string>{"group0.lr", "group0.weight_decay", "param0.step", "param0.exp_avg", "param0.exp_avg_sq",
                                          "parameters"});
  Quadratic r;
  tg::SGD<double> sgd({r.p}, 0.1, 0.9);
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(state), "SGD.load_state_dict: entry 'param0.exp_avg' is not part of this SGD's state",
                       tg::ValueError);
  tg::Adam<double> other({TD(Arr{1.0, 2.0}, true)}, 0.5);
  CHECK_THROWS_WITH_AS(other.load_state_dict(state),
                       "Adam.load_state_dict: entry 'param0.exp_avg' has shape (3), parameter 0 has shape (2)", tg::ValueError);
  CHECK(other.lr() == 0.5);   // nothing changed
  tg::Adam<double> two({r.p, TD(Arr{1.0}, true)}, 0.5);
  CHECK_THROWS_WITH_AS(two.load_state_dict(state), "Adam.load_state_dict: the state is of 1 parameters, this Adam has 2",
                       tg::ValueError);
  tg::StateDict<double> partial(state.begin(), state.end() - 2);
  partial.push_back(state.back());
  tg::Adam<double> fresh({r.p}, 0.5);
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(partial),
                       "Adam.load_state_dict: parameter 0 has a step count but no 'exp_avg_sq'", tg::ValueError);
  fresh.load_state_dict(state);
  CHECK(fresh.lr() == 0.01);
  CHECK(fresh.state_dict()[3].second == state[3].second);
}
