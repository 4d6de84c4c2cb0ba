// Cluster over OpenMPI.
#include <mpi.h>

#include <cstdlib>
#include <vector>

#include "kernels/error.hpp"
#include "lab/cluster.hpp"

namespace statelab {

namespace {

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

}  // namespace

bool mpi_built() { return true; }

Cluster join_cluster() {
  Cluster c;
  if (!launched_by_mpi()) return c;
  MPI_Init(nullptr, nullptr);
  c.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &c.size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c.rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &c.local_rank);
  MPI_Comm_size(local, &c.local_size);
  MPI_Comm_free(&local);
  return c;
}

void leave_cluster(const Cluster& c) {
  if (c.mpi) MPI_Finalize();
}

void barrier(const Cluster& c) {
  if (c.mpi) MPI_Barrier(MPI_COMM_WORLD);
}

std::string gather_text(const Cluster& c, const std::string& mine) {
  if (!c.mpi) return mine;
  const int n = int(mine.size());
  std::vector<int> sizes(c.rank == 0 ? size_t(c.size) : 0);
  MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> offsets(sizes.size(), 0);
  int total = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    offsets[r] = total;
    total += sizes[r];
  }
  std::string all(c.rank == 0 ? size_t(total) : 0, '\0');
  MPI_Gatherv(mine.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, 0,
              MPI_COMM_WORLD);
  return all;
}

}  // namespace statelab
