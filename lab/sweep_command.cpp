// `lab sweep`: plan the grid, skip what is done, run the rest as child `lab train` processes on
// worker slots (one per core, several per GPU), record each outcome, then report. Runs are
// processes, not threads: a crash or a NaN in one run cannot take the sweep down, and every run
// directory is exactly what `lab train` writes.
#include "lab/sweep_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "kernels/device.hpp"
#include "kernels/error.hpp"
#include "kernels/precision.hpp"
#include "lab/cluster.hpp"
#include "lab/commands.hpp"
#include "lab/compute_device.hpp"
#include "lab/files.hpp"
#include "lab/progress.hpp"
#include "lab/sweep_report.hpp"
#include "lab/sweep_results.hpp"
#include "lab/sweep_spec.hpp"

namespace statelab {

extern "C" char** environ;

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sweep_signal(int) { g_stop.store(true); }

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Shard {
  int index = 0, count = 1;
};

Shard parse_shard(const std::string& spec) {
  const std::string rule = "--shard " + spec + ": expected I/N with 0 <= I < N, e.g. 3/16";
  const size_t slash = spec.find('/');
  if (slash == std::string::npos) throw ConfigError(rule);
  const std::string a = spec.substr(0, slash), b = spec.substr(slash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 6 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(a) || !digits(b)) throw ConfigError(rule);
  Shard s{std::stoi(a), std::stoi(b)};
  if (s.count < 1 || s.index >= s.count) throw ConfigError(rule);
  return s;
}

// What a sweep directory records about its definition, so a different sweep is never mixed in.
json definition_record(const SweepSpec& spec, const std::vector<GridCell>& cells) {
  json grid = json::array();
  for (const auto& c : cells)
    grid.push_back({{"id", c.id}, {"label", c.label}, {"dir", c.dir_name}});
  std::vector<std::string> axes;
  for (const auto& a : spec.axes) axes.push_back(a.name);
  return {{"name", spec.name},
          {"sweep_file", spec.path},
          {"base", spec.base},
          {"axes", axes},
          {"grid", grid}};
}

// Refuses a directory that holds another sweep's results: the same name and base config are
// what make results comparable; axes may grow (new cells are added).
void check_definition(const std::string& out, const SweepSpec& spec) {
  const std::string path = out + "/sweep.json";
  if (!fs::exists(path)) {
    if (fs::exists(out + "/results.jsonl"))
      throw ConfigError(out +
                        ": holds results.jsonl but no sweep.json: not a sweep directory "
                        "this command wrote; use another --out");
    return;
  }
  json old;
  try {
    old = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    throw IoError(path + ": not JSON: " + e.what());
  }
  if (old.value("name", "") != spec.name)
    throw ConfigError(out + ": holds results of sweep \"" + old.value("name", "") + "\", not \"" +
                      spec.name + "\"; use another --out");
  if (old.value("base", json()) != spec.base) {
    const json diff = json::diff(old.value("base", json()), spec.base);
    throw ConfigError(out + ": holds results of a different definition of sweep \"" + spec.name +
                      "\" (the base config differs at " +
                      (diff.empty() ? std::string("?") : diff[0].value("path", "?")) +
                      "); results from different definitions are not mixed: use another --out");
  }
}

// The newest line per run id.
std::map<std::string, json> by_id(const std::vector<json>& lines) {
  std::map<std::string, json> out;
  for (const auto& l : lines) out[l.value("id", "")] = l;
  return out;
}

std::string outcome_path(const std::string& out, const GridCell& c) {
  return out + "/outcomes/" + c.dir_name + ".json";
}

// A run that finished while no sweep recorded it (the sweep was killed, or a shard ran it):
// its outcome file, or its eval.json when the run itself completed.
std::optional<json> finished_elsewhere(const std::string& out, const SweepSpec& spec,
                                       const GridCell& c) {
  const std::string outcome = outcome_path(out, c);
  if (fs::exists(outcome)) {
    try {
      return json::parse(read_file(outcome));
    } catch (const json::parse_error&) {
      return std::nullopt;  // written atomically, so this is someone's hand edit: run again
    }
  }
  const std::string run = out + "/runs/" + c.dir_name;
  if (fs::exists(run + "/eval.json")) {
    json line = ok_result(spec, c, run, 0);
    line["wall_s"] = line.value("train_s", 0.0) + line.value("eval_s", 0.0);
    return line;
  }
  return std::nullopt;
}

struct Slot {
  std::string device;  // "cpu" or "cuda:N"
  pid_t pid = 0;       // the run on it, 0 when free
  size_t cell = 0;
  Clock::time_point start;
};

std::vector<Slot> make_slots(const SweepOptions& o, const Cluster& cluster) {
  std::vector<std::string> devices;
  const CudaProbe gpus = probe_cuda_devices();
  if (!o.devices.empty()) {
    if (o.devices != "all")
      throw ConfigError("--devices " + o.devices + ": expected \"all\" (or use --device)");
    for (const auto& d : gpus.devices) devices.push_back("cuda:" + std::to_string(d.index));
    if (devices.empty()) devices.push_back("cpu");
    // Ranks of one host share its GPUs.
    if (cluster.local_size > 1 && devices.size() > 1) {
      std::vector<std::string> mine;
      for (size_t i = size_t(cluster.local_rank); i < devices.size();
           i += size_t(cluster.local_size))
        mine.push_back(devices[i]);
      if (mine.empty()) mine.push_back(devices[size_t(cluster.local_rank) % devices.size()]);
      devices = mine;
    }
  } else if (o.device.empty() || o.device == "auto") {
    devices.push_back(
        gpus.devices.empty()
            ? "cpu"
            : "cuda:" + std::to_string(
                            gpus.devices[size_t(cluster.local_rank) % gpus.devices.size()].index));
  } else {
    check_device(o.device);
    devices.push_back(o.device);
  }
  std::vector<Slot> slots;
  for (const auto& d : devices) {
    int jobs = o.jobs;
    if (jobs == 0) {
      const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
      jobs = d == "cpu" ? std::max(1, cores / std::max(1, cluster.local_size)) : 4;
    }
    for (int j = 0; j < jobs; ++j) slots.push_back({d, 0, 0, {}});
  }
  return slots;
}

// The last line of a run's log that says what went wrong.
std::string failure_reason(const std::string& log, int status) {
  std::ifstream in(log);
  std::string last_error, last;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    last = line;
    if (line.find("error") != std::string::npos) last_error = line;
  }
  std::string why = !last_error.empty() ? last_error : last;
  if (why.rfind("lab: error: ", 0) == 0) why = why.substr(12);
  const std::string code =
      WIFEXITED(status)
          ? "exit status " + std::to_string(WEXITSTATUS(status))
          : "killed by signal " + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return why.empty() ? code : why + " (" + code + ")";
}

