// Links the installed tapegrad::distributed (where tapegrad was built with MPI); no MPI job needed
// for shard, which splits a global batch between ranks.
#include <tapegrad/distributed/distributed.hpp>

#include <iostream>

int main() {
  const std::vector<std::size_t> part = tapegrad::distributed::shard({10, 11, 12, 13}, 1, 2);
  std::cout << "rank 1 of 2 takes " << part[0] << " and " << part[1] << "\n";
  return part == std::vector<std::size_t>{12, 13} ? 0 : 1;
}
