// Cluster in a build without MPI: always one process; an MPI launch is refused with the fix.
#include <cstdlib>

#include "kernels/error.hpp"
#include "lab/cluster.hpp"

namespace statelab {

bool mpi_built() { return false; }

Cluster join_cluster() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var))
      throw ConfigError(
          "launched by mpirun, but this build of lab has no MPI: install "
          "libopenmpi-dev and rebuild (scripts/build.sh), or use --shard i/n");
  return {};
}

void leave_cluster(const Cluster&) {}
void barrier(const Cluster&) {}
std::string gather_text(const Cluster&, const std::string& mine) { return mine; }

}  // namespace statelab
