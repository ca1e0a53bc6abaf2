// A character-level LSTM language model trained on text that Debian ships (the fortunes
// package): the program's pieces, for main.cpp and the tests.
#ifndef TAPEGRAD_EXAMPLES_CHAR_LSTM_TRAINER_HPP
#define TAPEGRAD_EXAMPLES_CHAR_LSTM_TRAINER_HPP

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace char_lstm {

struct Config {
  std::string data = "/usr/share/games/fortunes";   // a text file, or a directory of them
  std::string out = "runs/char_lstm";
  std::size_t epochs = 1;
  std::size_t max_steps = 300;       // per epoch (0: the whole training text)
  std::size_t limit_chars = 0;       // use only the first N characters of the text (0: all)
  std::size_t seq_len = 64, batch_size = 32, embed = 64, hidden = 256, layers = 2;
  double lr = 3e-3, weight_decay = 0.01, clip = 1.0, val_fraction = 0.1;
  std::size_t val_batches = 20;      // validation batches of batch_size sequences (0: all)
  std::uint64_t seed = 1;
  int threads = 1;
  std::size_t checkpoint_every = 0;  // steps between checkpoints (0: at the end of each epoch only)
  bool resume = false;               // continue from resume_from, or from <out>/checkpoint.npz if it exists
  std::string resume_from;           // --resume PATH (empty: <out>/checkpoint.npz)
  std::size_t stop_after = 0;        // stop after this many steps of the run, as if killed (tests)
  std::size_t sample = 300;          // characters sampled at the end
};

// nullopt after --help or a bad flag (exit_code says which).
std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code, std::ostream& out,
                                   std::ostream& err);

// The text: a file, or every regular file of a directory (sorted by name; fortune's .dat and .u8
// index files skipped), concatenated.
std::string load_text(const std::string& path, std::size_t limit_chars = 0);

// Embedding -> multi-layer LSTM -> Linear over a vocabulary of `vocab` characters.
class CharModel : public tapegrad::Module<float> {
 public:
  CharModel(std::size_t vocab, std::size_t embed, std::size_t hidden, std::size_t layers);
  // tokens (time, batch) -> logits (time, batch, vocab) and the final state. Each step's tokens
  // are embedded on their own, so that each step's input has a gradient of its own (LSTM).
  std::pair<tapegrad::Tensor<float>, tapegrad::LSTMState<float>> forward(const tapegrad::Index& tokens,
                                                                          const tapegrad::LSTMState<float>& state = {});
  using tapegrad::Module<float>::forward;

 private:
  std::shared_ptr<tapegrad::Embedding<float>> embed_;
  std::shared_ptr<tapegrad::LSTM<float>> lstm_;
  std::shared_ptr<tapegrad::Linear<float>> head_;
};

struct EpochResult {
  double train_loss = 0, val_loss = 0, seconds = 0, chars_per_second = 0;
};
struct RunResult {
  std::vector<EpochResult> epochs;      // the epochs this run finished
  std::size_t vocab = 0, steps = 0;     // steps this run took
  std::string sample;
  tapegrad::StateDict<float> parameters;
};

RunResult run(const Config& config, std::ostream& out);

}  // namespace char_lstm

#endif
