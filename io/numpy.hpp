// Parameters as NumPy files: single arrays as .npy, a module's named parameters as an .npz archive.
#ifndef TAPEGRAD_IO_NUMPY_HPP
#define TAPEGRAD_IO_NUMPY_HPP

#include <cstdint>
#include <map>
#include <string>

#include "../layers/module.hpp"
#include "../core/random.hpp"
#include "../layers/optim.hpp"

namespace tapegrad {

// Writes a .npy file (format 1.0, little-endian, C order). The file is written beside `path`
// under a temporary name and renamed over it, so an interrupted save never leaves a half-written
// file in place of a good one.
template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array);
// Reads a .npy file of dtype float32 (T = float) or float64 (T = double); C or Fortran order,
// either byte order. An error names the file and what is wrong with it.
template <class T>
xt::xarray<T> load_npy(const std::string& path);

// Writes every named parameter and buffer (Module::state_dict) as "<name>.npy" in an uncompressed
// .npz archive (np.load reads it), atomically as save_npy does.
template <class T>
void save_parameters(const Module<T>& module, const std::string& path);
// Reads an .npz archive written by save_parameters, np.savez or np.savez_compressed. Every
// parameter and buffer of the module must be present with the same dtype and shape, and the
// archive must hold nothing else; otherwise an error names the entry and the mismatch and nothing
// changes.
template <class T>
void load_parameters(Module<T>& module, const std::string& path);
// Writes named arrays (a module's or an optimizer's state_dict) as "<name>.npy" entries of an
// uncompressed .npz archive, atomically as save_npy does.
template <class T>
void save_npz(const std::string& path, const StateDict<T>& arrays);
// What a training run holds beside its model and its optimizer, for save_checkpoint:
// - counters, "position/<name>" (uint64): the epoch, the step, a schedule's position, settings the
//   run must resume with;
// - values, "values/<name>" (float64, bit for bit): a running mean, the sums of an epoch begun;
// - generators, "random/<name>" (uint64: Generator::state): dropout's or sampling's random state,
//   so that the draws continue as if never stopped.
struct RunState {
  std::map<std::string, std::uint64_t> counters;
  std::map<std::string, double> values;
  std::map<std::string, Generator> generators;
};

// A training run's state in one uncompressed .npz archive, written atomically as save_npy does
// (a crash at any instant leaves the previous file or the new one, never a torn one): the model's
// parameters and buffers ("model/<name>", of T), the optimizer's state ("optimizer/<name>",
// float64: Optimizer::state_dict, learning rates included) and the RunState. load_checkpoint reads
// and checks the whole file, then sets the model and the optimizer and returns the RunState; a
// damaged file, a file of another model, or one whose optimizer state does not fit
// (Optimizer::load_state_dict) is an IoError naming the entry and what differs, and changes
// nothing.
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const Optimizer<T>& optimizer,
                     const RunState& state = {});
template <class T>
RunState load_checkpoint(const std::string& path, Module<T>& model, Optimizer<T>& optimizer);
// The arrays of an .npz archive by name (without ".npy").
template <class T>
std::map<std::string, xt::xarray<T>> load_npz(const std::string& path);

}  // namespace tapegrad

#endif
