#include "helpers.hpp"

namespace {
using LinearD = tg::Linear<double>;

// A module's parameters checked against finite differences, through loss(module(x)).
void check_module(tg::Module<double>& m, const TD& x) {
  const auto report = tg::gradcheck_parameters([&] { return tg::sum(tg::tanh(m(x))); }, m.named_parameters(), strict());
  INFO(report.str());
  CHECK(report.ok());
  CHECK(report.comparisons.size() == m.named_parameters().size());
  // And the input gradient through the module.
  check_gradients([&](const Inputs& in) { return tg::sum(tg::tanh(m(in[0]))); }, {TD(x.value(), true)});
}
}  // namespace

TEST_CASE("Linear follows the notes: c_j = sum_i w_ij l_i + b_j, w of shape (in, out)") {
  tg::ManualSeed seed(1);
  LinearD fc(3, 2);
  CHECK(fc.weight().shape() == tg::Shape{3, 2});
  CHECK(fc.bias().shape() == tg::Shape{2});
  const Arr l = random_array({4, 3}, 700);
  const Arr c = fc(TD(l)).value();
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t j = 0; j < 2; ++j) {
      double expected = fc.bias().value()(j);
      for (std::size_t i = 0; i < 3; ++i) expected += fc.weight().value()(i, j) * l(n, i);
      CHECK(c(n, j) == doctest::Approx(expected).epsilon(1e-13));
    }
  LinearD no_bias(3, 2, false);
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK_FALSE(no_bias.bias().defined());
  check_module(fc, TD(l));
  check_module(no_bias, TD(l));
}

TEST_CASE("initialisation: seeded, reproducible, within the Kaiming and Xavier bounds") {
  Arr first, again, other;
  {
    tg::ManualSeed seed(42);
    first = LinearD(50, 20).weight().value();
  }
  {
    tg::ManualSeed seed(42);
    again = LinearD(50, 20).weight().value();
  }
  {
    tg::ManualSeed seed(43);
    other = LinearD(50, 20).weight().value();
  }
  CHECK(all_close(first, again, 0.0));
  CHECK_FALSE(all_close(first, other, 1e-3));
  const double kaiming = std::sqrt(6.0 / 50), xavier = std::sqrt(6.0 / 70);
  CHECK(xt::amax(xt::abs(first))() <= kaiming);
  CHECK(xt::amax(xt::abs(first))() > 0.9 * kaiming);   // 1000 draws fill the interval
  const Arr xw = LinearD(50, 20, true, tg::Init::xavier_uniform).weight().value();
  CHECK(xt::amax(xt::abs(xw))() <= xavier);
  CHECK(xt::amax(xt::abs(xw))() > 0.9 * xavier);
  // Two layers drawn in a row differ (the generator advances).
  tg::ManualSeed seed(7);
  CHECK_FALSE(all_close(LinearD(4, 4).weight().value(), LinearD(4, 4).weight().value(), 1e-6));
}

