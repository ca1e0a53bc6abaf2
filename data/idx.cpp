#include "idx.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <zlib.h>

#include "../core/errors.hpp"

namespace tapegrad {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("read_idx: '" + path + "' " + what);
}

std::string read_bytes(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) fail(path, std::string("cannot be opened: ") + std::strerror(errno));
  char magic[2] = {0, 0};
  probe.read(magic, 2);
  const bool gz = probe.gcount() == 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
                  static_cast<unsigned char>(magic[1]) == 0x8b;
  if (!gz) {
    probe.clear();
    probe.seekg(0);
    return std::string(std::istreambuf_iterator<char>(probe), {});
  }
  probe.close();
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, "cannot be opened by zlib");
  std::string out;
  char buffer[1 << 16];
  while (true) {
    const int n = gzread(f, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(f, &code);
      gzclose(f);
      fail(path, "is corrupted (gzip: " + message + ")");
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  // gzread stops quietly at a truncated stream; zlib says so through gzerror.
  int code = 0;
  const std::string message = gzerror(f, &code);
  const bool truncated = code != Z_OK && code != Z_STREAM_END;
  gzclose(f);
  if (truncated) fail(path, "is truncated or corrupted (gzip: " + message + ")");
  return out;
}

std::uint32_t big_endian(const std::string& s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) << 24 | std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 16 |
         std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 8 | std::uint32_t(static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  const std::string bytes = read_bytes(path);
  if (bytes.size() < 4) fail(path, "is too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0) fail(path, "does not start with an IDX magic number (00 00 type rank)");
  if (static_cast<unsigned char>(bytes[2]) != 0x08)
    fail(path, "holds IDX element type 0x" + std::to_string(static_cast<unsigned char>(bytes[2])) +
                   ", only unsigned bytes (0x08) are supported");
  const std::size_t rank = static_cast<unsigned char>(bytes[3]);
  if (rank == 0 || rank > 4) fail(path, "has an IDX rank of " + std::to_string(rank) + " (expected 1 to 4)");
  if (bytes.size() < 4 + 4 * rank) fail(path, "is truncated inside its header");
  IdxArray a;
  std::size_t count = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t d = big_endian(bytes, 4 + 4 * k);
    if (d > (std::size_t(1) << 32) || (d != 0 && count > (std::size_t(1) << 40) / d))
      fail(path, "has implausible dimensions");
    a.dims.push_back(d);
    count *= d;
  }
  const std::size_t data = bytes.size() - (4 + 4 * rank);
  if (data != count) {
    std::string dims;
    for (std::size_t d : a.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
    fail(path, std::string(data < count ? "is truncated" : "has trailing bytes") + ": its header says " + dims + " = " +
                   std::to_string(count) + " bytes of data, the file holds " + std::to_string(data));
  }
  a.data.assign(bytes.begin() + std::ptrdiff_t(4 + 4 * rank), bytes.end());
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
