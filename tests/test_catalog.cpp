// The bad-input catalog: every public op and layer against every class of bad input that applies,
// in one table. Each case must throw the named tapegrad exception type, with a message that
// starts with the op and names the values at fault, and must leave nothing changed behind it.
#include "helpers.hpp"

#include <fstream>
#include <functional>
#include <map>
#include <optional>

namespace {

enum class Kind { shape, value, usage, io };

struct Case {
  std::string op;                  // the message starts with "op: "
  std::string bad;                 // the class of bad input
  Kind kind;
  std::vector<std::string> names;  // what the message must contain: shapes, values, names
  std::function<void()> run;
  bool taped = true;               // run while a tape records (the tape must not grow)
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::shape: return "ShapeError";
    case Kind::value: return "ValueError";
    case Kind::usage: return "UsageError";
    case Kind::io: return "IoError";
  }
  return "?";
}

// "" if the case threw as it should, else what went wrong.
std::string verdict(const Case& c) {
  auto check_message = [&](const std::string& what) -> std::string {
    if (what.rfind(c.op + ": ", 0) != 0) return "message does not start with '" + c.op + ": ': " + what;
    for (const auto& name : c.names)
      if (what.find(name) == std::string::npos) return "message lacks '" + name + "': " + what;
    return "";
  };
  try {
    c.run();
  } catch (const tg::ShapeError& e) {
    return c.kind == Kind::shape ? check_message(e.what()) : std::string("threw ShapeError: ") + e.what();
  } catch (const tg::ValueError& e) {
    return c.kind == Kind::value ? check_message(e.what()) : std::string("threw ValueError: ") + e.what();
  } catch (const tg::UsageError& e) {
    return c.kind == Kind::usage ? check_message(e.what()) : std::string("threw UsageError: ") + e.what();
  } catch (const tg::IoError& e) {
    return c.kind == Kind::io ? check_message(e.what()) : std::string("threw IoError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("threw a non-tapegrad exception: ") + e.what();
  }
  return "did not throw";
}

TD zeros(const tg::Shape& s, bool requires_grad = false) { return TD(Arr(xt::zeros<double>(s)), requires_grad); }
TD ones(const tg::Shape& s, bool requires_grad = false) { return TD(Arr(xt::ones<double>(s)), requires_grad); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Everything a case could touch: the values and gradients of every model's parameters and
// buffers, the optimizer's state, every file under the directory, the tape's size.
struct Snapshot {
  std::map<std::string, Arr> tensors;   // by name; "<name>.grad" for a gradient
  std::map<std::string, Arr> optimizer;
  std::map<std::string, std::string> files;
  std::size_t tape_entries = 0;

  // What differs from `before`, or "".
  std::string changes_from(const Snapshot& before) const {
    std::string changed;
    const auto compare = [&](const std::map<std::string, Arr>& now, const std::map<std::string, Arr>& then,
                             const std::string& what) {
      for (const auto& [name, value] : now) {
        const auto it = then.find(name);
        if (it == then.end()) changed += " " + what + name + " (new)";
        else if (!(it->second == value)) changed += " " + what + name;
      }
      for (const auto& [name, value] : then)
        if (!now.count(name)) changed += " " + what + name + " (gone)";
    };
    compare(tensors, before.tensors, "");
    compare(optimizer, before.optimizer, "optimizer ");
    if (files != before.files) changed += " the files";
    if (tape_entries != before.tape_entries) changed += " the tape";
    return changed;
  }
};

std::map<std::string, std::string> files_under(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    files[entry.path().string()] = entry.is_regular_file() ? read_bytes(entry.path().string()) : "(directory)";
  return files;
}

}  // namespace

TEST_CASE("the bad-input catalog: every op and layer, every class of bad input, a typed error naming the fault") {
  TempDir dir;
  // Inputs that require grad: an op that recorded before it threw would grow the tape.
  const TD m23 = zeros({2, 3}, true), m45 = zeros({4, 5}, true), v4 = zeros({4}, true), scalar = TD(Arr(1.0), true);
  const TD empty = zeros({0, 3}, true), img = zeros({1, 3, 5, 5}, true), w = zeros({2, 3, 3, 3}, true);
  tg::ManualSeed seed(3);

  // Files: a good .npy and .npz, then broken copies.
  tg::save_npy(dir / "good.npy", Arr{1.0, 2.0, 3.0});
  const std::string npy = read_bytes(dir / "good.npy");
  write_bytes(dir / "truncated.npy", npy.substr(0, npy.size() - 5));
  write_bytes(dir / "badmagic.npy", "\x93NUMPX" + npy.substr(6));
  write_bytes(dir / "header.npy", npy.substr(0, 10) + std::string(npy.size() - 10, ' '));
  tg::Linear<double> model(3, 2);
  tg::save_parameters(model, dir / "model.npz");
  const std::string npz = read_bytes(dir / "model.npz");
  write_bytes(dir / "truncated.npz", npz.substr(0, npz.size() / 2));
  std::string flipped = npz;
  flipped[flipped.size() / 2] ^= 0x55;   // inside the stored data: CRC mismatch
  write_bytes(dir / "corrupt.npz", flipped);
  tg::Linear<float> model_f(3, 2);
  tg::save_parameters(model_f, dir / "float.npz");
  tg::Linear<double> wide(3, 4);
  tg::save_parameters(wide, dir / "wide.npz");
  tg::write_idx(dir / "good.idx", tg::IdxArray{{2, 3}, std::vector<std::uint8_t>(6, 7)});
  const std::string idx = read_bytes(dir / "good.idx");
  write_bytes(dir / "truncated.idx", idx.substr(0, idx.size() - 2));
  write_bytes(dir / "badtype.idx", std::string("\0\0\x0d\x02", 4) + idx.substr(4));
  write_bytes(dir / "long.idx", idx + "xx");

  const TD x_grad = ones({3}, true);
  // A two-layer model and its optimizer after one step (momentum buffers), and files of the same
  // model whose first entries fit and a later one does not.
  tg::Sequential<double> stack(tg::Linear<double>(3, 4), tg::Linear<double>(4, 2));
  tg::SGD<double> sgd(stack.parameters(), 0.1, 0.9);
  {
    tg::Tape tape;
    tg::sum(stack(ones({2, 3}))).backward();
    sgd.step();
  }
  {
    tg::Sequential<double> other(tg::Linear<double>(3, 4), tg::Linear<double>(4, 3));
    tg::save_parameters(other, dir / "later_mismatch.npz");
    tg::Adam<double> adam(stack.parameters(), 0.1);
    adam.step();   // the gradients of the step above: Adam's moments exist
    tg::save_checkpoint(dir / "adam.npz", stack, adam);
    tg::save_checkpoint(dir / "later_mismatch_checkpoint.npz", other, tg::SGD<double>(other.parameters(), 0.1, 0.9));
  }

  std::vector<Case> cases = {
      // Elementwise: broadcasting, undefined inputs.
      {"add", "broadcast", Kind::shape, {"(2, 3)", "(4)"}, [&] { m23 + v4; }},
      {"sub", "broadcast", Kind::shape, {"(2, 3)", "(4, 5)"}, [&] { m23 - m45; }},
      {"mul", "broadcast", Kind::shape, {"(2, 3)", "(4)"}, [&] { m23 * v4; }},
      {"mul_add", "broadcast", Kind::shape, {"mul_add", "a shape (2, 3), b shape (2, 3) and c shape (4)"},
       [&] { tg::mul_add(m23, m23, v4); }},
      {"div", "broadcast", Kind::shape, {"(0, 3)", "(4)"}, [&] { empty / v4; }},
      {"exp", "undefined tensor", Kind::usage, {"input 0", "undefined"}, [&] { tg::exp(TD()); }},
      {"add", "undefined tensor", Kind::usage, {"input 1", "undefined"}, [&] { tg::add(m23, TD()); }},
      // Reductions: axes.
      {"sum", "axis out of range", Kind::value, {"axis 2", "rank 2"}, [&] { tg::sum(m23, {2}); }},
      {"sum", "axis repeated", Kind::value, {"axis -1", "repeated"}, [&] { tg::sum(m23, {1, -1}); }},
      {"mean", "axis out of range", Kind::value, {"axis -3"}, [&] { tg::mean(m23, {-3}); }},
      {"max", "axis out of range", Kind::value, {"axis 5"}, [&] { tg::max(m23, 5); }},
      {"max", "axis out of range", Kind::value, {"axis 3"}, [&] { tg::max(m23, tg::Axes{0, 3}); }},
      {"max", "empty", Kind::value, {"size 0", "(0, 3)"}, [&] { tg::max(empty, 0); }},
      {"max", "empty", Kind::value, {"empty tensor of shape (0, 3)"}, [&] { tg::max(empty); }},
      {"sum_to", "shape", Kind::shape, {"(2, 3)", "(3, 3)"}, [&] { tg::sum_to(m23, {3, 3}); }},
      // Shape ops.
      {"reshape", "element count", Kind::shape, {"(2, 3)", "(4, 2)"}, [&] { tg::reshape(m23, {4, 2}); }},
      {"transpose", "rank", Kind::value, {"[0]", "(2, 3)"}, [&] { tg::transpose(m23, {0}); }},
      {"transpose", "not a permutation", Kind::value, {"[1, 1]"}, [&] { tg::transpose(m23, {1, 1}); }},
      {"broadcast_to", "shape", Kind::shape, {"(2, 3)", "(3, 3)"}, [&] { tg::broadcast_to(m23, {3, 3}); }},
      {"broadcast_to", "rank", Kind::shape, {"(2, 3)", "(3)"}, [&] { tg::broadcast_to(m23, {3}); }},
      {"slice", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::slice(m23, 2, 0, 1); }},
      {"slice", "step 0", Kind::value, {"step must be >= 1, got 0"}, [&] { tg::slice(m23, 0, 0, 1, 0); }},
      {"concat", "shape", Kind::shape, {"(2, 3, 1)", "(2, 3)"}, [&] { tg::concat<double>({m23, zeros({2, 3, 1})}, 0); }},
      {"concat", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::concat<double>({m23, m23}, 2); }},
      {"concat", "empty", Kind::value, {"needs at least one tensor"}, [&] { tg::concat<double>({}, 0); }},
      {"pad", "rank", Kind::shape, {"got 1 (before, after) pairs for a tensor of shape (2, 3)"}, [&] { tg::pad(m23, {{1, 1}}); }},
      // Index ops.
      {"index_select", "index out of range", Kind::value, {"index 3", "position 1", "axis 0 of size 2", "(2, 3)"},
       [&] { tg::index_select(m23, 0, {1, 3}); }},
      {"index_select", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::index_select(m23, 2, {0}); }},
      {"take_along_axis", "index out of range", Kind::value, {"index -4", "(0, 0)", "axis 1 of size 3"},
       [&] { tg::take_along_axis(m23, tg::Index(xt::zeros<std::int64_t>({2, 1}) - 4), 1); }},
      {"take_along_axis", "rank", Kind::shape, {"(3)", "(2, 3)"}, [&] { tg::take_along_axis(m23, tg::Index{0, 1, 2}, 1); }},
      {"take_along_axis", "broadcast", Kind::shape, {"(4, 1)", "(2, 3)", "axis 0: 4 != 2"},
       [&] { tg::take_along_axis(m23, tg::Index(xt::zeros<std::int64_t>({4, 1})), 1); }},
      {"gather", "index larger than x", Kind::shape, {"(3, 1)", "(2, 3)", "axis 0: 3 > 2"},
       [&] { tg::gather(m23, 1, tg::Index(xt::zeros<std::int64_t>({3, 1}))); }},
      {"where", "broadcast", Kind::shape, {"cond shape (4)", "a shape (2, 3)", "b shape (2, 3)"},
       [&] { tg::where(xt::xarray<bool>(xt::ones<bool>({4})), m23, m23); }},
      {"argmax", "empty axis", Kind::value, {"axis 0", "(0, 3)"}, [&] { tg::argmax(empty, 0); }},
      {"argmin", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::argmin(m23, 2); }},
      {"argmax", "undefined tensor", Kind::usage, {"input 0 is an undefined tensor"}, [&] { tg::argmax(TD()); }},
      {"argmin", "undefined tensor", Kind::usage, {"input 0 is an undefined tensor"}, [&] { tg::argmin(TD(), 0); }},
      {"cumsum", "axis out of range", Kind::value, {"axis -3"}, [&] { tg::cumsum(m23, -3); }},
      {"stack", "shape", Kind::shape, {"input 1", "(3)", "(2, 3)"}, [&] { tg::stack<double>({m23, zeros({3})}); }},
      {"split", "sizes", Kind::value, {"[2, 2]", "(2, 3)"}, [&] { tg::split(m23, {2, 2}, 1); }},
      {"chunk", "zero chunks", Kind::value, {"chunks must be >= 1, got 0"}, [&] { tg::chunk(m23, 0); }},
      // Products.
      {"matmul", "shape", Kind::shape, {"(2, 3)", "(4, 5)", "lhs.shape[1]=3 != rhs.shape[0]=4"}, [&] { tg::matmul(m23, m45); }},
      {"matmul", "rank 0", Kind::shape, {"lhs shape ()"}, [&] { tg::matmul(scalar, m45); }},
      {"matmul", "batch broadcast", Kind::shape, {"(2)", "(3)"},
       [&] { tg::matmul(zeros({2, 2, 3}), zeros({3, 3, 4})); }},
      // Convolution and pooling.
      {"conv2d", "rank", Kind::shape, {"4-D", "(3, 5, 5)"}, [&] { tg::conv2d(zeros({3, 5, 5}), w, TD()); }},
      {"conv2d", "channels", Kind::shape, {"(1, 2, 5, 5)", "(2, 3, 3, 3)"}, [&] { tg::conv2d(zeros({1, 2, 5, 5}), w, TD()); }},
      {"conv2d", "stride 0", Kind::value, {"stride must be >= 1, got (1, 0)"}, [&] { tg::conv2d(img, w, TD(), {1, 0}); }},
      {"conv2d", "kernel larger than padded input", Kind::shape, {"(3, 3)", "(2, 2)"},
       [&] { tg::conv2d(zeros({1, 3, 2, 2}), w, TD()); }},
      {"conv2d", "bias shape", Kind::shape, {"bias shape (3)", "2 output channels"}, [&] { tg::conv2d(img, w, zeros({3})); }},
      {"conv2d", "kernel 0", Kind::value, {"kernel must be >= 1, got (0, 3)"}, [&] { tg::conv2d(img, zeros({2, 3, 0, 3}), TD()); }},
      {"conv2d", "undefined input", Kind::usage, {"input 1", "undefined"}, [&] { tg::conv2d(img, TD(), TD()); }},
      {"concat", "undefined input", Kind::usage, {"input 1", "undefined"}, [&] { tg::concat<double>({m23, TD()}, 0); }},
      {"matmul", "undefined input", Kind::usage, {"input 0", "undefined"}, [&] { tg::matmul(TD(), m45); }},
      {"sum", "undefined input", Kind::usage, {"input 0", "undefined"}, [&] { tg::sum(TD()); }},
      {"max_pool2d", "empty window grid", Kind::shape, {"kernel (2, 2)", "(0, 5)"}, [&] { tg::max_pool2d(zeros({1, 3, 0, 5}), 2); }},
      {"im2col", "kernel 0", Kind::value, {"kernel must be >= 1, got (0, 2)"}, [&] { tg::im2col(img, {0, 2}); }},
      {"col2im", "shape", Kind::shape, {"(1, 27, 9)", "input shape (1, 3, 6, 6)", "expected (1, 27, 16)"}, [&] { tg::col2im(zeros({1, 27, 9}), {1, 3, 6, 6}, 3); }},
      {"avg_pool2d", "rank", Kind::shape, {"4-D", "got shape (2, 3)"}, [&] { tg::avg_pool2d(m23, 2); }},
      {"avg_pool2d", "kernel 0", Kind::value, {"kernel must be >= 1, got (0, 0)"}, [&] { tg::avg_pool2d(img, 0); }},
      {"avg_pool2d", "stride 0", Kind::value, {"stride must be >= 1, got (0, 0)"}, [&] { tg::avg_pool2d(img, 2, 0); }},
      {"avg_pool2d", "kernel larger than padded input", Kind::shape, {"(7, 7)", "(5, 5)"}, [&] { tg::avg_pool2d(img, 7); }},
      {"max_pool2d", "rank", Kind::shape, {"4-D", "got shape (4)"}, [&] { tg::max_pool2d(v4, 2); }},
      {"max_pool2d", "stride 0", Kind::value, {"stride must be >= 1, got (0, 0)"}, [&] { tg::max_pool2d(img, 2, 0); }},
      {"max_pool2d", "kernel larger than input", Kind::shape, {"(6, 6)", "(5, 5)"}, [&] { tg::max_pool2d(img, 6); }},
      // nn.
      {"softmax", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::softmax(m23, 2); }},
      {"log_softmax", "axis out of range", Kind::value, {"axis -3"}, [&] { tg::log_softmax(m23, -3); }},
      {"logsumexp", "axis out of range", Kind::value, {"axis 2"}, [&] { tg::logsumexp(m23, 2); }},
      {"logsumexp", "scalar", Kind::shape, {"needs at least one axis, got shape ()"}, [&] { tg::logsumexp(TD(Arr(1.0)), 0); }},
      {"mse_loss", "shape", Kind::shape, {"(2, 3)", "(4)"}, [&] { tg::mse_loss(m23, v4); }},
      {"cross_entropy", "label out of range", Kind::value, {"label 3", "position 1", "3 classes"},
       [&] { tg::cross_entropy(m23, {0, 3}); }},
      {"cross_entropy", "label count", Kind::shape, {"1 labels", "(2, 3)"}, [&] { tg::cross_entropy(m23, {0}); }},
      {"cross_entropy", "rank", Kind::shape, {"(4)"}, [&] { tg::cross_entropy(v4, {0}); }},
      {"cross_entropy", "negative label", Kind::value, {"label -1", "position 0", "3 classes"},
       [&] { tg::cross_entropy(m23, std::vector<int>{-1, 0}); }},
      {"cross_entropy", "class weights", Kind::value, {"2 values", "3 classes"},
       [&] { tg::CrossEntropyOptions o; o.weight = {1.0, 2.0}; tg::cross_entropy(m23, {0, 1}, o); }},
      {"cross_entropy", "label smoothing", Kind::value, {"label_smoothing must be in [0, 1), got 1"},
       [&] { tg::CrossEntropyOptions o; o.label_smoothing = 1.0; tg::cross_entropy(m23, {0, 1}, o); }},
      {"nll_loss", "label smoothing", Kind::value, {"label_smoothing is cross_entropy's", "got 0.1"},
       [&] { tg::CrossEntropyOptions o; o.label_smoothing = 0.1; tg::nll_loss(m23, {0, 1}, o); }},
      {"nll_loss", "label out of range", Kind::value, {"label 5", "position 0"}, [&] { tg::nll_loss(m23, {5, 0}); }},
      {"huber_loss", "delta", Kind::value, {"delta must be finite and > 0, got 0"}, [&] { tg::huber_loss(m23, m23, 0.0); }},
      {"huber_loss", "shape", Kind::shape, {"(2, 3)", "(4)"}, [&] { tg::huber_loss(m23, v4); }},
      {"binary_cross_entropy_with_logits", "shape", Kind::shape, {"(2, 3)", "(4)"},
       [&] { tg::binary_cross_entropy_with_logits(m23, v4); }},
      // Layers.
      {"Linear", "features", Kind::shape, {"(3, 5)", "in_features=3"}, [&] { model(zeros({3, 5})); }},
      {"Linear", "rank 0", Kind::shape, {"input shape ()", "in_features=3"}, [&] { model(scalar); }},
      {"Conv2d", "stride 0", Kind::value, {"stride must be >= 1, got (0, 0)"}, [&] { tg::Conv2d<double>(3, 2, 3, 0); }},
      {"Conv2d", "kernel 0", Kind::value, {"kernel=(0, 0)"}, [&] { tg::Conv2d<double>(3, 2, 0); }},
      {"Conv2d", "zero channels", Kind::value, {"in_channels=0 out_channels=2"}, [&] { tg::Conv2d<double>(0, 2, 3); }},
      {"conv2d", "channels", Kind::shape, {"(1, 1, 5, 5)"}, [&] { tg::Conv2d<double>(3, 2, 3)(zeros({1, 1, 5, 5})); }},
      {"Linear", "zero features", Kind::value, {"in_features and out_features must be >= 1, got 0 and 2"}, [&] { tg::Linear<double>(0, 2); }},
      {"avg_pool2d", "kernel larger than input", Kind::shape, {"(9, 9)"}, [&] { tg::AvgPool2d<double>(9)(img); }},
      {"max_pool2d", "rank", Kind::shape, {"(2, 3)"}, [&] { tg::MaxPool2d<double>(2)(m23); }},
      {"softmax", "axis out of range", Kind::value, {"axis 4"}, [&] { tg::Softmax<double>(4)(m23); }},
      {"SGD", "learning rate", Kind::value, {"lr must be finite and >= 0, got -1"}, [&] { tg::SGD<double>(model.parameters(), -1.0); }},
      {"SGD", "momentum", Kind::value, {"momentum must be in [0, 1), got 1.5"}, [&] { tg::SGD<double>(model.parameters(), 0.1, 1.5); }},
      {"Adam", "beta", Kind::value, {"beta1 must be in [0, 1), got 1"}, [&] { tg::Adam<double>(model.parameters(), 0.1, 1.0); }},
      {"AdamW", "weight decay", Kind::value, {"weight_decay must be finite and >= 0, got -1"}, [&] { tg::AdamW<double>(model.parameters(), 0.1, 0.9, 0.999, 1e-8, -1.0); }},
      {"SGD.load_state_dict", "another optimizer's state", Kind::value, {"entry 'param0.exp_avg' is not part of this SGD's state"},
       [&] {
         auto state = sgd.state_dict();
         state.emplace_back("param0.exp_avg", Arr{1.0});
         sgd.load_state_dict(state);
       }},
      {"CosineLR", "warm-up longer than the schedule", Kind::value, {"warmup_steps <= total_steps, got 4 and 5"},
       [&] { tg::SGD<double> o(model.parameters(), 0.1); tg::CosineLR<double>(o, 4, 0.0, 5); }},
      {"clip_grad_norm", "max_norm", Kind::value, {"max_norm must be > 0, got -1"}, [&] { tg::clip_grad_norm(model.parameters(), -1.0); }},
      {"Embedding", "token out of range", Kind::value, {"token 7", "(1)", "5 embeddings"},
       [&] { tg::Embedding<double>(5, 2)(tg::Index{0, 7}); }},
      {"LSTM", "input shape", Kind::shape, {"(2, 3)", "input_size=4"}, [&] { tg::LSTM<double>(4, 3)(m23); }},
      {"GRUCell", "state shape", Kind::shape, {"(2, 3)", "(2, 4)"}, [&] { tg::GRUCell<double>(3, 4)(m23, m23); }},
      {"LSTM", "one-tensor forward", Kind::usage, {"no forward of one tensor"},
       [&] { tg::LSTM<double> l(3, 3); static_cast<tg::Module<double>&>(l)(m23); }},
      {"LayerNorm", "shape", Kind::shape, {"(2, 3)", "(4)"}, [&] { tg::LayerNorm<double>({4})(m23); }},
      {"BatchNorm2d", "channels", Kind::shape, {"(1, 3, 5, 5)", "(N, 2, H, W)"}, [&] { tg::BatchNorm2d<double>(2)(img); }},
      {"Dropout", "p", Kind::value, {"p must be in [0, 1], got -0.5"}, [&] { tg::Dropout<double>(-0.5); }},
      {"load_state_dict", "shape", Kind::value, {"'weight'", "(2)", "(3, 2)"},
       [&] { tg::Linear<double>(3, 2).load_state_dict({{"weight", Arr{1.0, 2.0}}, {"bias", Arr{1.0, 2.0}}}); }},
      {"uniform", "bounds", Kind::value, {"got lo 1 and hi 0"}, [&] { tg::uniform<double>({2}, 1.0, 0.0); }},
      {"bernoulli", "p", Kind::value, {"p must be in [0, 1], got 2"}, [&] { tg::bernoulli<double>({2}, 2.0); }},
      // Autodiff misuse.
      {"backward", "no tape", Kind::usage, {"not recorded on a tape"}, [&] { tg::sum(x_grad * 2.0).backward(); }, false},
      {"backward", "non-scalar without seed", Kind::usage, {"(3)", "seed"},
       [&] {
         tg::Tape tape;
         (x_grad * 2.0).backward();
       }, false},
      {"backward", "seed shape", Kind::shape, {"seed of shape (2)", "output's shape (3)"},
       [&] {
         tg::Tape tape;
         (x_grad * 2.0).backward(Arr{1.0, 1.0});
       }, false},
      {"backward", "backward twice after release", Kind::usage, {"released", "retain_graph"},
       [&] {
         const TD x = ones({3}, true);
         tg::Tape tape;
         const TD y = tg::sum(tg::exp(x));
         y.backward(false);
         y.backward();
       }, false},
      {"exp", "tensors from two tapes", Kind::usage, {"another tape"},
       [&] {
         tg::Tape outer;
         const TD y = tg::exp(x_grad);
         tg::Tape inner;
         tg::exp(y);
       }, false},
      {"backward", "tape gone", Kind::usage, {"no longer alive"},
       [&] {
         TD y;
         {
           tg::Tape tape;
           y = tg::sum(tg::exp(x_grad));
         }
         y.backward();
       }, false},
      {"backward", "saved value modified in place", Kind::usage, {"'mul'", "modified in place"},
       [&] {
         TD c(Arr{1.0, 2.0, 3.0});
         tg::Tape tape;
         const TD y = tg::sum(x_grad * c);
         c.assign(Arr{0.0, 0.0, 0.0});
         y.backward();
       }, false},
      {"grad", "no gradient yet", Kind::usage, {"tensor of shape (3) has no gradient"}, [&] { ones({3}, true).grad(); }, false},
      {"item", "many elements", Kind::shape, {"got shape (2, 3)"}, [&] { m23.item(); }, false},
      {"assign", "shape", Kind::shape, {"new value of shape (2)", "shape (3)"}, [&] { TD(Arr{1.0, 2.0, 3.0}).assign(Arr{1.0, 2.0}); }, false},
      {"set_requires_grad", "not a leaf", Kind::usage, {"only a leaf's flag can change"},
       [&] {
         tg::Tape tape;
         tg::exp(x_grad).set_requires_grad(false);
       }, false},
      // Files.
      {"load_npy", "missing file", Kind::io, {"missing.npy' cannot be opened"}, [&] { tg::load_npy<double>(dir / "missing.npy"); }},
      {"load_npy", "truncated", Kind::io, {"truncated.npy' is truncated", "needs 24 data bytes, the file holds 19"}, [&] { tg::load_npy<double>(dir / "truncated.npy"); }},
      {"load_npy", "bad magic", Kind::io, {"badmagic.npy'", "magic string"}, [&] { tg::load_npy<double>(dir / "badmagic.npy"); }},
      {"load_npy", "corrupted header", Kind::io, {"header.npy'", "lacks 'descr'"}, [&] { tg::load_npy<double>(dir / "header.npy"); }},
      {"load_npy", "dtype", Kind::io, {"good.npy", "<f8", "float32"}, [&] { tg::load_npy<float>(dir / "good.npy"); }},
      {"save_npy", "unwritable path", Kind::io, {"no/such/dir/x.npy' cannot be written"}, [&] { tg::save_npy(dir / "no/such/dir/x.npy", Arr{1.0}); }},
      {"load_parameters", "truncated archive", Kind::io, {"truncated.npz'", "no end-of-central-directory record"},
       [&] { tg::load_parameters(model, dir / "truncated.npz"); }},
      {"load_parameters", "corrupted archive", Kind::io, {"corrupt.npz' entry 'bias.npy' is corrupted"}, [&] { tg::load_parameters(model, dir / "corrupt.npz"); }},
      {"load_parameters", "dtype", Kind::io, {"float.npz", "'<f4'", "float64"}, [&] { tg::load_parameters(model, dir / "float.npz"); }},
      {"load_parameters", "shape", Kind::io, {"wide.npz", "(3, 4)", "(3, 2)"}, [&] { tg::load_parameters(model, dir / "wide.npz"); }},
      {"load_parameters", "a later entry does not fit", Kind::io, {"later_mismatch.npz' entry '1.weight' has shape (4, 3)", "(4, 2)"},
       [&] { tg::load_parameters(stack, dir / "later_mismatch.npz"); }},
      {"load_checkpoint", "another optimizer's state", Kind::io, {"adam.npz'", "exp_avg"},
       [&] { tg::load_checkpoint(dir / "adam.npz", stack, sgd); }},
      {"load_checkpoint", "a later entry does not fit", Kind::io, {"later_mismatch_checkpoint.npz'", "'1.weight'", "(4, 3)", "(4, 2)"},
       [&] { tg::load_checkpoint(dir / "later_mismatch_checkpoint.npz", stack, sgd); }},
      {"save_parameters", "unwritable path", Kind::io, {"no/such/dir/m.npz' cannot be written"},
       [&] { tg::save_parameters(model, dir / "no/such/dir/m.npz"); }},
      {"read_idx", "missing file", Kind::io, {"missing.idx' cannot be opened"}, [&] { tg::read_idx(dir / "missing.idx"); }},
      {"read_idx", "truncated", Kind::io, {"truncated.idx' is truncated", "6 bytes of data, the file holds 4"}, [&] { tg::read_idx(dir / "truncated.idx"); }},
      {"read_idx", "element type", Kind::io, {"badtype.idx", "0x0d"}, [&] { tg::read_idx(dir / "badtype.idx"); }},
      {"read_idx", "trailing bytes", Kind::io, {"long.idx' has trailing bytes"}, [&] { tg::read_idx(dir / "long.idx"); }},
      {"load_fashion_mnist", "missing files", Kind::io, {"nowhere/train-images-idx3-ubyte.gz' cannot be opened", "dataset-fashion-mnist"},
       [&] { tg::load_fashion_mnist(dir / "nowhere", true); }},
  };

  // Every unary op names itself when handed an undefined tensor.
  const std::vector<std::pair<std::string, std::function<TD(const TD&)>>> unary = {
      {"neg", [](const TD& t) { return tg::neg(t); }},         {"exp", [](const TD& t) { return tg::exp(t); }},
      {"log", [](const TD& t) { return tg::log(t); }},         {"sqrt", [](const TD& t) { return tg::sqrt(t); }},
      {"pow", [](const TD& t) { return tg::pow(t, 2.0); }},    {"abs", [](const TD& t) { return tg::abs(t); }},
      {"tanh", [](const TD& t) { return tg::tanh(t); }},       {"sigmoid", [](const TD& t) { return tg::sigmoid(t); }},
      {"relu", [](const TD& t) { return tg::relu(t); }},       {"add_scalar", [](const TD& t) { return t + 1.0; }},
      {"sin", [](const TD& t) { return tg::sin(t); }},         {"cos", [](const TD& t) { return tg::cos(t); }},
      {"log1p", [](const TD& t) { return tg::log1p(t); }},     {"expm1", [](const TD& t) { return tg::expm1(t); }},
      {"softplus", [](const TD& t) { return tg::softplus(t); }},
      {"leaky_relu", [](const TD& t) { return tg::leaky_relu(t); }},
      {"elu", [](const TD& t) { return tg::elu(t); }},         {"erf", [](const TD& t) { return tg::erf(t); }},
      {"gelu", [](const TD& t) { return tg::gelu(t); }},       {"clamp", [](const TD& t) { return tg::clamp(t, 0.0, 1.0); }},
      {"maximum", [&](const TD& t) { return tg::maximum(v4, t); }},
      {"minimum", [&](const TD& t) { return tg::minimum(t, v4); }},
      {"mul_add", [&](const TD& t) { return tg::mul_add(v4, v4, t); }},
      {"mul_scalar", [](const TD& t) { return t * 2.0; }},            {"rdiv_scalar", [](const TD& t) { return 1.0 / t; }},
      {"mean", [](const TD& t) { return tg::mean(t); }},       {"max", [](const TD& t) { return tg::max(t); }},
      {"reshape", [](const TD& t) { return tg::reshape(t, {1}); }},
      {"transpose", [](const TD& t) { return tg::transpose(t); }},
      {"broadcast_to", [](const TD& t) { return tg::broadcast_to(t, {2}); }},
      {"slice", [](const TD& t) { return tg::slice(t, 0, 0, 1); }},
      {"pad", [](const TD& t) { return tg::pad(t, {{1, 1}}); }},
      {"softmax", [](const TD& t) { return tg::softmax(t, 0); }},
      {"log_softmax", [](const TD& t) { return tg::log_softmax(t, 0); }},
      {"logsumexp", [](const TD& t) { return tg::logsumexp(t, 0); }},
      {"avg_pool2d", [](const TD& t) { return tg::avg_pool2d(t, 2); }},
      {"max_pool2d", [](const TD& t) { return tg::max_pool2d(t, 2); }},
      {"im2col", [](const TD& t) { return tg::im2col(t, 2); }},
      {"cross_entropy", [](const TD& t) { return tg::cross_entropy(t, {0}); }},
      {"mse_loss", [&](const TD& t) { return tg::mse_loss(v4, t); }},
      {"huber_loss", [&](const TD& t) { return tg::huber_loss(t, v4); }},
      {"binary_cross_entropy_with_logits", [&](const TD& t) { return tg::binary_cross_entropy_with_logits(v4, t); }},
      {"nll_loss", [](const TD& t) { return tg::nll_loss(t, {0}); }},
      {"LayerNorm", [](const TD& t) { return tg::LayerNorm<double>({2})(t); }},
      {"Dropout", [](const TD& t) { return tg::Dropout<double>(0.5)(t); }},
      {"index_select", [](const TD& t) { return tg::index_select(t, 0, {0}); }},
      {"take_along_axis", [](const TD& t) { return tg::take_along_axis(t, tg::Index{0}, 0); }},
      {"gather", [](const TD& t) { return tg::gather(t, 0, tg::Index{0}); }},
      {"where", [&](const TD& t) { return tg::where(xt::xarray<bool>{true}, v4, t); }},
      {"cumsum", [](const TD& t) { return tg::cumsum(t, 0); }},
      {"stack", [&](const TD& t) { return tg::stack<double>({v4, t}); }},
      {"split", [](const TD& t) { return tg::split(t, {1})[0]; }},
      {"chunk", [](const TD& t) { return tg::chunk(t, 1)[0]; }},
  };
  for (const auto& [name, op] : unary)
    cases.push_back({name, "undefined tensor", Kind::usage, {"is an undefined tensor (a default-constructed handle)"}, [op = op] { op(TD()); }});
  cases.push_back({"grad", "undefined xs", Kind::usage, {"xs[0]", "undefined"}, [&] {
                     tg::Tape tape;
                     tg::grad(tg::sum(tg::exp(x_grad)), {TD()});
                   }, false});
  cases.push_back({"grad", "non-scalar without seed", Kind::usage, {"(3)", "seed"}, [&] {
                     tg::Tape tape;
                     tg::grad(tg::exp(x_grad), {x_grad});
                   }, false});

  const auto snapshot = [&](const tg::Tape* tape) {
    Snapshot snap;
    const auto add_tensor = [&](const std::string& name, const auto& t) {
      snap.tensors[name] = xt::cast<double>(t.value());
      if (t.has_grad()) snap.tensors[name + ".grad"] = xt::cast<double>(t.grad());
    };
    const auto add = [&](const std::string& prefix, const auto& module) {
      for (const auto& [name, t] : module.named_parameters()) add_tensor(prefix + name, t);
      for (const auto& [name, t] : module.named_buffers()) add_tensor(prefix + name, t);
    };
    add("model.", model);
    add("model_f.", model_f);
    add("wide.", wide);
    add("stack.", stack);
    const std::vector<std::pair<std::string, TD>> inputs{{"m23", m23}, {"m45", m45}, {"v4", v4},   {"scalar", scalar},
                                                         {"empty", empty}, {"img", img}, {"w", w}, {"x_grad", x_grad}};
    for (const auto& [name, t] : inputs) add_tensor(name, t);
    for (const auto& [name, value] : sgd.state_dict()) snap.optimizer[name] = value;
    snap.files = files_under(dir.path.string());
    snap.tape_entries = tape ? tape->size() : 0;
    return snap;
  };
  std::size_t failures = 0;
  for (const Case& c : cases) {
    std::optional<tg::Tape> tape;
    if (c.taped) tape.emplace();
    const Snapshot before = snapshot(tape ? &*tape : nullptr);
    std::string problem = verdict(c);
    // Nothing was lost: no parameter, gradient, optimizer state or file changed, no file left by
    // a failed save, no entry recorded by an op that threw.
    const std::string changed = snapshot(tape ? &*tape : nullptr).changes_from(before);
    if (!changed.empty()) problem += (problem.empty() ? "" : "; ") + std::string("it changed") + changed;
    if (!problem.empty()) {
      ++failures;
      FAIL_CHECK(c.op << " / " << c.bad << " (expected " << std::string(kind_name(c.kind)) << "): " << problem);
    }
  }
  MESSAGE("bad-input catalog: ", cases.size(), " cases, ", failures, " failed");
  CHECK(readme_says("one table of " + std::to_string(cases.size()) + " cases"));
}
