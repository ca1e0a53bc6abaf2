#include "helpers.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace fs = std::filesystem;

namespace {
const std::string data_dir = TAPEGRAD_TEST_DATA_DIR;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

tg::Linear<double> linear_3_2() {
  tg::ManualSeed seed(9);
  return tg::Linear<double>(3, 2);
}
}  // namespace

TEST_CASE(".npy files: byte-identical to NumPy's, and NumPy's files load") {
  TempDir dir;
  const Arr a = xt::reshape_view(xt::arange(6.0), {2, 3}) * 0.5;
  tg::save_npy(dir / "a.npy", a);
  CHECK(read_bytes(dir / "a.npy") == read_bytes(data_dir + "/f8_c.npy"));
  CHECK(all_close(tg::load_npy<double>(data_dir + "/f8_c.npy"), a, 0.0));
  // Fortran order, big-endian float32, as NumPy wrote it.
  const xt::xarray<float> f = tg::load_npy<float>(data_dir + "/f4_fortran_big.npy");
  CHECK(all_close(f, xt::reshape_view(xt::arange(12.0), {3, 4}), 0.0));
}

TEST_CASE(".npy round trips: scalars, vectors, empty arrays, float") {
  TempDir dir;
  for (const Arr& a : {Arr(3.25), Arr{1., 2., 3.}, Arr(Arr::from_shape({0, 4})), random_array({2, 3, 4}, 800)}) {
    tg::save_npy(dir / "x.npy", a);
    const Arr back = tg::load_npy<double>(dir / "x.npy");
    CHECK(all_close(back, a, 0.0));
  }
  const xt::xarray<float> f = xt::cast<float>(random_array({5, 2}, 801));
  tg::save_npy(dir / "f.npy", f);
  CHECK(all_close(tg::load_npy<float>(dir / "f.npy"), f, 0.0));
  CHECK((read_bytes(dir / "f.npy").size() - 10 * sizeof(float)) % 64 == 0);   // data aligned as NumPy aligns it
}

TEST_CASE("a module's parameters: save, load, and NumPy's np.savez / np.savez_compressed archives") {
  TempDir dir;
  tg::Linear<double> a = linear_3_2();
  tg::save_parameters(a, dir / "linear.npz");
  tg::ManualSeed other(10);
  tg::Linear<double> b(3, 2);
  CHECK_FALSE(all_close(a.weight().value(), b.weight().value(), 1e-6));
  tg::load_parameters(b, dir / "linear.npz");
  CHECK(all_close(a.weight().value(), b.weight().value(), 0.0));
  CHECK(all_close(a.bias().value(), b.bias().value(), 0.0));
  const auto arrays = tg::load_npz<double>(dir / "linear.npz");
  CHECK(arrays.size() == 2);
  CHECK(arrays.count("weight") == 1);

  const Arr weight = xt::reshape_view(xt::arange(6.0), {3, 2}) / 10, bias{0.5, -0.5};
  for (const char* file : {"/linear.npz", "/linear_compressed.npz"}) {
    CAPTURE(file);
    tg::load_parameters(b, data_dir + file);
    CHECK(all_close(b.weight().value(), weight, 0.0));
    CHECK(all_close(b.bias().value(), bias, 0.0));
  }
}

