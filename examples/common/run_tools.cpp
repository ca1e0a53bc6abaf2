#include "run_tools.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <tapegrad/tapegrad.hpp>

namespace fs = std::filesystem;

namespace run_tools {

const CLI::Validator positive(
    [](std::string& text) -> std::string {
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      return used == text.size() && used > 0 && v > 0 && std::isfinite(v) ? ""
                                                                           : "must be a positive number, got '" + text + "'";
    },
    "POSITIVE");

const CLI::Validator whole(
    [](std::string& text) -> std::string {
      return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos
                 ? ""
                 : "must be a whole number >= 0, got '" + text + "'";
    },
    "WHOLE");

bool parse(CLI::App& app, int argc, const char* const* argv, int& exit_code, std::ostream& out, std::ostream& err) {
  exit_code = 0;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return false;
  } catch (const CLI::ParseError& e) {
    err << app.get_name() << ": " << e.what() << "\n(run with --help for the flags)\n";
    exit_code = 2;
    return false;
  }
  return true;
}

CLI::Option* add_checkpoint_flags(CLI::App& app, std::size_t& checkpoint_every, std::string& resume_from,
                                  std::size_t& stop_after) {
  app.add_option("--checkpoint-every", checkpoint_every, "steps between checkpoints (0: each epoch's end only)")
      ->check(whole)
      ->capture_default_str();
  CLI::Option* resume = app.add_option("--resume", resume_from,
                                       "continue bitwise as if never stopped, from PATH or, without one, from "
                                       "<out>/checkpoint.npz (a fresh start when there is none)")
                            ->expected(0, 1)
                            ->type_name("[PATH]");
  app.add_option("--stop-after", stop_after, "stop after N steps, as if killed (for tests; 0: never)")->check(whole);
  return resume;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string duration(double s) {
  std::ostringstream os;
  const long t = std::lround(s);
  os << t / 60 << ':' << std::setw(2) << std::setfill('0') << t % 60;
  return os.str();
}

double peak_rss_mb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;   // Linux reports kilobytes
}

void write_text(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    if (!f) throw tapegrad::IoError("'" + tmp.string() + "' could not be written");
  }
  fs::rename(tmp, path);
}

RowFile::RowFile(fs::path path, const std::string& header) : path_(std::move(path)) {
  write_text(path_, "");
  append(header);
}

RowFile::RowFile(fs::path path, std::uint64_t size, const std::string& header) : path_(std::move(path)), size_(size) {
  if (!fs::exists(path_)) {
    size_ = 0;
    write_text(path_, "");
    append(header);
    return;
  }
  std::error_code error;
  const std::uintmax_t have = fs::file_size(path_, error);
  if (error || have < size)
    throw tapegrad::IoError("resume: '" + path_.string() + "' " +
                            (error ? "cannot be read: " + error.message()
                                   : "holds " + std::to_string(have) + " bytes, fewer than the " + std::to_string(size) +
                                         " the checkpoint recorded"));
  fs::resize_file(path_, size);
}

void RowFile::append(const std::string& row) {
  std::ofstream f(path_, std::ios::app | std::ios::binary);
  f << row << '\n' << std::flush;
  if (!f) throw tapegrad::IoError("'" + path_.string() + "' could not be written");
  size_ += row.size() + 1;
}

std::string exact(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

std::string fixed(double v, int decimals) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(decimals) << v;
  return text.str();
}

void remove_partial_files(const fs::path& target) {
  const std::string prefix = target.filename().string() + ".tmp";
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(target.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0 && (name.size() == prefix.size() || name[prefix.size()] == '-'))
      fs::remove(entry.path(), error);
  }
}

void check_resumable(const char* program, const tapegrad::RunState& saved, const tapegrad::RunState& settings,
                     const std::vector<std::string>& counters, const std::vector<std::string>& values) {
  const auto differs = [&](const std::string& name, const std::string& had, const std::string& has) {
    tapegrad::throw_value_error(program, "--resume: the checkpoint's run had " + name + " " + had + ", this one has " + has +
                                             " (resume with the same flags)");
  };
  for (const auto& [name, value] : settings.counters) {
    const auto it = saved.counters.find(name);
    if (it == saved.counters.end() || it->second != value)
      differs(name, it == saved.counters.end() ? "unknown" : std::to_string(it->second), std::to_string(value));
  }
  for (const auto& [name, value] : settings.values) {
    const auto it = saved.values.find(name);
    if (it == saved.values.end() || it->second != value)
      differs(name, it == saved.values.end() ? "unknown" : exact(it->second), exact(value));
  }
  for (const std::string& name : counters)
    if (saved.counters.count(name) == 0)
      tapegrad::throw_value_error(program, "--resume: the checkpoint has no position/" + name);
  for (const std::string& name : values)
    if (saved.values.count(name) == 0) tapegrad::throw_value_error(program, "--resume: the checkpoint has no values/" + name);
}

void RowFile::sync() const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw tapegrad::IoError("'" + path_.string() + "' could not be synced to disk");
}

bool have(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void plot(const fs::path& dir, const std::string& script, const std::string& png, std::ostream& out) {
  if (!have("gnuplot")) {
    out << "note: gnuplot is not installed (apt-get install -y gnuplot-nox): no " << png << "\n";
    return;
  }
  const std::string name = fs::path(png).stem().string() + ".gp";
  write_text(dir / name, script);
  if (std::system(("cd " + shell_quote(dir.string()) + " && gnuplot " + name).c_str()) != 0)
    out << "note: gnuplot failed; no " << png << "\n";
}

Progress::Progress(std::ostream& out, bool terminal, std::size_t epoch, std::size_t epochs, std::size_t steps,
                   const char* unit)
    : out_(out), terminal_(terminal), epoch_(epoch), epochs_(epochs), steps_(steps), unit_(unit),
      start_(Clock::now()), last_print_(start_) {}

void Progress::update(std::size_t step, double loss, double done, double total) {
  const double elapsed = seconds_since(start_);
  const double rate = done / std::max(elapsed, 1e-9);
  const double eta = (total - done) / std::max(rate, 1e-9);
  if (terminal_) {
    const int width = 30, filled = int(width * double(step + 1) / double(steps_));
    out_ << "\repoch " << epoch_ << '/' << epochs_ << " [" << std::string(filled, '#') << std::string(width - filled, '.')
         << "] " << step + 1 << '/' << steps_ << "  loss " << std::fixed << std::setprecision(4) << loss << "  "
         << std::setprecision(0) << rate << ' ' << unit_ << "/s  ETA " << duration(eta) << std::defaultfloat
         << std::setprecision(6) << "   " << std::flush;
  } else if (seconds_since(last_print_) >= 5.0 || step + 1 == steps_) {
    last_print_ = Clock::now();
    out_ << "epoch " << epoch_ << '/' << epochs_ << " step " << step + 1 << '/' << steps_ << " loss " << std::fixed
         << std::setprecision(4) << loss << ' ' << std::setprecision(0) << rate << ' ' << unit_ << "/s ETA "
         << duration(eta) << std::defaultfloat << std::setprecision(6) << std::endl;
  }
}

void Progress::finish() {
  if (terminal_) out_ << '\n';
}

}  // namespace run_tools
