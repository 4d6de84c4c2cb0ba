// Files that are complete or absent under their final name: a run directory is read by other
// processes (the GUI, probes, a resumed run) while it is written, and a crash must never leave a
// half-written checkpoint or config. The price is an fsync per write and a temporary file beside
// the target, so these helpers suit checkpoints and records, not high-rate streaming output.
#pragma once

#include <string>

namespace statelab {

// Writes `bytes` to `.<basename>.tmp.<pid>.<n>` beside `path`, fsyncs it, renames it over `path`
// and fsyncs the directory. On failure the temporary file is removed, the old file under `path`
// is untouched, and IoError names the path and the system's reason. The new file gets mode 0666
// less the umask, not the old file's mode.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Appends `line + "\n"` with one write(2) on an O_APPEND descriptor, creating the file if
// missing, so concurrent appenders never interleave within a line. Throws Error if `line`
// contains '\n', IoError if the file cannot be opened or the write is short.
void append_line(const std::string& path, const std::string& line);

// The whole file as bytes; IoError naming the path if it is missing, a directory or unreadable.
std::string read_file(const std::string& path);

// Creates `path` and its missing parents; IoError naming the path and the reason if that is
// impossible (a regular file in the way, no permission). An existing directory is fine.
void ensure_directory(const std::string& path);

// Removes the temporary files write_file_atomic leaves in `dir` when its process is killed
// mid-write (never a file under a final name); returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

}  // namespace statelab
