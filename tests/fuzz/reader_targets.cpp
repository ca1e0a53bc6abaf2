#include "reader_targets.hpp"

#include <fstream>
#include <unistd.h>

#include <tapegrad/tapegrad.hpp>
#include <tapegrad/io/idx.hpp>

namespace tapegrad::fuzz {
namespace {

std::string write_input(const std::uint8_t* data, std::size_t size, const std::string& dir,
                        const char* extension) {
  const std::string path = dir + "/tapegrad-fuzz-" + std::to_string(::getpid()) + extension;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs read(path); true if it returned, false if it threw one of tapegrad's input errors.
template <class Read>
bool accepts(const std::string& path, Read read) {
  try {
    read(path);
    return true;
  } catch (const IoError&) {
  } catch (const ShapeError&) {
  } catch (const ValueError&) {
  }
  return false;
}

}  // namespace

bool read_npy_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".npy");
  const bool as_float = accepts(path, [](const std::string& p) { load_npy<float>(p); });
  const bool as_double = accepts(path, [](const std::string& p) { load_npy<double>(p); });
  return as_float || as_double;
}

bool read_npz_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".npz");
  const bool as_float = accepts(path, [](const std::string& p) { load_npz<float>(p); });
  const bool as_double = accepts(path, [](const std::string& p) { load_npz<double>(p); });
  return as_float || as_double;
}

bool read_idx_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".idx");
  return accepts(path, [](const std::string& p) { read_idx(p); });
}

}  // namespace tapegrad::fuzz
