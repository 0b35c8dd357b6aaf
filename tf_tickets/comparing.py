"""What `python -m tf_tickets.compare` does: read run directories (a
sweep's or any), pair their results by seed, and judge the claims of a
rules file written before the runs (`tf_tickets.stats`).

The rules file (JSON):

    {"written": "2026-12-07",            # when the rules were fixed
     "metric": "test_accuracy",          # a results.csv column
     "scale": 100,                       # reported in points
     "rows": {"branch": "sparse_training"},  # which results.csv rows
     "arms": "sparse_training.method",   # a setting whose values are the
                                         # arms, or {name: selector}
     "groups": ["sparse_training.sparsity"],  # one table per value
     "comparisons": [
       {"a": "rigl", "b": "static", "claim": "greater"},
       {"a": "rigl", "b": "set", "claim": "equivalent", "margin": 0.5}]}

A selector is {key: value}: a key with a dot is a setting of the run
(RUN/config.json, e.g. "lottery.branch"), a key without one a results.csv
column (e.g. "level"); "shared": true makes an arm's value the same in
every group (e.g. the dense level 0 against each level's ticket). Values
are paired by `training.seed` within a group; a claim is judged on the
per-seed differences a - b (scaled) and its verdict is "shown" or "not
shown" (an equivalence only through TOST with the rule's margin). A rules
file dated after the first run is reported as such: its verdicts were
not fixed before the runs.
"""
import csv
import dataclasses
import datetime
import hashlib
import io
import json
import os
import statistics

from tf_tickets import grid
from tf_tickets import rundir
from tf_tickets import settings as settings_lib
from tf_tickets import stats
from tf_tickets.errors import ConfigError


@dataclasses.dataclass
class Run:
  run_dir: str
  settings: dict  # 'namespace.field' -> JSON value
  rows: list
  created: float


def find_runs(paths):
  """The runs of sweep directories (their manifest's points) and run
  directories, each with its settings and results.csv rows."""
  dirs = []
  for path in paths:
    manifest = os.path.join(path, grid.MANIFEST)
    if os.path.isfile(manifest):
      dirs += [p['run_dir'] for p in rundir.read_json(manifest)['points']]
    elif os.path.isfile(rundir.config_json_path(path)):
      dirs.append(path)
    else:
      raise ConfigError('--runs', f'{path!r} is neither a sweep directory '
                        '(manifest.json) nor a run directory (config.json)')
  runs = []
  for d in dirs:
    stored = rundir.read_settings(d)
    if stored is None:
      raise ConfigError('--runs', f'{d!r} has no settings in config.json '
                        '(not run yet, or written by an older tf_tickets)')
    flat = {f'{ns}.{k}': v for ns, fields in stored.items()
            for k, v in fields.items()}
    rows = []
    for path in rundir.find_results(d):
      rows += rundir.read_results(path)
    runs.append(Run(d, flat, rows,
                    os.path.getmtime(rundir.config_json_path(d))))
  return runs


def read_rules(path):
  try:
    with open(path) as f:
      text = f.read()
    rules = json.loads(text)
  except (OSError, ValueError) as e:
    raise ConfigError('--rules', f'cannot read {path!r}: {e}') from None
  for key in ('metric', 'arms', 'comparisons'):
    if key not in rules:
      raise ConfigError('--rules', f'{path}: missing "{key}"')
  for c in rules['comparisons']:
    if c.get('claim') not in stats.CLAIMS:
      raise ConfigError('--rules', f'{path}: claim {c.get("claim")!r}; '
                        f'valid: {", ".join(stats.CLAIMS)}')
    if c['claim'] in ('not_worse', 'equivalent') and not (
        isinstance(c.get('margin'), (int, float)) and c['margin'] > 0):
      raise ConfigError('--rules', f'{path}: claim {c["claim"]!r} needs a '
                        '"margin" > 0, fixed before the runs')
  rules['sha256'] = hashlib.sha256(text.encode()).hexdigest()[:12]
  return rules


def _matches(run, row, selector):
  for key, want in selector.items():
    if key == 'shared':
      continue
    have = run.settings.get(key) if '.' in key else row.get(key)
    if isinstance(have, str) and not isinstance(want, str):
      try:
        have = type(want)(float(have)) if isinstance(want, int) else \
            type(want)(have)
      except (TypeError, ValueError):
        return False
    if settings_lib.plain(have) != settings_lib.plain(want):
      return False
  return True


def _arms(rules, runs):
  arms = rules['arms']
  if isinstance(arms, str):
    values = sorted({json.dumps(r.settings.get(arms)) for r in runs})
    return {str(json.loads(v)): {arms: json.loads(v)} for v in values}
  return arms


def _group_of(rules, run, row):
  return tuple(str(run.settings.get(g) if '.' in g else row.get(g))
               for g in rules.get('groups', ()))


