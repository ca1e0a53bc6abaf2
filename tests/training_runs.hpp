// What tests of the training programs share: a tiny generated stand-in for Fashion-MNIST, and
// their outputs compared without the columns that differ between runs of the same numbers.
#ifndef TAPEGRAD_TESTS_TRAINING_RUNS_HPP
#define TAPEGRAD_TESTS_TRAINING_RUNS_HPP

#include <tapegrad/tapegrad.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// 28x28 images whose class k is a bright horizontal bar at row 2 + 2k, with noise.
inline void write_tiny_fashion(const std::filesystem::path& dir, const std::string& split, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60), cls(0, 9);
  tapegrad::IdxArray images, labels;
  images.dims = {n, 28, 28};
  labels.dims = {n};
  for (std::size_t i = 0; i < n; ++i) {
    const int c = cls(rng);
    labels.data.push_back(std::uint8_t(c));
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) images.data.push_back(std::uint8_t(noise(rng) + (y == 2 + 2 * c ? 190 : 0)));
  }
  tapegrad::write_idx((dir / (split + "-images-idx3-ubyte.gz")).string(), images);
  tapegrad::write_idx((dir / (split + "-labels-idx1-ubyte.gz")).string(), labels);
}

// A tiny data set in dir/data: `train` and `test` images, drawn from `seed`.
inline void write_tiny_data_set(const std::filesystem::path& dir, std::size_t train, std::size_t test, unsigned seed) {
  std::filesystem::create_directories(dir / "data");
  write_tiny_fashion(dir / "data", "train", train, seed);
  write_tiny_fashion(dir / "data", "t10k", test, seed + 1);
}

// A CSV text without the columns numbered in `columns` (0-based): the times and memory figures of
// a training program's metrics, which differ between runs of the same numbers.
inline std::string without_columns(const std::string& csv, const std::vector<std::size_t>& columns) {
  std::string out, line;
  std::istringstream in(csv);
  while (std::getline(in, line)) {
    std::size_t column = 0, begin = 0;
    std::string kept;
    bool first = true;
    for (std::size_t end = 0; end <= line.size(); ++end) {
      if (end < line.size() && line[end] != ',') continue;
      if (std::find(columns.begin(), columns.end(), column) == columns.end()) {
        kept += (first ? "" : ",") + line.substr(begin, end - begin);
        first = false;
      }
      ++column;
      begin = end + 1;
    }
    out += kept + '\n';
  }
  return out;
}

// A file's bytes ("" where it is missing).
inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What differs between the outputs of two Fashion-MNIST runs of the same numbers, which must be
// the same bit for bit: every parameter file (LeNet-5 has 10), the loss curve, and the metrics
// without their times and memory figures. Empty when nothing does.
inline std::vector<std::string> output_differences(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::vector<std::string> differences;
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(a / "parameters")) {
    const std::filesystem::path name = std::filesystem::path("parameters") / entry.path().filename();
    if (file_bytes(a / name) != file_bytes(b / name)) differences.push_back(name.string() + " differs");
    ++files;
  }
  if (files != 10) differences.push_back(std::to_string(files) + " parameter files, expected 10");
  if (file_bytes(a / "loss.dat") != file_bytes(b / "loss.dat")) differences.push_back("loss.dat differs");
  if (without_columns(file_bytes(a / "metrics.csv"), {5, 6}) != without_columns(file_bytes(b / "metrics.csv"), {5, 6}))
    differences.push_back("metrics.csv differs (times and memory aside)");
  return differences;
}

#endif
