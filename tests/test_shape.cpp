#include "helpers.hpp"

TEST_CASE("reshape and transpose: values") {
  const Arr a = random_array({2, 3, 4}, 30);
  const TD x(a);
  const TD r = tg::reshape(x, {4, 6});
  CHECK(r.shape() == tg::Shape{4, 6});
  CHECK(r.value()(3, 5) == a(1, 2, 3));
  const TD t = tg::transpose(x, {2, 0, 1});
  CHECK(t.shape() == tg::Shape{4, 2, 3});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k) CHECK(t.value()(k, i, j) == a(i, j, k));
  const TD rev = tg::transpose(x);
  CHECK(rev.shape() == tg::Shape{4, 3, 2});
  CHECK(rev.value()(3, 1, 0) == a(0, 1, 3));
  CHECK(tg::reshape(TD(Arr{5.0}), {}).shape() == tg::Shape{});
}

TEST_CASE("broadcast_to, slice, concat, pad: values") {
  const Arr a = random_array({3, 1}, 31);
  const TD b = tg::broadcast_to(TD(a), {2, 3, 4});
  CHECK(b.shape() == tg::Shape{2, 3, 4});
  CHECK(b.value()(1, 2, 3) == a(2, 0));

  const Arr m = random_array({4, 5}, 32);
  const TD s = tg::slice(TD(m), 1, 1, 5, 2);
  CHECK(s.shape() == tg::Shape{4, 2});
  CHECK(s.value()(3, 1) == m(3, 3));
  CHECK(tg::slice(TD(m), 0, -2, 100).shape() == tg::Shape{2, 5});   // Python's rules
  CHECK(tg::slice(TD(m), 0, 3, 1).shape() == tg::Shape{0, 5});

  const Arr c1 = random_array({2, 2}, 33), c2 = random_array({2, 3}, 34);
  const TD c = tg::concat<double>({TD(c1), TD(c2)}, 1);
  CHECK(c.shape() == tg::Shape{2, 5});
  CHECK(c.value()(1, 1) == c1(1, 1));
  CHECK(c.value()(1, 4) == c2(1, 2));

  const TD p = tg::pad(TD(c1), {{1, 0}, {2, 1}}, -7.0);
  CHECK(p.shape() == tg::Shape{3, 5});
  CHECK(p.value()(0, 0) == -7.0);
  CHECK(p.value()(1, 2) == c1(0, 0));
  CHECK(p.value()(2, 3) == c1(1, 1));
  CHECK(p.value()(2, 4) == -7.0);
}

TEST_CASE("shape ops: gradients") {
  const TD x = leaf({2, 3, 4}, 35);
  check_gradients([](const Inputs& in) { return tg::reshape(in[0], {6, 4}) * tg::reshape(in[0], {6, 4}); }, {x});
  check_gradients([](const Inputs& in) { return tg::transpose(in[0], {1, 2, 0}) * 2.0; }, {x});
  check_gradients([](const Inputs& in) { return tg::transpose(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return tg::broadcast_to(in[0], {2, 3, 4}) * tg::exp(in[0]); }, {leaf({3, 1}, 36)});
  check_gradients([](const Inputs& in) { return tg::slice(in[0], 2, 1, 4, 2); }, {x});
  check_gradients([](const Inputs& in) { return tg::slice(in[0], -2, -2, 3); }, {x});
  check_gradients([](const Inputs& in) { return tg::concat<double>({in[0], tg::exp(in[1]), in[0]}, 0); },
                  {leaf({2, 3}, 37), leaf({1, 3}, 38)});
  check_gradients([](const Inputs& in) { return tg::concat<double>({in[0], in[1]}, -1); },
                  {leaf({2, 1}, 39), leaf({2, 4}, 40)});
  // Five inputs: more gradients than tg::Gradients holds inline.
  check_gradients([](const Inputs& in) { return tg::concat<double>({in[0], in[1], tg::exp(in[0]), in[2], in[1] * 2.0}, 1); },
                  {leaf({2, 1}, 42), leaf({2, 3}, 43), leaf({2, 2}, 44)});
  check_gradients([](const Inputs& in) { return tg::pad(in[0], {{1, 2}, {0, 3}}, 0.5) * tg::pad(in[0], {{1, 2}, {0, 3}}); },
                  {leaf({2, 3}, 41)});
}

TEST_CASE("second derivatives flow through slice and pad") {
  // f(x) = sum(slice(x)^3): d2f/dx2 on the diagonal is 6x inside the slice, 0 outside.
  const TD x(Arr{1.0, 2.0, 3.0, 4.0}, true);
  tg::Tape tape;
  const TD f = tg::sum(tg::pow(tg::slice(x, 0, 1, 3), 3.0));
  const TD g = tg::grad(f, {x}, true)[0];
  CHECK(all_close(g.value(), Arr{0., 12., 27., 0.}));
  const TD h = tg::grad(tg::sum(g), {x})[0];
  CHECK(all_close(h.value(), Arr{0., 12., 18., 0.}));
}
