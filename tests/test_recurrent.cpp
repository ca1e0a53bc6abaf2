// Recurrent layers, normalisation, embedding and dropout: values against PyTorch's on fixed
// inputs, gradients against finite differences, module state, bad input.
#include "helpers.hpp"

#include <xtensor/xview.hpp>

namespace {

// PyTorch 1.13's values (float64), printed by tests/torch_reference.py.
const Reference lstm_cell_h{{2, 4}, {-0.000211569554585277, 0.06617947239461244, -0.012955080899659268, -0.2957403279081829, -0.003614896992066793, 0.11626057223938063, -0.06483737138907636, -0.17939338848119976}};
const Reference lstm_cell_c{{2, 4}, {-0.0003565424393994314, 0.18753406371023176, -0.029776861935697257, -0.3453875055334903, -0.009411774715799126, 0.2497476803910874, -0.11062378150609542, -0.28625277334871607}};
const Reference gru_cell_h{{2, 4}, {-0.2421455404390221, 0.4587306723538059, -0.13525882882964257, -0.38276926398276223, -0.1607547173079557, -0.28174516920114806, -0.24845368042958496, -0.43741299553667734}};
const Reference lstm_output{{3, 2, 4}, {0.17774624999183528, 0.10103626564453216, 0.09513307838889837, -0.0813425061672541, 0.10315377108991057, 0.08565724448604921, -0.060639477302389715, -0.12407548289493223, 0.17403094477132217, 0.13138514335078155, 0.07533246762605818, -0.1190576865450811, 0.16210361576504526, 0.11894067718916848, -0.011766729543832045, -0.13543664005219547, 0.16665630896210618, 0.14348104637988313, 0.05602733805551744, -0.1364898997975815, 0.15825111357577631, 0.13903415198427366, 0.007130541781828221, -0.14196169599015193}};
const Reference lstm_h{{2, 2, 4}, {0.07235502216584386, -0.060329393176569504, -0.2960260463860783, -0.3020493040316462, -0.022295843358547993, -0.005475910570460369, -0.15626502792548963, -0.4172355588385429, 0.16665630896210618, 0.14348104637988313, 0.05602733805551744, -0.1364898997975815, 0.15825111357577631, 0.13903415198427366, 0.007130541781828221, -0.14196169599015193}};
const Reference lstm_c{{2, 2, 4}, {0.21156972525620363, -0.14443393052782108, -0.4902651892851896, -0.4888528618175748, -0.0358466510341082, -0.01971430479823255, -0.29238796752442137, -0.537644029634986, 0.5220835603244388, 0.5395527395148876, 0.12535910136446254, -0.295647717187502, 0.49258145032626804, 0.5247327039114711, 0.015650377488063364, -0.3147318549778758}};
const Reference lstm_zero_state_output{{3, 2, 4}, {0.13181154062510939, 0.08618540193508874, 0.032617833801489304, -0.07689403899376594, 0.13161122860855543, 0.08924265374621883, 0.029408962465862557, -0.07039868487933769, 0.16066927177563775, 0.1281854791155065, 0.039999439254182784, -0.11687604530960874, 0.16528829696912092, 0.12548337176422122, 0.04266753854919292, -0.11304549936081978, 0.16038424588407743, 0.14381485813121522, 0.03439647689714154, -0.13160713362857868, 0.16128807622605207, 0.14064871374659701, 0.03710729152387386, -0.12943488661216226}};
const Reference gru_output{{3, 2, 4}, {-0.2477195529169819, 0.01793375091282103, 0.26699226964186334, 0.2720416645825517, 0.049045657112990304, -0.07378968260308402, 0.37332908294643274, 0.005290506167176252, -0.30713763206973244, -0.013766453190756704, 0.29770737666187347, 0.2602540373758228, -0.12336018349899153, -0.12380242056223903, 0.4052607954190301, 0.09648584250931538, -0.34447002284694384, -0.041691818712457314, 0.3461387442167435, 0.18509073690936167, -0.25546578681023024, -0.11301580209095707, 0.39907024259768076, 0.1091624839710999}};
const Reference gru_h{{2, 2, 4}, {0.05617136243650084, 0.026716762493044513, -0.14028097979110582, -0.25619057794401445, -0.17026999626960074, 0.059071243963536246, -0.053602941607033605, -0.5292301070260941, -0.34447002284694384, -0.041691818712457314, 0.3461387442167435, 0.18509073690936167, -0.25546578681023024, -0.11301580209095707, 0.39907024259768076, 0.1091624839710999}};
const Reference layer_norm{{2, 3, 4}, {0.6771976606435184, 0.4252913016523737, -0.0769684241056103, -0.42058094675072394, -0.2840865397570185, 0.23955090036450863, 0.6957703735430146, 0.668883896757473, 0.1509637712708001, -0.4707652566718591, -0.7810422024871296, -0.6893344551658492, -0.4907919100514947, -0.5568491367075151, -0.4279290937640279, -0.42221606207054124, -0.5198886779819594, -0.4418513908268525, -0.058281483400161996, 0.3572224871388172, 0.35033976663019567, -0.21661262598398945, -0.9231018028705766, -1.1053234199152455}};
const Reference batch_norm_train{{3, 2, 2, 2}, {0.7114738061141411, 0.6765847803680469, 0.5766397690926793, 0.4251658607009164, 0.2057774714617027, -0.18573669208806023, -0.5373793331966689, -0.8015572700202758, -0.31116056197809083, -0.3105142939331291, -0.24132478240186697, -0.11295650318738928, -0.1787274595279461, 0.21302969727315102, 0.5906872164130604, 0.9031309243477074, 0.6778440925237267, 0.7114618349462164, 0.6753031461179368, 0.5742619349437184, 0.577637814017063, 0.19852074455656887, -0.19273224387949942, -0.5431668947570577}};
const Reference batch_norm_running_mean{{2}, {0.027506924415309775, -0.00823840206653991}};
const Reference batch_norm_running_var{{2}, {0.9726522515717195, 0.9234707330139695}};
const Reference batch_norm_eval{{3, 2, 2, 2}, {0.7526040791478229, 0.7237344416543774, 0.6410328991751868, 0.5156927175143355, 0.07182453055353392, -0.11715409986899097, -0.28688728170934064, -0.4144024250597753, -0.0935956316155685, -0.09306086391189508, -0.03580858834556688, 0.07041236816807957, -0.11377083741556258, 0.07532508258704469, 0.2576152967870663, 0.4084276798545822, 0.7247764852382294, 0.75259417336023, 0.7226739271972202, 0.6390653117051434, 0.2513165254469215, 0.06832180590253117, -0.12053075879905287, -0.2896808599729003}};

// Parameters from the formula, in registration order (as the script sets PyTorch's).
void set_parameters(tg::Module<double>& m) {
  std::size_t k = 0;
  for (TD p : m.parameters()) {
    p.assign(filled(p.shape(), param_at, k));
    k += p.size();
  }
}


}  // namespace

