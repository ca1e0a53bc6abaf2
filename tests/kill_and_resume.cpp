// fashion_mnist killed with SIGKILL and resumed, as a user would: the program runs as a child
// process on a tiny generated data set; it is killed at random moments, and at moments when it
// is writing its checkpoint (frozen with SIGSTOP when the temporary file appears, killed while it
// still exists), then started again with the same command (--resume) until it finishes. After
// every kill, metrics.csv holds a row for every epoch the program reported finished and the
// checkpoint loads; at the end the parameter files are byte-identical to an uninterrupted run's,
// and so are the loss curve and the metrics (their times aside).
//
//   kill_and_resume --program PATH/fashion_mnist [--mpiexec PATH [--mpiexec-flag FLAG]...]
//
// With --mpiexec the same under `mpiexec -np 2 ... --distributed`: a random rank is killed at a
// random moment after the first checkpoint (three jobs); each job must end within 30 s and its
// checkpoint load; the resumed 2-rank job must end bitwise where an uninterrupted one does.
// Exits 0 only if every check passes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "training_runs.hpp"
#include "trainer.hpp"

extern char** environ;

namespace fs = std::filesystem;
namespace tg = tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::cerr << "FAILED: " << what << '\n';
  }
}

// A started program whose output goes to a file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  }
  ~Child() {
    if (!done_) {
      ::kill(pid_, SIGKILL);
      wait_for(std::chrono::seconds(60));
    }
  }
  pid_t pid() const { return pid_; }
  // The exit status (as waitpid gives it) once the child has ended within `limit`.
  std::optional<int> wait_for(std::chrono::duration<double> limit) {
    const auto until = Clock::now() + limit;
    while (!done_) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      if (r == pid_) {
        done_ = true;
        break;
      }
      if (Clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status_;
  }

 private:
  pid_t pid_ = 0;
  int status_ = 0;
  bool done_ = false;
};

bool exited_ok(const std::optional<int>& status) { return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0; }

// The epochs a program's log reports finished ("epoch K: train loss ...").
std::vector<std::size_t> finished_epochs(const std::string& log) {
  std::vector<std::size_t> epochs;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("epoch ", 0) == 0 && line.find(": train loss") != std::string::npos)
      epochs.push_back(std::stoul(line.substr(6)));
  return epochs;
}

// What must hold after a kill: every epoch reported finished has its metrics row, and the
// checkpoint (if any) loads and is past those epochs.
void check_after_kill(const fs::path& out, const std::string& log, const std::string& what, double lr, double momentum) {
  const std::vector<std::size_t> epochs = finished_epochs(log);
  const std::string metrics = file_bytes(out / "metrics.csv");
  for (const std::size_t e : epochs)
    check(metrics.find("\ntest," + std::to_string(e) + ",") != std::string::npos,
          what + ": epoch " + std::to_string(e) + " was reported finished but metrics.csv has no row for it");
  if (!fs::exists(out / "checkpoint.npz")) {
    check(epochs.empty(), what + ": epochs were reported finished but there is no checkpoint");
    return;
  }
  tg::Sequential<float> model = fashion::lenet5<float>(1);
  tg::SGD<float> opt(model.parameters(), lr, momentum);
  try {
    const tg::RunState state = tg::load_checkpoint((out / "checkpoint.npz").string(), model, opt);
    if (!epochs.empty())
      check(state.counters.at("epoch") > epochs.back(), what + ": the checkpoint is before the last finished epoch");
  } catch (const std::exception& e) {
    check(false, what + ": the checkpoint does not load: " + e.what());
  }
}

// Every parameter file byte for byte, the loss curve, and the metrics without times and memory.
void check_same_outputs(const fs::path& a, const fs::path& b, const std::string& what) {
  for (const std::string& difference : output_differences(a, b)) check(false, what + ": " + difference);
}

