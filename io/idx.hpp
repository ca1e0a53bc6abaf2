// IDX files (the MNIST format), plain or gzip-compressed, and the Fashion-MNIST data set.
#ifndef TAPEGRAD_IO_IDX_HPP
#define TAPEGRAD_IO_IDX_HPP

#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad {

// An IDX array of unsigned bytes (type 0x08): its dimensions and its data in row-major order.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads an IDX file of unsigned bytes, gzip-compressed (detected by its magic bytes) or not.
// The magic number, the element type, the dimensions and the exact data size are checked; a
// missing, truncated or corrupted file is a tapegrad::IoError naming the file and the fault.
IdxArray read_idx(const std::string& path);

// Writes an IDX file of unsigned bytes, gzip-compressed when the path ends in ".gz" (tests and
// tools that make small data sets).
void write_idx(const std::string& path, const IdxArray& array);

struct ImageDataset {
  xt::xarray<float> images;           // (N, 1, rows, cols), pixel values / 255
  std::vector<std::size_t> labels;    // N labels in [0, classes)
};

// Where Debian's dataset-fashion-mnist package puts the files.
constexpr const char* fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";

// {train,t10k}-images-idx3-ubyte.gz and {train,t10k}-labels-idx1-ubyte.gz from `dir`: at least
// one image, images of 28 x 28 pixels, labels of 1 dimension, as many labels as images, every
// label below 10. With limit > 0 only
// the first `limit` examples are kept. When a file is missing, the error names the command that
// installs the package.
ImageDataset load_fashion_mnist(const std::string& dir, bool train, std::size_t limit = 0);

}  // namespace tapegrad

#endif
