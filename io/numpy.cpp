#include "numpy.hpp"

#include "../ops/kernels.hpp"

#include <atomic>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>

#include <unistd.h>
#include <zlib.h>

namespace tapegrad {

namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

[[noreturn]] void io_error(const std::string& op, const std::string& path, const std::string& what) {
  throw IoError(op + ": " + quoted(path) + " " + what);
}

std::string read_file(const std::string& op, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error(op, path, std::string("cannot be opened: ") + std::strerror(errno));
  std::ostringstream data;
  data << in.rdbuf();
  if (in.bad()) io_error(op, path, "could not be read");
  return data.str();
}

// Writes `bytes` to a temporary file beside `path`, flushes it to disk, and renames it over `path`.
void write_file_atomically(const std::string& op, const std::string& path, const std::string& bytes) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) io_error(op, path, std::string("cannot be written: ") + std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                       ::fsync(::fileno(f)) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    io_error(op, path, std::string("could not be written: ") + std::strerror(saved_errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    io_error(op, path, std::string("could not be replaced: ") + std::strerror(e));
  }
}

// The dtypes read and written: float32 and float64 (parameters, state), uint64 (a checkpoint's
// counters and random states).
template <class T>
const char* descr() { return std::is_integral_v<T> ? "<u8" : sizeof(T) == 4 ? "<f4" : "<f8"; }
template <class T>
const char* dtype_name() { return std::is_integral_v<T> ? "uint64" : sizeof(T) == 4 ? "float32" : "float64"; }

bool little_endian_host() {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// ---- .npy -------------------------------------------------------------------------------------

template <class T>
std::string encode_npy(const xt::xarray<T>& a) {
  std::string shape = "(";
  for (std::size_t k = 0; k < a.dimension(); ++k) shape += std::to_string(a.shape()[k]) + (a.dimension() == 1 ? "," : k + 1 < a.dimension() ? ", " : "");
  shape += ")";
  std::string header = "{'descr': '" + std::string(descr<T>()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const std::size_t offset = out.size();
  out.resize(offset + a.size() * sizeof(T));
  if (a.size() > 0) std::memcpy(&out[offset], a.data(), a.size() * sizeof(T));
  return out;
}

// The value of 'key' in a .npy header dict, up to the next top-level ',' or '}'.
std::string header_field(const std::string& header, const std::string& key, bool& found) {
  const std::size_t at = header.find("'" + key + "'");
  found = at != std::string::npos;
  if (!found) return "";
  std::size_t i = header.find(':', at);
  if (i == std::string::npos) {
    found = false;
    return "";
  }
  ++i;
  int depth = 0;
  std::string value;
  for (; i < header.size(); ++i) {
    const char c = header[i];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    value += c;
  }
  const std::size_t b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t");
  return b == std::string::npos ? "" : value.substr(b, e - b + 1);
}

template <class T>
xt::xarray<T> decode_npy(const std::string& op, const std::string& where, const std::string& bytes) {
  auto bad = [&](const std::string& what) { throw IoError(op + ": " + where + " is not a valid .npy file: " + what); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) bad("it does not start with the .npy magic string");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = std::size_t(static_cast<unsigned char>(bytes[8])) | std::size_t(static_cast<unsigned char>(bytes[9])) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad("truncated header");
    for (int k = 0; k < 4; ++k) header_len |= std::size_t(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    start = 12;
  } else {
    bad("unsupported format version " + std::to_string(major));
  }
  if (bytes.size() < start + header_len) bad("truncated header (" + std::to_string(bytes.size()) + " bytes)");
  const std::string header = bytes.substr(start, header_len);
  bool has_descr, has_order, has_shape;
  std::string d = header_field(header, "descr", has_descr);
  const std::string order = header_field(header, "fortran_order", has_order);
  std::string shape_text = header_field(header, "shape", has_shape);
  if (!has_descr || !has_order || !has_shape) bad("its header lacks 'descr', 'fortran_order' or 'shape': " + header);
  if (d.size() >= 2 && (d.front() == '\'' || d.front() == '"')) d = d.substr(1, d.size() - 2);
  if (d.size() != 3 || (d[0] != '<' && d[0] != '>' && d[0] != '=' && d[0] != '|'))
    bad("unsupported dtype '" + d + "'");
  const std::string expected = std::string(1, std::is_integral_v<T> ? 'u' : 'f') + std::to_string(sizeof(T));
  if (d.substr(1) != expected)
    throw IoError(op + ": " + where + " has dtype '" + d + "', expected " + dtype_name<T>() + " ('" + descr<T>() + "')");
  if (order != "False" && order != "True") bad("fortran_order is '" + order + "'");
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')') bad("shape is '" + shape_text + "'");
  Shape shape;
  std::size_t count = 1;
  std::stringstream dims(shape_text.substr(1, shape_text.size() - 2));
  for (std::string item; std::getline(dims, item, ',');) {
    const std::size_t b = item.find_first_not_of(" L"), e = item.find_last_not_of(" L");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 15) bad("shape is '" + shape_text + "'");
    shape.push_back(std::stoull(item));
  }
  try {
    count = detail::checked_count(op, shape);
  } catch (const ShapeError&) {
    bad("shape " + shape_text + " is too large");
  }
  const std::size_t data = start + header_len, need = count * sizeof(T);
  if (bytes.size() - data != need)
    throw IoError(op + ": " + where + " is " + (bytes.size() - data < need ? "truncated" : "longer than its header says") +
                  ": shape " + shape_str(shape) + " of " + dtype_name<T>() + " needs " + std::to_string(need) +
                  " data bytes, the file holds " + std::to_string(bytes.size() - data));
  const bool fortran = order == "True";
  Shape stored = shape;
  if (fortran) std::reverse(stored.begin(), stored.end());
  xt::xarray<T> a = xt::xarray<T>::from_shape(stored);
  if (need > 0) std::memcpy(a.data(), bytes.data() + data, need);
  const bool big = d[0] == '>' || (d[0] == '=' && !little_endian_host());
  if (big == little_endian_host()) {
    for (auto& v : a) {
      unsigned char* p = reinterpret_cast<unsigned char*>(&v);
      std::reverse(p, p + sizeof(T));
    }
  }
  if (fortran && shape.size() > 1) return xt::xarray<T>(xt::transpose(a));
  return a;
}

// ---- .npz (zip) ------------------------------------------------------------------------------

void put16(std::string& s, std::uint32_t v) {
  s += char(v & 0xff);
  s += char((v >> 8) & 0xff);
}
void put32(std::string& s, std::uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}
std::uint32_t get16(const std::string& s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) | std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 8;
}
std::uint32_t get32(const std::string& s, std::size_t at) { return get16(s, at) | get16(s, at + 2) << 16; }

