#include "reader_targets.hpp"

#include <fstream>
#include <stdexcept>
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

// A rejected input's message must name the reader and the file: "op: 'path' ...".
void check_message(const std::string& op, const std::string& path, const std::exception& e) {
  const std::string want = op + ": '" + path + "'";
  if (std::string(e.what()).rfind(want, 0) != 0)
    throw std::logic_error("a rejected input's message does not start with \"" + want + "\": " + e.what());
}

// Runs read(path); true if it returned, false if it threw one of tapegrad's input errors (whose
// message names `op` and the file: anything else escapes as a std::logic_error).
template <class Read>
bool accepts(const std::string& op, const std::string& path, Read read) {
  try {
    read(path);
    return true;
  } catch (const IoError& e) {
    check_message(op, path, e);
  } catch (const ShapeError& e) {
    check_message(op, path, e);
  } catch (const ValueError& e) {
    check_message(op, path, e);
  }
  return false;
}

}  // namespace

bool read_npy_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".npy");
  const bool as_float = accepts("load_npy", path, [](const std::string& p) { load_npy<float>(p); });
  const bool as_double = accepts("load_npy", path, [](const std::string& p) { load_npy<double>(p); });
  return as_float || as_double;
}

bool read_npz_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".npz");
  const bool as_float = accepts("load_npz", path, [](const std::string& p) { load_npz<float>(p); });
  const bool as_double = accepts("load_npz", path, [](const std::string& p) { load_npz<double>(p); });
  return as_float || as_double;
}

bool read_idx_bytes(const std::uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = write_input(data, size, dir, ".idx");
  return accepts("read_idx", path, [](const std::string& p) { read_idx(p); });
}

}  // namespace tapegrad::fuzz
