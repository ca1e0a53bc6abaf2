// Trains LeNet-5 on Fashion-MNIST after a gradient check of the whole model: see --help.
#include <exception>
#include <iostream>

#include "trainer.hpp"

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto config = fashion::parse_config(argc, argv, exit_code, std::cout, std::cerr);
  if (!config) return exit_code;
  try {
    fashion::run(*config, std::cout);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "fashion_mnist: " << e.what() << '\n';
    return 1;
  }
}