TEST_CASE("loading checks names, dtypes and shapes, and changes nothing on error") {
  TempDir dir;
  tg::Linear<double> model = linear_3_2();
  const Arr before = model.weight().value(), bias_before = model.bias().value();
  // All or nothing: after each failed load, every parameter as it was.
  const auto unchanged = [&] {
    return all_close(model.weight().value(), before, 0.0) && all_close(model.bias().value(), bias_before, 0.0);
  };
  // Wrong shape: a (3, 4) Linear saved, loaded into (3, 2).
  {
    tg::Linear<double> wide(3, 4);
    tg::save_parameters(wide, dir / "wide.npz");
  }
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "wide.npz"),
                       doctest::Contains("entry 'weight' has shape (3, 4), the module's has shape (3, 2)"), tg::IoError);
  CHECK(unchanged());
  // Wrong dtype: a float model's file into a double model.
  {
    tg::Linear<float> single(3, 2);
    tg::save_parameters(single, dir / "float.npz");
  }
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "float.npz"),
                       doctest::Contains("entry 'weight.npy' has dtype '<f4', expected float64 ('<f8')"), tg::IoError);
  CHECK(unchanged());
  // Missing and extra entries.
  {
    tg::Linear<double> no_bias(3, 2, false);
    tg::save_parameters(no_bias, dir / "nobias.npz");
    tg::Sequential<double> seq(tg::Linear<double>(3, 2));
    tg::save_parameters(seq, dir / "seq.npz");
  }
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "nobias.npz"),
                       doctest::Contains("has no entry for parameter or buffer 'bias' (bias.npy)"), tg::IoError);
  CHECK(unchanged());
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "seq.npz"),
                       doctest::Contains("has no entry for parameter or buffer 'weight'"), tg::IoError);
  CHECK(unchanged());
  // The file's weight fits, its bias matches nothing: the weight is not loaded either.
  tg::Linear<double> no_bias(3, 2, false);
  const Arr no_bias_before = no_bias.weight().value();
  CHECK_THROWS_WITH_AS(tg::load_parameters(no_bias, data_dir + "/linear.npz"),
                       doctest::Contains("has an entry 'bias' that matches no parameter or buffer of the module"), tg::IoError);
  CHECK(all_close(no_bias.weight().value(), no_bias_before, 0.0));
  CHECK_FALSE(all_close(tg::load_npz<double>(data_dir + "/linear.npz").at("weight"), no_bias_before, 1e-9));
}

TEST_CASE("missing, truncated and corrupted files are errors naming the file") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(tg::load_npy<double>(dir / "none.npy"),
                       doctest::Contains(("load_npy: '" + (dir / "none.npy") + "' cannot be opened").c_str()), tg::IoError);
  const std::string npy = read_bytes(data_dir + "/f8_c.npy");
  write_bytes(dir / "short.npy", npy.substr(0, npy.size() - 5));
  CHECK_THROWS_WITH_AS(tg::load_npy<double>(dir / "short.npy"),
                       doctest::Contains(("'" + (dir / "short.npy") + "' is truncated: shape (2, 3) of float64 needs 48 data bytes, the file holds 43").c_str()),
                       tg::IoError);
  write_bytes(dir / "magic.npy", "not a numpy file at all");
  CHECK_THROWS_WITH_AS(tg::load_npy<double>(dir / "magic.npy"), doctest::Contains("is not a valid .npy file"), tg::IoError);
  write_bytes(dir / "header.npy", npy.substr(0, 40));
  CHECK_THROWS_WITH_AS(tg::load_npy<double>(dir / "header.npy"), doctest::Contains("truncated header"), tg::IoError);

  tg::Linear<double> model = linear_3_2();
  tg::save_parameters(model, dir / "m.npz");
  const std::string npz = read_bytes(dir / "m.npz");
  for (std::size_t cut : {npz.size() / 2, npz.size() - 10, std::size_t(10)}) {
    write_bytes(dir / "cut.npz", npz.substr(0, cut));
    CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "cut.npz"), doctest::Contains(("'" + (dir / "cut.npz") + "'").c_str()),
                         tg::IoError);
  }
  std::string flipped = npz;
  flipped[200] = char(flipped[200] ^ 0x5a);   // inside the first entry's data
  write_bytes(dir / "flip.npz", flipped);
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "flip.npz"), doctest::Contains("is corrupted (CRC mismatch)"),
                       tg::IoError);
  // A forged uncompressed size (4 GiB) in the central directory is refused, not allocated.
  std::string forged = read_bytes(data_dir + "/linear_compressed.npz");
  const std::size_t central = forged.find(std::string("PK\x01\x02", 4));
  REQUIRE(central != std::string::npos);
  for (int k = 0; k < 4; ++k) forged[central + 24 + k] = char(0xf0);
  write_bytes(dir / "forged.npz", forged);
  CHECK_THROWS_WITH_AS(tg::load_parameters(model, dir / "forged.npz"), doctest::Contains("bytes its header claims"),
                       tg::IoError);
  std::string compressed = read_bytes(data_dir + "/linear_compressed.npz");
  compressed[60] = char(compressed[60] ^ 0xff);
  write_bytes(dir / "badzip.npz", compressed);
  CHECK_THROWS_AS(tg::load_parameters(model, dir / "badzip.npz"), tg::IoError);
}

