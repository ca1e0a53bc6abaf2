#include "protocol.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <tapegrad/core/errors.hpp>

#include "evals.hpp"

namespace gradbench {

namespace {

using json = nlohmann::json;
namespace tg = tapegrad;

// A line that is not a protocol message: the session cannot go on.
struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --- input ------------------------------------------------------------------------------------

const json& field(const json& input, const char* eval, const char* name) {
  if (!input.is_object()) tg::throw_value_error(eval, std::string("input must be a JSON object, got ") + input.type_name());
  const auto it = input.find(name);
  if (it == input.end()) tg::throw_value_error(eval, std::string("input has no field '") + name + "'");
  return *it;
}

double number_in(const json& j, const char* eval, const std::string& where) {
  if (!j.is_number()) tg::throw_value_error(eval, where + " must be a number, got " + j.type_name());
  return j.get<double>();
}

std::size_t count_of(const json& input, const char* eval, const char* name) {
  const json& j = field(input, eval, name);
  if (!j.is_number_integer() || j.get<std::int64_t>() < 0)
    tg::throw_value_error(eval, std::string("field '") + name + "' must be a non-negative integer, got " + j.dump());
  return j.get<std::size_t>();
}

double number_of(const json& input, const char* eval, const char* name) {
  return number_in(field(input, eval, name), eval, std::string("field '") + name + "'");
}

Array vector_in(const json& j, const char* eval, const std::string& where) {
  if (!j.is_array()) tg::throw_value_error(eval, where + " must be a list of numbers, got " + j.type_name());
  Array a = Array::from_shape({j.size()});
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number()) number_in(j[i], eval, where + "[" + std::to_string(i) + "]");   // throws, naming it
    a(i) = j[i].get<double>();
  }
  return a;
}

Array vector_of(const json& input, const char* eval, const char* name) {
  return vector_in(field(input, eval, name), eval, std::string("field '") + name + "'");
}

// A list of equally long lists of numbers.
Array matrix_in(const json& j, const char* eval, const std::string& where) {
  if (!j.is_array()) tg::throw_value_error(eval, where + " must be a list of lists of numbers, got " + j.type_name());
  const std::size_t rows = j.size(), cols = rows ? (j[0].is_array() ? j[0].size() : 0) : 0;
  Array a = Array::from_shape({rows, cols});
  for (std::size_t i = 0; i < rows; ++i) {
    const auto row = [&] { return where + "[" + std::to_string(i) + "]"; };
    const Array r = vector_in(j[i], eval, row());
    if (r.size() != cols)
      tg::throw_value_error(eval, row() + " has " + std::to_string(r.size()) + " numbers, but row 0 has " +
                                      std::to_string(cols) + " (the rows must be equally long)");
    std::copy(r.begin(), r.end(), a.begin() + static_cast<std::ptrdiff_t>(i * cols));
  }
  return a;
}
Array matrix_of(const json& input, const char* eval, const char* name) {
  return matrix_in(field(input, eval, name), eval, std::string("field '") + name + "'");
}

// --- output -----------------------------------------------------------------------------------

// GradBench rejects NaN and Infinity, and its comparison never flags them: fail instead.
double finite(double v, const char* eval) {
  if (!std::isfinite(v)) tg::throw_value_error(eval, "the output has a non-finite value (" + tg::number_str(v) + ")");
  return v;
}

json to_json(const Array& a, const char* eval) {
  json out = json::array();
  if (a.dimension() == 1) {
    for (double v : a) out.push_back(finite(v, eval));
  } else {
    for (std::size_t i = 0; i < a.shape(0); ++i) {
      json row = json::array();
      for (std::size_t j = 0; j < a.shape(1); ++j) row.push_back(finite(a(i, j), eval));
      out.push_back(std::move(row));
    }
  }
  return out;
}

json to_json(double v, const char* eval) { return finite(v, eval); }