TEST_CASE("shuffled_indices: a permutation, the same for the same seed") {
  const auto a = tg::shuffled_indices(1000, 5), b = tg::shuffled_indices(1000, 5), c = tg::shuffled_indices(1000, 6);
  CHECK(a == b);
  CHECK(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
  CHECK(tg::shuffled_indices(0, 1).empty());
}

TEST_CASE("Conv2d with a per-channel bias and with the notes' untied bias") {
  tg::ManualSeed seed(2);
  tg::Conv2d<double> conv(2, 3, 3, 1, 1);
  CHECK(conv.weight().shape() == tg::Shape{3, 2, 3, 3});
  CHECK(conv.bias().shape() == tg::Shape{3});
  const TD x(random_array({2, 2, 5, 5}, 701));
  const Arr w = conv.weight().value(), b = conv.bias().value();
  CHECK(all_close(conv(x).value(), naive_conv(x.value(), w, &b, 1, 1), 1e-12));
  check_module(conv, x);

  tg::Conv2dOptions untied;
  untied.bias = tg::ConvBias::untied;
  untied.output_size = {3, 3};
  tg::Conv2d<double> notes(2, 2, 3, untied);   // 5x5 input, 3x3 kernel, no padding: 3x3 output
  CHECK(notes.bias().shape() == tg::Shape{2, 3, 3});
  const Arr y = notes(x).value();
  const Arr expected = naive_conv(x.value(), notes.weight().value(), nullptr, 1, 0) + notes.bias().value();
  CHECK(all_close(y, expected, 1e-12));
  check_module(notes, x);
  CHECK_THROWS_WITH_AS(notes(TD(random_array({1, 2, 6, 6}, 702))),
                       doctest::Contains("Conv2d: untied bias of shape (2, 3, 3) does not fit the output shape (1, 2, 4, 4)"),
                       tg::ShapeError);
  tg::Conv2dOptions none;
  none.bias = tg::ConvBias::none;
  none.stride = {2, 1};
  tg::Conv2d<double> unbiased(2, 2, 3, none);
  CHECK(unbiased.named_parameters().size() == 1);
  CHECK(all_close(unbiased(x).value(), naive_conv(x.value(), unbiased.weight().value(), nullptr, {2, 1}, 0), 1e-12));
  check_module(unbiased, x);
}

TEST_CASE("pooling, activation, softmax and flatten layers in a Sequential model") {
  tg::ManualSeed seed(3);
  tg::Sequential<double> model(tg::Conv2d<double>(1, 2, 3, 1, 1), tg::Tanh<double>(), tg::AvgPool2d<double>(2),
                               tg::Conv2d<double>(2, 3, 2), tg::Sigmoid<double>(), tg::MaxPool2d<double>(2, 1),
                               tg::Flatten<double>(), tg::Linear<double>(3, 4), tg::Softmax<double>(1));
  const TD x(random_array({2, 1, 6, 6}, 703));
  const TD y = model(x);
  CHECK(y.shape() == tg::Shape{2, 4});
  CHECK(all_close(xt::sum(y.value(), {1}), Arr{1.0, 1.0}, 1e-12));
  check_module(model, x);
  // ReLU on inputs away from its kink.
  tg::Sequential<double> relu_model(tg::Linear<double>(3, 5), tg::ReLU<double>(), tg::Linear<double>(5, 2));
  check_module(relu_model, TD(random_array({4, 3}, 704)));
}

TEST_CASE("Module: named parameters in a stable order, modes, zero_grad") {
  tg::ManualSeed seed(4);
  tg::Sequential<float> model(tg::Conv2d<float>(1, 2, 3), tg::ReLU<float>(), tg::Flatten<float>(),
                              tg::Linear<float>(8, 3, false));
  std::vector<std::string> names;
  for (const auto& [name, p] : model.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight"});
  CHECK(model.parameters().size() == 3);
  CHECK(model.parameters()[2].shape() == tg::Shape{8, 3});
  CHECK(model.is_training());
  model.eval();
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(model[0].is_training());
  model.train();
  CHECK(model[3].is_training());
  tg::Tape tape;
  tg::sum(model(TF(xt::xarray<float>(xt::ones<float>({2, 1, 4, 4}))))).backward();
  CHECK(model.parameters()[0].has_grad());
  model.zero_grad();
  for (const auto& p : model.parameters()) CHECK_FALSE(p.has_grad());
}

TEST_CASE("a layer shared by two paths is one parameter set, stepped once") {
  tg::ManualSeed seed(6);
  auto shared = std::make_shared<tg::Linear<double>>(2, 2, false);
  tg::Sequential<double> model;
  model.add(shared).add(std::make_shared<tg::Tanh<double>>()).add(shared);
  const auto named = model.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "0.weight");
  const Arr w0 = shared->weight().value();
  tg::SGD<double> opt({shared->weight(), shared->weight()}, 0.1);
  CHECK(opt.parameters().size() == 1);
  shared->weight().impl()->grad = std::make_unique<Arr>(xt::ones<double>({2, 2}));
  opt.step();
  CHECK(all_close(shared->weight().value(), Arr(w0 - 0.1), 1e-15));
}

TEST_CASE("layers: bad input is a clear error") {
  tg::ManualSeed seed(5);
  LinearD fc(4, 2);
  CHECK_THROWS_WITH_AS(fc(TD(Arr::from_shape({3, 5}))),
                       "Linear: input shape (3, 5) does not end in in_features=4 (weight shape (4, 2))", tg::ShapeError);
  tg::Conv2d<double> conv(3, 2, 3);
  CHECK_THROWS_WITH_AS(conv(TD(Arr::from_shape({1, 2, 5, 5}))),
                       doctest::Contains("conv2d: input shape (1, 2, 5, 5) and weight shape (2, 3, 3, 3) disagree on channels"),
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(conv(TD(Arr::from_shape({3, 5, 5}))), doctest::Contains("conv2d: input must be 4-D"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(conv(TD(Arr::from_shape({1, 3, 2, 2}))),
                       doctest::Contains("conv2d: kernel (3, 3) is larger than the padded input (2, 2)"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::Conv2d<double>(3, 2, 3, 0), "Conv2d: stride must be >= 1, got (0, 0)", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::conv2d(TD(Arr::from_shape({1, 3, 5, 5})), conv.weight(), TD(), {1, 0}),
                       "conv2d: stride must be >= 1, got (1, 0)", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::conv2d(TD(Arr::from_shape({1, 3, 5, 5})), conv.weight(), TD(Arr::from_shape({3}))),
                       doctest::Contains("conv2d: bias shape (3) does not match the 2 output channels"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::AvgPool2d<double>(3)(TD(Arr::from_shape({1, 1, 2, 2}))),
                       doctest::Contains("avg_pool2d: kernel (3, 3) is larger than the padded input (2, 2)"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::max_pool2d(TD(Arr::from_shape({1, 1, 4, 4})), 2, 0),
                       "max_pool2d: stride must be >= 1, got (0, 0)", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(TD(Arr::from_shape({2, 3})), {0, 3}),
                       "cross_entropy: label 3 at position 1 is out of range for 3 classes", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(TD(Arr::from_shape({2, 3})), {0}),
                       doctest::Contains("cross_entropy: got 1 labels for logits of shape (2, 3)"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::mse_loss(TD(Arr::from_shape({2, 3})), TD(Arr::from_shape({3, 2}))),
                       "mse_loss: pred shape (2, 3) and target shape (3, 2) differ", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::softmax(TD(Arr::from_shape({2, 3})), 2), doctest::Contains("softmax: axis 2 is out of range"),
                       tg::ValueError);
}

namespace {
struct OwnModule : tg::Module<double> {
  tg::Tensor<double> w = register_parameter("w", Arr{1.0, 2.0});
  tg::Tensor<double> forward(const tg::Tensor<double>& x) override { return x * w; }
};
}  // namespace

TEST_CASE("clone: a deep copy of every built-in module, the same outputs, storage of its own, the generator untouched") {
  tg::ManualSeed seed(21);
  tg::Sequential<double> net(tg::Conv2d<double>(1, 2, 3, 1, 1), tg::BatchNorm2d<double>(2), tg::ReLU<double>(),
                             tg::MaxPool2d<double>(2), tg::Flatten<double>(), tg::Dropout<double>(0.3),
                             tg::Linear<double>(8, 5), tg::LayerNorm<double>({5}), tg::Tanh<double>(), tg::Softmax<double>(1));
  const TD x(random_array({3, 1, 4, 4}, 3800));
  net(x);   // a training step moves the batch norm's running statistics
  net.eval();
  const Arr next_draw = [] {
    tg::Generator copy = tg::default_generator();
    return Arr{copy.uniform(0, 1)};
  }();
  const std::shared_ptr<tg::Module<double>> copy = net.clone();
  CHECK(tg::default_generator().uniform(0, 1) == next_draw(0));   // cloning drew nothing from it
  CHECK_FALSE(copy->is_training());
  CHECK(all_close((*copy)(x).value(), net(x).value(), 0.0));
  const auto a = net.state_dict(), b = copy->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second == b[i].second);
  // Its own storage: changing the copy leaves the original as it was.
  copy->parameters()[0].mutable_value() *= 2.0;
  CHECK(net.parameters()[0].value() == a[0].second);
  CHECK(copy->parameters()[0].impl() != net.parameters()[0].impl());

  tg::ManualSeed again(22);
  tg::LSTM<double> lstm(3, 4, 2, false);
  const std::shared_ptr<tg::Module<double>> lstm_copy = lstm.clone();
  const TD seq(random_array({2, 2, 3}, 3801));
  CHECK(all_close(dynamic_cast<tg::LSTM<double>&>(*lstm_copy)(seq).output.value(), lstm(seq).output.value(), 0.0));
  CHECK(lstm_copy->parameters().size() == 4);   // no biases, as the original
  tg::Embedding<double> embed(4, 2);
  CHECK(embed.clone()->state_dict()[0].second == embed.weight().value());
  // A module of one's own without remake says so, for clone() and to().
  OwnModule own;
  CHECK_THROWS_WITH_AS(own.clone(), doctest::Contains("OwnModule: does not override remake()"), tg::UsageError);
  CHECK_THROWS_WITH_AS(own.to<float>(), doctest::Contains("OwnModule: does not override remake()"), tg::UsageError);
  // One that remakes itself in double only (a class of one element type) says what it lacks.
  struct DoubleOnly : tg::Module<double> {
    tg::Remade remake(bool) const override { return tg::Remade{nullptr, std::make_shared<DoubleOnly>()}; }
    std::string name() const override { return "DoubleOnly"; }
  };
  DoubleOnly only;
  CHECK(only.clone() != nullptr);
  CHECK_THROWS_WITH_AS(only.to<float>(), "DoubleOnly: remake(false) gave no module of float (a module of one element type only converts to it)",
                       tg::UsageError);
}

TEST_CASE("Module::to<U>(): the same model in the other element type, every built-in layer, mode kept") {
  tg::ManualSeed seed(24);
  tg::Conv2dOptions padded;
  padded.padding = 1;
  tg::Sequential<float> f(tg::Conv2d<float>(1, 4, 3, padded),
                          tg::BatchNorm2d<float>(4), tg::ReLU<float>(), tg::MaxPool2d<float>(2, 2, 1),
                          tg::AvgPool2d<float>(2), tg::Flatten<float>(), tg::Dropout<float>(0.3f), tg::Linear<float>(16, 6),
                          tg::LayerNorm<float>({6}), tg::Sigmoid<float>(), tg::Linear<float>(6, 5), tg::Tanh<float>(),
                          tg::Softmax<float>(1));
  const xt::xarray<float> x = xt::cast<float>(random_array({3, 1, 6, 6}, 3820));
  f(tg::Tensor<float>(x));   // moves the batch norm's running statistics
  f.eval();
  const std::shared_ptr<tg::Module<double>> d = f.to<double>();
  CHECK_FALSE(d->is_training());
  CHECK(d->name() == "Sequential");
  REQUIRE(d->state_dict().size() == f.state_dict().size());
  for (std::size_t i = 0; i < f.state_dict().size(); ++i) {
    CAPTURE(f.state_dict()[i].first);
    CHECK(d->state_dict()[i].first == f.state_dict()[i].first);
    CHECK(d->state_dict()[i].second == xt::cast<double>(f.state_dict()[i].second));   // exact: float in double
  }
  // The same numbers to float's precision (an independent run: float's own rounding differs).
  const Arr in_double = (*d)(TD(Arr(xt::cast<double>(x)))).value();
  const Arr in_float = xt::cast<double>(f(tg::Tensor<float>(x)).value());
  CHECK(all_close(in_double, in_float, 1e-5));
  CHECK_FALSE(all_close(in_double, in_float, 1e-12));
  // And back: float(double(v)) is v, bit for bit.
  const std::shared_ptr<tg::Module<float>> back = d->to<float>();
  for (std::size_t i = 0; i < f.state_dict().size(); ++i) CHECK(back->state_dict()[i].second == f.state_dict()[i].second);
  // The recurrent layers and the embedding.
  tg::LSTM<float> lstm(3, 4, 2);
  tg::GRU<float> gru(3, 2);
  tg::LSTMCell<float> cell(3, 2);
  tg::GRUCell<float> gru_cell(3, 2, false);
  tg::Embedding<float> embed(5, 3);
  for (const tg::Module<float>* m : std::vector<const tg::Module<float>*>{&lstm, &gru, &cell, &gru_cell, &embed}) {
    const auto converted = m->to<double>();
    CAPTURE(m->name());
    CHECK(converted->name() == m->name());
    REQUIRE(converted->state_dict().size() == m->state_dict().size());
    for (std::size_t i = 0; i < m->state_dict().size(); ++i)
      CHECK(converted->state_dict()[i].second == xt::cast<double>(m->state_dict()[i].second));
  }
  const TD seq(random_array({2, 2, 3}, 3821));
  const auto lstm_d = lstm.to<double>();
  const Arr lstm_double = dynamic_cast<tg::LSTM<double>&>(*lstm_d)(seq).output.value();
  const Arr lstm_float = xt::cast<double>(lstm(tg::Tensor<float>(xt::xarray<float>(xt::cast<float>(seq.value())))).output.value());
  CHECK(all_close(lstm_double, lstm_float, 1e-6));
}

TEST_CASE("cast_state: a float model's state runs in a double model of the same construction") {
  tg::ManualSeed seed(23);
  tg::Sequential<float> f(tg::Linear<float>(3, 4), tg::Tanh<float>(), tg::Linear<float>(4, 2));
  tg::Sequential<double> d(tg::Linear<double>(3, 4), tg::Tanh<double>(), tg::Linear<double>(4, 2));
  d.load_state_dict(tg::cast_state<double>(f.state_dict()));
  const Arr x = random_array({5, 3}, 3810);
  const Arr in_double = d(TD(x)).value();
  const Arr in_float = xt::cast<double>(f(tg::Tensor<float>(xt::xarray<float>(xt::cast<float>(x)))).value());
  CHECK(all_close(in_double, in_float, 1e-6));
  CHECK_FALSE(all_close(in_double, in_float, 1e-12));   // float's rounding: not the same model run twice
  // And back: float(double(v)) is v.
  tg::Sequential<float> back(tg::Linear<float>(3, 4), tg::Tanh<float>(), tg::Linear<float>(4, 2));
  back.load_state_dict(tg::cast_state<float>(d.state_dict()));
  CHECK(back.state_dict()[0].second == f.state_dict()[0].second);
}
