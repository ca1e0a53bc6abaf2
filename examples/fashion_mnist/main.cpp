// Trains LeNet-5 on Fashion-MNIST after a gradient check of the whole model: see --help.
#include <malloc.h>

#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "trainer.hpp"

int main(int argc, char** argv) {
  // Every step allocates the same large buffers (im2col columns, activations, gradients). glibc
  // would map and unmap them each time, paying page faults; keep them in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  int exit_code = 0;
  const auto config = fashion::parse_config(argc, argv, exit_code, std::cout, std::cerr);
  if (!config) return exit_code;
  std::unique_ptr<fashion::Team> team;
  try {
    team = config->distributed ? fashion::join_mpi_team(argc, argv) : std::make_unique<fashion::Team>();
    fashion::run(*config, std::cout, *team);
    return 0;
  } catch (const std::exception& e) {
    const std::string message = std::string("fashion_mnist: ") + e.what();
    if (team) team->fail(message);   // a distributed run ends every rank here
    std::cerr << message << '\n';
    return 1;
  }
}