// Exactly the four keys GradBench expects, each nested like its input.
json to_json(const GmmJacobian& j, const char* eval) {
  return {{"alpha", to_json(j.alpha, eval)}, {"mu", to_json(j.mu, eval)}, {"q", to_json(j.q, eval)}, {"l", to_json(j.l, eval)}};
}

// The first observation's two errors and the first weight error, each with its count: GradBench
// sends the replicated problem's parts once and takes the outputs likewise.
json to_json(const BaObjective& o, const char* eval) {
  return {{"reproj_error", {{"elements", {finite(o.reproj_err(0, 0), eval), finite(o.reproj_err(0, 1), eval)}},
                            {"repeated", o.reproj_err.shape(0)}}},
          {"w_err", {{"element", finite(o.w_err(0), eval)}, {"repeated", o.w_err.size()}}}};
}

// The first 30 entries of a list and its last: GradBench's shortened form of the whole matrix.
template <class V>
json shortened(const V& v) {
  json out = json::array();
  for (std::size_t i = 0; i < v.size() && i < 30; ++i) out.push_back(v[i]);
  out.push_back(v.back());
  return out;
}
json to_json(const BaJacobian& jac, const char* eval) {
  for (double v : jac.vals) finite(v, eval);
  return {{"rows", shortened(jac.rows)}, {"cols", shortened(jac.cols)}, {"vals", shortened(jac.vals)}};
}

// --- timing -----------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

std::int64_t nanoseconds_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

struct Repetitions {
  std::int64_t min_runs = 1;
  double min_seconds = 1;
};

Repetitions repetitions(const json& input, const char* eval) {
  Repetitions r;
  if (input.contains("min_runs")) {
    const json& j = input["min_runs"];
    if (!j.is_number_integer() || j.get<std::int64_t>() < 1)
      tg::throw_value_error(eval, "min_runs must be an integer >= 1, got " + j.dump());
    r.min_runs = j.get<std::int64_t>();
  }
  if (input.contains("min_seconds")) {
    r.min_seconds = number_in(input["min_seconds"], eval, "min_seconds");
    if (!(r.min_seconds >= 0)) tg::throw_value_error(eval, "min_seconds must be >= 0, got " + input["min_seconds"].dump());
  }
  return r;
}

// Converts the input (untimed but reported as "prepare"), then runs the function until both
// min_runs runs and min_seconds of timed runs are done, one "evaluate" timing per run, and
// returns the last run's output.
template <class Prepare, class Run>
json timed(const json& input, const char* eval, json& timings, Prepare prepare, Run run) {
  const Repetitions reps = repetitions(input, eval);
  const Clock::time_point start = Clock::now();
  const auto prepared = prepare();
  timings.push_back({{"name", "prepare"}, {"nanoseconds", nanoseconds_since(start)}});
  decltype(run(prepared)) result{};
  std::int64_t runs = 0, total = 0;
  do {
    const Clock::time_point t0 = Clock::now();
    result = run(prepared);
    const std::int64_t ns = nanoseconds_since(t0);
    timings.push_back({{"name", "evaluate"}, {"nanoseconds", ns}});
    ++runs;
    total += ns;
  } while (runs < reps.min_runs || static_cast<double>(total) < reps.min_seconds * 1e9);
  return to_json(result, eval);
}

// --- the modules ------------------------------------------------------------------------------

using Function = std::function<json(const json& input, json& timings)>;
using Module = std::map<std::string, Function>;

// A function of an eval: `parse` reads the message's input (timed as "prepare"), `run` is the
// timed evaluation.
template <class Parse, class Run>
Function timed_function(const char* eval, Parse parse, Run run) {
  return [eval, parse, run](const json& in, json& timings) {
    return timed(in, eval, timings, [&] { return parse(in); }, run);
  };
}

struct LlsqInput {
  Tensor x;
  std::size_t n;
};
LlsqInput llsq_input(const json& in) { return {Tensor(vector_of(in, "llsq", "x")), count_of(in, "llsq", "n")}; }