TEST_CASE("LSTMCell, GRUCell, LSTM and GRU: PyTorch's names and values on fixed inputs") {
  const TD x_cell(filled({2, 3}, input_at)), x_seq(filled({3, 2, 3}, input_at));
  tg::LSTMCell<double> cell(3, 4);
  set_parameters(cell);
  std::vector<std::string> names;
  for (const auto& [n, p] : cell.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"});
  CHECK(cell.named_parameters()[0].second.shape() == tg::Shape{16, 3});
  const auto next = cell(x_cell, {TD(filled({2, 4}, state_at)), TD(filled({2, 4}, state_at, 8))});
  CHECK(matches(next.h, lstm_cell_h));
  CHECK(matches(next.c, lstm_cell_c));

  tg::GRUCell<double> gru_cell(3, 4);
  set_parameters(gru_cell);
  CHECK(matches(gru_cell(x_cell, TD(filled({2, 4}, state_at))), gru_cell_h));

  tg::LSTM<double> lstm(3, 4, 2);
  set_parameters(lstm);
  names.clear();
  for (const auto& [n, p] : lstm.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1",
                                          "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"});
  const auto out = lstm(x_seq, {TD(filled({2, 2, 4}, state_at)), TD(filled({2, 2, 4}, state_at, 16))});
  CHECK(matches(out.output, lstm_output));
  CHECK(matches(out.state.h, lstm_h));
  CHECK(matches(out.state.c, lstm_c));
  CHECK(matches(lstm(x_seq).output, lstm_zero_state_output));

  tg::GRU<double> gru(3, 4, 2);
  set_parameters(gru);
  const auto g = gru(x_seq, TD(filled({2, 2, 4}, state_at)));
  CHECK(matches(g.output, gru_output));
  CHECK(matches(g.h, gru_h));

  // Float runs the same code: within float's precision.
  tg::LSTM<float> lstm_f(3, 4, 2);
  std::size_t k = 0;
  for (tg::Tensor<float> p : lstm_f.parameters()) {
    p.assign(xt::cast<float>(filled(p.shape(), param_at, k)));
    k += p.size();
  }
  const Arr out_f = xt::cast<double>(lstm_f(tg::Tensor<float>(xt::cast<float>(x_seq.value()))).output.value());
  CHECK(matches(TD(out_f), lstm_zero_state_output, 1e-6));
}

