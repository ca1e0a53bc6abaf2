// The Fashion-MNIST program's pieces: flags, and a short run on a generated tiny data set.
#include "helpers.hpp"

#include <filesystem>
#include <sstream>

#include "trainer.hpp"

namespace fs = std::filesystem;

namespace {
// 28x28 images whose class k is a bright horizontal bar at row 2 + 2k, with noise.
void write_tiny_fashion(const fs::path& dir, const std::string& split, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60), cls(0, 9);
  tg::IdxArray images, labels;
  images.dims = {n, 28, 28};
  labels.dims = {n};
  for (std::size_t i = 0; i < n; ++i) {
    const int c = cls(rng);
    labels.data.push_back(std::uint8_t(c));
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) images.data.push_back(std::uint8_t(noise(rng) + (y == 2 + 2 * c ? 190 : 0)));
  }
  tg::write_idx((dir / (split + "-images-idx3-ubyte.gz")).string(), images);
  tg::write_idx((dir / (split + "-labels-idx1-ubyte.gz")).string(), labels);
}

// A tiny data set in dir/data: `train` and `test` images, drawn from `seed`.
void write_tiny_data_set(const fs::path& dir, std::size_t train, std::size_t test, unsigned seed) {
  fs::create_directories(dir / "data");
  write_tiny_fashion(dir / "data", "train", train, seed);
  write_tiny_fashion(dir / "data", "t10k", test, seed + 1);
}

std::optional<fashion::Config> parse(std::vector<const char*> args, int& code, std::string& err) {
  args.insert(args.begin(), "fashion_mnist");
  std::ostringstream out, errs;
  auto c = fashion::parse_config(int(args.size()), args.data(), code, out, errs);
  err = errs.str() + out.str();
  return c;
}
}  // namespace

TEST_CASE("fashion_mnist flags: defaults, values, help, errors") {
  int code = -1;
  std::string text;
  auto c = parse({}, code, text);
  REQUIRE(c);
  CHECK(c->epochs == 1);
  CHECK(c->batch_size == 64);
  CHECK(c->lr == 0.05);
  CHECK(c->momentum == 0.9);
  CHECK(c->data == "/usr/share/datasets/fashion-mnist");
  c = parse({"--epochs", "3", "--batch-size", "32", "--lr", "0.1", "--seed", "7", "--limit", "1000", "--out", "x"}, code, text);
  REQUIRE(c);
  CHECK(c->epochs == 3);
  CHECK(c->limit == 1000);
  CHECK(c->out == "x");
  CHECK_FALSE(parse({"--help"}, code, text));
  CHECK(code == 0);
  for (const char* flag : {"--epochs", "--batch-size", "--lr", "--momentum", "--seed", "--threads", "--data", "--out", "--limit"})
    CHECK(text.find(flag) != std::string::npos);
  for (std::vector<const char*> bad : {std::vector<const char*>{"--epochs", "abc"}, {"--epochs", "0"}, {"--lr", "-1"},
                                       {"--momentum", "1.5"}, {"--threads", "0"}, {"--no-such-flag"}}) {
    CAPTURE(bad[0]);
    CHECK_FALSE(parse(bad, code, text));
    CHECK(code == 2);
    CHECK(text.find("fashion_mnist: ") == 0);
    CHECK(text.find("--help") != std::string::npos);
  }
  for (std::vector<const char*> bad : {std::vector<const char*>{"--seed", "-1"}, {"--limit", "-1"}, {"--check-images", "-2"},
                                       {"--check-images", "1000"}, {"--lr", "inf"}}) {
    CAPTURE(bad[0]);
    CAPTURE(bad[1]);
    CHECK_FALSE(parse(bad, code, text));
    CHECK(code == 2);
  }
  CHECK_FALSE(parse({"--epochs", "x"}, code, text));
  CHECK(text.find("--epochs: must be a positive number, got 'x'") != std::string::npos);
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitizer = true;
#else
constexpr bool address_sanitizer = false;
#endif

TEST_CASE("a short LeNet-5 run on a generated tiny data set: checked gradients, falling loss, outputs") {
  const TempDir tmp("tapegrad-fashion-");
  const fs::path& dir = tmp.path;
  write_tiny_data_set(dir, 256, 100, 1);
  fashion::Config c;
  c.data = (dir / "data").string();
  c.out = (dir / "out").string();
  c.epochs = 3;
  c.batch_size = 32;
  c.check_images = 2;
  std::ostringstream log;
  const fashion::RunResult r = fashion::run(c, log);
  INFO(log.str());
  CHECK(r.gradcheck_ok);
  CHECK(log.str().find("gradient check (float64, 2 images") != std::string::npos);
  REQUIRE(r.epochs.size() == 3);
  CHECK(r.epochs[2].train_loss < 0.5 * r.first_loss);
  CHECK(r.epochs[2].test_accuracy > 0.8);
  // Memory is stable across epochs: the same tensors alive after each, no tape entry left, and
  // the peak resident set reached in the first epoch not outgrown by later ones.
  CHECK(r.epochs[2].live_tensors == r.epochs[0].live_tensors);
  CHECK(r.epochs[2].tape_entries == 0);
  if (!address_sanitizer)   // ASan holds freed memory in quarantine (256 MB): RSS says nothing there
    CHECK(r.epochs[2].peak_rss_mb <= r.epochs[0].peak_rss_mb * 1.05 + 2.0);
  MESSAGE("peak RSS after epochs 1-3: ", r.epochs[0].peak_rss_mb, ", ", r.epochs[1].peak_rss_mb, ", ",
          r.epochs[2].peak_rss_mb, " MB");
  for (const char* file : {"metrics.csv", "graph.dot", "parameters/0.weight.npy", "parameters/11.bias.npy"})
    CHECK(fs::exists(dir / "out" / file));
  // The saved parameters load back.
  CHECK(tg::load_npy<float>((dir / "out" / "parameters" / "7.weight.npy").string()).shape()[0] == 400);
}

TEST_CASE("fashion_mnist trains to the same bits on 1, 2 and 3 threads") {
  const TempDir tmp("tapegrad-fashion-threads-");
  const fs::path& dir = tmp.path;
  write_tiny_data_set(dir, 160, 40, 3);
  std::vector<std::vector<xt::xarray<float>>> runs;
  std::vector<double> losses;
  for (const int threads : {1, 2, 3}) {
    fashion::Config c;
    c.data = (dir / "data").string();
    c.out = (dir / ("out" + std::to_string(threads))).string();
    c.batch_size = 32;
    c.check_images = 0;
    c.threads = threads;
    std::ostringstream log;
    const fashion::RunResult r = fashion::run(c, log);
    REQUIRE(r.epochs.size() == 1);
    losses.push_back(r.epochs[0].train_loss);
    std::vector<xt::xarray<float>> parameters;
    for (const char* name : {"0.weight", "0.bias", "3.weight", "7.weight", "9.weight", "11.bias"})
      parameters.push_back(tg::load_npy<float>((fs::path(c.out) / "parameters" / (std::string(name) + ".npy")).string()));
    runs.push_back(parameters);
  }
  for (std::size_t t = 1; t < runs.size(); ++t) {
    CAPTURE(t + 1);
    CHECK(losses[t] == losses[0]);
    for (std::size_t i = 0; i < runs[0].size(); ++i) {
      CAPTURE(i);
      CHECK(std::equal(runs[t][i].begin(), runs[t][i].end(), runs[0][i].begin(), runs[0][i].end()));
    }
  }
}
