// `lab`: the StateLab command line. Parses arguments with CLI11, runs one subcommand, and turns
// every error into one message on stderr and a non-zero exit.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "gui/gui_options.hpp"
#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/sweep_command.hpp"
#include "probes/probe_command.hpp"
#include "probes/training_summary.hpp"

int main(int argc, char** argv) {
  using namespace statelab;
  die_with_parent_if_asked();
  CLI::App app{"StateLab: train sequence models on state-tracking tasks and measure how far they "
               "generalize in length"};
  app.require_subcommand(1);
  app.get_formatter()->column_width(34);

  TrainOptions train;
  auto* t = app.add_subcommand("train", "Train a model from a preset, then evaluate it per length");
  t->add_option("preset", train.preset, "Preset JSON file (see presets/)");
  t->add_option("--set", train.overrides,
                "Override a config value, e.g. --set train.steps=3000 (repeatable; value is JSON "
                "or a plain string)");
  t->add_option("--out", train.out, "Run directory (default: runs/<preset name>-<timestamp>)");
  t->add_flag("--force", train.force,
              "Write into a non-empty --out, replacing the earlier run there (other files stay)");
  t->add_option("--device", train.device,
                "Compute device: auto, cpu or cuda:N (default: the preset's, auto unless it says)");
  t->add_option("--resume", train.resume,
                "Continue the run in this directory from its newest checkpoint");
  t->add_option("--stop-after", train.stop_after,
                "Stop after this step as an interruption would (checkpoint written, resumable; "
                "default: run to train.steps)");

  t->add_flag("--no-selftest", train.no_selftest,
              "On a GPU, skip the once-per-build check of the CUDA kernels against the CPU");

  train.make_summarizer = [](Trainer& trainer) { return make_training_summarizer(trainer); };

  EvalOptions eval;
  auto* e = app.add_subcommand("eval", "Evaluate a finished run per length on held-out data");
  e->add_option("run", eval.run_dir, "Run directory written by lab train")->required();
  e->add_option("--lengths", eval.lengths, "Lengths LO:HI[:STEP] (default: the run's eval config)");
  e->add_option("--seed", eval.seed, "Held-out set seed (default: the run's eval.seed)");
  e->add_option("--samples", eval.samples, "Samples per length (default: the run's eval.samples)");
  e->add_option("--json", eval.json_out, "Also write the result as JSON to this file");
  e->add_flag("--force", eval.force, "Replace an existing --json file");
  e->add_option("--device", eval.device, "Compute device: auto, cpu or cuda:N (default: the run's)");

  ProbeOptions probe;
  auto* pr = app.add_subcommand(
      "probe", "Look inside a trained run: gates, stabilizers, memory norms and the decoded "
               "latent state per layer, head and step, exported as safetensors/NPZ");
  pr->add_option("run", probe.run_dir, "Run directory written by lab train")->required();
  auto* input = pr->add_option("--input", probe.input,
                               "A typed sequence of token names, e.g. \"1 0 1 1 0\"");
  pr->add_option("--samples", probe.samples, "Held-out samples to probe")
      ->capture_default_str()
      ->excludes(input);
  pr->add_option("--length", probe.length, "Their length (default: the run's longest eval length)")
      ->excludes(input);
  pr->add_option("--seed", probe.seed, "Held-out set seed (default: the run's eval.seed)");
  pr->add_option("--out", probe.out, "Export directory (default: RUN/traces)");
  pr->add_flag("--force", probe.force, "Replace an earlier export in --out");
  pr->add_option("--fit-samples", probe.fit_samples,
                 "Sequences at training lengths the latent decoders and PCA are fitted on")
      ->capture_default_str();
  pr->add_option("--attention-map-max", probe.attention_map_max_length,
                 "Export Transformer attention maps up to this length")
      ->capture_default_str();
  pr->add_option("--device", probe.device,
                 "Compute device: auto, cpu or cuda:N (default: the run's)");

  SweepOptions sweep;
  auto* sw = app.add_subcommand(
      "sweep", "Run a grid of training runs (cells x tasks x seeds x ...) to completion, resumably, "
               "then print a table and write report.html");
  sw->add_option("sweep", sweep.sweep_file, "Sweep file (see presets/sweeps/)")->required();
  sw->add_option("--out", sweep.out, "Sweep directory (default: sweeps/<sweep name>)");
  auto* sw_device = sw->add_option(
      "--device", sweep.device, "auto (a GPU if present, else the CPU), cpu or cuda:N");
  sw->add_option("--devices", sweep.devices, "all: one worker group per GPU of this host")
      ->excludes(sw_device);
  sw->add_option("--jobs", sweep.jobs,
                 "Runs at once per device (default: one per core on the CPU, 4 per GPU)");
  sw->add_flag("--dry-run", sweep.dry_run, "Print the grid, what is done and an estimate; run nothing");
  sw->add_option("--shard", sweep.shard,
                 "I/N: run only the grid cells with index I mod N (job arrays; then --merge)");
  sw->add_flag("--merge", sweep.merge,
               "Collect the runs the shards finished into results.jsonl and the report");
  sw->add_flag("--retry-failed", sweep.retry_failed, "Run the grid cells that failed again");

  std::string report_dir;
  auto* rp = app.add_subcommand("report", "Rebuild a sweep's table, report.html and report.md");
  rp->add_option("sweep_dir", report_dir, "Sweep directory written by lab sweep")->required();

  gui::GuiOptions gui_options;
  auto* g = app.add_subcommand(
      "gui", "The dashboard: train a model and watch its gates, memory and state space live");
  g->add_option("preset", gui_options.preset,
                "Preset loaded into the Run window (default: presets/parity_slstm.json)");
  g->add_option("--set", gui_options.overrides, "Override a config value, as lab train --set");
  g->add_option("--device", gui_options.device, "Compute device: auto, cpu or cuda:N");
  g->add_option("--steps", gui_options.steps,
                "Train this many steps (train.steps) and start at once");
  g->add_option("--screenshot", gui_options.screenshot,
                "After the --steps run: draw every window, write this PNG (and .windows.json), exit");
  g->add_option("--frames", gui_options.frames, "Frames drawn after the run before the screenshot")
      ->capture_default_str();
  g->add_option("--width", gui_options.width, "Window width in pixels")->capture_default_str();
  g->add_option("--height", gui_options.height, "Window height in pixels")->capture_default_str();
  g->add_option("--runs", gui_options.runs_dir, "Where new runs go and finished runs are listed")
      ->capture_default_str();
  g->add_flag("--no-window", gui_options.no_window,
              "With --steps: train through the dashboard's engine without a window (measures "
              "its cost where no display exists)");
  g->add_flag("--no-selftest", gui_options.no_selftest,
              "On a GPU, skip the once-per-build check of the CUDA kernels against the CPU");

  TasksOptions tasks;
  auto* k = app.add_subcommand("tasks", "List the tasks, or print labelled samples of one");
  k->add_option("task", tasks.task, "Task name (omit to list every task with three examples)");
  k->add_option("--samples", tasks.samples, "Samples to print")->capture_default_str();
  k->add_option("--length", tasks.length, "Input length of each sample")->capture_default_str();
  k->add_option("--seed", tasks.seed,
                "Seed; samples of length L are the held-out eval set of that seed at L")
      ->capture_default_str();
  k->add_flag("--json", tasks.json, "Print the samples as JSON");

  app.add_subcommand("devices", "List the compute devices this build can use");

  SelftestOptions selftest;
  auto* st = app.add_subcommand(
      "selftest", "Check every CUDA kernel against the CPU reference on small shapes");
  st->add_option("--device", selftest.device, "CUDA device: auto or cuda:N")->capture_default_str();
  st->add_option("--precision", selftest.precision, "Matrix products: fp32, tf32 or bf16")
      ->capture_default_str();
  st->add_option("--filter", selftest.filter, "Only cases whose \"op [shape]\" contains this");

  BenchOptions bench;
  auto* b = app.add_subcommand("bench", "Time the cells' kernels and whole training steps");
  b->add_option("--device", bench.device, "auto, cpu or cuda:N")->capture_default_str();
  b->add_option("--precision", bench.precision, "Matrix products: fp32, tf32 or bf16")
      ->capture_default_str();
  b->add_option("--filter", bench.filter,
                 "Only benchmarks whose name contains this: \"OP CONFIG\" for an op "
                 "(\"mamba2 L\"), \"model NAME\" for a model (\"model slstm\"; \"model\": all)");
  b->add_option("--json", bench.json_out, "Also write every figure as JSON to this file");
  b->add_option("--reps", bench.reps, "Timed repetitions per op")->capture_default_str();
  b->add_option("--linear-kernel", bench.linear_kernel,
                "The linear cells' op benchmarks: automatic, recurrent, chunkwise or "
                "chunk-parallel")
      ->capture_default_str();
  b->add_option("--nonlinear-kernel", bench.nonlinear_kernel,
                "LSTM's and sLSTM's op benchmarks' kernels: automatic, fma or tensor-core")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    return app.exit(err);
  }
  try {
    if (t->parsed()) return run_train(train);
    if (e->parsed()) return run_eval(eval);
    if (k->parsed()) return run_tasks(tasks);
    if (pr->parsed()) return run_probe(probe);
    if (sw->parsed()) return run_sweep(sweep);
    if (rp->parsed()) return run_report(report_dir);
    if (st->parsed()) return run_selftest(selftest);
    if (g->parsed()) {
      check_device(gui_options.device);
#ifdef STATELAB_HAVE_GUI
      return gui::run_gui(gui_options);
#else
      throw ConfigError(
          "lab gui: this build has no dashboard (it needs libimgui-dev, libglfw3-dev and "
          "libgl-dev: bash scripts/setup.sh installs them, then rebuild). Headless: lab train, "
          "lab sweep, lab probe, lab report");
#endif
    }
    if (b->parsed()) return run_bench(bench);
    return run_devices();
  } catch (const Error& err) {
    std::fprintf(stderr, "\nlab: error: %s\n", err.what());
    return 1;
  } catch (const std::exception& err) {
    std::fprintf(stderr, "\nlab: internal error: %s\n", err.what());
    return 2;
  }
}
