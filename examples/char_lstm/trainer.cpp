#include "trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>

#include "run_tools.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;

namespace char_lstm {

std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code, std::ostream& out,
                                   std::ostream& err) {
  using run_tools::positive;
  using run_tools::whole;
  Config c;
  CLI::App app("Trains a character-level LSTM language model on Debian's fortunes with tapegrad, then samples text "
               "from it.", "char_lstm");
  app.add_option("--data", c.data, "a text file, or a directory of them (apt-get install fortunes)")->capture_default_str();
  app.add_option("--out", c.out, "directory for metrics, the loss plot, checkpoints and the sample")->capture_default_str();
  app.add_option("--epochs", c.epochs, "passes over the training text")->check(positive)->capture_default_str();
  app.add_option("--max-steps", c.max_steps, "steps per epoch at most (0: the whole training text)")->check(whole)->capture_default_str();
  app.add_option("--limit-chars", c.limit_chars, "use only the first N characters of the text (0: all)")->check(whole)->capture_default_str();
  app.add_option("--seq-len", c.seq_len, "characters per training sequence")->check(positive)->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "sequences per step")->check(positive)->capture_default_str();
  app.add_option("--embed", c.embed, "embedding size")->check(positive)->capture_default_str();
  app.add_option("--hidden", c.hidden, "LSTM hidden size")->check(positive)->capture_default_str();
  app.add_option("--layers", c.layers, "LSTM layers")->check(positive)->capture_default_str();
  app.add_option("--lr", c.lr, "AdamW's peak learning rate (linear warm-up, then cosine decay to a tenth)")->check(positive)->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "AdamW's decoupled weight decay")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--clip", c.clip, "gradient clipping: largest norm of all gradients together")->check(positive)->capture_default_str();
  app.add_option("--val-fraction", c.val_fraction, "the end of the text kept for validation")->check(CLI::Range(0.01, 0.5))->capture_default_str();
  app.add_option("--val-batches", c.val_batches, "validation batches (0: all)")->check(whole)->capture_default_str();
  app.add_option("--seed", c.seed, "seeds the initial weights, the shuffling and the sampling")->check(whole)->capture_default_str();
  app.add_option("--threads", c.threads, "threads (tg::Parallel)")->check(CLI::Range(1, 256))->capture_default_str();
  CLI::Option* resume = run_tools::add_checkpoint_flags(app, c.checkpoint_every, c.resume_from, c.stop_after);
  app.add_option("--sample", c.sample, "characters to sample at the end")->check(whole)->capture_default_str();
  if (!run_tools::parse(app, argc, argv, exit_code, out, err)) return std::nullopt;
  c.resume = resume->count() > 0;
  return c;
}

std::string load_text(const std::string& path, std::size_t limit_chars) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.emplace_back(path);
  }
  std::string text;
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw tg::IoError("char_lstm: '" + file.string() + "' cannot be read (apt-get install fortunes?)");
    text.append(std::istreambuf_iterator<char>(in), {});
    if (limit_chars > 0 && text.size() >= limit_chars) break;
  }
  if (limit_chars > 0 && text.size() > limit_chars) text.resize(limit_chars);
  if (files.empty() || text.empty()) throw tg::IoError("char_lstm: no text in '" + path + "' (apt-get install fortunes?)");
  return text;
}

CharModel::CharModel(std::size_t vocab, std::size_t embed, std::size_t hidden, std::size_t layers)
    : embed_(std::make_shared<tg::Embedding<float>>(vocab, embed)),
      lstm_(std::make_shared<tg::LSTM<float>>(embed, hidden, layers)),
      head_(std::make_shared<tg::Linear<float>>(hidden, vocab)) {
  register_module("embed", embed_);
  register_module("lstm", lstm_);
  register_module("head", head_);
}

std::pair<tg::Tensor<float>, tg::LSTMState<float>> CharModel::forward(const tg::Index& tokens, const tg::LSTMState<float>& state) {
  const std::size_t time = tokens.shape(0), batch = tokens.shape(1);
  std::vector<tg::Tensor<float>> steps;
  for (std::size_t t = 0; t < time; ++t) {
    tg::Index row = tg::Index::from_shape({batch});
    std::copy_n(tokens.data() + t * batch, batch, row.data());
    steps.push_back(embed_->forward(row));
  }
  const auto out = (*lstm_)(steps, state);
  return {head_->forward(out.output), out.state};
}