TEST_CASE("recurrent layers: gradients of inputs, states and parameters in both modes, bad shapes") {
  tg::ManualSeed seed(4);
  tg::LSTM<double> lstm(3, 4, 2);
  tg::GRU<double> gru(3, 2, 2);
  const Inputs in{leaf({3, 2, 3}, 3200), leaf({2, 2, 4}, 3201), leaf({2, 2, 4}, 3202)};
  check_gradients([&](const Inputs& x) {
    const auto out = lstm(x[0], {x[1], x[2]});
    return tg::sum(out.output * out.output) + tg::sum(out.state.c);
  }, in, forward_too());
  check_gradients([&](const Inputs& x) { return gru(x[0], x[1]).output; }, {in[0], leaf({2, 2, 2}, 3203)}, forward_too());
  const TD x(in[0].value());
  const auto report = tg::gradcheck_parameters([&] { return tg::sum(tg::tanh(lstm(x).output)); }, lstm.named_parameters(),
                                               forward_too());
  INFO(report.str());
  CHECK(report.ok());
  CHECK(tg::gradcheck_parameters([&] { return tg::sum(gru(x).h); }, gru.named_parameters(), strict()).ok());
  tg::LSTMCell<double> cell(3, 2, /*bias=*/false);
  CHECK(cell.parameters().size() == 2);
  check_gradients([&](const Inputs& v) { return cell(v[0], {v[1], v[2]}).h; },
                  {leaf({4, 3}, 3204), leaf({4, 2}, 3205), leaf({4, 2}, 3206)}, forward_too());

  CHECK_THROWS_WITH_AS(lstm(TD(Arr(xt::zeros<double>({3, 2, 5})))),
                       "LSTM: input shape (3, 2, 5) is not (time, batch, input_size=3)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(lstm(TD(Arr(xt::zeros<double>({0, 2, 3})))), "LSTM: the sequence is empty (input shape (0, 2, 3))",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(lstm(x, {TD(Arr(xt::zeros<double>({1, 2, 4}))), TD()}),
                       "LSTM: h shape (1, 2, 4) is not (num_layers, batch, hidden_size) = (2, 2, 4)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(cell(TD(Arr(xt::zeros<double>({4, 3}))), {TD(Arr(xt::zeros<double>({4, 3}))), TD()}),
                       "LSTMCell: h shape (4, 3) is not (batch, hidden_size) = (4, 2)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::GRU<double>(3, 0), "GRU: input_size, hidden_size and num_layers must be >= 1, got 3, 0 and 1",
                       tg::ValueError);
  // Its forward takes a sequence and a state: the one-tensor forward names it.
  tg::Module<double>& as_module = lstm;
  CHECK_THROWS_WITH_AS(as_module(x), doctest::Contains("LSTM: has no forward of one tensor"), tg::UsageError);
}

