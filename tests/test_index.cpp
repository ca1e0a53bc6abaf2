#include "helpers.hpp"

#include <limits>

#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>

namespace {
// The values as one column (a literal {{0}, {2}} is ambiguous to xtensor's constructors).
template <class V>
xt::xarray<V> column(xt::xarray<V> a) {
  a.reshape({a.size(), 1});
  return a;
}
}  // namespace

TEST_CASE("index_select: values against a naive loop, repeated and negative indices, gradients, bad indices") {
  const Arr a = random_array({3, 4, 2}, 3100);
  const TD x(a);
  const std::vector<std::int64_t> index{2, 0, -1, 2, 3};
  const Arr y = tg::index_select(x, 1, index).value();
  REQUIRE(same_shape(y, {3, 5, 2}));
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < index.size(); ++j)
      for (std::size_t k = 0; k < 2; ++k) {
        const auto from = static_cast<std::size_t>(index[j] < 0 ? index[j] + 4 : index[j]);
        CHECK(y(i, j, k) == a(i, from, k));
      }
  // The gradient of a repeated index is the sum of its slices' (index 2 twice; 3 and -1 alike).
  {
    tg::Tape tape;
    const TD p(a, true);
    tg::sum(tg::index_select(p, 1, index) * TD(Arr(xt::ones<double>({3, 5, 2})))).backward();
    const Arr g = p.grad();
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(g(i, 0, 0) == 1.0);
      CHECK(g(i, 1, 1) == 0.0);
      CHECK(g(i, 2, 0) == 2.0);
      CHECK(g(i, 3, 1) == 2.0);
    }
  }
  check_gradients([&](const Inputs& in) { return tg::index_select(in[0] * in[0], 0, {1, 1, 0}); }, {leaf({2, 3}, 3102)},
                  forward_too());
  check_gradients([&](const Inputs& in) { return tg::index_select(in[0], -1, {2, 0, 2}) * in[1]; },
                  {leaf({2, 3}, 3103), leaf({2, 3}, 3104)}, forward_too());
  // An empty index selects nothing.
  CHECK(same_shape(tg::index_select(x, 0, {}).value(), {0, 4, 2}));
  CHECK_THROWS_WITH_AS(tg::index_select(x, 1, {0, 4}),
                       "index_select: index 4 at position 1 is out of range for axis 1 of size 4 (x shape (3, 4, 2))",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::index_select(x, 0, {-4}),
                       "index_select: index -4 at position 0 is out of range for axis 0 of size 3 (x shape (3, 4, 2))",
                       tg::ValueError);
  CHECK_THROWS_AS(tg::index_select(x, 3, {0}), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::index_select(TD(Arr(1.0)), 0, {0}), "index_select: cannot select from a scalar (shape ())",
                       tg::ShapeError);
}

TEST_CASE("take_along_axis and gather: values against a naive loop, broadcasting, gradients, bad indices") {
  const Arr a = random_array({3, 4}, 3110);
  const TD x(a);
  // Per row, the columns of its sorted order (what take_along_axis is for, with argsort).
  const tg::Index order = xt::argsort(a, 1);
  const Arr sorted = tg::take_along_axis(x, order, 1).value();
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) CHECK(sorted(i, j) == a(i, static_cast<std::size_t>(order(i, j))));
  CHECK(all_close(sorted, Arr(xt::sort(a, 1)), 0.0));
  // An index of one row broadcasts over x's rows; an x of one row over the index's.
  const tg::Index cols{{3, -4, 1}};
  const Arr by_row = tg::take_along_axis(x, cols, 1).value();
  REQUIRE(same_shape(by_row, {3, 3}));
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(by_row(i, 0) == a(i, 3));
    CHECK(by_row(i, 1) == a(i, 0));
    CHECK(by_row(i, 2) == a(i, 1));
  }
  const tg::Index rows = column(tg::Index{0, 2});
  const Arr picked = tg::take_along_axis(TD(Arr(xt::view(a, xt::range(0, 1), xt::all()))), rows, 1).value();
  REQUIRE(same_shape(picked, {2, 1}));
  CHECK(picked(1, 0) == a(0, 2));
  // gather: the index's shape, no broadcasting; an index shorter than x on another axis reads its start.
  const tg::Index g{{1, 1}, {0, 3}};
  const Arr gathered = tg::gather(x, 1, g).value();
  REQUIRE(same_shape(gathered, {2, 2}));
  CHECK(gathered(0, 0) == a(0, 1));
  CHECK(gathered(0, 1) == a(0, 1));
  CHECK(gathered(1, 0) == a(1, 0));
  CHECK(gathered(1, 1) == a(1, 3));
  const tg::Index down{{2, 0, 1, 2}};
  const Arr along_rows = tg::gather(x, 0, down).value();
  for (std::size_t j = 0; j < 4; ++j) CHECK(along_rows(0, j) == a(static_cast<std::size_t>(down(0, j)), j));

  check_gradients([&](const Inputs& in) { return tg::take_along_axis(in[0] * in[0], order, 1); }, {leaf({3, 4}, 3111)},
                  forward_too());
  check_gradients([&](const Inputs& in) { return tg::take_along_axis(in[0], cols, 1) * in[1]; },
                  {leaf({3, 4}, 3112), leaf({3, 3}, 3113)}, forward_too());
  check_gradients([&](const Inputs& in) { return tg::exp(tg::gather(in[0], 1, g)); }, {leaf({3, 4}, 3114)}, forward_too());

  CHECK_THROWS_WITH_AS(tg::take_along_axis(x, tg::Index{{0, 4}}, 1),
                       "take_along_axis: index 4 at (0, 1) is out of range for axis 1 of size 4 (x shape (3, 4))",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::take_along_axis(x, tg::Index{0, 1}, 1),
                       "take_along_axis: index shape (2) and x shape (3, 4) differ in rank (1 != 2)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::take_along_axis(x, column(tg::Index{0, 1}), 1),
                       "take_along_axis: index shape (2, 1) does not broadcast against x shape (3, 4) outside axis 1 "
                       "(axis 0: 2 != 3)",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::gather(x, 0, tg::Index{{0, 0, 0, 0, 0}}),
                       "gather: index shape (1, 5) is larger than x shape (3, 4) outside axis 0 (axis 1: 5 > 4)",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::gather(x, 0, tg::Index{{0, -5}}),
                       "gather: index -5 at (0, 1) is out of range for axis 0 of size 3 (x shape (3, 4))", tg::ValueError);
}