struct OdeInput {
  Tensor x;
  std::size_t s;
};
OdeInput ode_input(const json& in) { return {Tensor(vector_of(in, "ode", "x")), count_of(in, "ode", "s")}; }

// A leaf that requires grad: the gradient's runs differentiate it directly (the primal's record nothing).
Tensor lse_input(const json& in) { return Tensor(vector_of(in, "lse", "x"), true); }

GmmInput gmm_input(const json& in) {
  GmmInput g{matrix_of(in, "gmm", "x"), vector_of(in, "gmm", "alpha"), matrix_of(in, "gmm", "mu"),
             matrix_of(in, "gmm", "q"), matrix_of(in, "gmm", "l"), static_cast<double>(count_of(in, "gmm", "m")),
             number_of(in, "gmm", "gamma")};
  // The sizes are sent too: they must agree with the arrays.
  const std::size_t n = count_of(in, "gmm", "n"), d = count_of(in, "gmm", "d"), k = count_of(in, "gmm", "k");
  if (g.x.shape(0) != n || g.x.shape(1) != d || g.alpha.size() != k)
    tg::throw_shape_error("gmm", "n=" + std::to_string(n) + ", d=" + std::to_string(d) + ", k=" + std::to_string(k) +
                                     " disagree with x of shape " + tg::shape_str({g.x.shape(0), g.x.shape(1)}) +
                                     " and alpha of " + std::to_string(g.alpha.size()) + " values");
  return g;
}

LstmInput lstm_input(const json& in) {
  return {matrix_of(in, "lstm", "main_params"), matrix_of(in, "lstm", "extra_params"), matrix_of(in, "lstm", "state"),
          matrix_of(in, "lstm", "sequence")};
}

KmeansInput kmeans_input(const json& in) { return {matrix_of(in, "kmeans", "points"), matrix_of(in, "kmeans", "centroids")}; }

struct DetInput {
  Array a;
  std::size_t ell;
};
DetInput det_input(const json& in) { return {vector_of(in, "det", "A"), count_of(in, "det", "ell")}; }

BaInput ba_input(const json& in) {
  return ba_replicate(count_of(in, "ba", "n"), count_of(in, "ba", "m"), count_of(in, "ba", "p"), vector_of(in, "ba", "cam"),
                      vector_of(in, "ba", "x"), number_of(in, "ba", "w"), vector_of(in, "ba", "feat"));
}

// A list of lists of lists of numbers, each level equally long: (a, b, c).
Array tensor3_of(const json& input, const char* eval, const char* name) {
  const json& j = field(input, eval, name);
  const std::string where = std::string("field '") + name + "'";
  if (!j.is_array() || j.empty())
    tg::throw_value_error(eval, where + " must be a non-empty list of matrices, got " + j.dump().substr(0, 40));
  std::vector<Array> blocks;
  for (std::size_t i = 0; i < j.size(); ++i) {
    blocks.push_back(matrix_in(j[i], eval, where + "[" + std::to_string(i) + "]"));
    if (blocks.back().shape() != blocks[0].shape())
      tg::throw_shape_error(eval, where + "[" + std::to_string(i) + "] differs in shape from " + where + "[0]");
  }
  Array a = Array::from_shape({blocks.size(), blocks[0].shape(0), blocks[0].shape(1)});
  for (std::size_t i = 0; i < blocks.size(); ++i)
    std::copy(blocks[i].begin(), blocks[i].end(), a.begin() + static_cast<std::ptrdiff_t>(i * blocks[0].size()));
  return a;
}

std::vector<std::int64_t> integers_in(const json& j, const char* eval, const std::string& where) {
  std::vector<std::int64_t> v;
  if (!j.is_array()) tg::throw_value_error(eval, where + " must be a list of integers, got " + j.type_name());
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer())
      tg::throw_value_error(eval, where + "[" + std::to_string(i) + "] must be an integer, got " + j[i].dump());
    v.push_back(j[i].get<std::int64_t>());
  }
  return v;
}
std::vector<std::int64_t> integers_of(const json& input, const char* eval, const char* name) {
  return integers_in(field(input, eval, name), eval, std::string("field '") + name + "'");
}

