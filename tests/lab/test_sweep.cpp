// Sweeps: the grid a sweep file defines (product, variants, include/exclude, validation of
// every cell before anything runs) and `lab sweep` run as a user runs it — results recorded once
// per run, resumed after a kill, a torn last line tolerated, shards merged into what one sweep
// gives, another definition refused, a failing run recorded with its reason, and an MPI launch.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "lab/sweep_results.hpp"
#include "lab/sweep_spec.hpp"
#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // sweep files keep their keys in the order written
using testing::run_lab;
using testing::TempDir;

// A grid of tiny CPU runs (a few tenths of a second each).
ojson tiny_sweep(const std::vector<int>& seeds, int steps = 20) {
  return {{"name", "tiny"},
          {"base", std::string(STATELAB_SOURCE_DIR) + "/presets/parity_slstm.json"},
          {"set",
           {{"device", "cpu"},
            {"model.d_model", 16},
            {"train.steps", steps},
            {"train.log_every", 10},
            {"train.checkpoint_every", 10},
            {"eval.lengths", {40, 48}},
            {"eval.samples", 8}}},
          {"axes",
           {{{"name", "cell"},
             {"values",
              {{"slstm", {{"model.blocks", "s"}}},
               {"mamba2_pm1",
                {{"model.blocks", "M"}, {"model.heads", 2}, {"model.eigen_range", "pm1"}}}}}},
            {{"path", "train.seed"}, {"values", seeds}}}}};
}

std::string write_sweep(const TempDir& dir, const std::string& name, const ojson& j) {
  const std::string path = dir / name;
  write_file_atomic(path, j.dump(2));
  return path;
}

std::vector<json> results(const std::string& sweep_dir) {
  return read_results(sweep_dir + "/results.jsonl");
}

// id -> accuracy per length: what must agree between ways of running one grid.
std::map<std::string, json> outcomes(const std::vector<json>& lines) {
  std::map<std::string, json> out;
  for (const auto& l : lines) out[l.at("id")] = {l.at("status"), l.value("per_length", json())};
  return out;
}

// `lab sweep` in the background with two slots, its output in `log`; returns its pid.
pid_t start_sweep(const std::string& sweep, const std::string& out, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    freopen(log.c_str(), "w", stdout);
    execl(STATELAB_LAB_BINARY, "lab", "sweep", sweep.c_str(), "--out", out.c_str(), "--jobs", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// ---- The grid ------------------------------------------------------------------------------

TEST(SweepGrid, ProductRunsInFileOrderWithVariantsLabelledAndIdsFromTheConfig) {
  TempDir dir;
  const auto cells = expand_grid(load_sweep(write_sweep(dir, "s.json", tiny_sweep({1, 2}))));
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].label, "cell=slstm train.seed=1");
  EXPECT_EQ(cells[1].label, "cell=slstm train.seed=2");
  EXPECT_EQ(cells[2].label, "cell=mamba2_pm1 train.seed=1");
  EXPECT_EQ(cells[2].config.model.blocks, "M");
  EXPECT_EQ(cells[2].config.model.eigen_range, "pm1");
  EXPECT_EQ(cells[3].config.train.seed, 2u);
  EXPECT_EQ(cells[0].config.model.d_model, 16);  // "set" reaches every cell
  for (const auto& c : cells) EXPECT_EQ(c.id, config_hash(c.config));
  EXPECT_EQ(cells[1].dir_name, "cell-slstm_train.seed-2-" + cells[1].id.substr(0, 8));
}

TEST(SweepGrid, GrowingAnAxisKeepsTheIdsOfExistingCells) {
  TempDir dir;
  const auto before = expand_grid(load_sweep(write_sweep(dir, "a.json", tiny_sweep({1}))));
  const auto after = expand_grid(load_sweep(write_sweep(dir, "b.json", tiny_sweep({1, 5}))));
  std::set<std::string> ids;
  for (const auto& c : after) ids.insert(c.id);
  for (const auto& c : before) EXPECT_TRUE(ids.count(c.id)) << c.label;
  EXPECT_EQ(after.size(), 2 * before.size());
}

