// What the training programs share: command-line validators, timing, files written whole, plots
// and a progress line.
#ifndef TAPEGRAD_EXAMPLES_RUN_TOOLS_HPP
#define TAPEGRAD_EXAMPLES_RUN_TOOLS_HPP

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

namespace run_tools {

// "a positive number" in words, not CLI11's numeric range from 0 to DBL_MAX.
extern const CLI::Validator positive;
// Digits only: CLI11 would turn "-1" into a huge unsigned number.
extern const CLI::Validator whole;

// Parses the command line into the options `app` binds: true to run; false after --help
// (exit_code 0) or a bad flag (exit_code 2, the error on `err`, prefixed by the program's name).
bool parse(CLI::App& app, int argc, const char* const* argv, int& exit_code, std::ostream& out, std::ostream& err);

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t);
// m:ss
std::string duration(double seconds);
// The process's peak resident set size so far.
double peak_rss_mb();

// Writes `text` to `path` through a temporary file and a rename.
void write_text(const std::filesystem::path& path, const std::string& text);
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
