// Error paths of the engine, gradcheck, modules, conv and shape ops and the readers that the
// bad-input catalog's table does not reach (each needs a set-up of its own): each must throw the
// named type with the whole message.
#include "helpers.hpp"

namespace {

// A module of one's own that registers what the test asks it to.
class Registering : public tg::Module<double> {
 public:
  void parameter(const std::string& name) { register_parameter(name, Arr{1.0}); }
  void buffer(const std::string& name) { register_buffer(name, Arr{1.0}); }
  void module(const std::string& name, std::shared_ptr<tg::Module<double>> m) { register_module(name, std::move(m)); }
  std::string name() const override { return "Registering"; }
};

}  // namespace

TEST_CASE("the tape: an op recorded without a VJP function") {
  const TD x = leaf({2}, 1);
  tg::Tape tape;
  CHECK_THROWS_WITH_AS(tg::record<double>("my_op", {x}, Arr{1.0, 2.0}, tg::VjpFunction<double>()),
                       "my_op: recorded without a VJP function", tg::UsageError);
  CHECK(tape.size() == 0);
  // Nothing requires grad: nothing is recorded, and no VJP is needed.
  CHECK(tg::record<double>("my_op", {TD(Arr{1.0})}, Arr{3.0}, tg::VjpFunction<double>()).item() == 3.0);
}

TEST_CASE("gradcheck, gradgradcheck, gradcheck_parameters and numeric_gradient: misuse") {
  const TD x = leaf({3}, 2);
  const auto f = [](const Inputs& in) { return tg::sum(in[0] * in[0]); };
  CHECK_THROWS_WITH_AS(tg::gradcheck(tg::GradcheckFunction(), {x}), "gradcheck: the function is empty", tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::gradcheck(f, {x, TD()}), "gradcheck: input 1 is undefined", tg::UsageError);
  tg::GradcheckOptions zero_step;
  zero_step.eps = 0;
  CHECK_THROWS_WITH_AS(tg::gradcheck(f, {x}, zero_step), "gradcheck: eps must be > 0, got 0", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::gradcheck(f, {x}, tg::HandGradient()), "gradcheck: the hand-written gradient function is empty",
                       tg::UsageError);
  const tg::HandGradient too_few = [](const Inputs&, const Arr&) { return std::vector<Arr>{}; };
  CHECK_THROWS_WITH_AS(tg::gradcheck(f, {x}, too_few), "gradcheck: the hand-written gradient returned 0 arrays for 1 inputs",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::gradgradcheck(tg::GradcheckFunction(), {x}), "gradgradcheck: the function is empty", tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::gradgradcheck(f, {TD()}), "gradgradcheck: input 0 is undefined", tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::gradgradcheck([](const Inputs&) { return TD(); }, {x}),
                       "gradgradcheck: the function returned an undefined tensor", tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::numeric_gradient(std::function<double()>(), x), "numeric_gradient: the function is empty",
                       tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::numeric_gradient([&] { return x.item(); }, x, -1e-3),
                       "numeric_gradient: eps must be > 0, got -0.001", tg::ValueError);
  const auto g = [&] { return tg::sum(x * x); };
  CHECK_THROWS_WITH_AS(tg::gradcheck_parameters(std::function<TD()>(), {{"x", x}}), "gradcheck_parameters: the function is empty",
                       tg::UsageError);
  CHECK_THROWS_WITH_AS(tg::gradcheck_parameters(g, {}), "gradcheck_parameters: no parameters to check", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::gradcheck_parameters(g, {{"x", x}, {"missing", TD()}}),
                       "gradcheck_parameters: parameter 'missing' is undefined", tg::UsageError);
  tg::Tape tape;
  const TD computed = x * 2.0;
  CHECK_THROWS_WITH_AS(tg::gradcheck_parameters(g, {{"twice x", computed}}),
                       "gradcheck_parameters: parameter 'twice x' is not a leaf tensor", tg::UsageError);
  CHECK(all_close(x.value(), leaf({3}, 2).value(), 0));   // x was restored or never moved
}

