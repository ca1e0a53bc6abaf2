#include "idx.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <zlib.h>

#include "../core/errors.hpp"

namespace tapegrad {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("read_idx: '" + path + "' " + what);
}

// Reads a file plain or through zlib (gzip, detected by its magic bytes), a requested number of
// bytes at a time: the header bounds how much is read, so a small file that inflates to gigabytes
// is refused instead of exhausting memory.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail(path, std::string("cannot be opened: ") + std::strerror(errno));
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    gz_ = probe.gcount() == 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
          static_cast<unsigned char>(magic[1]) == 0x8b;
    if (gz_) {
      gz_file_ = gzopen(path.c_str(), "rb");
      if (!gz_file_) fail(path, "cannot be opened by zlib");
    } else {
      plain_.open(path, std::ios::binary);
    }
  }
  ~ByteSource() {
    if (gz_file_) gzclose(gz_file_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Up to n bytes; fewer only at the end of the data. Memory grows with the bytes actually read,
  // a chunk at a time, never with what a (possibly forged) header announces.
  std::string read(std::size_t n) {
    constexpr std::size_t chunk = std::size_t(1) << 20;
    std::string out;
    std::size_t got = 0;
    while (got < n) {
      const std::size_t want = std::min(n - got, chunk);
      out.resize(got + want);
      std::size_t step = 0;
      if (gz_) {
        const int r = gzread(gz_file_, &out[got], static_cast<unsigned>(want));
        if (r < 0) {
          int code = 0;
          fail(path_, std::string("is corrupted (gzip: ") + gzerror(gz_file_, &code) + ")");
        }
        step = static_cast<std::size_t>(r);
      } else {
        plain_.read(&out[got], static_cast<std::streamsize>(want));
        step = static_cast<std::size_t>(plain_.gcount());
      }
      got += step;
      if (step < want) break;
    }
    out.resize(got);
    if (gz_ && got < n) {
      // gzread stops quietly at a truncated stream; zlib says so through gzerror.
      int code = 0;
      const std::string message = gzerror(gz_file_, &code);
      if (code != Z_OK && code != Z_STREAM_END) fail(path_, "is truncated or corrupted (gzip: " + message + ")");
    }
    return out;
  }

 private:
  std::string path_;
  bool gz_ = false;
  gzFile gz_file_ = nullptr;
  std::ifstream plain_;
};

std::uint32_t big_endian(const std::string& s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) << 24 | std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 16 |
         std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 8 | std::uint32_t(static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  ByteSource source(path);
  const std::string head = source.read(4);
  if (head.size() < 4) fail(path, "is too short for an IDX header (" + std::to_string(head.size()) + " bytes)");
  if (head[0] != 0 || head[1] != 0) fail(path, "does not start with an IDX magic number (00 00 type rank)");
  if (static_cast<unsigned char>(head[2]) != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", static_cast<unsigned char>(head[2]));
    fail(path, std::string("holds IDX element type ") + type + ", only unsigned bytes (0x08) are supported");
  }
  const std::size_t rank = static_cast<unsigned char>(head[3]);
  if (rank == 0 || rank > 4) fail(path, "has an IDX rank of " + std::to_string(rank) + " (expected 1 to 4)");
  const std::string dims = source.read(4 * rank);
  if (dims.size() < 4 * rank) fail(path, "is truncated inside its header");
  IdxArray a;
  std::size_t count = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t d = big_endian(dims, 4 * k);
    if (d > (std::size_t(1) << 32) || (d != 0 && count > (std::size_t(1) << 40) / d))
      fail(path, "has implausible dimensions");
    a.dims.push_back(d);
    count *= d;
  }
  // The data, and one byte more to tell trailing bytes from an exact fit.
  std::string data = source.read(count + 1);
  if (data.size() != count) {
    std::string shape;
    for (std::size_t d : a.dims) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    if (data.size() < count)
      fail(path, "is truncated: its header says " + shape + " = " + std::to_string(count) +
                     " bytes of data, the file holds " + std::to_string(data.size()));
    fail(path, "has trailing bytes after the " + shape + " = " + std::to_string(count) + " bytes its header announces");
  }
  a.data.assign(data.begin(), data.end());
  return a;
}

void write_idx(const std::string& path, const IdxArray& array) {
  std::string bytes{'\0', '\0', '\x08', static_cast<char>(array.dims.size())};
  for (std::size_t d : array.dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes += static_cast<char>((d >> shift) & 0xff);
  bytes.append(array.data.begin(), array.data.end());
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    const bool ok = f && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == int(bytes.size());
    if (!f || gzclose(f) != Z_OK || !ok) throw IoError("write_idx: '" + path + "' could not be written");
    return;
  }
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw IoError("write_idx: '" + path + "' could not be written");
}

ImageDataset load_fashion_mnist(const std::string& dir, bool train, std::size_t limit) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz", labels_path = prefix + "-labels-idx1-ubyte.gz";
  for (const std::string& p : {images_path, labels_path}) {
    if (std::ifstream(p).good()) continue;
    throw IoError("load_fashion_mnist: '" + p + "' cannot be opened: " + std::strerror(errno) +
                  "; the Fashion-MNIST files come from Debian's dataset-fashion-mnist package (into " +
                  fashion_mnist_default_dir + "): apt-get install -y dataset-fashion-mnist, or pass --data DIR");
  }
  const IdxArray images = read_idx(images_path), labels = read_idx(labels_path);
  if (images.dims.size() != 3)
    throw IoError("load_fashion_mnist: '" + images_path + "' has " + std::to_string(images.dims.size()) +
                  " dimensions, images need 3 (count, rows, cols)");
  if (labels.dims.size() != 1)
    throw IoError("load_fashion_mnist: '" + labels_path + "' has " + std::to_string(labels.dims.size()) +
                  " dimensions, labels need 1");
  if (images.dims[0] != labels.dims[0])
    throw IoError("load_fashion_mnist: '" + images_path + "' holds " + std::to_string(images.dims[0]) + " images but '" +
                  labels_path + "' holds " + std::to_string(labels.dims[0]) + " labels");
  if (images.dims[0] == 0) throw IoError("load_fashion_mnist: '" + images_path + "' holds no images");
  if (images.dims[1] != 28 || images.dims[2] != 28)
    throw IoError("load_fashion_mnist: '" + images_path + "' holds images of " + std::to_string(images.dims[1]) + " x " +
                  std::to_string(images.dims[2]) + " pixels; Fashion-MNIST's are 28 x 28");
  const std::size_t n = limit > 0 ? std::min(limit, images.dims[0]) : images.dims[0];
  const std::size_t rows = images.dims[1], cols = images.dims[2], pixels = rows * cols;
  ImageDataset d;
  d.images = xt::xarray<float>::from_shape({n, 1, rows, cols});
  for (std::size_t i = 0; i < n * pixels; ++i) d.images.data()[i] = float(images.data[i]) / 255.0f;
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (labels.data[i] >= 10)
      throw IoError("load_fashion_mnist: '" + labels_path + "' has label " + std::to_string(labels.data[i]) +
                    " at index " + std::to_string(i) + " (classes are 0 to 9)");
    d.labels[i] = labels.data[i];
  }
  return d;
}

}  // namespace tapegrad
