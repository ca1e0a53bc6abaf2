// The char_lstm example's trainer on a small text: it learns, it resumes bitwise from its
// checkpoints, bad data is a clear error.
#include "helpers.hpp"
#include "training_runs.hpp"
#include "trainer.hpp"

#include <sstream>

namespace {

// A small text with structure to learn, written to `dir`.
std::string write_text(const TempDir& dir) {
  std::string text;
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog ", "ran.\n"};
  std::uint64_t s = 7;
  while (text.size() < 6000) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    text += words[(s >> 33) % 9];
  }
  const std::string path = dir / "text.txt";
  std::ofstream(path) << text;
  return path;
}

char_lstm::Config small(const std::string& data, const std::string& out) {
  char_lstm::Config c;
  c.data = data;
  c.out = out;
  c.epochs = 2;
  c.max_steps = 0;
  c.seq_len = 16;
  c.batch_size = 8;
  c.embed = 8;
  c.hidden = 24;
  c.layers = 2;
  c.lr = 1e-2;
  c.val_batches = 0;
  c.sample = 40;
  return c;
}

void check_same(const tg::StateDict<float>& a, const tg::StateDict<float>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second == b[i].second);   // bit for bit
  }
}

}  // namespace

TEST_CASE("char_lstm learns a small text, writes its outputs, and samples the same text for the same seed") {
  TempDir dir;
  const std::string data = write_text(dir);
  std::ostringstream log;
  const char_lstm::RunResult r = char_lstm::run(small(data, dir / "a"), log);
  INFO(log.str());
  REQUIRE(r.epochs.size() == 2);
  // Far below a uniform guess over the vocabulary, and better after the second epoch.
  CHECK(r.epochs[1].val_loss < 0.5 * std::log(double(r.vocab)));
  CHECK(r.epochs[1].val_loss < r.epochs[0].val_loss);
  CHECK(r.sample.size() == 41);
  CHECK(std::filesystem::exists(dir / "a/metrics.csv"));
  CHECK(std::filesystem::exists(dir / "a/checkpoint.npz"));
  CHECK(read_bytes(dir / "a/metrics.csv").find("val,2,") != std::string::npos);
  std::ostringstream again_log;
  CHECK(char_lstm::run(small(data, dir / "b"), again_log).sample == r.sample);
}

TEST_CASE("char_lstm resumed from a checkpoint, mid-epoch or at an epoch's end, ends bitwise where an uninterrupted run does") {
  TempDir dir;
  const std::string data = write_text(dir);
  std::ostringstream log;
  const char_lstm::RunResult straight = char_lstm::run(small(data, dir / "straight"), log);
  const std::size_t per_epoch = straight.steps / 2;
  for (const std::size_t stop : {per_epoch / 2 + 1, per_epoch + 2}) {
    CAPTURE(stop);
    const std::string out = dir / ("stopped" + std::to_string(stop));
    char_lstm::Config c = small(data, out);
    c.checkpoint_every = 3;
    c.stop_after = stop;   // killed after this step; the last checkpoint is a few steps back
    const char_lstm::RunResult stopped = char_lstm::run(c, log);
    CHECK(stopped.epochs.size() == (stop > per_epoch ? 1u : 0u));
    c.stop_after = 0;
    c.resume = true;
    const char_lstm::RunResult resumed = char_lstm::run(c, log);
    // It went on from the last checkpoint (every 3 steps and at each epoch's end), not from scratch.
    const std::size_t epoch_done = stop > per_epoch ? per_epoch : 0, saved = epoch_done + (stop - epoch_done) / 3 * 3;
    CHECK(resumed.steps == 2 * per_epoch - saved);
    check_same(resumed.parameters, straight.parameters);
    CHECK(resumed.sample == straight.sample);
    // The metrics and the loss curve too: each row once, the same numbers (the times aside).
    CHECK(without_columns(read_bytes(out + "/metrics.csv"), {4}) == without_columns(read_bytes(dir / "straight/metrics.csv"), {4}));
    CHECK(read_bytes(out + "/loss.dat") == read_bytes(dir / "straight/loss.dat"));
  }
  // Resuming with other flags would not continue that run: an error naming the setting.
  char_lstm::Config other = small(data, dir / ("stopped" + std::to_string(per_epoch + 2)));
  other.resume = true;
  other.batch_size = 4;
  CHECK_THROWS_WITH_AS(char_lstm::run(other, log), doctest::Contains("--resume: the checkpoint's run had batch_size 8, this one has 4"),
                       tg::ValueError);
}

TEST_CASE("char_lstm: missing or too little text is a clear error") {
  TempDir dir;
  std::ostringstream log;
  CHECK_THROWS_WITH_AS(char_lstm::run(small(dir / "nothing.txt", dir / "x"), log), doctest::Contains("cannot be read"),
                       tg::IoError);
  std::ofstream(dir / "short.txt") << "too short";
  CHECK_THROWS_WITH_AS(char_lstm::run(small(dir / "short.txt", dir / "x"), log), doctest::Contains("is too short for one batch"),
                       tg::ValueError);
  char_lstm::Config c = small(write_text(dir), dir / "y");
  c.resume = true;
  c.resume_from = (dir.path / "no-such-checkpoint.npz").string();
  CHECK_THROWS_WITH_AS(char_lstm::run(c, log), doctest::Contains("no-such-checkpoint.npz' cannot be opened"), tg::IoError);
  CHECK_FALSE(std::filesystem::exists(dir / "y/checkpoint.npz"));
  // --resume without a path, where no checkpoint was written yet, starts from the beginning.
  c.resume_from.clear();
  c.epochs = 1;
  CHECK(char_lstm::run(c, log).steps > 0);
  CHECK(log.str().find("no checkpoint in ") != std::string::npos);
}