HtInput ht_input(const json& in) {
  const json& data = field(in, "ht", "data");
  const json& model = field(data, "ht", "model");
  HtInput h;
  h.theta = vector_of(in, "ht", "theta");
  h.model.parents = integers_of(model, "ht", "parents");
  h.model.base_relatives = tensor3_of(model, "ht", "base_relatives");
  h.model.inverse_base_absolutes = tensor3_of(model, "ht", "inverse_base_absolutes");
  h.model.base_positions = matrix_of(model, "ht", "base_positions");
  h.model.weights = matrix_of(model, "ht", "weights");
  const json& triangles = field(model, "ht", "triangles");
  if (!triangles.is_array()) tg::throw_value_error("ht", "field 'triangles' must be a list of triangles");
  h.model.triangles = tg::Index::from_shape({triangles.size(), std::size_t(3)});
  for (std::size_t t = 0; t < triangles.size(); ++t) {
    const std::string where = "field 'triangles'[" + std::to_string(t) + "]";
    const std::vector<std::int64_t> corners = integers_in(triangles[t], "ht", where);
    if (corners.size() != 3)
      tg::throw_value_error("ht", where + " must be three vertex indices, got " + triangles[t].dump());
    for (std::size_t k = 0; k < 3; ++k) h.model.triangles(t, k) = corners[k];
  }
  const json& mirrored = field(model, "ht", "is_mirrored");
  if (!mirrored.is_boolean()) tg::throw_value_error("ht", "field 'is_mirrored' must be true or false, got " + mirrored.dump());
  h.model.is_mirrored = mirrored.get<bool>();
  h.correspondences = integers_of(data, "ht", "correspondences");
  h.points = matrix_of(data, "ht", "points");
  if (in.contains("us") && !in["us"].empty()) h.us = matrix_of(in, "ht", "us");
  return h;
}

double particle_input(const json& in) { return number_of(in, "particle", "w"); }
Array saddle_input(const json& in) { return vector_of(in, "saddle", "start"); }

// The four variants ff, fr, rf, rr of a nested eval.
template <class Parse, class Run>
Module variants(const char* eval, Parse parse, Run run) {
  Module m;
  for (const char* name : {"ff", "fr", "rf", "rr"}) {
    const Modes modes = modes_of(eval, name);
    m[name] = timed_function(eval, parse, [run, modes](const auto& input) { return run(input, modes); });
  }
  return m;
}

double hello_number(const json& input) { return number_in(input, "hello", "the input"); }

const std::map<std::string, Module>& modules() {
  static const std::map<std::string, Module> all{
      {"hello",
       {{"square", [](const json& in, json&) -> json { return to_json(hello_square(hello_number(in)), "hello"); }},
        {"double", [](const json& in, json&) -> json { return to_json(hello_double(hello_number(in)), "hello"); }}}},
      {"lse", {{"primal", timed_function("lse", lse_input, lse_primal)},
               {"gradient", timed_function("lse", lse_input, lse_gradient)}}},
      {"llsq", {{"primal", timed_function("llsq", llsq_input, [](const LlsqInput& p) { return llsq_primal(p.x, p.n); })},
                {"gradient", timed_function("llsq", llsq_input, [](const LlsqInput& p) { return llsq_gradient(p.x, p.n); })}}},
      {"ode", {{"primal", timed_function("ode", ode_input, [](const OdeInput& p) { return ode_primal(p.x, p.s); })},
               {"gradient", timed_function("ode", ode_input, [](const OdeInput& p) { return ode_gradient(p.x, p.s); })}}},
      {"gmm", {{"objective", timed_function("gmm", gmm_input, gmm_objective)},
               {"jacobian", timed_function("gmm", gmm_input, gmm_jacobian)}}},
      {"lstm", {{"objective", timed_function("lstm", lstm_input, lstm_objective)},
                {"jacobian", timed_function("lstm", lstm_input, lstm_jacobian)}}},
      {"kmeans", {{"cost", timed_function("kmeans", kmeans_input, kmeans_cost)},
                  {"dir", timed_function("kmeans", kmeans_input, kmeans_dir)}}},
      {"det", {{"primal", timed_function("det", det_input, [](const DetInput& p) { return det_primal(p.a, p.ell); })},
               {"gradient", timed_function("det", det_input, [](const DetInput& p) { return det_gradient(p.a, p.ell); })}}},
      {"ba", {{"objective", timed_function("ba", ba_input, ba_objective)},
              {"jacobian", timed_function("ba", ba_input, ba_jacobian)}}},
      {"ht", {{"objective", timed_function("ht", ht_input, ht_objective)},
              {"jacobian", timed_function("ht", ht_input, ht_jacobian)}}},
      {"particle", variants("particle", particle_input, particle_argmin)},
      {"saddle", variants("saddle", saddle_input, saddle_point)},
  };
  return all;
}

