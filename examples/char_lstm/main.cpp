// Trains a character-level LSTM language model on Debian's fortunes, then samples from it: see --help.
#include <exception>
#include <iostream>

#include "trainer.hpp"

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto config = char_lstm::parse_config(argc, argv, exit_code, std::cout, std::cerr);
  if (!config) return exit_code;
  try {
    char_lstm::run(*config, std::cout);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "char_lstm: " << e.what() << '\n';
    return 1;
  }
}
