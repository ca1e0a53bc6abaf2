// The thread's recording modes and guards (GradMode, NoGrad, DetectAnomaly, Label), and the
// process's memory accounting (memory_stats).
#include "tape.hpp"

#include "tape_internals.hpp"

namespace tapegrad {

GradMode::GradMode(bool enabled) : previous_(detail::thread_state().grad_enabled) {
  detail::thread_state().grad_enabled = enabled;
}
GradMode::~GradMode() { detail::thread_state().grad_enabled = previous_; }

bool is_recording() {
  const auto& st = detail::thread_state();
  return st.grad_enabled && !st.live.empty();
}

DetectAnomaly::DetectAnomaly() : previous_(detail::thread_state().detect_anomaly) {
  detail::thread_state().detect_anomaly = true;
}
DetectAnomaly::~DetectAnomaly() { detail::thread_state().detect_anomaly = previous_; }

Label::Label(const std::string& name) {
  auto& labels = detail::thread_state().labels;
  labels.push_back(std::make_shared<const std::string>(labels.empty() ? name : *labels.back() + "/" + name));
}
Label::~Label() { detail::thread_state().labels.pop_back(); }

detail::TapeProbe::TapeProbe() : previous_(thread_state().probe) { thread_state().probe = this; }
detail::TapeProbe::~TapeProbe() { thread_state().probe = previous_; }

MemoryStats memory_stats() {
  MemoryStats stats;
  const detail::CountedTotals totals = detail::counted();
  stats.live_tensors = totals.of[std::size_t(detail::Counted::tensors)];
  stats.tape_entries = totals.of[std::size_t(detail::Counted::entries)];
  stats.tape_bytes = totals.of[std::size_t(detail::Counted::entry_bytes)];
  return stats;
}

}  // namespace tapegrad