std::uint32_t crc_of(const std::string& data) {
  return static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

// An uncompressed zip archive of (name, content) entries.
std::string zip_stored(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, central;
  for (const auto& entry : entries) {
    const std::string& name = entry.first;   // not structured bindings: C++17 lambdas can't capture them
    const std::string& data = entry.second;
    if (data.size() >= 0xffffffffu || out.size() >= 0xffffffffu)
      io_error("save_parameters", path, "would exceed 4 GiB, which this writer does not support");
    const std::uint32_t crc = crc_of(data), offset = static_cast<std::uint32_t>(out.size());
    auto header = [&](std::string& s, bool local) {
      put32(s, local ? 0x04034b50 : 0x02014b50);
      if (!local) put16(s, 20);            // version made by
      put16(s, 20);                        // version needed
      put16(s, 0);                         // flags
      put16(s, 0);                         // stored
      put16(s, 0);                         // time
      put16(s, 0x21);                      // date: 1980-01-01
      put32(s, crc);
      put32(s, std::uint32_t(data.size()));
      put32(s, std::uint32_t(data.size()));
      put16(s, std::uint32_t(name.size()));
      put16(s, 0);                         // extra length
      if (!local) {
        put16(s, 0);                       // comment length
        put16(s, 0);                       // disk
        put16(s, 0);                       // internal attributes
        put32(s, 0);                       // external attributes
        put32(s, offset);
      }
      s += name;
    };
    header(out, true);
    out += data;
    header(central, false);
  }
  const std::uint32_t central_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, std::uint32_t(entries.size()));
  put16(out, std::uint32_t(entries.size()));
  put32(out, std::uint32_t(central.size()));
  put32(out, central_offset);
  put16(out, 0);
  return out;
}

