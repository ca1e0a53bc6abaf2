#include "helpers.hpp"

#include <sstream>

TEST_CASE("a tensor is a handle: copies share value and gradient") {
  TD x(Arr{{1., 2.}, {3., 4.}}, true);
  TD y = x;
  CHECK(y.impl() == x.impl());
  CHECK(x.shape() == tg::Shape{2, 2});
  CHECK(x.dim() == 2);
  CHECK(x.size() == 4);
  CHECK(x.requires_grad());
  CHECK(x.is_leaf());
  CHECK_FALSE(x.has_grad());
  x.zero_grad();
  CHECK(y.has_grad());
  CHECK(all_close(y.grad(), Arr(xt::zeros<double>({2, 2}))));
  const TD d = x.detach();
  CHECK(d.impl() != x.impl());
  CHECK_FALSE(d.requires_grad());
  CHECK(all_close(d.value(), x.value()));
}

TEST_CASE("shapes print as (2, 3)") {
  CHECK(tg::shape_str({2, 3}) == "(2, 3)");
  CHECK(tg::shape_str({64, 1, 28, 28}) == "(64, 1, 28, 28)");
  CHECK(tg::shape_str({3}) == "(3)");
  CHECK(tg::shape_str({}) == "()");
  std::ostringstream os;
  os << TD(Arr{{1., 2., 3.}, {4., 5., 6.}}, true);
  CHECK(os.str().find("tensor(shape (2, 3), requires_grad)") == 0);
}

TEST_CASE("in-place changes bump the version and keep the shape") {
  TD x(Arr{1., 2.}, true);
  const auto v0 = x.version();
  x.assign(Arr{3., 4.});
  CHECK(x.version() == v0 + 1);
  x.mutable_value()(0) = 7.;
  CHECK(x.version() == v0 + 2);
  CHECK(x.value()(0) == 7.);
  CHECK_THROWS_AS(x.assign(Arr{1., 2., 3.}), tg::ShapeError);
  CHECK(x.value()(1) == 4.);   // the failed assign changed nothing
}

TEST_CASE("item reads one-element tensors") {
  CHECK(TD(Arr(2.5)).item() == 2.5);
  CHECK(TD(Arr(xt::ones<double>({1, 1}))).item() == 1.0);
}