namespace {

// Sequences of seq_len + 1 characters at a stride of seq_len, from ids[begin, end): a batch is the
// tokens (time, batch) and the next characters, flattened in the same (time, batch) order.
struct CharBatch {
  tg::Index tokens;
  std::vector<std::int64_t> targets;
};
class Sequences : public tg::Dataset<CharBatch> {
 public:
  Sequences(const std::vector<std::int64_t>& ids, std::size_t begin, std::size_t end, std::size_t seq_len)
      : ids_(ids), begin_(begin), count_(end - begin > seq_len ? (end - begin - 1) / seq_len : 0), len_(seq_len) {}
  std::size_t size() const override { return count_; }
  CharBatch batch(const std::vector<std::size_t>& indices) const override {
    CharBatch b{tg::Index::from_shape({len_, indices.size()}), std::vector<std::int64_t>(len_ * indices.size())};
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const std::size_t start = begin_ + indices[j] * len_;
      for (std::size_t t = 0; t < len_; ++t) {
        b.tokens(t, j) = ids_[start + t];
        b.targets[t * indices.size() + j] = ids_[start + t + 1];
      }
    }
    return b;
  }

 private:
  const std::vector<std::int64_t>& ids_;
  std::size_t begin_, count_, len_;
};

// Cross-entropy of the next characters, averaged over the batch's characters.
tg::Tensor<float> loss_of(CharModel& model, const CharBatch& b, std::size_t vocab) {
  const tg::Tensor<float> logits = model.forward(b.tokens).first;
  return tg::cross_entropy(tg::reshape(logits, {b.targets.size(), vocab}), b.targets);
}

double validation_loss(CharModel& model, const Sequences& val, const Config& c, std::size_t vocab) {
  tg::NoGrad no_grad;
  const tg::BatchSampler batches(val.size(), {c.batch_size, /*shuffle=*/false});
  double total = 0;
  std::size_t chars = 0;
  const auto all = batches.batches(0);
  const std::size_t n = c.val_batches == 0 ? all.size() : std::min(all.size(), c.val_batches);
  for (std::size_t i = 0; i < n; ++i) {
    const CharBatch b = val.batch(all[i]);
    total += double(loss_of(model, b, vocab).item()) * double(b.targets.size());
    chars += b.targets.size();
  }
  return total / double(std::max<std::size_t>(chars, 1));
}

// `length` characters drawn one at a time from softmax(logits / 0.8), after `prompt`.
std::string sample_text(CharModel& model, const std::string& prompt, std::size_t length, const std::vector<char>& chars,
                        const std::array<std::int64_t, 256>& id, std::uint64_t seed) {
  tg::NoGrad no_grad;
  tg::Generator gen(seed);
  tg::LSTMState<float> state;
  tg::Tensor<float> logits;
  std::string text = prompt;
  const auto feed = [&](std::int64_t token) {
    tg::Index one = tg::Index::from_shape({1, 1});
    one(0, 0) = token;
    std::tie(logits, state) = model.forward(one, state);
  };
  for (const char ch : prompt) feed(id[static_cast<unsigned char>(ch)]);
  for (std::size_t i = 0; i < length; ++i) {
    const xt::xarray<float> p = tg::softmax(tg::reshape(logits, {chars.size()}) * (1.0f / 0.8f), 0).value();
    double u = gen.uniform(0, 1), acc = 0;
    std::size_t next = chars.size() - 1;
    for (std::size_t k = 0; k < chars.size(); ++k)
      if ((acc += double(p(k))) > u) {
        next = k;
        break;
      }
    text += chars[next];
    feed(static_cast<std::int64_t>(next));
  }
  return text;
}

}  // namespace

