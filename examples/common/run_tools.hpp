// What the training programs share: command-line validators, timing, files written whole, plots
// and a progress line.
#ifndef TAPEGRAD_EXAMPLES_RUN_TOOLS_HPP
#define TAPEGRAD_EXAMPLES_RUN_TOOLS_HPP

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <tapegrad/io/numpy.hpp>

#include <CLI/CLI.hpp>

namespace run_tools {

// "a positive number" in words, not CLI11's numeric range from 0 to DBL_MAX.
extern const CLI::Validator positive;
// Digits only: CLI11 would turn "-1" into a huge unsigned number.
extern const CLI::Validator whole;

// Parses the command line into the options `app` binds: true to run; false after --help
// (exit_code 0) or a bad flag (exit_code 2, the error on `err`, prefixed by the program's name).
bool parse(CLI::App& app, int argc, const char* const* argv, int& exit_code, std::ostream& out, std::ostream& err);

// The flags of a program that checkpoints: --checkpoint-every N, --resume [PATH] (PATH is left
// empty without one) and --stop-after N (tests). Returns --resume's option: given if count() > 0.
CLI::Option* add_checkpoint_flags(CLI::App& app, std::size_t& checkpoint_every, std::string& resume_from,
                                  std::size_t& stop_after);

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t);
// m:ss
std::string duration(double seconds);
// The process's peak resident set size so far.
double peak_rss_mb();

// Writes `text` to `path` through a temporary file and a rename.
void write_text(const std::filesystem::path& path, const std::string& text);
// A file of rows (metrics.csv, loss.dat) written as they are measured: each row is appended and
// flushed at once, so a run killed at any moment leaves every row it measured. A resumed run cuts
// the file back to the size its checkpoint recorded: the rows the killed run wrote after that
// checkpoint come again, once.
class RowFile {
 public:
  // A fresh run: the file holds `header` alone.
  RowFile(std::filesystem::path path, const std::string& header);
  // A resumed run: the file cut back to `size` bytes (an IoError if it is shorter); where there is
  // no such file (a checkpoint resumed in another directory), a fresh one with `header`.
  RowFile(std::filesystem::path path, std::uint64_t size, const std::string& header);
  void append(const std::string& row);
  // On disk, not only with the system: before a checkpoint records the size.
  void sync() const;
  // The file's size: what a checkpoint records.
  std::uint64_t size() const { return size_; }

 private:
  std::filesystem::path path_;
  std::uint64_t size_ = 0;
};

// Before a resumed run goes on: the checkpoint's run had every setting `settings` holds (counters
// and values equal, bit for bit), and its state has the counters and values named; otherwise a
// ValueError says which (e.g. "--resume: the checkpoint's run had batch_size 8, this one has 4").
void check_resumable(const char* program, const tapegrad::RunState& saved, const tapegrad::RunState& settings,
                     const std::vector<std::string>& counters, const std::vector<std::string>& values);

// A double in as many digits as give it back exactly (%.17g), or in `decimals` fixed ones.
std::string exact(double v);
std::string fixed(double v, int decimals);
// Removes the temporary files a run killed while saving `target` left beside it ("<target>.tmp",
// "<target>.tmp-*": write_text's and tapegrad's atomic saves' files, never renamed over it).
void remove_partial_files(const std::filesystem::path& target);

// Whether a program is on the PATH.
bool have(const char* program);
// A path as one single-quoted shell word, whatever it contains.
std::string shell_quote(const std::string& text);
// Runs a gnuplot script in `dir` that writes `png`, or says on `out` why there is no plot.
void plot(const std::filesystem::path& dir, const std::string& script, const std::string& png, std::ostream& out);

// The progress of an epoch: redrawn in place on a terminal, a line every 5 s otherwise.
class Progress {
 public:
  Progress(std::ostream& out, bool terminal, std::size_t epoch, std::size_t epochs, std::size_t steps, const char* unit);
  // After step `step` (0-based) with `done` of `total` units of the epoch behind.
  void update(std::size_t step, double loss, double done, double total);
  // Ends the redrawn line.
  void finish();

 private:
  std::ostream& out_;
  bool terminal_;
  std::size_t epoch_, epochs_, steps_;
  const char* unit_;
  Clock::time_point start_, last_print_;
};

}  // namespace run_tools

#endif
