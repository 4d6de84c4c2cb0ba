// `lab sweep` and `lab report`: a grid of training runs to completion, unattended and
// resumable, on every core, every GPU of a host (several runs per GPU), every rank of an MPI
// launch or one shard of a job array; then a table and report.html / report.md.
#pragma once

#include <string>

namespace statelab {

struct SweepOptions {
  std::string sweep_file;
  std::string out;      // empty: sweeps/<sweep name>
  std::string device;   // empty or "auto": a GPU when there is one, else the CPU; "cpu"; "cuda:N"
  std::string devices;  // "all": every GPU of the host; exclusive with device
  int jobs = 0;         // runs at once per device; 0: one per core on the CPU, 4 per GPU
  bool dry_run = false;
  std::string shard;   // "i/n": only grid cells whose index is i mod n (0 <= i < n)
  bool merge = false;  // collect the shards' finished runs into results.jsonl and the report
  bool retry_failed = false;
};
// Exit status 0 when every run of this process's share finished (failed runs included: they
// are recorded), 130 when interrupted (rerun the command to continue).
int run_sweep(const SweepOptions& o);

// A run the sweep starts gets this variable set to the sweep's pid; die_with_parent_if_asked(),
// called first thing in main, makes such a process receive SIGTERM when the sweep dies.
constexpr const char* kDieWithParentVariable = "STATELAB_DIE_WITH_PARENT";
void die_with_parent_if_asked();

// Rebuilds report.html, report.md and results.csv of a sweep directory and prints the table.
int run_report(const std::string& sweep_dir);

}  // namespace statelab