TEST_CASE("where: values, broadcasting, gradients only to the chosen tensor, bad shapes") {
  const Arr a = random_array({2, 3}, 3120), b = random_array({3}, 3121);
  const TD x(a), y(b);
  const xt::xarray<bool> cond = a > 0.0;
  const Arr w = tg::where(cond, x, y).value();
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(w(i, j) == (a(i, j) > 0.0 ? a(i, j) : b(j)));
  // A comparison straight from the values; a condition of one row broadcast over rows.
  CHECK(all_close(tg::where(x.value() < 0.0, -x, x).value(), Arr(xt::abs(a)), 0.0));
  const Arr by_row = tg::where(xt::xarray<bool>{true, false, true}, x, y).value();
  CHECK(by_row(1, 0) == a(1, 0));
  CHECK(by_row(1, 1) == b(1));
  // The element not chosen may be Inf or NaN: it stays out of the value, and its gradient is
  // exactly 0 (a mask multiplied in would give NaN for both).
  {
    tg::Tape tape;
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    const TD p(Arr{1.0, 2.0, 3.0}, true), q(Arr{inf, nan, 5.0}, true);
    const TD chosen = tg::where(xt::xarray<bool>{true, true, false}, p, q);
    CHECK(all_close(chosen.value(), Arr{1.0, 2.0, 5.0}, 0.0));
    tg::sum(chosen * 2.0).backward();
    CHECK(all_close(p.grad(), Arr{2.0, 2.0, 0.0}, 0.0));
    CHECK(all_close(q.grad(), Arr{0.0, 0.0, 2.0}, 0.0));
  }
  check_gradients([&](const Inputs& in) { return tg::where(cond, in[0] * in[0], tg::exp(in[1])); },
                  {leaf({2, 3}, 3122), leaf({3}, 3123)}, forward_too());
  check_gradients([&](const Inputs& in) { return tg::where(column(xt::xarray<bool>{true, false}), in[0], in[1]) * in[0]; },
                  {leaf({1, 3}, 3124), leaf({2, 1}, 3125)}, forward_too());
  CHECK_THROWS_WITH_AS(tg::where(xt::xarray<bool>{true, false}, x, y),
                       "where: cond shape (2), a shape (2, 3) and b shape (3) do not broadcast", tg::ShapeError);
  CHECK_THROWS_AS(tg::where(cond, x, TD()), tg::UsageError);
}

TEST_CASE("argmax and argmin: first of ties, NaN, keepdims, all elements, empty axes") {
  const TD x(Arr{{1.0, 5.0, 5.0, -2.0}, {0.0, -3.0, 7.0, -3.0}});
  CHECK(tg::argmax(x, 1) == tg::Index{1, 2});
  CHECK(tg::argmin(x, 1) == tg::Index{3, 1});
  CHECK(tg::argmax(x, 0) == tg::Index{0, 0, 1, 0});
  CHECK(tg::argmin(x, -2) == tg::Index{1, 1, 0, 1});
  CHECK(tg::argmax(x, 1, true) == column(tg::Index{1, 2}));
  CHECK(tg::argmax(x) == 6);
  CHECK(tg::argmin(x) == 5);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const TD with_nan(Arr{1.0, nan, 3.0, nan});
  CHECK(tg::argmax(with_nan) == 1);
  CHECK(tg::argmin(with_nan, 0) == tg::Index(1));
  CHECK(tg::argmax(tg::Tensor<float>(xt::xarray<float>{2.f, 9.f, 9.f})) == 1);
  CHECK_THROWS_WITH_AS(tg::argmax(TD(Arr(xt::zeros<double>({2, 0}))), 1),
                       "argmax: axis 1 of shape (2, 0) is empty: it has no maximum", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::argmin(TD(Arr(xt::zeros<double>({0})))),
                       "argmin: x of shape (0) is empty: it has no minimum", tg::ValueError);
  CHECK_THROWS_AS(tg::argmax(x, 2), tg::ValueError);
}