TEST_CASE("LayerNorm and BatchNorm2d: PyTorch's values, running statistics as buffers, train and eval") {
  tg::LayerNorm<double> norm({3, 4});
  set_parameters(norm);
  CHECK(matches(norm(TD(filled({2, 3, 4}, input_at))), layer_norm));
  check_gradients([&](const Inputs& x) { return norm(x[0] * x[0]); }, {leaf({2, 3, 4}, 3210)}, forward_too());
  CHECK(tg::gradcheck_parameters([&] { return tg::sum(tg::exp(norm(TD(filled({2, 3, 4}, input_at))))); },
                                 norm.named_parameters(), strict()).ok());
  CHECK_THROWS_WITH_AS(norm(TD(Arr(xt::zeros<double>({2, 4, 3})))),
                       "LayerNorm: input shape (2, 4, 3) does not end in normalized_shape (3, 4)", tg::ShapeError);

  tg::BatchNorm2d<double> bn(2);
  set_parameters(bn);
  std::vector<std::string> names;
  for (const auto& [n, b] : bn.named_buffers()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"running_mean", "running_var"});
  const TD img(filled({3, 2, 2, 2}, input_at));
  CHECK(matches(bn(img), batch_norm_train));
  CHECK(matches(bn.running_mean(), batch_norm_running_mean));
  CHECK(matches(bn.running_var(), batch_norm_running_var));
  bn.eval();
  CHECK(matches(bn(img), batch_norm_eval));
  // Evaluation reads the buffers and changes nothing.
  CHECK(matches(bn.running_mean(), batch_norm_running_mean));
  // The state holds parameters then buffers, and loads back.
  const tg::StateDict<double> state = bn.state_dict();
  REQUIRE(state.size() == 4);
  CHECK(state[2].first == "running_mean");
  tg::BatchNorm2d<double> copy(2);
  copy.load_state_dict(state);
  copy.eval();
  CHECK(all_close(copy(img).value(), bn(img).value(), 0.0));
  bn.train();
  check_gradients([&](const Inputs& x) { return bn(x[0] * 2.0); }, {leaf({3, 2, 2, 2}, 3211)}, forward_too());
  CHECK_THROWS_WITH_AS(bn(TD(Arr(xt::zeros<double>({1, 2, 1, 1})))),
                       "BatchNorm2d: training needs more than one value per channel, got input shape (1, 2, 1, 1)",
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(bn(TD(Arr(xt::zeros<double>({1, 3, 2, 2})))), "BatchNorm2d: input shape (1, 3, 2, 2) is not (N, 2, H, W)",
                       tg::ShapeError);
  // load_state_dict checks everything first: a bad entry changes nothing.
  tg::StateDict<double> bad = state;
  bad[3].second = Arr{1.0, 2.0, 3.0};
  const Arr before = copy.running_mean().value();
  tg::StateDict<double> shifted = bad;
  shifted[2].second = Arr{9.0, 9.0};
  CHECK_THROWS_WITH_AS(copy.load_state_dict(shifted),
                       "load_state_dict: entry 'running_var' has shape (3), BatchNorm2d's has shape (2)", tg::ValueError);
  CHECK(copy.running_mean().value() == before);
  bad.pop_back();
  CHECK_THROWS_WITH_AS(copy.load_state_dict(bad), "load_state_dict: no entry for 'running_var'", tg::ValueError);
  bad.emplace_back("running_var", Arr{1.0, 1.0});
  bad.emplace_back("extra", Arr{1.0});
  CHECK_THROWS_WITH_AS(copy.load_state_dict(bad), "load_state_dict: entry 'extra' matches no parameter or buffer of BatchNorm2d",
                       tg::ValueError);
}

TEST_CASE("Embedding: rows of its weight, gradients added over repeated tokens, bad tokens") {
  tg::ManualSeed seed(8);
  tg::Embedding<double> embed(5, 3);
  const tg::Index tokens{{1, 4, 1}, {0, 0, 2}};
  const TD y = embed(tokens);
  REQUIRE(y.shape() == tg::Shape{2, 3, 3});
  const Arr w = embed.weight().value();
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t d = 0; d < 3; ++d) CHECK(y.value()(i, j, d) == w(static_cast<std::size_t>(tokens(i, j)), d));
  {
    tg::Tape tape;
    tg::sum(embed(tokens)).backward();
    const Arr g = embed.weight().grad();
    CHECK(all_close(Arr(xt::view(g, xt::all(), 0)), Arr{2.0, 2.0, 1.0, 0.0, 1.0}, 0.0));
  }
  CHECK(tg::gradcheck_parameters([&] { return tg::sum(tg::exp(embed(tokens)) * embed(tg::Index{3, 1, 2})); },
                                 embed.named_parameters(), forward_too()).ok());
  CHECK_THROWS_WITH_AS(embed(tg::Index{0, 5}), "Embedding: token 5 at (1) of tokens shape (2) is out of range for 5 embeddings",
                       tg::ValueError);
  CHECK_THROWS_AS(embed(tg::Index{-1}), tg::ValueError);
}

TEST_CASE("Dropout: zeros with probability p and scales the rest in training, the identity in eval") {
  tg::Dropout<double> drop(0.25);
  const TD ones(Arr(xt::ones<double>({400, 500})));
  tg::ManualSeed seed(9);
  const Arr y = drop(ones).value();
  const double kept = xt::mean(xt::cast<double>(xt::not_equal(y, 0.0)))();
  CHECK(std::abs(kept - 0.75) < 5 * std::sqrt(0.75 * 0.25 / 2e5));
  CHECK(xt::all(xt::equal(y, 0.0) || xt::equal(y, 1.0 / 0.75)));
  // The same seed, the same mask; the gradient is the mask.
  {
    tg::ManualSeed again(9);
    tg::Tape tape;
    const TD x(Arr(xt::ones<double>({400, 500})), true);
    tg::sum(drop(x)).backward();
    CHECK(x.grad() == y);
  }
  drop.eval();
  CHECK(drop(ones).value() == ones.value());
  tg::Dropout<double> all(1.0);
  CHECK(xt::all(xt::equal(all(ones).value(), 0.0)));
  CHECK_THROWS_WITH_AS(tg::Dropout<double>(1.5), "Dropout: p must be in [0, 1], got 1.5", tg::ValueError);
}

