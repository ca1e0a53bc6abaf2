#include "helpers.hpp"

#include <cmath>
#include <limits>
#include <random>

TEST_CASE("Generator: mt19937_64's standard outputs, uniform's 53 bits, normal's bits fixed on every host") {
  // The C++ standard fixes mt19937_64's 10000th output for the default seed 5489.
  tg::Generator standard(5489);
  std::uint64_t x = 0;
  for (int i = 0; i < 10000; ++i) x = standard.next();
  CHECK(x == 9981545732273789042ULL);
  // uniform: the top 53 bits of each output, scaled (checked against the engine itself).
  std::mt19937_64 engine(11);
  tg::Generator g(11);
  for (int i = 0; i < 1000; ++i) {
    const double expected = static_cast<double>(engine() >> 11) * 0x1.0p-53;
    REQUIRE(g.uniform(0, 1) == expected);
  }
  // normal: the polar method, its logarithm computed from + - * / alone. Its first draws for seed
  // 42, bit for bit: what every host must give (a host whose C library's log differs in the last
  // bit gives these too).
  tg::Generator n(42);
  const double first[] = {0x1.4b37d0b4daa8fp+0, 0x1.68f438d8aec29p-1, 0x1.978762f4a05dcp-2,
                          -0x1.25efc127557c4p-1, 0x1.1e599fb914973p+0, -0x1.e81c87dfcf306p+0};
  for (const double v : first) CHECK(n.normal() == v);
  // Against the polar method with the C library's log: the same draws to a few ulp.
  tg::Generator a(7), b(7);
  double worst = 0;
  for (int i = 0; i < 20000; ++i) {
    double u = 0, v = 0, s = 0;
    do {
      u = b.uniform(-1, 1);
      v = b.uniform(-1, 1);
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    const double f = std::sqrt(-2 * std::log(s) / s);
    worst = std::max({worst, std::abs(a.normal() - u * f) / std::abs(u * f), std::abs(a.normal() - v * f) / std::abs(v * f)});
  }
  CHECK(worst < 4e-15);
}

TEST_CASE("random tensors: shapes, ranges, moments, seeds, bad arguments") {
  const auto u = tg::uniform<float>({200, 1000}, -2.f, 3.f);
  REQUIRE(u.shape() == tg::Shape{200, 1000});
  CHECK_FALSE(u.requires_grad());
  CHECK(xt::amin(u.value())() >= -2.f);
  CHECK(xt::amax(u.value())() < 3.f);
  // Mean 0.5 and variance 25/12 within 5 standard errors of 200,000 draws.
  CHECK(std::abs(xt::mean(xt::cast<double>(u.value()))() - 0.5) < 5 * std::sqrt(25.0 / 12 / 2e5));
  // An interval one float wide: every draw is lo, never hi.
  const auto narrow = tg::uniform<float>({1000}, 1.f, std::nextafter(1.f, 2.f));
  CHECK(xt::all(xt::equal(narrow.value(), 1.f)));

  const auto z = tg::normal<double>({200000}, 1.0, 2.0);
  const double mean = xt::mean(z.value())(), sd = std::sqrt(xt::variance(z.value())());
  CHECK(std::abs(mean - 1.0) < 5 * 2.0 / std::sqrt(2e5));
  CHECK(std::abs(sd - 2.0) < 5 * 2.0 / std::sqrt(2 * 2e5));
  // About 95.45 % within two standard deviations.
  const double within = xt::mean(xt::cast<double>(xt::abs(z.value() - 1.0) < 4.0))();
  CHECK(std::abs(within - 0.9545) < 5 * std::sqrt(0.9545 * 0.0455 / 2e5));

  const auto coin = tg::bernoulli<float>({200000}, 0.3f);
  CHECK(xt::all(xt::equal(coin.value(), 0.f) || xt::equal(coin.value(), 1.f)));
  CHECK(std::abs(xt::mean(xt::cast<double>(coin.value()))() - 0.3) < 5 * std::sqrt(0.21 / 2e5));
  CHECK(xt::sum(tg::bernoulli<double>({100}, 0.0).value())() == 0.0);
  CHECK(xt::sum(tg::bernoulli<double>({100}, 1.0).value())() == 100.0);

  // The same seed, the same numbers; the thread's generator comes back after the guard.
  Arr first, again, other;
  {
    tg::ManualSeed seed(5);
    first = tg::normal<double>({10}).value();
  }
  const Arr after_guard = tg::uniform<double>({3}).value();
  {
    tg::ManualSeed seed(5);
    again = tg::normal<double>({10}).value();
  }
  {
    tg::ManualSeed seed(6);
    other = tg::normal<double>({10}).value();
  }
  CHECK(first == again);
  CHECK(first != other);
  tg::Generator mine(5);
  CHECK(tg::normal<double>({10}, 0.0, 1.0, mine).value() == first);
  CHECK(tg::uniform<double>({3}).value() != after_guard);   // the default generator moved on

  CHECK_THROWS_WITH_AS(tg::uniform<double>({2}, 1.0, 0.0), "uniform: needs finite bounds lo <= hi, got lo 1 and hi 0",
                       tg::ValueError);
  CHECK_THROWS_AS(tg::uniform<float>({2}, 0.f, std::numeric_limits<float>::infinity()), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::normal<double>({2}, 0.0, -1.0),
                       "normal: needs a finite mean and a finite stddev >= 0, got mean 0 and stddev -1",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::bernoulli<double>({2}, 1.5), "bernoulli: p must be in [0, 1], got 1.5", tg::ValueError);
  CHECK_THROWS_AS(tg::bernoulli<double>({2}, std::numeric_limits<double>::quiet_NaN()), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::normal<float>({std::size_t(1) << 30, std::size_t(1) << 30}),
                       "normal: shape (1073741824, 1073741824) has more than 2^48 elements", tg::ValueError);
}

TEST_CASE("Generator state: saved mid-stream (a normal draw kept or not), restored, the same numbers follow; a bad state is a ValueError") {
  for (const int kept : {0, 1}) {
    CAPTURE(kept);
    tg::Generator g(2024);
    for (int i = 0; i < 1000; ++i) g.uniform(0, 1);   // past the first block of 312 words
    if (kept) g.normal();                              // the pair's second draw waits
    const std::vector<std::uint64_t> state = g.state();
    CHECK(state.back() == std::uint64_t(kept));
    tg::Generator restored(1);
    restored.set_state(state);
    CHECK(restored.state() == state);
    for (int i = 0; i < 700; ++i) {
      CHECK(restored.normal() == g.normal());
      CHECK(restored.next() == g.next());
    }
  }
  tg::Generator g(5);
  std::vector<std::uint64_t> state = g.state();
  std::vector<std::uint64_t> shorter(state.begin(), state.end() - 1);
  CHECK_THROWS_WITH_AS(g.set_state(shorter), doctest::Contains("Generator::set_state: a state has"), tg::ValueError);
  std::vector<std::uint64_t> bad_flag = state;
  bad_flag.back() = 7;
  CHECK_THROWS_WITH_AS(g.set_state(bad_flag), doctest::Contains("must be 0 or 1, got 7"), tg::ValueError);
  if (state.size() == std::mt19937_64::state_size + 3) {   // libstdc++ keeps the engine's position
    std::vector<std::uint64_t> bad_position = state;
    bad_position[std::mt19937_64::state_size] = 100000;
    CHECK_THROWS_WITH_AS(g.set_state(bad_position), doctest::Contains("the engine's position"), tg::ValueError);
  }
  CHECK(g.state() == state);   // nothing changed
}