TEST_CASE("cumsum: values against xtensor's, every axis, gradients to second order") {
  const Arr a = random_array({2, 3, 4}, 3130);
  for (std::ptrdiff_t axis = -3; axis < 3; ++axis) {
    CAPTURE(axis);
    CHECK(all_close(tg::cumsum(TD(a), axis).value(), Arr(xt::cumsum(a, axis < 0 ? axis + 3 : axis)), 1e-15));
  }
  check_gradients([](const Inputs& in) { return tg::cumsum(in[0] * in[0], 1); }, {leaf({2, 3, 4}, 3131)}, forward_too());
  check_gradients([](const Inputs& in) { return tg::exp(tg::cumsum(in[0], 0)); }, {leaf({5}, 3132)}, forward_too());
  CHECK_THROWS_WITH_AS(tg::cumsum(TD(Arr(2.0)), 0), "cumsum: a scalar (shape ()) has no axis 0", tg::ShapeError);
  CHECK_THROWS_AS(tg::cumsum(TD(a), 3), tg::ValueError);
}

TEST_CASE("stack, split and chunk: values, inverse of each other, gradients, bad sizes") {
  const Arr a = random_array({2, 3}, 3140), b = random_array({2, 3}, 3141);
  const Arr s0 = tg::stack(std::vector<TD>{TD(a), TD(b)}).value();
  REQUIRE(same_shape(s0, {2, 2, 3}));
  CHECK(all_close(Arr(xt::view(s0, 1, xt::all(), xt::all())), b, 0.0));
  const Arr s2 = tg::stack(std::vector<TD>{TD(a), TD(b)}, -1).value();
  REQUIRE(same_shape(s2, {2, 3, 2}));
  CHECK(s2(1, 2, 0) == a(1, 2));
  CHECK(s2(0, 1, 1) == b(0, 1));
  const auto pieces = tg::split(TD(a), {1, 0, 2}, 1);
  REQUIRE(pieces.size() == 3);
  CHECK(same_shape(pieces[1].value(), {2, 0}));
  CHECK(all_close(pieces[2].value(), Arr(xt::view(a, xt::all(), xt::range(1, 3))), 0.0));
  // chunk: ceil(n / chunks) each, the last smaller, and fewer pieces than asked when they run out.
  const TD seven(Arr(xt::arange<double>(7.0)));
  const auto three = tg::chunk(seven, 3);
  REQUIRE(three.size() == 3);
  CHECK(three[0].shape() == tg::Shape{3});
  CHECK(three[2].value() == Arr{6.0});
  CHECK(tg::chunk(TD(Arr(xt::arange<double>(6.0))), 4).size() == 3);
  CHECK(tg::chunk(seven, 10).size() == 7);
  check_gradients(
      [](const Inputs& in) {
        const auto parts = tg::chunk(in[0] * in[0], 2, 1);
        return tg::stack(std::vector<TD>{parts[1] * parts[0], parts[0]}, 1);
      },
      {leaf({3, 4}, 3142)}, forward_too());
  CHECK_THROWS_WITH_AS(tg::stack(std::vector<TD>{TD(a), TD(Arr(xt::zeros<double>({3, 2})))}),
                       "stack: input 1 of shape (3, 2) does not match input 0 of shape (2, 3)", tg::ShapeError);
  CHECK_THROWS_AS(tg::stack(std::vector<TD>{TD(a)}, 3), tg::ValueError);
  CHECK_THROWS_AS(tg::stack(std::vector<TD>{}), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::split(TD(a), {1, 1}, 1), "split: sizes [1, 1] do not add up to axis 1 of shape (2, 3) (3)",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::chunk(TD(a), 0), "chunk: chunks must be >= 1, got 0", tg::ValueError);
}

TEST_CASE("take_along_axis: an axis of 0 broadcast against one of 1 gives 0, as NumPy's") {
  const TD empty_rows(Arr(xt::zeros<double>({0, 4})));
  CHECK(tg::take_along_axis(empty_rows, tg::Index{{1, 3}}, 1).shape() == tg::Shape{0, 2});
  const TD one_row(Arr{{1.0, 2.0, 3.0, 4.0}});
  CHECK(tg::take_along_axis(one_row, tg::Index(xt::zeros<std::int64_t>({0, 2})), 1).shape() == tg::Shape{0, 2});
}