TEST_CASE("saving replaces the file atomically and leaves no temporary behind") {
  TempDir dir;
  tg::Linear<double> model = linear_3_2();
  tg::save_parameters(model, dir / "m.npz");
  tg::save_parameters(model, dir / "m.npz");   // over an existing checkpoint
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    CHECK(entry.path().filename() == "m.npz");
    ++files;
  }
  CHECK(files == 1);
  // A save that cannot complete (the target is a directory) reports it and leaves no temporary.
  fs::create_directories(dir.path / "taken.npz");
  CHECK_THROWS_WITH_AS(tg::save_parameters(model, dir / "taken.npz"), doctest::Contains("could not be replaced"),
                       tg::IoError);
  CHECK_THROWS_WITH_AS(tg::save_npy(dir / "no/such/dir/x.npy", Arr{1.0}), doctest::Contains("cannot be written"),
                       tg::IoError);
  files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
  CHECK(files == 2);   // m.npz and the directory
}

namespace {
// A small model after one AdamW step, and its optimizer.
struct Trained {
  tg::Sequential<double> model{tg::Linear<double>(3, 4), tg::Tanh<double>(), tg::Linear<double>(4, 2)};
  tg::AdamW<double> opt{model.parameters(), 0.01};
  Trained() {
    {
      tg::Tape tape;
      tg::sum(model(TD(random_array({5, 3}, 3600)))).backward();
    }
    opt.step();
  }
};

tg::RunState some_run_state() {
  tg::RunState state;
  state.counters = {{"epoch", 3}, {"step", 1234}, {"big", std::numeric_limits<std::uint64_t>::max()}};
  state.values = {{"running_loss", 0.1 + 0.2}, {"tiny", 4.9e-324}, {"negative", -1.5}};
  tg::Generator dropout(77);
  dropout.normal();   // the second normal draw, kept for the next call, is part of the state
  state.generators.emplace("dropout", dropout);
  return state;
}

// The next draws of a generator (a copy: the argument is not advanced).
std::vector<double> draws(tg::Generator g) {
  std::vector<double> v;
  for (int i = 0; i < 4; ++i) v.push_back(g.normal());
  v.push_back(g.uniform(0, 1));
  return v;
}

bool same_state(const tg::RunState& a, const tg::RunState& b) {
  if (a.counters != b.counters || a.generators.size() != b.generators.size() || a.values.size() != b.values.size())
    return false;
  for (const auto& [name, v] : a.values)
    if (b.values.count(name) == 0 || std::memcmp(&v, &b.values.at(name), sizeof v) != 0) return false;
  for (const auto& [name, g] : a.generators)
    if (b.generators.count(name) == 0 || g.state() != b.generators.at(name).state()) return false;
  return true;
}
}  // namespace