std::string inflate_raw(const std::string& op, const std::string& where, const std::string& in, std::size_t size) {
  // Deflate cannot expand more than about 1032:1: a larger claimed size is a forged header, refused
  // before it costs an allocation.
  if (size > in.size() * 1032 + 1024)
    throw IoError(op + ": " + where + " is corrupted: " + std::to_string(in.size()) +
                  " compressed bytes cannot hold the " + std::to_string(size) + " bytes its header claims");
  std::string out(size, '\0');
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw IoError(op + ": " + where + ": zlib could not start");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const std::size_t produced = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != size)
    throw IoError(op + ": " + where + " is corrupted: its compressed data does not inflate to " + std::to_string(size) + " bytes");
  return out;
}

// The entries of a zip archive, checked (bounds and CRC).
std::vector<std::pair<std::string, std::string>> unzip(const std::string& op, const std::string& path) {
  const std::string bytes = read_file(op, path);
  auto bad = [&](const std::string& what) -> void { io_error(op, path, "is not a valid .npz archive: " + what); };
  if (bytes.size() < 22) bad("too short (" + std::to_string(bytes.size()) + " bytes)");
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = bytes.size() > 22 + 65535 ? bytes.size() - 22 - 65535 : 0;
  for (std::size_t at = bytes.size() - 22 + 1; at-- > lowest;)
    if (get32(bytes, at) == 0x06054b50) {
      eocd = at;
      break;
    }
  if (eocd == std::string::npos) bad("no end-of-central-directory record (truncated?)");
  const std::size_t count = get16(bytes, eocd + 10), cd_size = get32(bytes, eocd + 12), cd_offset = get32(bytes, eocd + 16);
  if (cd_offset == 0xffffffffu || count == 0xffff) bad("zip64 archives are not supported");
  if (cd_offset + cd_size > eocd) bad("its central directory lies outside the file (truncated?)");
  std::vector<std::pair<std::string, std::string>> entries;
  std::size_t at = cd_offset;
  for (std::size_t i = 0; i < count; ++i) {
    if (at + 46 > eocd || get32(bytes, at) != 0x02014b50) bad("central directory entry " + std::to_string(i) + " is damaged");
    const std::uint32_t method = get16(bytes, at + 10), crc = get32(bytes, at + 16);
    const std::size_t packed = get32(bytes, at + 20), size = get32(bytes, at + 24);
    const std::size_t name_len = get16(bytes, at + 28), extra_len = get16(bytes, at + 30), comment_len = get16(bytes, at + 32);
    const std::size_t local = get32(bytes, at + 42);
    if (at + 46 + name_len > eocd) bad("central directory entry " + std::to_string(i) + " is damaged");
    const std::string name = bytes.substr(at + 46, name_len);
    at += 46 + name_len + extra_len + comment_len;
    const std::string where = quoted(path) + " entry '" + name + "'";
    // The local header repeats the name: a damaged byte in either copy shows as a difference.
    if (local + 30 > bytes.size() || get32(bytes, local) != 0x04034b50 || get16(bytes, local + 26) != name_len ||
        bytes.compare(std::min(local + 30, bytes.size()), name_len, name) != 0)
      throw IoError(op + ": " + where + " has a damaged local header");
    const std::size_t data = local + 30 + get16(bytes, local + 26) + get16(bytes, local + 28);
    if (data + packed > bytes.size()) throw IoError(op + ": " + where + " is truncated");
    std::string content = bytes.substr(data, packed);
    if (method == 8) {
      content = inflate_raw(op, where, content, size);
    } else if (method != 0 || packed != size) {
      throw IoError(op + ": " + where + " uses compression method " + std::to_string(method) +
                    " (only stored and deflate are supported)");
    }
    if (crc_of(content) != crc) throw IoError(op + ": " + where + " is corrupted (CRC mismatch)");
    entries.emplace_back(name, std::move(content));
  }
  return entries;
}

}  // namespace

