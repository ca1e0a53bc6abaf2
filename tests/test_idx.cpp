// The IDX reader on small files the test writes, good and broken.
#include "helpers.hpp"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

tg::IdxArray images(std::size_t n, std::size_t rows = 28, std::size_t cols = 28) {
  tg::IdxArray a;
  a.dims = {n, rows, cols};
  a.data.resize(n * rows * cols);
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::uint8_t(i * 7 % 256);
  return a;
}

tg::IdxArray labels(std::size_t n, std::uint8_t top = 9) {
  tg::IdxArray a;
  a.dims = {n};
  for (std::size_t i = 0; i < n; ++i) a.data.push_back(std::uint8_t(i % (top + 1u)));
  return a;
}

void write_fashion(const TempDir& dir, const std::string& split, const tg::IdxArray& im, const tg::IdxArray& lb) {
  tg::write_idx(dir / (split + "-images-idx3-ubyte.gz"), im);
  tg::write_idx(dir / (split + "-labels-idx1-ubyte.gz"), lb);
}
}  // namespace

TEST_CASE("IDX files round trip, plain and gzip-compressed") {
  TempDir dir;
  const tg::IdxArray a = images(3, 4, 5);
  for (const char* name : {"a.idx", "a.idx.gz"}) {
    tg::write_idx(dir / name, a);
    const tg::IdxArray b = tg::read_idx(dir / name);
    CHECK(b.dims == a.dims);
    CHECK(b.data == a.data);
  }
  CHECK(read_bytes(dir / "a.idx").substr(0, 8) == std::string("\0\0\x08\x03\0\0\0\x03", 8));
}

TEST_CASE("Fashion-MNIST loading: scaled images, labels, limit") {
  TempDir dir;
  write_fashion(dir, "train", images(10), labels(10));
  write_fashion(dir, "t10k", images(4), labels(4));
  const tg::ImageDataset train = tg::load_fashion_mnist(dir.path.string(), true);
  CHECK(train.images.shape()[0] == 10);
  CHECK(train.images.shape()[1] == 1);
  CHECK(train.images(0, 0, 0, 1) == doctest::Approx(7.0f / 255.0f));
  CHECK(train.labels[9] == 9);
  CHECK(tg::load_fashion_mnist(dir.path.string(), true, 6).labels.size() == 6);
  CHECK(tg::load_fashion_mnist(dir.path.string(), false).labels.size() == 4);
}

TEST_CASE("broken IDX files: missing, truncated, corrupted, mismatched") {
  TempDir dir;
  const std::string p = dir / "x.idx";
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains(("read_idx: '" + p + "' cannot be opened").c_str()), tg::IoError);

  tg::write_idx(p, images(2, 3, 3));
  const std::string good = read_bytes(p);
  std::ofstream(p, std::ios::binary) << good.substr(0, good.size() - 4);
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains("is truncated: its header says 2 x 3 x 3 = 18 bytes of data, the file holds 14"),
                       tg::IoError);
  std::ofstream(p, std::ios::binary) << good + "xx";
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains("has trailing bytes"), tg::IoError);
  std::ofstream(p, std::ios::binary) << std::string("\x01\x02\x08\x03", 4) + good.substr(4);
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains("does not start with an IDX magic number"), tg::IoError);
  std::ofstream(p, std::ios::binary) << std::string("\0\0\x0d\x03", 4) + good.substr(4);
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains("holds IDX element type 0x0d, only unsigned bytes (0x08) are supported"),
                       tg::IoError);
  std::ofstream(p, std::ios::binary) << good.substr(0, 9);
  CHECK_THROWS_WITH_AS(tg::read_idx(p), doctest::Contains("is truncated inside its header"), tg::IoError);

  // gzip: cut short, and damaged inside the compressed stream.
  const std::string gz = dir / "x.idx.gz";
  tg::write_idx(gz, images(20));
  const std::string packed = read_bytes(gz);
  std::ofstream(gz, std::ios::binary) << packed.substr(0, packed.size() / 2);
  CHECK_THROWS_WITH_AS(tg::read_idx(gz), doctest::Contains(("'" + gz + "' is truncated or corrupted").c_str()), tg::IoError);
  std::string damaged = packed;
  for (std::size_t i = 20; i < 60; ++i) damaged[i] = char(damaged[i] ^ 0x55);
  std::ofstream(gz, std::ios::binary) << damaged;
  CHECK_THROWS_AS(tg::read_idx(gz), tg::IoError);

  // A compressed file whose data runs past what its header announces: read no further than that.
  tg::IdxArray big = images(1, 3, 3);
  big.data.resize(9 + 100000, 0);
  tg::write_idx(gz, big);
  CHECK_THROWS_WITH_AS(tg::read_idx(gz), doctest::Contains("has trailing bytes after the 1 x 3 x 3 = 9 bytes"), tg::IoError);

  // A forged header announcing gigabytes over a few bytes of data: an error, with memory that
  // grows with the bytes read, not with the header (found by the libFuzzer target).
  std::ofstream(p, std::ios::binary) << std::string("\0\0\x08\x03\x31\0\0\x02\0\0\0\x03\0\0\0\x02", 16) + "abcdefghijklm";
  CHECK_THROWS_WITH_AS(tg::read_idx(p),
                       doctest::Contains("is truncated: its header says 822083586 x 3 x 2 = 4932501516 bytes of data, the file holds 13"),
                       tg::IoError);

  // Images against labels.
  write_fashion(dir, "train", images(5), labels(4));
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true), doctest::Contains("holds 5 images but"), tg::IoError);
  write_fashion(dir, "train", images(11), labels(11, 10));
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true), doctest::Contains("has label 10 at index 10") ,
                       tg::IoError);
  write_fashion(dir, "train", labels(5), labels(5));
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true), doctest::Contains("has 1 dimensions, images need 3"),
                       tg::IoError);
  write_fashion(dir, "train", images(3, 32, 32), labels(3));
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true),
                       doctest::Contains("holds images of 32 x 32 pixels; Fashion-MNIST's are 28 x 28"), tg::IoError);
  write_fashion(dir, "train", images(0), labels(0));
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist(dir.path.string(), true), doctest::Contains("holds no images"), tg::IoError);
  CHECK_THROWS_WITH_AS(tg::load_fashion_mnist((dir / "nowhere"), true),
                       doctest::Contains("apt-get install -y dataset-fashion-mnist, or pass --data DIR"), tg::IoError);
}