// --- messages ---------------------------------------------------------------------------------

const json& required(const json& message, const char* name, bool (json::*is_type)() const noexcept,
                     const char* type) {
  const auto it = message.find(name);
  if (it == message.end() || !((*it).*is_type)())
    throw ProtocolError(std::string("the message has no ") + type + " field '" + name + "': " +
                        message.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 200));
  return *it;
}

std::string implemented() {
  std::string names;
  for (const auto& [name, module] : modules()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

json respond(const json& message, std::ostream& err, int threads) {
  if (!message.is_object()) throw ProtocolError(std::string("a message must be a JSON object, got ") + message.type_name());
  const json& id = required(message, "id", &json::is_number_integer, "integer");
  const std::string kind = required(message, "kind", &json::is_string, "string").get<std::string>();
  json response{{"id", id}};
  if (kind == "start") {
    response["tool"] = "tapegrad";
    response["config"] = {{"precision", "float64"}, {"threads", threads}};
  } else if (kind == "define") {
    const std::string module = required(message, "module", &json::is_string, "string").get<std::string>();
    response["success"] = modules().count(module) == 1;
    if (!modules().count(module))
      response["error"] = "tapegrad does not implement the module '" + module + "' (it implements " + implemented() + ")";
  } else if (kind == "evaluate") {
    const std::string module = required(message, "module", &json::is_string, "string").get<std::string>();
    const std::string function = required(message, "function", &json::is_string, "string").get<std::string>();
    if (!message.contains("input")) throw ProtocolError("the evaluate message has no field 'input'");
    const auto m = modules().find(module);
    const auto f = m == modules().end() ? Module::const_iterator() : m->second.find(function);
    if (m == modules().end() || f == m->second.end()) {
      response["success"] = false;
      response["error"] = "tapegrad does not implement " + module + "." + function;
      return response;
    }
    try {
      json timings = json::array();
      json output = f->second(message["input"], timings);
      response["success"] = true;
      response["output"] = std::move(output);
      response["timings"] = std::move(timings);
    } catch (const std::exception& e) {
      response["success"] = false;
      response["error"] = e.what();
    }
  } else if (kind == "analysis") {
    if (message.contains("valid") && message["valid"] == false)
      err << "tapegrad-gradbench: evaluate " << message.value("of", json()).dump() << " judged invalid: "
          << message.value("error", std::string("(no reason given)")) << "\n";
  }
  return response;
}

}  // namespace

int serve(std::istream& in, std::ostream& out, std::ostream& err, int threads) {
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    json message;
    try {
      message = json::parse(line);
    } catch (const json::parse_error& e) {
      err << "tapegrad-gradbench: line " << number << " is not valid JSON: " << e.what() << "\n";
      return 2;
    }
    try {
      out << respond(message, err, threads).dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
    } catch (const ProtocolError& e) {
      err << "tapegrad-gradbench: line " << number << ": " << e.what() << "\n";
      return 2;
    }
  }
  return 0;
}

}  // namespace gradbench