template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array) {
  write_file_atomically("save_npy", path, encode_npy(array));
}

template <class T>
xt::xarray<T> load_npy(const std::string& path) {
  return decode_npy<T>("load_npy", quoted(path), read_file("load_npy", path));
}

namespace {
using Entries = std::vector<std::pair<std::string, std::string>>;

// Named arrays as "<prefix><name>.npy" entries of an archive.
template <class T>
void add_arrays(Entries& entries, const std::string& prefix, const StateDict<T>& arrays) {
  for (const auto& [name, value] : arrays) entries.emplace_back(prefix + name + ".npy", encode_npy(value));
}

// An archive entry's array name: the entry without its ".npy".
std::string array_name(const std::string& entry) {
  return entry.size() > 4 && entry.compare(entry.size() - 4, 4, ".npy") == 0 ? entry.substr(0, entry.size() - 4) : entry;
}
}  // namespace

template <class T>
void save_npz(const std::string& path, const StateDict<T>& arrays) {
  Entries entries;
  add_arrays(entries, "", arrays);
  write_file_atomically("save_npz", path, zip_stored(path, entries));
}

template <class T>
void save_parameters(const Module<T>& module, const std::string& path) {
  Entries entries;
  add_arrays(entries, "", module.state_dict());
  write_file_atomically("save_parameters", path, zip_stored(path, entries));
}

template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const Optimizer<T>& optimizer, const RunState& state) {
  Entries entries;
  add_arrays(entries, "model/", model.state_dict());
  add_arrays(entries, "optimizer/", optimizer.state_dict());
  for (const auto& [name, value] : state.counters)
    entries.emplace_back("position/" + name + ".npy", encode_npy(xt::xarray<std::uint64_t>(value)));
  for (const auto& [name, value] : state.values)
    entries.emplace_back("values/" + name + ".npy", encode_npy(xt::xarray<double>(value)));
  for (const auto& [name, generator] : state.generators) {
    const std::vector<std::uint64_t> words = generator.state();
    auto array = xt::xarray<std::uint64_t>::from_shape({words.size()});
    std::copy(words.begin(), words.end(), array.begin());
    entries.emplace_back("random/" + name + ".npy", encode_npy(array));
  }
  write_file_atomically("save_checkpoint", path, zip_stored(path, entries));
}

template <class T>
RunState load_checkpoint(const std::string& path, Module<T>& model, Optimizer<T>& optimizer) {
  const std::string op = "load_checkpoint";
  StateDict<T> model_state;
  StateDict<double> optimizer_state;
  RunState state;
  for (const auto& item : unzip(op, path)) {
    // Named, not bound: the lambda below captures it (C++17 lambdas cannot capture a binding).
    const std::string &entry = item.first, &content = item.second;
    const std::string where = quoted(path) + " entry '" + entry + "'";
    const std::size_t slash = entry.find('/');
    const std::string stem = array_name(entry);
    const bool npy = stem.size() != entry.size();
    const std::string part = slash == std::string::npos ? "" : entry.substr(0, slash);
    const std::string name = npy && slash != std::string::npos ? stem.substr(slash + 1) : "";
    const auto scalar = [&](auto v) {
      if (v.dimension() != 0) io_error(op, path, "entry '" + entry + "' has shape " + shape_str(Shape(v.shape().begin(), v.shape().end())) + ", not ()");
      return v();
    };
    const std::string kind = name.empty() ? "" : part;
    if (kind == "model") {
      model_state.emplace_back(name, decode_npy<T>(op, where, content));
    } else if (kind == "optimizer") {
      optimizer_state.emplace_back(name, decode_npy<double>(op, where, content));
    } else if (kind == "position") {
      state.counters[name] = scalar(decode_npy<std::uint64_t>(op, where, content));
    } else if (kind == "values") {
      state.values[name] = scalar(decode_npy<double>(op, where, content));
    } else if (kind == "random") {
      const xt::xarray<std::uint64_t> words = decode_npy<std::uint64_t>(op, where, content);
      if (words.dimension() != 1)
        io_error(op, path, "entry '" + entry + "' has shape " + shape_str(Shape(words.shape().begin(), words.shape().end())) +
                               ", not (words,)");
      try {
        state.generators[name].set_state(std::vector<std::uint64_t>(words.begin(), words.end()));
      } catch (const ValueError& e) {
        io_error(op, path, "entry '" + entry + "' is not a generator's state: " + e.what());
      }
    } else {
      io_error(op, path, "has an entry '" + entry + "' that is not model/, optimizer/, position/, values/ or random/<name>.npy");
    }
  }
  // All or nothing: the model is set back if the optimizer's state does not fit.
  const StateDict<T> before = model.state_dict();
  try {
    model.load_state_dict(model_state);
    try {
      optimizer.load_state_dict(optimizer_state);
    } catch (...) {
      model.load_state_dict(before);
      throw;
    }
  } catch (const ValueError& e) {
    io_error(op, path, std::string("does not fit: ") + e.what());
  }
  return state;
}