// Watches a directory for the creation of files whose names start with a prefix.
class CreationWatch {
 public:
  CreationWatch(const fs::path& dir, std::string prefix) : prefix_(std::move(prefix)) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || inotify_add_watch(fd_, dir.c_str(), IN_CREATE) < 0)
      throw std::runtime_error("inotify on " + dir.string() + ": " + std::strerror(errno));
  }
  ~CreationWatch() { ::close(fd_); }
  // Forgets the creations seen so far (an earlier run's).
  void drain() {
    read_events();
    pending_.clear();
  }
  // The name of the next new file with the prefix, waiting up to `ms` milliseconds; "" if none.
  std::string next(int ms) {
    if (pending_.empty()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms) > 0) read_events();
    }
    if (pending_.empty()) return "";
    const std::string name = pending_.front();
    pending_.pop_front();
    return name;
  }

 private:
  void read_events() {
    alignas(inotify_event) char buffer[4096];
    for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) > 0;)
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        const std::string name = event->len > 0 ? event->name : "";
        if (name.rfind(prefix_, 0) == 0) pending_.push_back(name);
        at += ssize_t(sizeof(inotify_event) + event->len);
      }
  }
  int fd_ = -1;
  std::string prefix_;
  std::deque<std::string> pending_;
};

struct Setup {
  std::vector<std::string> launcher;   // empty, or mpiexec -np 2 FLAGS
  std::vector<std::string> program;    // fashion_mnist and its flags, without --out
  double lr = 0.05, momentum = 0.9;
  std::vector<std::string> command(const fs::path& out, bool resume) const {
    std::vector<std::string> c = launcher;
    c.insert(c.end(), program.begin(), program.end());
    c.push_back("--out");
    c.push_back(out.string());
    if (resume) c.push_back("--resume");
    return c;
  }
};

