// The Fashion-MNIST program's pieces: flags, and a short run on a generated tiny data set.
#include "helpers.hpp"

#include <filesystem>
#include <sstream>

#include "training_runs.hpp"
#include "trainer.hpp"

namespace fs = std::filesystem;

namespace {
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

namespace {
// A file of the run's outputs, or "" where it is missing.
std::string output(const fs::path& dir, const std::string& name) { return read_bytes((dir / name).string()); }

// The outputs two runs of the same numbers share bit for bit (training_runs.hpp).
void check_same_outputs(const fs::path& a, const fs::path& b) {
  CHECK(output_differences(a, b) == std::vector<std::string>{});
}
}  // namespace

TEST_CASE("fashion_mnist stopped mid-epoch or at an epoch's end and resumed writes the outputs of an uninterrupted run, bit for bit") {
  const TempDir tmp("tapegrad-fashion-resume-");
  const fs::path& dir = tmp.path;
  write_tiny_data_set(dir, 200, 40, 5);
  fashion::Config c;
  c.data = (dir / "data").string();
  c.out = (dir / "straight").string();
  c.epochs = 3;
  c.batch_size = 16;   // 13 steps per epoch, the last of 8 images
  c.check_images = 0;
  c.checkpoint_every = 5;
  std::ostringstream log;
  const fashion::RunResult straight = fashion::run(c, log);
  REQUIRE(straight.steps == 39);
  // The metrics hold each epoch's test row, and the checkpoint is at the end of the run.
  CHECK(without_columns(output(c.out, "metrics.csv"), {2, 3, 4, 5, 6}) == "split,epoch\ntrain,1\ntest,1\ntest,2\ntest,3\n");
  // Stopped after step 3 (no checkpoint yet: --resume starts afresh), 11 and 13 (the first epoch's
  // last step, before its evaluation: from step 10's checkpoint), 14 (from the first epoch's end)
  // and 32 (from step 5 of epoch 3), then resumed.
  for (const std::size_t stop : {3, 11, 13, 14, 32}) {
    CAPTURE(stop);
    fashion::Config s = c;
    s.out = (dir / ("stopped" + std::to_string(stop))).string();
    s.stop_after = stop;
    CHECK(fashion::run(s, log).steps == stop);
    s.stop_after = 0;
    s.resume = true;
    const fashion::RunResult resumed = fashion::run(s, log);
    const std::size_t epochs_done = (stop - 1) / 13 * 13, saved = epochs_done + (stop - epochs_done) / 5 * 5;
    CHECK(resumed.steps == 39 - saved);
    CHECK(resumed.first_epoch == saved / 13 + 1);
    CHECK(resumed.first_step == saved % 13);
    CHECK(resumed.first_loss == straight.first_loss);
    REQUIRE(resumed.epochs.size() == 3 - saved / 13);
    CHECK(resumed.epochs.back().test_loss == straight.epochs.back().test_loss);
    CHECK(resumed.epochs.back().train_loss == straight.epochs.back().train_loss);
    check_same_outputs(c.out, s.out);
  }
  // A checkpoint of another run's settings: an error naming the setting, and nothing written.
  fashion::Config other = c;
  other.resume = true;
  other.lr = 0.01;
  CHECK_THROWS_WITH_AS(fashion::run(other, log), doctest::Contains("--resume: the checkpoint's run had lr 0.050000000000000003, this one has 0.01"),
                       tg::ValueError);
  other = c;
  other.resume = true;
  other.resume_from = (dir / "nothing.npz").string();
  CHECK_THROWS_WITH_AS(fashion::run(other, log), doctest::Contains("nothing.npz' cannot be opened"), tg::IoError);
  check_same_outputs(c.out, (dir / "stopped32").string());
  // A checkpoint resumed into another directory: fresh row files there, the same parameters.
  other = c;
  other.resume = true;
  other.resume_from = (dir / "stopped14" / "checkpoint.npz").string();
  other.out = (dir / "elsewhere").string();
  fashion::Config stop = c;
  stop.out = (dir / "stopped14").string();
  stop.stop_after = 14;
  fashion::run(stop, log);   // again: its checkpoint is at the first epoch's end
  CHECK(fashion::run(other, log).first_epoch == 2);
  for (const auto& entry : fs::directory_iterator(fs::path(c.out) / "parameters")) {
    const std::string name = "parameters/" + entry.path().filename().string();
    CAPTURE(name);
    CHECK(output(c.out, name) == output(other.out, name));
  }
  CHECK(output(other.out, "metrics.csv").rfind("split,epoch,step,loss,accuracy,time,peak_rss_mb\ntest,2,", 0) == 0);
  // A run started without --resume replaces an earlier run's checkpoint: a --resume after it
  // killed before its own first checkpoint starts afresh, not from the earlier run.
  fashion::Config fresh = c;
  fresh.stop_after = 3;
  CHECK(fs::exists(fs::path(c.out) / "checkpoint.npz"));
  fashion::run(fresh, log);
  CHECK_FALSE(fs::exists(fs::path(c.out) / "checkpoint.npz"));
}

TEST_CASE("fashion_mnist --resume and --checkpoint-every flags") {
  int code = -1;
  std::string text;
  auto c = parse({"--resume"}, code, text);
  REQUIRE(c);
  CHECK(c->resume);
  CHECK(c->resume_from.empty());
  c = parse({"--resume", "runs/a/checkpoint.npz", "--checkpoint-every", "100"}, code, text);
  REQUIRE(c);
  CHECK(c->resume);
  CHECK(c->resume_from == "runs/a/checkpoint.npz");
  CHECK(c->checkpoint_every == 100);
  c = parse({"--epochs", "2"}, code, text);
  REQUIRE(c);
  CHECK_FALSE(c->resume);
  CHECK_FALSE(parse({"--checkpoint-every", "-1"}, code, text));
  CHECK(code == 2);
}