// posix_spawn rather than fork: a sweep that has opened a GPU maps a huge address space, which
// fork would copy for every run. The run dies with the sweep through kDieWithParentVariable (see
// lab/main.cpp), and SIGTERM makes it checkpoint first, so a rerun resumes it.
pid_t spawn_run(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> env_storage = {std::string(kDieWithParentVariable) + "=" +
                                          std::to_string(getpid())};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, kDieWithParentVariable, std::strlen(kDieWithParentVariable)) != 0)
      env_storage.push_back(*e);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_storage = args;
  for (auto& a : arg_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("cannot start a run (" + log + "): " + std::strerror(rc));
  return pid;
}

// results.csv, report.md and report.html from the newest line of each grid cell, in grid order;
// prints the table. Rows are the axes other than the task and the seed.
void write_reports(const std::string& out, const std::string& name,
                   const std::vector<std::string>& axes, const std::vector<std::string>& grid_ids,
                   const std::vector<json>& lines) {
  const auto latest = by_id(lines);
  SweepReportInput in;
  in.name = name;
  for (const auto& a : axes)
    if (a != "task.name" && a != "train.seed") in.row_axes.push_back(a);
  in.grid_size = int64_t(grid_ids.size());
  for (const auto& id : grid_ids)
    if (auto it = latest.find(id); it != latest.end()) in.results.push_back(it->second);
  write_file_atomic(out + "/results.csv", results_csv(in.results));
  write_file_atomic(out + "/report.md", sweep_report_markdown(in));
  write_file_atomic(out + "/report.html", sweep_report_html(in));
  std::printf("\n%s\nwrote %s/{results.jsonl, results.csv, report.html, report.md}\n",
              format_sweep_table(in).c_str(), out.c_str());
}

void write_reports(const std::string& out, const SweepSpec& spec,
                   const std::vector<GridCell>& cells, const std::vector<json>& lines) {
  std::vector<std::string> axes, ids;
  for (const auto& a : spec.axes) axes.push_back(a.name);
  for (const auto& c : cells) ids.push_back(c.id);
  write_reports(out, spec.name, axes, ids, lines);
}