// Runs to the end without interruption; returns the seconds it took.
double uninterrupted(const Setup& s, const fs::path& out) {
  const auto start = Clock::now();
  Child child(s.command(out, false), out.string() + ".log");
  const auto status = child.wait_for(std::chrono::minutes(10));
  check(exited_ok(status), "the uninterrupted run " + out.string() + " failed:\n" + file_bytes(out.string() + ".log"));
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs killed once each, at random moments spread over an uninterrupted run's `seconds` (one in
// each of `moments` equal spans) and at random moments after the first epoch was reported, then
// resumed with the same command: each must end with the uninterrupted run's outputs.
void kill_at_random_moments(const Setup& s, const fs::path& out, const fs::path& straight, double seconds,
                            std::size_t moments, std::mt19937_64& rng, std::size_t& kills, std::size_t& after_epoch) {
  std::uniform_real_distribution<double> unit(0, 1);
  for (std::size_t k = 0; k < moments + 3; ++k) {
    const fs::path run = out.string() + std::to_string(k), log = run.string() + ".log";
    Child child(s.command(run, true), log);
    std::optional<int> status;
    if (k < moments) {
      status = child.wait_for(std::chrono::duration<double>((double(k) + unit(rng)) / double(moments) * seconds));
    } else {   // after "epoch 1: ..." appears in the log
      while (!(status = child.wait_for(std::chrono::milliseconds(0))) && finished_epochs(file_bytes(log)).empty())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (!status) status = child.wait_for(std::chrono::duration<double>(unit(rng) * seconds / 3));
    }
    if (!status) {
      ::kill(child.pid(), SIGKILL);
      child.wait_for(std::chrono::seconds(60));
      ++kills;
      after_epoch += !finished_epochs(file_bytes(log)).empty();
      check_after_kill(run, file_bytes(log), run.string() + " after its kill", s.lr, s.momentum);
      Child resumed(s.command(run, true), log);
      status = resumed.wait_for(std::chrono::minutes(10));
    }
    check(exited_ok(status), run.string() + ": a run failed:\n" + file_bytes(log));
    check_same_outputs(straight, run, run.string());
  }
}

// Like kill_at_random_moments, but each run is frozen as soon as a checkpoint's temporary file
// appears and killed there; `mid_write` counts the kills made while that file still existed (the
// checkpoint half written, not yet renamed over the previous one).
void kill_while_writing(const Setup& s, const fs::path& out, const fs::path& straight, std::mt19937_64& rng,
                        std::size_t& mid_write, std::size_t& kills) {
  fs::create_directories(out);
  CreationWatch watch(out, "checkpoint.npz.tmp-");
  for (int attempt = 0; attempt < 60; ++attempt) {
    const fs::path log = out.string() + "-" + std::to_string(attempt) + ".log";
    watch.drain();
    Child child(s.command(out, true), log);
    std::string caught;
    std::optional<int> status;
    // Kill at the first, second or third checkpoint write of this run (a run killed while writing
    // its first resumes from where it began); after 12 kills, let it finish.
    int writes_to_skip = attempt < 12 ? int(std::uniform_int_distribution<int>(0, 2)(rng)) : 1 << 30;
    while (!(status = child.wait_for(std::chrono::milliseconds(0)))) {
      const std::string name = watch.next(1);   // woken as soon as the file appears
      if (!name.empty() && writes_to_skip-- == 0) {
        caught = name;
        break;
      }
    }
    if (status) {
      check(exited_ok(status), out.string() + ": a run failed:\n" + file_bytes(log));
      check_same_outputs(straight, out, out.string());
      return;
    }
    ::kill(child.pid(), SIGSTOP);
    int stopped = 0;
    ::waitpid(child.pid(), &stopped, WUNTRACED);   // frozen now, wherever it was
    if (fs::exists(out / caught)) ++mid_write;
    ::kill(child.pid(), SIGKILL);
    child.wait_for(std::chrono::seconds(60));
    ++kills;
    check_after_kill(out, file_bytes(log), out.string() + " after kill " + std::to_string(attempt + 1), s.lr, s.momentum);
  }
  check(false, out.string() + ": did not finish");
}

// The ranks of an mpiexec job: its child processes running `name`.
std::vector<pid_t> ranks_of(pid_t launcher, const std::string& name) {
  std::vector<pid_t> ranks;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = file_bytes(entry.path() / "stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    const std::string comm = stat.substr(stat.find('(') + 1, close - stat.find('(') - 1);
    if (parent == launcher && name.rfind(comm, 0) == 0) ranks.push_back(pid_t(std::stol(pid)));
  }
  return ranks;
}

// Jobs whose random rank is killed at a random moment after their first checkpoint: each job
// ends promptly, its checkpoint loads, and the job resumed with the same command ends where the
// uninterrupted job does.
void kill_a_rank(const Setup& s, const fs::path& out, const fs::path& straight, double seconds, std::size_t jobs,
                 std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  double longest = seconds / 2;
  std::size_t killed = 0;
  for (std::size_t k = 0; killed < jobs && k < 4 * jobs; ++k) {
    const fs::path run = out.string() + std::to_string(k), log = run.string() + ".log";
    fs::create_directories(run);
    Child job(s.command(run, true), log);
    while (!fs::exists(run / "checkpoint.npz") && !job.wait_for(std::chrono::milliseconds(0)))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::duration<double>(unit(rng) * longest));
    const std::vector<pid_t> ranks = ranks_of(job.pid(), "fashion_mnist");
    if (ranks.size() != 2) {   // the job ended first: wait less next time
      check(exited_ok(job.wait_for(std::chrono::minutes(2))), run.string() + ": the job failed:\n" + file_bytes(log));
      longest /= 2;
      continue;
    }
    const std::size_t rank = std::uniform_int_distribution<std::size_t>(0, 1)(rng);
    ::kill(ranks[rank], SIGKILL);
    const auto when = Clock::now();
    const auto status = job.wait_for(std::chrono::seconds(30));
    const double after = std::chrono::duration<double>(Clock::now() - when).count();
    check(status.has_value(), run.string() + ": the job did not end within 30 s of a rank's death");
    check(!exited_ok(status), run.string() + ": the job exited 0 although a rank was killed");
    ++killed;
    std::cout << "  killed one of the 2 ranks (pid " << ranks[rank] << "): the job ended " << after << " s later"
              << std::endl;
    check_after_kill(run, file_bytes(log), run.string() + " after a rank's death", s.lr, s.momentum);
    check(fs::exists(run / "checkpoint.npz"), run.string() + ": no checkpoint after a rank's death");
    Child resumed(s.command(run, true), log);
    check(exited_ok(resumed.wait_for(std::chrono::minutes(10))), run.string() + ": the resumed job failed:\n" + file_bytes(log));
    check_same_outputs(straight, run, run.string() + " (2 ranks)");
  }
  check(killed == jobs, out.string() + ": only " + std::to_string(killed) + " of " + std::to_string(jobs) +
                            " jobs could be caught running 2 ranks and have one killed");
}

}  // namespace