TEST_CASE("modules: names registered twice or badly, a null sub-module, a state entry given twice") {
  Registering m;
  m.parameter("w");
  m.buffer("running");
  m.module("child", std::make_shared<tg::Linear<double>>(1, 1));
  CHECK_THROWS_WITH_AS(m.parameter(""), "Registering: name '' must be non-empty and contain no '.'", tg::ValueError);
  CHECK_THROWS_WITH_AS(m.buffer("a.b"), "Registering: name 'a.b' must be non-empty and contain no '.'", tg::ValueError);
  CHECK_THROWS_WITH_AS(m.buffer("w"), "Registering: a parameter named 'w' is already registered", tg::ValueError);
  CHECK_THROWS_WITH_AS(m.parameter("running"), "Registering: a buffer named 'running' is already registered", tg::ValueError);
  CHECK_THROWS_WITH_AS(m.parameter("child"), "Registering: a sub-module named 'child' is already registered", tg::ValueError);
  CHECK_THROWS_WITH_AS(m.module("other", nullptr), "Registering: sub-module 'other' is null", tg::ValueError);
  CHECK(m.named_parameters().size() == 3);   // w, child.weight, child.bias: nothing half-registered
  CHECK(m.named_buffers().size() == 1);
  tg::Linear<double> fc(2, 1);
  const Arr weight = fc.weight().value();
  const Arr column = xt::ones<double>({2, 1});
  CHECK_THROWS_WITH_AS(fc.load_state_dict({{"weight", column}, {"bias", Arr{0.0}}, {"weight", Arr(2.0 * column)}}),
                       "load_state_dict: entry 'weight' appears twice", tg::ValueError);
  CHECK(fc.weight().value() == weight);
}

TEST_CASE("conv2d: a weight that is not 4-D, strides and kernels out of range") {
  const TD x(Arr(xt::zeros<double>({1, 2, 5, 5}))), w(Arr(xt::zeros<double>({3, 2, 3, 3})));
  CHECK_THROWS_WITH_AS(tg::conv2d(x, TD(Arr(xt::zeros<double>({3, 2, 3}))), TD()),
                       "conv2d: weight must be 4-D (K, C, kh, kw), got shape (3, 2, 3)", tg::ShapeError);
  const std::size_t negative = static_cast<std::size_t>(-1);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, w, TD(), {1, negative}),
                       "conv2d: stride (1, 18446744073709551615) or kernel (3, 3) is out of range (negative or >= 2^31)",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::im2col(x, {std::size_t(1) << 31, 1}),
                       "im2col: stride (1, 1) or kernel (2147483648, 1) is out of range (negative or >= 2^31)", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, w, TD(), 1, {negative, 0}),
                       "conv2d: padding (18446744073709551615, 0) is out of range (negative or >= 2^31)", tg::ValueError);
}

TEST_CASE("shape ops on scalars") {
  const TD s(Arr(2.0));
  CHECK_THROWS_WITH_AS(tg::slice(s, 0, 0, 1), "slice: cannot slice a scalar (shape ())", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::concat<double>({s, s}, 0), "concat: cannot concatenate scalars (shape ())", tg::ShapeError);
}

TEST_CASE("readers and writers: IDX files of the wrong rank, unwritable IDX paths") {
  TempDir dir;
  const std::string images = dir / "train-images-idx3-ubyte.gz", labels = dir / "train-labels-idx1-ubyte.gz";
  // Images of rank 2 where Fashion-MNIST's have rank 3.
  tg::write_idx(images, tg::IdxArray{{2, 4}, std::vector<std::uint8_t>(8, 1)});
  tg::write_idx(labels, tg::IdxArray{{2}, {0, 1}});
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true),
                       ("load_fashion_mnist: '" + images + "' has 2 dimensions, images need 3 (count, rows, cols)").c_str(),
                       tg::IoError);
  // Labels of rank 2 where they have rank 1.
  tg::write_idx(images, tg::IdxArray{{2, 28, 28}, std::vector<std::uint8_t>(2 * 28 * 28, 1)});
  tg::write_idx(labels, tg::IdxArray{{2, 1}, {0, 1}});
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true),
                       ("load_fashion_mnist: '" + labels + "' has 2 dimensions, labels need 1").c_str(), tg::IoError);
  for (const std::string name : {"x.idx", "x.idx.gz"}) {
    const std::string path = dir / ("no/such/dir/" + name);
    CHECK_THROWS_WITH_AS(tg::write_idx(path, tg::IdxArray{{1}, {0}}), ("write_idx: '" + path + "' could not be written").c_str(),
                         tg::IoError);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "no"));
}