template <class T>
std::map<std::string, xt::xarray<T>> load_npz(const std::string& path) {
  std::map<std::string, xt::xarray<T>> arrays;
  for (const auto& [entry, content] : unzip("load_npz", path)) {
    arrays.emplace(array_name(entry), decode_npy<T>("load_npz", quoted(path) + " entry '" + entry + "'", content));
  }
  return arrays;
}

template <class T>
void load_parameters(Module<T>& module, const std::string& path) {
  const std::string op = "load_parameters";
  std::map<std::string, std::string> raw;
  for (auto& [entry, content] : unzip(op, path)) {
    raw.emplace(array_name(entry), std::move(content));
  }
  auto params = module.named_parameters();
  for (auto& buffer : module.named_buffers()) params.push_back(buffer);
  // Everything is read and checked before any parameter changes.
  std::vector<xt::xarray<T>> values;
  for (const auto& [name, p] : params) {
    auto it = raw.find(name);
    if (it == raw.end()) io_error(op, path, "has no entry for parameter or buffer '" + name + "' (" + name + ".npy)");
    xt::xarray<T> v = decode_npy<T>(op, quoted(path) + " entry '" + name + ".npy'", it->second);
    const Shape got(v.shape().begin(), v.shape().end());
    if (got != p.shape())
      io_error(op, path, "entry '" + name + "' has shape " + shape_str(got) + ", the module's has shape " +
                             shape_str(p.shape()));
    values.push_back(std::move(v));
    raw.erase(it);
  }
  if (!raw.empty()) io_error(op, path, "has an entry '" + raw.begin()->first + "' that matches no parameter or buffer of the module");
  for (std::size_t i = 0; i < params.size(); ++i) params[i].second.assign(values[i]);
}

template void save_npy(const std::string&, const xt::xarray<float>&);
template void save_npy(const std::string&, const xt::xarray<double>&);
template xt::xarray<float> load_npy(const std::string&);
template xt::xarray<double> load_npy(const std::string&);
template void save_npz(const std::string&, const StateDict<float>&);
template void save_npz(const std::string&, const StateDict<double>&);
template void save_checkpoint(const std::string&, const Module<float>&, const Optimizer<float>&, const RunState&);
template void save_checkpoint(const std::string&, const Module<double>&, const Optimizer<double>&, const RunState&);
template RunState load_checkpoint(const std::string&, Module<float>&, Optimizer<float>&);
template RunState load_checkpoint(const std::string&, Module<double>&, Optimizer<double>&);
template void save_parameters(const Module<float>&, const std::string&);
template void save_parameters(const Module<double>&, const std::string&);
template void load_parameters(Module<float>&, const std::string&);
template void load_parameters(Module<double>&, const std::string&);
template std::map<std::string, xt::xarray<float>> load_npz(const std::string&);
template std::map<std::string, xt::xarray<double>> load_npz(const std::string&);

}  // namespace tapegrad