def collect(rules, runs):
  """{group: {arm: {seed: (value, run_dir)}}} of the rules' metric."""
  arms, scale = _arms(rules, runs), float(rules.get('scale', 1.0))
  rows_sel = rules.get('rows', {})
  out, shared = {}, {}
  for run in runs:
    seed = run.settings.get('training.seed')
    for row in run.rows:
      if not _matches(run, row, rows_sel) or row.get(rules['metric']) in (
          None, ''):
        continue
      value = float(row[rules['metric']]) * scale
      for arm, selector in arms.items():
        if not _matches(run, row, selector):
          continue
        target = (shared.setdefault(arm, {}) if selector.get('shared') else
                  out.setdefault(_group_of(rules, run, row), {}).setdefault(
                      arm, {}))
        if seed in target:
          raise ConfigError('--rules', f'arm {arm!r} has two values for seed '
                            f'{seed} ({target[seed][1]} and {run.run_dir}): '
                            'make its selector or the groups narrower')
        target[seed] = (value, run.run_dir)
  for group in out.values():
    group.update(shared)
  return out


def order(item):
  """Groups in numeric order where their values are numbers."""
  def key(value):
    try:
      return (0, float(value), '')
    except ValueError:
      return (1, 0.0, value)
  return tuple(key(v) for v in item[0])


def judge(rules, data):
  """[(group, comparison dict, differences, verdict)]."""
  out = []
  for group, arms in sorted(data.items(), key=order):
    for c in rules['comparisons']:
      a, b = arms.get(c['a'], {}), arms.get(c['b'], {})
      seeds = sorted(set(a) & set(b))
      if not seeds:  # an arm absent from this group (e.g. no control)
        continue
      diffs = [a[s][0] - b[s][0] for s in seeds]
      verdict = (stats.verdict(diffs, c['claim'], c.get('margin'))
                 if len(diffs) >= 2 else 'not shown (fewer than 2 seeds)')
      out.append((group, c, diffs, verdict))
  return out


def written_after(rules, runs):
  """True if the rules file's "written" date is after the first run."""
  written = rules.get('written')
  if not written or not runs:
    return written is None
  try:
    when = datetime.datetime.fromisoformat(str(written)).timestamp()
  except ValueError:
    raise ConfigError('--rules', f'"written": {written!r} is not a date '
                      'such as 2026-12-07') from None
  return when > min(r.created for r in runs)


def _pm(values):
  m = statistics.fmean(values)
  s = statistics.stdev(values) if len(values) > 1 else 0.0
  return f'{m:.2f} ± {s:.2f} (n={len(values)})'


def markdown(rules, data, verdicts, late, command, commits):
  """The tables (Markdown) of a comparison."""
  lines = [f'Metric: {rules["metric"]} (x{rules.get("scale", 1)}), paired '
           f'by training.seed; rules {rules.get("path", "")} (sha256 '
           f'{rules["sha256"]}, written {rules.get("written", "?")}).']
  if late:
    lines.append('**The rules are dated after the first run: these verdicts '
                 'were not fixed before the runs.**')
  for group, arms in sorted(data.items(), key=order):
    names = dict(zip(rules.get('groups', ()), group))
    lines += ['', f'### {", ".join(f"{k} = {v}" for k, v in names.items()) or "all runs"}',
              '', '| arm | mean ± std |', '|---|---|']
    lines += [f'| {arm} | {_pm([v for v, _ in seeds.values()])} |'
              for arm, seeds in arms.items() if seeds]
    lines += ['', '| a - b | mean [95% CI] | 90% CI | claim | verdict |',
              '|---|---|---|---|---|']
    for g, c, diffs, verdict in verdicts:
      if g != group or len(diffs) < 2:
        continue
      m, lo, hi = stats.interval(diffs, 0.95)
      _, lo9, hi9 = stats.interval(diffs, 0.90)
      claim = c['claim'] + (f' (margin {c["margin"]})' if c.get('margin')
                            else '')
      lines.append(f'| {c["a"]} - {c["b"]} | {m:+.2f} [{lo:+.2f}, '
                   f'{hi:+.2f}] | [{lo9:+.2f}, {hi9:+.2f}] | {claim} | '
                   f'{verdict} |')
  lines += ['', f'Code: {", ".join(sorted(commits)) or "unknown"}. Command:',
            '', f'    {command}']
  return '\n'.join(lines)


def per_seed_csv(rules, data):
  buf = io.StringIO()
  out = csv.writer(buf)
  out.writerow(list(rules.get('groups', ())) + ['arm', 'seed',
                                                 rules['metric'], 'run_dir'])
  for group, arms in sorted(data.items(), key=order):
    for arm, seeds in arms.items():
      for seed, (value, run_dir) in sorted(seeds.items()):
        out.writerow(list(group) + [arm, seed, repr(value), run_dir])
  return buf.getvalue()


def comparisons_csv(rules, verdicts):
  buf = io.StringIO()
  out = csv.writer(buf)
  out.writerow(list(rules.get('groups', ())) + [
      'a', 'b', 'n', 'mean', 'low95', 'high95', 'low90', 'high90', 'claim',
      'margin', 'verdict'])
  for group, c, diffs, verdict in verdicts:
    m, lo, hi = stats.interval(diffs, 0.95) if diffs else (None,) * 3
    _, lo9, hi9 = stats.interval(diffs, 0.90) if diffs else (None,) * 3
    out.writerow(list(group) + [c['a'], c['b'], len(diffs), m, lo, hi, lo9,
                                hi9, c['claim'], c.get('margin'), verdict])
  return buf.getvalue()


def sweep_commits(paths):
  out = set()
  for path in paths:
    manifest = os.path.join(path, grid.MANIFEST)
    if os.path.isfile(manifest):
      out.add(rundir.read_json(manifest).get('commit', 'unknown'))
  return out
