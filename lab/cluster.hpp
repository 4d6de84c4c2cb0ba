// Where this process stands when `mpirun -n N lab sweep …` launched it: its rank among the N and
// on its host, and the few collectives a sweep needs. Without an MPI launch (or in a build
// without MPI) it is one process of one.
#pragma once

#include <string>

namespace statelab {

struct Cluster {
  int rank = 0, size = 1;              // in the whole launch
  int local_rank = 0, local_size = 1;  // on this host
  bool mpi = false;
};

// MPI_Init when the environment shows an MPI launch; ConfigError when it does but this build
// has no MPI. Call once.
Cluster join_cluster();
void leave_cluster(const Cluster& c);
void barrier(const Cluster& c);
// Rank 0 receives every rank's text, in rank order, concatenated; the others get "".
std::string gather_text(const Cluster& c, const std::string& mine);
bool mpi_built();

}  // namespace statelab