TEST_CASE("lstm_recurrence: the steps of LSTMCell, gradients of every order in both modes, bad shapes") {
  tg::ManualSeed seed(9);
  const std::size_t steps = 5, batch = 3, hidden = 4;
  const Inputs in{leaf({steps, batch, 4 * hidden}, 3300), leaf({4 * hidden, hidden}, 3301), leaf({batch, hidden}, 3302),
                  leaf({batch, hidden}, 3303)};
  // The same recurrence step by step with elementwise ops and a product per step (an independent
  // composition: the cell's formulas written out).
  const auto naive = [&](const Inputs& x) {
    tg::Tensor<double> h = x[2], c = x[3];
    std::vector<tg::Tensor<double>> out;
    for (std::size_t t = 0; t < x[0].shape()[0]; ++t) {
      const auto at = static_cast<std::ptrdiff_t>(t);
      const TD z = tg::reshape(tg::slice(x[0], 0, at, at + 1), {batch, 4 * hidden}) + tg::matmul(h, x[1], false, true);
      const auto part = [&](int k) { return tg::slice(z, 1, k * 4, (k + 1) * 4); };
      c = tg::sigmoid(part(1)) * c + tg::sigmoid(part(0)) * tg::tanh(part(2));
      h = tg::sigmoid(part(3)) * tg::tanh(c);
      out.push_back(tg::concat(std::vector<TD>{h, c}, 1));
    }
    return tg::stack(out, 0);
  };
  const auto fused = [](const Inputs& x) { return tg::lstm_recurrence(x[0], x[1], x[2], x[3]); };
  const TD y = fused(in), want = naive(in);
  REQUIRE(y.shape() == tg::Shape{steps, batch, 2 * hidden});
  CHECK(xt::amax(xt::abs(y.value() - want.value()))() < 1e-14);
  // A loss over every part of the output (h and c at every step), weighted so that no two
  // elements weigh the same.
  const Arr weights = random_array({steps, batch, 2 * hidden}, 3304);
  const auto loss = [&](const Inputs& x) { return tg::sum(fused(x) * TD(weights)); };
  check_gradients(loss, in, forward_too());
  const tg::GradcheckReport second = tg::gradgradcheck(loss, in, strict());
  INFO(second.str());
  CHECK(second.ok());
  // The VJP's products against the naive composition's, element for element.
  tg::Tape tape;
  const auto grads = tg::grad(loss(in), in), naive_grads = tg::grad(tg::sum(naive(in) * TD(weights)), in);
  // The same from the VJP's recorded form (create_graph: what second derivatives go through),
  // which computes the gates again with ops where the first-order one reads what the forward kept.
  const auto recorded_grads = tg::grad(loss(in), in, /*create_graph=*/true);
  for (std::size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    CHECK(xt::amax(xt::abs(grads[i].value() - naive_grads[i].value()))() < 1e-13);
    CHECK(xt::amax(xt::abs(grads[i].value() - recorded_grads[i].value()))() < 1e-13);
  }
  // Forward over forward: the tangent of the tangent, against finite differences of the tangent.
  const tg::JvpResult<double> outer = tg::jvp<double>(
      [&](const Inputs& x) {
        return std::vector<TD>{tg::jvp<double>([&](const Inputs& v) { return std::vector<TD>{loss(v)}; }, x,
                                               {TD(random_array(x[0].shape(), 3305)), TD(), TD(), TD()})
                                   .tangents[0]};
      },
      in, {TD(), TD(random_array(in[1].shape(), 3306)), TD(), TD()});
  const double eps = 1e-6;
  const auto tangent_at = [&](double s) {
    Inputs moved = in;
    moved[1] = TD(Arr(in[1].value() + s * random_array(in[1].shape(), 3306)));
    return tg::jvp<double>([&](const Inputs& v) { return std::vector<TD>{loss(v)}; }, moved,
                           {TD(random_array(in[0].shape(), 3305)), TD(), TD(), TD()})
        .tangents[0]
        .item();
  };
  CHECK(outer.tangents[0].item() == doctest::Approx((tangent_at(eps) - tangent_at(-eps)) / (2 * eps)).epsilon(1e-6));

  // Forward over a gradient that records nothing (create_graph off): the VJP's tangents still
  // flow (its op form runs while forward mode is on), equal to forward over the recorded one.
  const Inputs directions{TD(random_array(in[0].shape(), 3307)), TD(random_array(in[1].shape(), 3308)),
                          TD(random_array(in[2].shape(), 3309)), TD(random_array(in[3].shape(), 3310))};
  const auto gradient_of = [&](bool create_graph) {
    return [&loss, create_graph](const Inputs& x) {
      for (TD xi : x) xi.set_requires_grad(true);
      tg::Tape inner;
      return tg::grad(loss(x), x, create_graph);
    };
  };
  const auto plain = tg::jvp<double>(gradient_of(false), in, directions);
  const auto recorded = tg::jvp<double>(gradient_of(true), in, directions);
  for (std::size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    CHECK(xt::amax(xt::abs(recorded.tangents[i].value()))() > 1e-3);
    CHECK(xt::amax(xt::abs(plain.tangents[i].value() - recorded.tangents[i].value()))() < 1e-12);
  }
  // One step; a constant weight (no gradient asked of it): the first-order path against the composition.
  for (const bool one_step : {true, false}) {
    CAPTURE(one_step);
    Inputs x = in;
    if (one_step) x[0] = leaf({1, batch, 4 * hidden}, 3311);
    else x[1] = TD(in[1].value());   // a constant
    tg::Tape scope;
    const TD w8(random_array({x[0].shape()[0], batch, 2 * hidden}, 3312));
    const Inputs wrt = one_step ? x : Inputs{x[0], x[2], x[3]};
    const auto got = tg::grad(tg::sum(fused(x) * w8), wrt), want = tg::grad(tg::sum(naive(x) * w8), wrt);
    for (std::size_t i = 0; i < wrt.size(); ++i) {
      CAPTURE(i);
      REQUIRE(got[i].defined());
      CHECK(xt::amax(xt::abs(got[i].value() - want[i].value()))() < 1e-13);
    }
  }

  CHECK_THROWS_WITH_AS(tg::lstm_recurrence(in[0], TD(Arr(xt::zeros<double>({15, 4}))), in[2], in[3]),
                       "lstm_recurrence: weight_hh shape (15, 4) is not (4 hidden, hidden) with hidden >= 1", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::lstm_recurrence(TD(Arr(xt::zeros<double>({0, 3, 16}))), in[1], in[2], in[3]),
                       "lstm_recurrence: projections shape (0, 3, 16) is neither (time >= 1, batch=3, 4 hidden=16) nor "
                       "(time * batch, 4 hidden) for h0 shape (3, 4) and weight_hh shape (16, 4)",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::lstm_recurrence(TD(Arr(xt::zeros<double>({14, 16}))), in[1], in[2], in[3]),
                       doctest::Contains("projections shape (14, 16) is neither"), tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::lstm_recurrence(in[0], in[1], in[2], TD(Arr(xt::zeros<double>({2, 4})))),
                       "lstm_recurrence: c0 shape (2, 4) differs from h0's (3, 4)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::lstm_recurrence(in[0], in[1], TD(Arr(xt::zeros<double>({3, 5}))), in[3]),
                       "lstm_recurrence: h0 shape (3, 5) is not (batch >= 1, hidden=4)", tg::ShapeError);
  // Rows (time * batch, 4 hidden) in, rows out: the same numbers and derivatives.
  const auto as_rows = [&](const Inputs& x) {
    return tg::lstm_recurrence(tg::reshape(x[0], {steps * batch, 4 * hidden}), x[1], x[2], x[3]);
  };
  CHECK(as_rows(in).shape() == tg::Shape{steps * batch, 2 * hidden});
  CHECK(xt::amax(xt::abs(as_rows(in).value() - xt::reshape_view(y.value(), {steps * batch, 2 * hidden})))() == 0);
  const auto rows_loss = [&](const Inputs& x) {
    return tg::sum(as_rows(x) * TD(Arr(xt::reshape_view(weights, {steps * batch, 2 * hidden}))));
  };
  check_gradients(rows_loss, in, forward_too());
  CHECK(tg::gradgradcheck(rows_loss, in, strict()).ok());
}
