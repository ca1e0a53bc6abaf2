// One test per kind of bad input: the exception type and what its message names.
#include "helpers.hpp"

using doctest::Contains;

#include <limits>

TEST_CASE("matmul: incompatible shapes name both shapes and the dimensions") {
  const TD a(Arr::from_shape({2, 3})), b(Arr::from_shape({4, 5}));
  CHECK_THROWS_WITH_AS(tg::matmul(a, b),
                       "matmul: lhs shape (2, 3) and rhs shape (4, 5) are incompatible "
                       "(lhs.shape[1]=3 != rhs.shape[0]=4)",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::matmul(TD(Arr::from_shape({2, 2, 3})), TD(Arr::from_shape({3, 3, 4}))),
                       Contains("batch dimensions (2) and (3) that do not broadcast"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::matmul(TD(Arr(1.0)), b), Contains("matmul: lhs shape () and rhs shape (4, 5)"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::matmul(TD(Arr::from_shape({3})), b), Contains("lhs.shape[0]=3 != rhs.shape[0]=4"),
                       tg::ShapeError);
}

TEST_CASE("elementwise: shapes that do not broadcast") {
  const TD a(Arr::from_shape({2, 3})), b(Arr::from_shape({4}));
  CHECK_THROWS_WITH_AS(a + b, Contains("add: shapes (2, 3) and (4) do not broadcast"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(a * b, Contains("mul: shapes (2, 3) and (4)"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(a - b, Contains("sub: "), tg::ShapeError);
  CHECK_THROWS_WITH_AS(a / b, Contains("div: "), tg::ShapeError);
}

TEST_CASE("reductions: axes out of range, repeated, empty max") {
  const TD x(Arr::from_shape({2, 3}));
  CHECK_THROWS_WITH_AS(tg::sum(x, {2}), "sum: axis 2 is out of range for a tensor of rank 2 (valid: -2 to 1)",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::mean(x, {-3}), Contains("mean: axis -3 is out of range"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::sum(x, {1, -1}), Contains("sum: axis -1 is repeated"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::max(x, 5), Contains("max: axis 5 is out of range"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::max(TD(Arr::from_shape({2, 0})), 1),
                       Contains("max: cannot reduce axis 1 of size 0 (shape (2, 0))"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::sum_to(x, {3, 3}), Contains("sum_to: cannot sum shape (2, 3) down to (3, 3)"),
                       tg::ShapeError);
}

TEST_CASE("shape ops: bad shapes, permutations, slices, pads") {
  const TD x(Arr::from_shape({2, 3}));
  CHECK_THROWS_WITH_AS(tg::reshape(x, {4, 2}),
                       "reshape: cannot reshape (2, 3) (6 elements) to (4, 2) (8 elements)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::transpose(x, {0, 0}),
                       Contains("transpose: perm [0, 0] is not a permutation of the 2 axes of shape (2, 3)"),
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::transpose(x, {0}), Contains("transpose: perm [0]"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::broadcast_to(x, {3, 3}), "broadcast_to: cannot broadcast shape (2, 3) to (3, 3)",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::broadcast_to(x, {3}), Contains("broadcast_to: cannot broadcast shape (2, 3) to (3)"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::slice(x, 1, 0, 2, 0), "slice: step must be >= 1, got 0", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::slice(x, 2, 0, 1), Contains("slice: axis 2 is out of range"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::concat<double>({x, TD(Arr::from_shape({2, 3, 1}))}, 0),
                       Contains("concat: input 1 of shape (2, 3, 1) does not match input 0 of shape (2, 3)"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::concat<double>({x, TD(Arr::from_shape({3, 3}))}, 1),
                       Contains("outside axis 1"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::concat<double>({}, 0), "concat: needs at least one tensor", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::pad(x, {{1, 1}}), Contains("pad: got 1 (before, after) pairs for a tensor of shape (2, 3)"),
                       tg::ShapeError);
}

TEST_CASE("tensors: item of many elements, grad before backward, undefined handles") {
  TD x(Arr::from_shape({2, 3}), true);
  CHECK_THROWS_WITH_AS(x.item(), "item: needs a one-element tensor, got shape (2, 3)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(x.grad(), Contains("grad: tensor of shape (2, 3) has no gradient"), tg::UsageError);
  const TD undefined;
  CHECK_THROWS_WITH_AS(undefined.value(), Contains("value: the tensor is undefined"), tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::exp(undefined), "exp: input 0 is an undefined tensor (a default-constructed handle)", tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::record<double>("my_op", {undefined}, Arr{1.0}, nullptr),
                       "my_op: input 0 is an undefined tensor", tg::UsageError);
  tg::Tape tape;
  TD y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.set_requires_grad(false), Contains("set_requires_grad: only a leaf's flag can change"),
                       tg::UsageError);
}

TEST_CASE("backward with no tape") {
  const TD x(Arr{1.0, 2.0}, true);
  const TD y = tg::sum(x * x);   // no tape: a value only
  CHECK_THROWS_WITH_AS(y.backward(), Contains("backward: the tensor of shape () was not recorded on a tape"),
                       tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::grad(y, {x}), Contains("grad: the tensor of shape () was not recorded"), tg::UsageError);
  TD escaped;
  {
    tg::Tape tape;
    escaped = tg::sum(x * x);
  }
  CHECK_THROWS_WITH_AS(escaped.backward(), Contains("the tape that recorded this tensor is no longer alive"),
                       tg::UsageError);
}

TEST_CASE("tensors of another tape") {
  const TD x(Arr{1.0, 2.0}, true);
  TD old;
  {
    tg::Tape first;
    old = x * 2.0;
  }
  tg::Tape second;
  CHECK_THROWS_WITH_AS(old + x, Contains("add: input 0 of shape (2) was recorded on another tape"), tg::UsageError);
  // The suggested way out works.
  CHECK_NOTHROW(old.detach() + x);
  tg::Tape outer_then_inner;   // newest tape is now active; tensors of `second` are foreign to it
  const TD y = x * 3.0;
  {
    tg::Tape inner;
    CHECK_THROWS_WITH_AS(tg::exp(y), Contains("exp: input 0 of shape (2) was recorded on another tape"),
                         tg::UsageError);
  }
}

TEST_CASE("backward on a non-scalar without a seed, or with a seed of the wrong shape") {
  const TD x(Arr{1.0, 2.0}, true);
  tg::Tape tape;
  const TD y = x * x;
  CHECK_THROWS_WITH_AS(y.backward(),
                       "backward: the output has shape (2) and is not a scalar: pass a seed gradient of that shape",
                       tg::UsageError);
  CHECK_THROWS_WITH_AS(y.backward(Arr{1., 2., 3.}),
                       "backward: seed of shape (3) does not match the output's shape (2)", tg::ShapeError);
  CHECK_FALSE(x.has_grad());   // nothing was accumulated
  y.backward(Arr{1., 1.});
  CHECK(all_close(x.grad(), Arr{2., 4.}));
}

TEST_CASE("a second backward after the tape released its saved values") {
  const TD x(Arr{1.0, 2.0}, true);
  tg::Tape tape;
  const TD y = tg::sum(tg::exp(x));
  y.backward(/*retain_graph=*/false);
  CHECK(all_close(x.grad(), Arr(xt::exp(x.value())), 1e-12));
  CHECK_THROWS_WITH_AS(y.backward(), Contains("backward: the saved values of 'sum'"), tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::grad(y, {x}), Contains("released by an earlier backward with retain_graph=false"),
                       tg::UsageError);
  CHECK(all_close(x.grad(), Arr(xt::exp(x.value())), 1e-12));   // unchanged by the failed calls
}

TEST_CASE("a custom op whose VJP returns a gradient of the wrong shape or count") {
  const TD x(Arr{1.0, 2.0}, true);
  tg::Tape tape;
  const TD bad_shape = tg::record<double>("my_op", {x}, x.value(), [](const tg::VjpArgs<double>&) {
    return std::vector<TD>{TD(Arr{1.0, 2.0, 3.0})};
  });
  CHECK_THROWS_WITH_AS(bad_shape.backward(Arr{1., 1.}),
                       "backward: VJP of 'my_op' (#0 on the tape) returned a gradient of shape (3) for input 0 of shape (2)",
                       tg::ShapeError);
  const TD bad_count = tg::record<double>("two_grads", {x}, x.value(), [](const tg::VjpArgs<double>& g) {
    return std::vector<TD>{g.grad, g.grad};
  });
  CHECK_THROWS_WITH_AS(bad_count.backward(Arr{1., 1.}),
                       "backward: VJP of 'two_grads' (#1 on the tape) returned 2 gradients for 1 inputs", tg::UsageError);
  CHECK_FALSE(x.has_grad());
}

TEST_CASE("errors derive from the standard exception types") {
  CHECK_THROWS_AS(tg::reshape(TD(Arr{1.0}), {2}), std::invalid_argument);
  CHECK_THROWS_AS(tg::sum(TD(Arr{1.0}), {3}), std::invalid_argument);
  CHECK_THROWS_AS(TD(Arr{1.0, 2.0}, true).grad(), std::logic_error);
}

TEST_CASE("sizes that would overflow: negative pads, huge shapes, huge padding") {
  const TD x(Arr::from_shape({2, 3}));
  // A pad of -1 converts to a huge size_t.
  CHECK_THROWS_WITH_AS(tg::pad(x, {{0, 0}, {1, std::size_t(-1)}}), doctest::Contains("pad: padding (1, 18446744073709551615) of axis 1 is out of range"),
                       tg::ValueError);
  const std::size_t huge = (std::size_t(1) << 62) + 1;
  CHECK_THROWS_WITH_AS(tg::broadcast_to(TD(Arr{1.0}), {huge, 4}), doctest::Contains("broadcast_to: shape (4611686018427387905, 4) is too large"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::reshape(TD(Arr::from_shape({4})), {huge, 4}), doctest::Contains("reshape: shape (4611686018427387905, 4) is too large"),
                       tg::ShapeError);
  const TD img(Arr::from_shape({1, 1, 2, 2})), w(Arr::from_shape({1, 1, 1, 1}));
  CHECK_THROWS_WITH_AS(tg::conv2d(img, w, TD(), 1, (std::size_t(1) << 31) - 1), doctest::Contains("conv2d: shape"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::conv2d(img, w, TD(), 1, std::size_t(-1)), doctest::Contains("conv2d: padding"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(img, 1, 1, std::size_t(-1)), doctest::Contains("avg_pool2d: padding"), tg::ValueError);
  // A huge step takes one element, without overflow.
  const TD v(Arr{1., 2., 3.});
  CHECK(all_close(tg::slice(v, 0, 1, 3, std::numeric_limits<std::ptrdiff_t>::max()).value(), Arr{2.}));
}

TEST_CASE("a backward that fails part-way releases nothing") {
  const TD x(Arr{1.0, 2.0}, true);
  int calls = 0;
  tg::Tape tape;
  const TD y = tg::exp(x);
  const TD flaky = tg::record<double>("flaky", {y}, y.value(), [&calls](const tg::VjpArgs<double>& g) {
    if (calls++ == 0) throw std::runtime_error("flaky: first call fails");
    return std::vector<TD>{g.grad};
  });
  const TD loss = tg::sum(flaky);
  CHECK_THROWS_WITH(loss.backward(false), "flaky: first call fails");
  CHECK_FALSE(x.has_grad());
  loss.backward(false);   // the sum entry was not released by the failed walk
  CHECK(all_close(x.grad(), Arr(xt::exp(x.value())), 1e-12));
}

TEST_CASE("number_str: numbers in messages in their shortest exact form, float as float") {
  CHECK(tg::number_str(100.0) == "100");
  CHECK(tg::number_str(-1.0) == "-1");
  CHECK(tg::number_str(0.1) == "0.1");
  CHECK(tg::number_str(0.05) == "0.05");
  CHECK(tg::number_str(1e-8) == "1e-08");
  CHECK(tg::number_str(1e300) == "1e+300");
  CHECK(tg::number_str(0.1f) == "0.1");   // not 0.10000000149011612
  CHECK(tg::number_str(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(tg::number_str(std::numeric_limits<double>::quiet_NaN()).find("nan") != std::string::npos);
  for (const double v : {1.0 / 3.0, 2.2250738585072014e-308, 123456789.123, -2.5e-7})
    CHECK(std::stod(tg::number_str(v)) == v);   // reads back as the same double
  // In a message: SGD's learning rate.
  CHECK_THROWS_WITH_AS(tg::SGD<double>({TD(Arr{1.0}, true)}, -0.25), "SGD: lr must be finite and >= 0, got -0.25",
                       tg::ValueError);
}