RunResult run(const Config& c, std::ostream& out) {
  tg::Parallel parallel(c.threads);
  const fs::path dir(c.out);
  fs::create_directories(dir);
  const std::string text = load_text(c.data, c.limit_chars);
  // The vocabulary: the bytes the text holds, in byte order.
  std::array<std::int64_t, 256> id{};
  id.fill(-1);
  std::vector<char> chars;
  for (const char ch : text) id[static_cast<unsigned char>(ch)] = 0;
  for (std::size_t b = 0; b < 256; ++b)
    if (id[b] == 0) {
      id[b] = static_cast<std::int64_t>(chars.size());
      chars.push_back(static_cast<char>(b));
    }
  std::vector<std::int64_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) ids[i] = id[static_cast<unsigned char>(text[i])];
  const std::size_t split = static_cast<std::size_t>(double(ids.size()) * (1 - c.val_fraction));
  const Sequences train(ids, 0, split, c.seq_len), val(ids, split, ids.size(), c.seq_len);
  const tg::BatchSampler sampler(train.size(), {c.batch_size, /*shuffle=*/true, c.seed, /*drop_last=*/true});
  if (sampler.batch_count() == 0 || val.size() == 0)
    tg::throw_value_error("char_lstm", "the text (" + std::to_string(text.size()) + " characters) is too short for one batch of " +
                                           std::to_string(c.batch_size) + " sequences of " + std::to_string(c.seq_len));
  const std::size_t steps = c.max_steps == 0 ? sampler.batch_count() : std::min(c.max_steps, sampler.batch_count());
  const std::size_t vocab = chars.size(), total_steps = steps * c.epochs;
  out << "char_lstm: " << text.size() << " characters from " << c.data << ", a vocabulary of " << vocab << ", "
      << train.size() << " training and " << val.size() << " validation sequences of " << c.seq_len << "; " << steps
      << " steps of " << c.batch_size << " per epoch" << std::endl;

  std::unique_ptr<CharModel> model;
  {
    tg::ManualSeed init(c.seed);
    model = std::make_unique<CharModel>(vocab, c.embed, c.hidden, c.layers);
  }
  tg::AdamW<float> opt(model->parameters(), c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
  tg::CosineLR<float> schedule(opt, total_steps, c.lr / 10, std::min<std::size_t>(100, total_steps / 10));
  const fs::path checkpoint = dir / "checkpoint.npz";
  run_tools::remove_partial_files(checkpoint);
  // What the run's numbers depend on beside the model and the optimizer: a resumed run must have
  // the same, or it would not continue the run it resumes.
  tg::RunState settings;
  settings.counters = {{"seed", c.seed},       {"batch_size", c.batch_size}, {"seq_len", c.seq_len},
                       {"steps_per_epoch", steps}, {"epochs", c.epochs},   {"training_sequences", train.size()}};
  settings.values = {{"lr", c.lr}, {"weight_decay", c.weight_decay}, {"clip", c.clip}};
  std::size_t first_epoch = 1, first_step = 0;
  double running = 0, sum = 0, seconds_before = 0;
  std::optional<run_tools::RowFile> metrics, curve;
  const std::string metrics_header = "split,epoch,step,loss,time", curve_header = "# step, training loss (running mean)";
  // --resume without a path starts afresh where there is no checkpoint yet.
  const fs::path resume_from = c.resume_from.empty() ? checkpoint : fs::path(c.resume_from);
  if (c.resume && (!c.resume_from.empty() || fs::exists(checkpoint))) {
    const tg::RunState saved = tg::load_checkpoint(resume_from.string(), *model, opt);
    run_tools::check_resumable("char_lstm", saved, settings, {"epoch", "step", "schedule", "metrics_bytes", "curve_bytes"},
                               {"running_loss", "epoch_loss_sum", "seconds"});
    first_epoch = saved.counters.at("epoch");
    first_step = saved.counters.at("step");
    schedule.set_steps(saved.counters.at("schedule"));
    running = saved.values.at("running_loss");
    sum = saved.values.at("epoch_loss_sum");
    seconds_before = saved.values.at("seconds");
    metrics.emplace(dir / "metrics.csv", saved.counters.at("metrics_bytes"), metrics_header);
    curve.emplace(dir / "loss.dat", saved.counters.at("curve_bytes"), curve_header);
    out << "resumed from " << resume_from.string() << " at epoch " << first_epoch << ", step " << first_step << std::endl;
  } else {
    if (c.resume) out << "no checkpoint in " << dir.string() << ": starting from the beginning" << std::endl;
    fs::remove(checkpoint);   // an earlier run's, which a --resume would otherwise continue
    metrics.emplace(dir / "metrics.csv", metrics_header);
    curve.emplace(dir / "loss.dat", curve_header);
  }
  const auto start = run_tools::Clock::now();
  const auto elapsed = [&] { return seconds_before + run_tools::seconds_since(start); };
  const auto save = [&](std::size_t epoch, std::size_t step) {
    metrics->sync();
    curve->sync();
    tg::RunState state = settings;
    state.counters.insert({{"epoch", epoch}, {"step", step}, {"schedule", schedule.steps()},
                           {"metrics_bytes", metrics->size()}, {"curve_bytes", curve->size()}});
    state.values.insert({{"running_loss", running}, {"epoch_loss_sum", sum}, {"seconds", elapsed()}});
    tg::save_checkpoint<float>(checkpoint.string(), *model, opt, state);
  };

  RunResult result;
  result.vocab = vocab;
  const bool terminal = ::isatty(::fileno(stdout)) && &out == &std::cout;
  for (std::size_t epoch = first_epoch; epoch <= c.epochs; ++epoch) {
    const auto batches = sampler.batches(epoch);
    const std::size_t from = epoch == first_epoch ? first_step : 0;
    run_tools::Progress progress(out, terminal, epoch, c.epochs, steps - from, "char");
    const auto epoch_start = run_tools::Clock::now();
    if (from == 0) running = sum = 0;
    for (std::size_t step = from; step < steps; ++step) {
      const CharBatch batch = train.batch(batches[step]);
      double loss = 0;
      {
        tg::Tape tape;
        const tg::Tensor<float> l = loss_of(*model, batch, vocab);
        opt.zero_grad();
        l.backward();
        tg::clip_grad_norm(model->parameters(), c.clip);
        opt.step();
        schedule.step();
        loss = l.item();
      }
      running = step == 0 ? loss : 0.95 * running + 0.05 * loss;
      sum += loss;
      const std::size_t global = (epoch - 1) * steps + step + 1;
      if (global % 10 == 0) curve->append(std::to_string(global) + ' ' + run_tools::exact(running));
      if (global % 50 == 0)
        metrics->append("train," + std::to_string(epoch) + ',' + std::to_string(global) + ',' + run_tools::exact(running) +
                        ',' + run_tools::fixed(elapsed(), 3));
      progress.update(step - from, running, double((step + 1 - from) * c.batch_size * c.seq_len),
                      double((steps - from) * c.batch_size * c.seq_len));
      ++result.steps;
      if (c.checkpoint_every > 0 && (step + 1) % c.checkpoint_every == 0 && step + 1 < steps) save(epoch, step + 1);
      if (c.stop_after > 0 && result.steps == c.stop_after) {
        progress.finish();
        out << "stopped after " << result.steps << " steps (--stop-after)" << std::endl;
        result.parameters = model->state_dict();
        return result;
      }
    }
    progress.finish();
    EpochResult r;
    r.seconds = run_tools::seconds_since(epoch_start);
    r.chars_per_second = double((steps - from) * c.batch_size * c.seq_len) / r.seconds;
    r.train_loss = sum / double(steps);
    r.val_loss = validation_loss(*model, val, c, vocab);
    metrics->append("val," + std::to_string(epoch) + ',' + std::to_string(epoch * steps) + ',' +
                    run_tools::exact(r.val_loss) + ',' + run_tools::fixed(elapsed(), 3));
    save(epoch + 1, 0);
    out << "epoch " << epoch << ": train loss " << std::fixed << std::setprecision(4) << r.train_loss << ", validation loss "
        << r.val_loss << " (" << r.val_loss / std::log(2.0) << " bits per character), " << std::setprecision(1)
        << r.seconds << " s (" << std::setprecision(0) << r.chars_per_second << " char/s)" << std::defaultfloat
        << std::setprecision(6) << std::endl;
    result.epochs.push_back(r);
  }
  result.parameters = model->state_dict();
  run_tools::plot(dir,
                  "set terminal pngcairo size 800,450\nset output 'loss.png'\nset xlabel 'step'\nset ylabel "
                  "'cross-entropy (nats per character)'\nset grid\nset datafile separator ','\nplot 'loss.dat' using 1:2 "
                  "datafile separator ' ' with lines title 'training (running mean)', 'metrics.csv' using "
                  "($1 eq 'val' ? $3 : 1/0):4 with linespoints title 'validation'\n",
                  "loss.png", out);
  if (c.sample > 0) {
    const std::string prompt = id[static_cast<unsigned char>('T')] >= 0 ? "T" : std::string(1, chars[0]);
    result.sample = sample_text(*model, prompt, c.sample, chars, id, c.seed);
    run_tools::write_text(dir / "sample.txt", result.sample + "\n");
    out << "sample:\n" << result.sample << "\n";
  }
  out << "outputs in " << fs::absolute(dir).string() << ": metrics.csv, checkpoint.npz"
      << (fs::exists(dir / "loss.png") ? ", loss.png" : "") << (c.sample > 0 ? ", sample.txt" : "") << std::endl;
  return result;
}

}  // namespace char_lstm
