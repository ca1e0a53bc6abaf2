// A tape as text (Tape::str) and as a Graphviz graph (Tape::dot).
#include "tape.hpp"

#include <sstream>

#include "tape_internals.hpp"

namespace tapegrad {

std::string Tape::str() const {
  std::ostringstream os;
  const auto& entries = detail::owned_tape(impl_, "str").entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = *entries[i];
    os << '#' << i << ' ' << e.op;
    for (const auto& in : e.inputs) os << ' ' << detail::shape_str(in.shape);
    os << " -> " << detail::shape_str(e.output_shape) << " node " << e.output;
    if (e.label) os << " [" << *e.label << ']';
    os << '\n';
  }
  return os.str();
}

namespace {
// An op name inside a double-quoted DOT label.
std::string dot_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string Tape::dot() const {
  detail::owned_tape(impl_, "dot");
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::vector<std::size_t> producer(impl_->num_nodes, no_node);   // node -> entry
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    producer[e.output] = i;
    os << "  op" << i << " [shape=box, style=rounded, label=\"" << dot_escape(e.op) << "\\n" << detail::shape_str(e.output_shape)
       << "\"];\n";
  }
  std::size_t constants = 0;
  std::vector<bool> leaf_drawn(impl_->num_nodes, false);
  for (std::size_t i = 0; i < impl_->entries.size(); ++i) {
    const auto& e = *impl_->entries[i];
    for (std::size_t k = 0; k < e.inputs.size(); ++k) {
      const std::size_t node = e.inputs[k].node;
      std::string from;
      if (node == no_node) {
        from = "const" + std::to_string(constants++);
        os << "  " << from << " [shape=plaintext, label=\"const\\n" << detail::shape_str(e.inputs[k].shape) << "\"];\n";
      } else if (producer[node] != no_node) {
        from = "op" + std::to_string(producer[node]);
      } else {
        from = "leaf" + std::to_string(node);
        if (!leaf_drawn[node])
          os << "  " << from << " [shape=ellipse, label=\"leaf\\n" << detail::shape_str(e.inputs[k].shape) << "\"];\n";
        leaf_drawn[node] = true;
      }
      os << "  " << from << " -> op" << i << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace tapegrad
