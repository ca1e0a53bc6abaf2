// Replays the corpus the libFuzzer targets grew (tests/fuzz/run): every input, through the same
// calls, must end in the reader's result or one of tapegrad's typed errors, whose message names
// the reader and the file.
#include "helpers.hpp"

#include "fuzz/reader_targets.hpp"

namespace {
std::vector<std::string> corpus_files(const std::string& kind) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TAPEGRAD_FUZZ_CORPUS_DIR) + "/" + kind))
    files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const std::string& kind, bool (*read)(const std::uint8_t*, std::size_t, const std::string&),
            std::size_t at_least) {
  TempDir dir("tapegrad-corpus-");
  const std::vector<std::string> files = corpus_files(kind);
  std::size_t accepted = 0;
  for (const auto& file : files) {
    const std::string bytes = read_bytes(file);
    INFO(file);
    bool ok = false;
    CHECK_NOTHROW(ok = read(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), dir.path.string()));
    accepted += ok;
  }
  MESSAGE(kind, " corpus: ", files.size(), " inputs replayed, ", accepted, " accepted by the reader");
  CHECK(files.size() >= at_least);
  CHECK(accepted >= 1);               // the valid seeds still load
  CHECK(accepted < files.size());     // and the corpus does exercise the error paths
}
}  // namespace

TEST_CASE("the .npy fuzz corpus replays without a crash or an untyped error") {
  replay("npy", tg::fuzz::read_npy_bytes, 50);
}

TEST_CASE("the .npz fuzz corpus replays without a crash or an untyped error") {
  replay("npz", tg::fuzz::read_npz_bytes, 50);
}

TEST_CASE("the IDX fuzz corpus replays without a crash or an untyped error") {
  replay("idx", tg::fuzz::read_idx_bytes, 40);
}
