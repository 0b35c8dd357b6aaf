"""The files of `python -m tf_tickets.compare`: the Markdown tables and
CSVs (`tf_tickets.comparing`), a plot of the per-seed values (matplotlib,
optional) and TensorBoard's HParams view of the runs."""
import json
import os
import sys

from matplotlib.figure import Figure

from tf_tickets import comparing
from tf_tickets import rundir
from tf_tickets import summaries
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError


def execute(paths, rules_path, out, command):
  """Writes the comparison; returns the exit status."""
  try:
    if not paths:
      raise ConfigError('--runs', 'give a sweep directory or run '
                        'directories')
    if not rules_path:
      raise ConfigError('--rules', 'give the rules file fixed before the '
                        'runs (see tf_tickets/comparing.py)')
    rules = comparing.read_rules(rules_path)
    rules['path'] = rules_path
    runs = comparing.find_runs(paths)
    data = comparing.collect(rules, runs)
    if not data:
      raise ConfigError('--rules', f'no results.csv row of the {len(runs)} '
                        'run(s) matches the rules\' rows and arms')
    verdicts = comparing.judge(rules, data)
    late = comparing.written_after(rules, runs)
    out = out or os.path.join(paths[0], 'compare')
    os.makedirs(out, exist_ok=True)
    text = comparing.markdown(rules, data, verdicts, late, command,
                              comparing.sweep_commits(paths))
    rundir.atomic_write_text(os.path.join(out, 'comparison.md'), text + '\n')
    rundir.atomic_write_text(os.path.join(out, 'per_seed.csv'),
                             comparing.per_seed_csv(rules, data))
    rundir.atomic_write_text(os.path.join(out, 'comparisons.csv'),
                             comparing.comparisons_csv(rules, verdicts))
    plot(rules, data, os.path.join(out, 'plot.png'))
    write_hparams(rules, runs, os.path.join(out, 'hparams'))
    print(text, flush=True)
    print(f'\nwritten: {out}/comparison.md, per_seed.csv, comparisons.csv, '
          'plot.png, hparams/', flush=True)
    return 0
  except TicketsError as e:
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr, flush=True)
    return 1


def plot(rules, data, path):
  """Per group, every arm's per-seed values and their mean."""
  groups = [g for g, _ in sorted(data.items(), key=comparing.order)]
  fig = Figure(figsize=(4 * len(groups), 3.5))
  axes = fig.subplots(1, len(groups), squeeze=False)
  for ax, group in zip(axes[0], groups):
    arms = data[group]
    for i, (arm, seeds) in enumerate(arms.items()):
      values = [v for v, _ in seeds.values()]
      ax.scatter([i] * len(values), values, s=12, alpha=0.6)
      if values:
        ax.hlines(sum(values) / len(values), i - 0.3, i + 0.3)
    ax.set_xticks(range(len(arms)), list(arms), rotation=30)
    ax.set_title(', '.join(f'{k}={v}' for k, v in zip(
        rules.get('groups', ()), group)) or 'all runs', fontsize=9)
    ax.set_ylabel(rules['metric'])
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def write_hparams(rules, runs, log_dir):
  """TensorBoard's HParams view: one trial per run, its settings that
  differ between the runs (and its seed) as hyperparameters, the metric of
  its last results.csv row."""
  keys = sorted({k for r in runs for k in r.settings
                 if len({json.dumps(x.settings.get(k)) for x in runs}) > 1}
                | {'training.seed'})
  value = lambda v: v if isinstance(v, (bool, int, float, str)) else \
      json.dumps(v)
  metric = rules['metric']
  trials = []
  for run in runs:
    last = run.rows[-1].get(metric) if run.rows else None
    trials.append((run.run_dir, {k: value(run.settings.get(k)) for k in keys},
                   None if last in (None, '') else float(last)))
  summaries.write_hparams(log_dir, keys, trials, metric)