int main(int argc, char** argv) {
  std::string program, mpiexec;
  std::vector<std::string> mpiexec_flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--program") program = argv[i + 1];
    else if (flag == "--mpiexec") mpiexec = argv[i + 1];
    else if (flag == "--mpiexec-flag") mpiexec_flags.push_back(argv[i + 1]);
  }
  if (program.empty()) {
    std::cerr << "usage: kill_and_resume --program PATH [--mpiexec PATH [--mpiexec-flag FLAG]...]\n";
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("tapegrad-kill-" + std::to_string(std::random_device()()));
  fs::create_directories(dir);
  std::mt19937_64 rng(std::random_device{}());
  try {
    write_tiny_data_set(dir, 2000, 100, 11);
    Setup s;
    s.program = {program, "--data", (dir / "data").string(), "--epochs", "3", "--batch-size", "16", "--threads", "1",
                 "--check-images", "0", "--seed", "3"};
    if (mpiexec.empty()) {
      // Checkpoints at each epoch's end only (the case), then every 7 steps as well.
      const double t = uninterrupted(s, dir / "straight");
      std::cout << "uninterrupted run: " << t << " s" << std::endl;
      std::size_t kills = 0, after_epoch = 0, mid_write = 0;
      kill_at_random_moments(s, dir / "epochs", dir / "straight", t, 6, rng, kills, after_epoch);
      s.program.insert(s.program.end(), {"--checkpoint-every", "7"});
      const double t7 = uninterrupted(s, dir / "straight7");
      kill_at_random_moments(s, dir / "steps", dir / "straight7", t7, 6, rng, kills, after_epoch);
      const std::size_t random_kills = kills;
      kill_while_writing(s, dir / "writing", dir / "straight7", rng, mid_write, kills);
      std::cout << random_kills << " kills at random moments (" << after_epoch << " after the first epoch), "
                << kills - random_kills << " at checkpoint writes (" << mid_write
                << " while the temporary file existed)" << std::endl;
      check(after_epoch > 0, "no kill landed after the first epoch");
      check(mid_write > 0, "no kill landed while a checkpoint was being written");
    } else {
      s.launcher = {mpiexec, "-np", "2"};
      s.launcher.insert(s.launcher.end(), mpiexec_flags.begin(), mpiexec_flags.end());
      s.program.insert(s.program.end(), {"--distributed", "--checkpoint-every", "5"});
      const double t = uninterrupted(s, dir / "straight2");
      std::cout << "uninterrupted 2-rank run: " << t << " s" << std::endl;
      kill_a_rank(s, dir / "ranks", dir / "straight2", t, 3, rng);
    }
  } catch (const std::exception& e) {
    check(false, std::string("error: ") + e.what());
  }
  if (failures == 0) fs::remove_all(dir);
  else std::cerr << failures << " checks failed; the runs are in " << dir.string() << '\n';
  std::cout << (failures == 0 ? "all checks passed" : "FAILED") << std::endl;
  return failures == 0 ? 0 : 1;
}