TEST(SweepGrid, ExcludeDropsMatchingCellsAndIncludeAddsOne) {
  TempDir dir;
  ojson j = tiny_sweep({1, 2});
  j["exclude"] = {{{"cell", "mamba2_pm1"}, {"train.seed", 2}}};
  j["include"] = {{{"cell", "slstm"}, {"train.seed", 9}}};
  const auto cells = expand_grid(load_sweep(write_sweep(dir, "s.json", j)));
  std::vector<std::string> labels;
  for (const auto& c : cells) labels.push_back(c.label);
  EXPECT_EQ(labels,
            (std::vector<std::string>{"cell=slstm train.seed=1", "cell=slstm train.seed=2",
                                      "cell=mamba2_pm1 train.seed=1", "cell=slstm train.seed=9"}));
}

TEST(SweepGrid, EveryInvalidCellIsNamedBeforeAnythingRuns) {
  TempDir dir;
  ojson j = tiny_sweep({1, 2});
  j["axes"][0]["values"]["odd_heads"] = {{"model.blocks", "s"}, {"model.heads", 3}};
  j["axes"][0]["values"]["typo"] = {{"model.blokcs", "s"}};
  const std::string path = write_sweep(dir, "s.json", j);
  try {
    expand_grid(load_sweep(path));
    FAIL() << "invalid cells accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("4 of 8 grid cells fail validation"), std::string::npos) << m;
    for (const char* cell : {"cell=odd_heads train.seed=1", "cell=odd_heads train.seed=2",
                             "cell=typo train.seed=1", "cell=typo train.seed=2"})
      EXPECT_NE(m.find(cell), std::string::npos) << cell << "\n" << m;
    EXPECT_NE(m.find("/model/heads"), std::string::npos) << m;
    EXPECT_NE(m.find("/model/blokcs"), std::string::npos) << m;
  }
  // The command refuses the same file without creating anything.
  const auto r = run_lab("sweep " + path + " --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(SweepGrid, BadSweepFilesAreErrorsNamingThePointer) {
  TempDir dir;
  const std::vector<std::pair<ojson, std::string>> cases = {
      {[] {
         ojson j = tiny_sweep({1});
         j["axis"] = 1;
         return j;
       }(),
       "/axis: expected no such key"},
      {[] {
         ojson j = tiny_sweep({1});
         j["axes"][1]["values"] = json::array();
         return j;
       }(),
       "/axes/1/values"},
      {[] {
         ojson j = tiny_sweep({1});
         j["exclude"] = {{{"colour", "red"}}};
         return j;
       }(),
       "no axis named \"colour\""},
      {[] {
         ojson j = tiny_sweep({1});
         j["include"] = {{{"cell", "slstm"}}};
         return j;
       }(),
       "gives no value for axis \"train.seed\""},
      {[] {
         ojson j = tiny_sweep({1});
         j["base"] = "missing.json";
         return j;
       }(),
       "/base"},
  };
  for (const auto& [j, expected] : cases) {
    const std::string path = write_sweep(dir, "bad.json", j);
    try {
      expand_grid(load_sweep(path));
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

// ---- Running -------------------------------------------------------------------------------

TEST(SweepRun, EveryRunIsRecordedOnceAndARerunRunsNothing) {
  TempDir dir;
  const std::string sweep = write_sweep(dir, "s.json", tiny_sweep({1, 2}));
  const std::string out = dir / "out";
  const auto r = run_lab("sweep " + sweep + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto lines = results(out);
  ASSERT_EQ(lines.size(), 4u);
  std::set<std::string> ids;
  for (const auto& l : lines) {
    EXPECT_EQ(l.at("status"), "ok") << l.dump();
    EXPECT_TRUE(ids.insert(l.at("id")).second);
    EXPECT_TRUE(fs::exists(l.at("run_dir").get<std::string>() + "/eval.json"));
    EXPECT_EQ(l.at("per_length").size(), 9u);
  }
  for (const char* f : {"results.csv", "report.html", "report.md", "sweep.json"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_NE(r.output.find("parity"), std::string::npos) << "the table: " << r.output;

  const auto again = run_lab("sweep " + sweep + " --out " + out);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("4 done, 0 to run"), std::string::npos) << again.output;
  EXPECT_EQ(results(out).size(), 4u);

  // A grown axis adds only its new cells.
  const std::string grown = write_sweep(dir, "s.json", tiny_sweep({1, 2, 3}));
  const auto more = run_lab("sweep " + grown + " --out " + out);
  ASSERT_EQ(more.code, 0) << more.output;
  EXPECT_NE(more.output.find("6 grid cells, 4 done, 2 to run"), std::string::npos) << more.output;
  EXPECT_EQ(results(out).size(), 6u);
}

TEST(SweepRun, AKilledSweepResumesWithoutLostOrDuplicatedResultsAndATornLineIsDropped) {
  TempDir dir;
  const std::string sweep = write_sweep(dir, "s.json", tiny_sweep({1, 2, 3}, 150));
  const std::string out = dir / "out";
  const pid_t pid = start_sweep(sweep, out, dir / "first.log");
  ASSERT_GE(pid, 0);
  // Kill the sweep (not its runs: they get SIGTERM from the kernel, checkpoint and stop) once
  // the first result is in.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (results(out).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const size_t before = results(out).size();
  ASSERT_GE(before, 1u);
  ASSERT_LT(before, 6u) << "the sweep finished before it could be killed";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the orphaned runs checkpoint
  // A kill in the middle of an append leaves a torn line.
  {
    std::ofstream torn(out + "/results.jsonl", std::ios::app);
    torn << "{\"id\": \"torn";
  }
  const auto r = run_lab("sweep " + sweep + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("torn last line"), std::string::npos) << r.output;
  const auto lines = results(out);
  std::map<std::string, int> count;
  for (const auto& l : lines) ++count[l.at("id")];
  EXPECT_EQ(count.size(), 6u) << "a result is lost";
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id << " recorded twice";
  const std::string text = read_file(out + "/results.jsonl");
  EXPECT_EQ(text.back(), '\n');
}

TEST(SweepRun, AStoppedSweepRecordsNoRunItStoppedAsFailedAndExits130) {
  TempDir dir;
  const std::string sweep = write_sweep(dir, "s.json", tiny_sweep({1, 2, 3}, 150));
  const std::string out = dir / "out";
  const pid_t pid = start_sweep(sweep, out, dir / "first.log");
  ASSERT_GE(pid, 0);
  // The sweep takes SIGTERM from its header line on (before it, the signal's default action
  // ends it, under sanitizers sometimes past 300 ms); from there it reaches the runs wherever
  // they are: starting up, training or evaluating.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto started = [&] {
    std::ifstream log(dir / "first.log");
    const std::string text{std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()};
    return text.find("grid cells") != std::string::npos;
  };
  while (!started() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_file(dir / "first.log");
  for (const auto& l : results(out)) EXPECT_EQ(l.at("status"), "ok") << l.dump();
  const auto r = run_lab("sweep " + sweep + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(results(out).size(), 6u);
}

TEST(SweepRun, ShardsMergedGiveWhatOneSweepGives) {
  TempDir dir;
  const std::string sweep = write_sweep(dir, "s.json", tiny_sweep({1, 2}));
  const std::string whole = dir / "whole", sharded = dir / "sharded";
  ASSERT_EQ(run_lab("sweep " + sweep + " --out " + whole).code, 0);
  for (const char* shard : {"0/2", "1/2"}) {
    const auto r = run_lab("sweep " + sweep + " --out " + sharded + " --shard " + shard);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  EXPECT_TRUE(results(sharded).empty()) << "shards leave results.jsonl to --merge";
  const auto m = run_lab("sweep " + sweep + " --out " + sharded + " --merge");
  ASSERT_EQ(m.code, 0) << m.output;
  EXPECT_EQ(outcomes(results(sharded)), outcomes(results(whole)));
}

TEST(SweepRun, AFailingRunIsRecordedWithItsReasonAndTheSweepGoesOn) {
  TempDir dir;
  ojson j = tiny_sweep({1, 2});
  j["axes"][0]["values"]["poisoned"] = {{"model.blocks", "s"},
                                        {"train.poison.step", 5},
                                        {"train.poison.parameter", "blocks.0.norm.weight"}};
  const std::string out = dir / "out";
  const auto r = run_lab("sweep " + write_sweep(dir, "s.json", j) + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  int failed = 0, ok = 0;
  for (const auto& l : results(out)) {
    if (l.at("status") == "failed") {
      ++failed;
      EXPECT_NE(l.at("reason").get<std::string>().find("step 5"), std::string::npos) << l.dump();
    } else {
      ++ok;
    }
  }
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(ok, 4);
}

TEST(SweepRun, ADirectoryOfAnotherSweepDefinitionIsRefusedAndKept) {
  TempDir dir;
  const std::string out = dir / "out";
  ASSERT_EQ(run_lab("sweep " + write_sweep(dir, "s.json", tiny_sweep({1})) + " --out " + out).code,
            0);
  const std::string before = read_file(out + "/results.jsonl");
  ojson other = tiny_sweep({1});
  other["set"]["train.steps"] = 30;
  const auto r = run_lab("sweep " + write_sweep(dir, "t.json", other) + " --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("different definition"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/train/steps"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(out + "/results.jsonl"), before);
}

TEST(SweepRun, DryRunPrintsTheGridAndRunsNothing) {
  TempDir dir;
  const std::string out = dir / "out";
  const auto r = run_lab("sweep " + write_sweep(dir, "s.json", tiny_sweep({1, 2})) + " --out " +
                         out + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("4 grid cells, 0 done, 4 to run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cell=mamba2_pm1 train.seed=2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(SweepRun, ReportIsRebuiltFromTheResultsFile) {
  TempDir dir;
  const std::string out = dir / "out";
  ASSERT_EQ(run_lab("sweep " + write_sweep(dir, "s.json", tiny_sweep({1})) + " --out " + out).code,
            0);
  fs::remove(out + "/report.html");
  fs::remove(out + "/report.md");
  const auto r = run_lab("report " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out + "/report.html"));
  EXPECT_NE(read_file(out + "/report.md").find("slstm"), std::string::npos);
  EXPECT_NE(r.output.find("mamba2_pm1"), std::string::npos) << r.output;
  EXPECT_EQ(run_lab("report " + (dir / "nowhere")).code, 1);
}

TEST(SweepRun, MpiRanksShareTheGridAndRankZeroRecordsEveryResult) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "mpirun is not installed (openmpi-bin; scripts/setup.sh installs it)";
  TempDir dir;
  const std::string sweep = write_sweep(dir, "s.json", tiny_sweep({1, 2}));
  const std::string mpi = dir / "mpi", single = dir / "single";
  const auto r = run_lab("sweep " + sweep + " --out " + single);
  ASSERT_EQ(r.code, 0) << r.output;
  // OpenMPI keeps its init-time allocations to the end, which LeakSanitizer (in the sanitizer
  // build's lab) would report as leaks; the setting is inert in other builds. Tests and CI
  // may run as root, which OpenMPI refuses unless told.
  const std::string cmd =
      "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
      "OMPI_MCA_mpi_warn_on_fork=0 mpirun -n 2 --oversubscribe " +
      std::string(STATELAB_LAB_BINARY) + " sweep " + sweep + " --out " + mpi + " --jobs 1 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("by rank 1/2"), std::string::npos) << output;
  EXPECT_EQ(outcomes(results(mpi)), outcomes(results(single)));
  EXPECT_EQ(results(mpi).size(), 4u);
}

}  // namespace
}  // namespace statelab
