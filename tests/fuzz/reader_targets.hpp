// The file readers under fuzzing: one call per input, shared by the libFuzzer targets and by the
// corpus replay test that runs in CI.
#ifndef TAPEGRAD_TESTS_FUZZ_READER_TARGETS_HPP
#define TAPEGRAD_TESTS_FUZZ_READER_TARGETS_HPP

#include <cstddef>
#include <cstdint>
#include <string>

namespace tapegrad::fuzz {

// Writes the bytes to a file of this process under `dir` and reads it with the reader, in float
// and in double where the reader has both. A tapegrad error (IoError, ShapeError, ValueError) is
// the expected answer to bad bytes and is swallowed; any other exception escapes, and a crash or
// a sanitizer report is a crash: those are the bugs.
// Returns true when the reader accepted the bytes.
bool read_npy_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir);
bool read_npz_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir);
bool read_idx_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir);

}  // namespace tapegrad::fuzz

#endif