TEST_CASE("checkpoints: model, optimizer, counters, values and random states in one file, loaded all or nothing") {
  TempDir dir;
  tg::ManualSeed seed(12);
  Trained run;
  const tg::RunState state = some_run_state();
  tg::save_checkpoint(dir / "run.npz", run.model, run.opt, state);

  tg::ManualSeed other(13);
  tg::Sequential<double> fresh(tg::Linear<double>(3, 4), tg::Tanh<double>(), tg::Linear<double>(4, 2));
  tg::AdamW<double> fresh_opt(fresh.parameters(), 0.5);
  const tg::RunState loaded = tg::load_checkpoint(dir / "run.npz", fresh, fresh_opt);
  CHECK(loaded.counters.at("epoch") == 3);
  CHECK(loaded.counters.at("step") == 1234);
  CHECK(loaded.counters.at("big") == std::numeric_limits<std::uint64_t>::max());   // uint64: exact at any size
  CHECK(loaded.values.at("running_loss") == 0.1 + 0.2);
  CHECK(loaded.values.at("tiny") == 4.9e-324);
  CHECK(same_state(loaded, state));
  // The generator goes on with the draws the saved one would have made, the kept normal first.
  CHECK(draws(loaded.generators.at("dropout")) == draws(state.generators.at("dropout")));
  CHECK(fresh.state_dict()[0].second == run.model.state_dict()[0].second);
  CHECK(fresh_opt.lr() == 0.01);
  CHECK(fresh_opt.state_dict()[3].second == run.opt.state_dict()[3].second);

  // Another model: an error naming the entry; another optimizer: the model is set back too.
  tg::Sequential<double> wider(tg::Linear<double>(3, 5));
  tg::AdamW<double> wider_opt(wider.parameters());
  CHECK_THROWS_WITH_AS(tg::load_checkpoint(dir / "run.npz", wider, wider_opt), doctest::Contains("does not fit: load_state_dict"),
                       tg::IoError);
  tg::Sequential<double> same(tg::Linear<double>(3, 4), tg::Tanh<double>(), tg::Linear<double>(4, 2));
  tg::SGD<double> sgd(same.parameters(), 0.1, 0.9);
  const Arr before = same.state_dict()[0].second;
  CHECK_THROWS_WITH_AS(tg::load_checkpoint(dir / "run.npz", same, sgd), doctest::Contains("'param0.exp_avg' is not part of this SGD's state"),
                       tg::IoError);
  CHECK(same.state_dict()[0].second == before);
  CHECK(sgd.lr() == 0.1);
  // A counter stored as float64 rather than uint64: an error naming the entry and the dtypes.
  tg::save_npz(dir / "odd.npz", tg::StateDict<double>{{"position/epoch", Arr{1.0, 2.0}}});
  CHECK_THROWS_WITH_AS(tg::load_checkpoint(dir / "odd.npz", fresh, fresh_opt), doctest::Contains("'position/epoch.npy' has dtype '<f8', expected uint64"),
                       tg::IoError);
}

TEST_CASE("a damaged checkpoint, cut short or with any byte changed, is an IoError that changes nothing") {
  TempDir dir;
  tg::ManualSeed seed(14);
  Trained run;
  const tg::RunState state = some_run_state();
  tg::save_checkpoint(dir / "run.npz", run.model, run.opt, state);
  const std::string bytes = read_bytes(dir / "run.npz");
  REQUIRE(bytes.size() > 2000);

  tg::ManualSeed other(15);
  Trained target;   // a run in progress, with a state of its own that a failed load must keep
  const tg::StateDict<double> model_before = target.model.state_dict();
  const tg::StateDict<double> opt_before = target.opt.state_dict();
  std::size_t errors = 0, loads = 0;
  const auto try_load = [&](const std::string& damaged, const std::string& what) {
    CAPTURE(what);
    std::ofstream(dir / "damaged.npz", std::ios::binary | std::ios::trunc) << damaged;
    try {
      const tg::RunState loaded = tg::load_checkpoint(dir / "damaged.npz", target.model, target.opt);
      // A byte no reader looks at (a time stamp, a version field): the load is the whole, undamaged state.
      ++loads;
      CHECK(same_state(loaded, state));
      CHECK(target.model.state_dict() == run.model.state_dict());
      CHECK(target.opt.state_dict() == run.opt.state_dict());
      target.model.load_state_dict(model_before);
      target.opt.load_state_dict(opt_before);
    } catch (const tg::IoError& e) {
      ++errors;
      CHECK(std::string(e.what()).find("load_checkpoint: '" + (dir / "damaged.npz") + "'") == 0);
      CHECK(target.model.state_dict() == model_before);
      CHECK(target.opt.state_dict() == opt_before);
    }
  };
  // Every length short of the whole file.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    try_load(bytes.substr(0, n), "cut to " + std::to_string(n) + " bytes");
    REQUIRE(loads == 0);   // every cut loses the end-of-archive record: never a partial load
  }
  // Every byte changed.
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
    try_load(damaged, "byte " + std::to_string(at) + " changed");
  }
  MESSAGE(bytes.size(), " cuts and ", bytes.size(), " changed bytes: ", errors, " errors, ", loads,
          " loads of bytes no reader checks, each the undamaged state");
  // Every cut and most changed bytes (data, headers, names, sizes, CRCs: nine in ten here) are errors.
  CHECK(errors > bytes.size() * 18 / 10);
}