std::string eta(double per_run_s, size_t left, size_t slots) {
  if (per_run_s <= 0 || left == 0) return "-";
  return format_duration(per_run_s * std::ceil(double(left) / double(std::max<size_t>(slots, 1))));
}

void print_dry_run(const std::vector<GridCell>& cells, const std::set<std::string>& done,
                   const std::set<size_t>& mine, size_t slots, const std::string& device,
                   double per_run_s) {
  std::printf("%6s  %-8s  %s\n", "cell", "status", "label");
  int64_t tokens = 0;
  for (const auto& c : cells) {
    const bool finished = done.count(c.id) != 0;
    std::printf("%6lld  %-8s  %s\n", static_cast<long long>(c.index),
                finished                      ? "done"
                : mine.count(size_t(c.index)) ? "to run"
                                              : "other",
                c.label.c_str());
    if (!finished && mine.count(size_t(c.index))) {
      const auto& t = c.config.train;
      const auto& lengths = c.config.task.train_lengths;
      tokens += int64_t(t.steps) * t.batch * (lengths[0] + lengths[1]) / 2;
    }
  }
  std::printf(
      "\n%zu grid cells, %zu done, %zu to run here on %zu slot(s) of %s; %.3g training "
      "tokens to go",
      cells.size(), done.size(), mine.size(), slots, device.c_str(), double(tokens));
  if (per_run_s > 0)
    std::printf(", about %s (at the %s per run measured so far)",
                eta(per_run_s, mine.size(), slots).c_str(), format_duration(per_run_s).c_str());
  else
    std::printf("; no run has finished yet to time them by");
  std::printf("\n");
}

}  // namespace

void die_with_parent_if_asked() {
  const char* parent = std::getenv(kDieWithParentVariable);
  if (!parent) return;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The sweep may have died before the line above: then nobody will send the signal.
  if (std::to_string(getppid()) != parent) kill(getpid(), SIGTERM);
}

