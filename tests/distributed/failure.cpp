// Run under mpirun -np 2 (tests/distributed/failure_test.cmake does): rank 1 fails to read a data
// file while rank 0 waits in a collective. Both ranks must end, with a message naming rank 1,
// rather than leave rank 0 waiting forever: through abort_all with the error's message, or, with
// --handler-outside, through the Environment that the exception unwinds (MPI_Finalize there would
// wait for rank 0 forever).
#include <tapegrad/distributed/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

#include <mpi.h>

#include <iostream>
#include <string>

namespace tg = tapegrad;
namespace dist = tapegrad::distributed;

namespace {

void work(const dist::Environment& mpi) {
  if (mpi.rank() == 1) tg::load_fashion_mnist("/nonexistent/fashion-mnist", true);
  MPI_Barrier(MPI_COMM_WORLD);   // rank 0 waits here for rank 1
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--handler-outside") {
    try {
      dist::Environment mpi(argc, argv);
      work(mpi);
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "not reached: the Environment's destructor ends the job first: " << e.what() << std::endl;
      return 4;
    }
  }
  dist::Environment mpi(argc, argv);
  try {
    work(mpi);
    return 0;
  } catch (const std::exception& e) {
    dist::abort_all(e.what(), 3);
  }
}
