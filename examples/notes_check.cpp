// Checks every derivative in the backpropagation notes (numbered N1-N18 in docs/derivations.md)
// three ways: as the notes write it, against the autodiff and against finite
// differences. Prints a table (Markdown), or JSON with --json. Exit 0 when every formula has a
// verdict and every corrected formula holds.
#include <tapegrad/notes/notes.hpp>

#include <cstring>
#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << "usage: notes_check [--json]\n"
                   "  Checks the notes' formulas N3-N7, N9-N12, N14, N16-N18: hand-derived vs autodiff vs\n"
                   "  finite differences. Prints a table, or a JSON array with --json.\n";
      return 0;
    } else {
      std::cerr << "notes_check: unknown argument '" << argv[i] << "' (try --help)\n";
      return 2;
    }
  }
  try {
    const auto results = tapegrad::notes::check_notes();
    std::cout << (json ? tapegrad::notes::notes_json(results) : tapegrad::notes::notes_table(results));
    return tapegrad::notes::notes_ok(results) ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "notes_check: " << e.what() << '\n';
    return 1;
  }
}