int run_sweep(const SweepOptions& o) {
  if (!o.device.empty() && !o.devices.empty())
    throw ConfigError("--device and --devices: give one of them");
  if (o.jobs < 0) throw ConfigError("--jobs " + std::to_string(o.jobs) + ": expected >= 0");
  if (o.merge && (!o.shard.empty() || o.dry_run))
    throw ConfigError("--merge collects finished shards: it takes no --shard or --dry-run");
  const Shard shard = o.shard.empty() ? Shard{} : parse_shard(o.shard);
  const SweepSpec spec = load_sweep(o.sweep_file);
  const std::vector<GridCell> cells = expand_grid(spec);
  const std::string out = o.out.empty() ? "sweeps/" + spec.name : o.out;
  const Cluster cluster = join_cluster();
  struct Leave {
    const Cluster& c;
    ~Leave() { leave_cluster(c); }
  } leave{cluster};
  if (cluster.mpi && !o.shard.empty())
    throw ConfigError("--shard under mpirun: the ranks already split the grid; drop --shard");
  const bool coordinator = cluster.rank == 0 && o.shard.empty();  // writes results and reports
  const std::string results_path = out + "/results.jsonl";
  const auto sweep_start = Clock::now();

  check_definition(out, spec);
  if (coordinator && !o.dry_run) {
    ensure_directory(out);
    write_file_atomic(out + "/sweep.json", definition_record(spec, cells).dump(2) + "\n");
  }
  barrier(cluster);
  if (!o.dry_run)
    for (const char* sub : {"/runs", "/configs", "/logs", "/outcomes"}) ensure_directory(out + sub);

  // What is finished: recorded lines, then outcomes and completed runs nobody recorded yet.
  std::vector<json> lines = read_results(results_path);
  std::map<std::string, json> latest = by_id(lines);
  std::set<std::string> done;
  std::vector<json> adopted;
  for (const auto& c : cells) {
    auto it = latest.find(c.id);
    const bool failed = it != latest.end() && it->second.value("status", "") == "failed";
    if (it != latest.end() && !(failed && o.retry_failed)) {
      done.insert(c.id);
      continue;
    }
    if (auto line = finished_elsewhere(out, spec, c)) {
      if (line->value("status", "") == "failed" && o.retry_failed) continue;
      done.insert(c.id);
      if (coordinator || o.merge) adopted.push_back(*line);
    }
  }
  if ((coordinator || o.merge) && !o.dry_run)
    for (const auto& l : adopted) {
      append_line(results_path, l.dump());
      lines.push_back(l);
    }
  if (o.merge) {
    size_t missing = 0;
    for (const auto& c : cells) missing += done.count(c.id) ? 0 : 1;
    std::printf("merged %zu finished run(s) into %s; %zu of %zu grid cells have no result yet\n",
                adopted.size(), results_path.c_str(), missing, cells.size());
    write_reports(out, spec, cells, lines);
    return 0;
  }

  // This process's share: a shard's cells by grid index, a rank's by position among the rest.
  std::vector<size_t> todo;
  for (const auto& c : cells)
    if (!done.count(c.id) && size_t(c.index) % size_t(shard.count) == size_t(shard.index))
      todo.push_back(size_t(c.index));
  std::vector<size_t> mine;
  for (size_t k = 0; k < todo.size(); ++k)
    if (int(k % size_t(cluster.size)) == cluster.rank) mine.push_back(todo[k]);
  std::vector<Slot> slots = make_slots(o, cluster);

  double measured = 0;
  int measured_n = 0;
  for (const auto& l : lines)
    if (l.value("status", "") == "ok" && l.value("wall_s", 0.0) > 0)
      measured += l.value("wall_s", 0.0), ++measured_n;
  if (o.dry_run) {
    if (cluster.rank == 0)
      print_dry_run(cells, done, std::set<size_t>(mine.begin(), mine.end()), slots.size(),
                    slots.front().device, measured_n ? measured / measured_n : 0);
    return 0;
  }

  // The CUDA kernels are checked once per build and device here, not by every run at once.
  std::set<std::string> precisions, checked;
  for (size_t i : mine) precisions.insert(cells[i].config.precision);
  for (const auto& s : slots)
    for (const auto& precision : precisions)
      if (s.device != "cpu" && checked.insert(s.device + " " + precision).second)
        ensure_selftest(open_device(s.device, precision_from_name(precision), "--device"));

  struct sigaction sa {};
  sa.sa_handler = on_sweep_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::printf("sweep %s: %zu grid cells, %zu done, %zu to run%s on %zu slot(s) (%s) -> %s\n",
              spec.name.c_str(), cells.size(), done.size(), mine.size(),
              cluster.mpi ? (" by rank " + std::to_string(cluster.rank) + "/" +
                             std::to_string(cluster.size))
                                .c_str()
                          : (o.shard.empty() ? "" : (" in shard " + o.shard).c_str()),
              slots.size(), slots.front().device.c_str(), out.c_str());
  std::fflush(stdout);

  const auto loop_start = Clock::now();
  size_t next = 0, finished = 0, failures = 0;
  double waiting_s = 0, run_total_s = 0, run_inner_s = 0;
  std::string gathered;  // this process's new lines, for rank 0
  auto record = [&](const GridCell& c, const json& line) {
    write_file_atomic(outcome_path(out, c), line.dump() + "\n");
    if (coordinator && !cluster.mpi) append_line(results_path, line.dump());
    gathered += line.dump() + "\n";
  };
  auto running = [&] {
    size_t n = 0;
    for (const auto& s : slots) n += s.pid ? 1 : 0;
    return n;
  };
  bool interrupted = false;
  while (true) {
    while (!g_stop.load() && next < mine.size()) {
      auto free = std::find_if(slots.begin(), slots.end(), [](const Slot& s) { return !s.pid; });
      if (free == slots.end()) break;
      const GridCell& c = cells[mine[next++]];
      const std::string run = out + "/runs/" + c.dir_name;
      std::vector<std::string> args = {"lab", "train"};
      if (fs::exists(run + "/checkpoints") && !fs::is_empty(run + "/checkpoints")) {
        args.insert(args.end(), {"--resume", run});  // an interrupted run continues
      } else {
        const std::string preset = out + "/configs/" + c.dir_name + ".json";
        write_file_atomic(preset, to_json(c.config).dump(2) + "\n");
        args.insert(args.end(), {preset, "--out", run, "--force", "--device", free->device});
      }
      args.push_back("--no-selftest");
      free->pid = spawn_run(args, out + "/logs/" + c.dir_name + ".log");
      free->cell = size_t(c.index);
      free->start = Clock::now();
    }
    if (running() == 0) break;
    const auto wait_start = Clock::now();
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    waiting_s += seconds_since(wait_start);
    if (pid < 0) {
      if (errno == EINTR) {
        // Children got the terminal's signal too; a SIGTERM to the sweep alone is passed on.
        for (const auto& s : slots)
          if (s.pid) kill(s.pid, SIGTERM);
        continue;
      }
      throw IoError(std::string("waitpid failed: ") + std::strerror(errno));
    }
    auto slot =
        std::find_if(slots.begin(), slots.end(), [&](const Slot& s) { return s.pid == pid; });
    if (slot == slots.end()) continue;
    const GridCell& c = cells[slot->cell];
    const double wall = seconds_since(slot->start);
    slot->pid = 0;
    const std::string run = out + "/runs/" + c.dir_name;
    const std::string log = out + "/logs/" + c.dir_name + ".log";
    // Stopped by a signal, its own (130: checkpointed) or one that killed it (the sweep's stop
    // reaching it outside training): unfinished, so the next run of the sweep resumes or
    // restarts it. Only a kill no one asked for (SIGKILL by the OOM killer, a crash) is a failure.
    const bool stopped =
        (WIFEXITED(status) && WEXITSTATUS(status) == 130) ||
        (WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT));
    if (stopped) {
      interrupted = true;
      continue;
    }
    json line;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(run + "/eval.json")) {
      line = ok_result(spec, c, run, wall);
      run_inner_s += line.value("train_s", 0.0) + line.value("eval_s", 0.0);
    } else {
      line = failed_result(spec, c, run, failure_reason(log, status), wall);
      ++failures;
    }
    run_total_s += wall;
    record(c, line);
    ++finished;
    measured += wall, ++measured_n;
    // One process sees the whole grid; a rank or a shard counts its own share.
    const bool whole = !cluster.mpi && o.shard.empty();
    std::printf("[%zu/%zu%s] %s %s: ", whole ? done.size() + finished : finished,
                whole ? cells.size() : mine.size(), whole ? "" : " of this share",
                line["status"] == "ok" ? "ok    " : "FAILED", c.label.c_str());
    if (line["status"] == "ok")
      std::printf("scaled accuracy beyond training %.3f, solved up to %d (%s)",
                  line.value("scaled_accuracy_beyond_train", 0.0), line.value("solved_up_to", 0),
                  format_duration(wall).c_str());
    else
      std::printf("%s", line.value("reason", "").c_str());
    std::printf(
        "  | running %zu, failures %zu, ETA %s\n", running(), failures,
        eta(measured / std::max(measured_n, 1), mine.size() - finished - running(), slots.size())
            .c_str());
    std::fflush(stdout);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  interrupted = interrupted || g_stop.load();

  const std::string all = gather_text(cluster, gathered);
  if (cluster.mpi && cluster.rank == 0) {
    // Rank 0 records every rank's lines (the others wrote only their outcome files).
    const auto known = by_id(read_results(results_path));
    size_t start = 0;
    while (start < all.size()) {
      const size_t end = all.find('\n', start);
      const std::string text = all.substr(start, end - start);
      start = end + 1;
      const json l = json::parse(text);
      if (!known.count(l.value("id", "")) || known.at(l.value("id", "")) != l)
        append_line(results_path, text);
    }
  }
  const double loop_s = seconds_since(loop_start);
  if (finished > 0 && run_total_s > 0) {
    // Everything but training and evaluation: each run's process start and setup (spread over
    // the slots that ran them side by side), and the sweep's own scheduling and files.
    const double setup_s = run_total_s - run_inner_s;
    const double own_s = loop_s - waiting_s;
    const double share = (setup_s / double(slots.size()) + own_s) / loop_s;
    std::printf(
        "\n%zu run(s) in %s; overhead %.1f%% of the wall time (runs' setup %.1f s of "
        "their %.1f s, the sweep's own work %.2f s)\n",
        finished, format_duration(seconds_since(sweep_start)).c_str(), 100.0 * share, setup_s,
        run_total_s, own_s);
  }
  if (cluster.rank == 0 && o.shard.empty())
    write_reports(out, spec, cells, read_results(results_path));
  if (interrupted) {
    std::printf("interrupted: the unfinished runs resume when the same command runs again\n");
    return 130;
  }
  return 0;
}

int run_report(const std::string& sweep_dir) {
  const std::string record_path = sweep_dir + "/sweep.json";
  if (!fs::exists(record_path))
    throw IoError(sweep_dir + ": not a sweep directory (no sweep.json)");
  json record;
  try {
    record = json::parse(read_file(record_path));
  } catch (const json::parse_error& e) {
    throw IoError(record_path + ": not JSON: " + e.what());
  }
  std::vector<std::string> ids;
  for (const auto& g : record.value("grid", json::array())) ids.push_back(g.value("id", ""));
  write_reports(sweep_dir, record.value("name", ""),
                record.value("axes", std::vector<std::string>{}), ids,
                read_results(sweep_dir + "/results.jsonl"));
  return 0;
}

}  // namespace statelab
