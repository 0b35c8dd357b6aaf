"""The package's shape: imports point down (no cycle, counting imports
inside functions), small modules, the run-directory layout in one module."""
import ast
import os
import re
import subprocess
import sys

import cli

PKG = os.path.join(cli.REPO, 'tf_tickets')
MAX_LINES = 400


def modules():
  """{dotted module name: path} of every module of tf_tickets."""
  out = {}
  for root, _, files in os.walk(PKG):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(root, f)
        rel = os.path.relpath(path, cli.REPO)[:-3].replace(os.sep, '.')
        out[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = (
            path)
  return out


def imports(path, name, known):
  """tf_tickets modules `path` imports anywhere (functions included)."""
  tree = ast.parse(open(path).read())
  package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')
        base = '.'.join(parts[:len(parts) - node.level + 1] + [base]).strip('.')
      # `from pkg import mod` imports pkg.mod; `from mod import name`, mod.
      targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in known else base
                 for a in node.names]
    else:
      continue
    for t in targets:
      while t and t not in known:
        t = t.rpartition('.')[0]
      if t and t != name and t != 'tf_tickets':
        found.add(t)
  return found


def graph():
  mods = modules()
  return {name: imports(path, name, mods) for name, path in mods.items()}


def test_no_import_cycle():
  g = graph()
  state = {}

  def visit(node, stack):
    state[node] = 'open'
    for dep in sorted(g[node]):
      if state.get(dep) == 'open':
        raise AssertionError('import cycle: ' + ' -> '.join(stack + [dep]))
      if dep not in state:
        visit(dep, stack + [dep])
    state[node] = 'done'

  for node in sorted(g):
    if node not in state:
      visit(node, [node])


def test_layers_point_down():
  """Lower layers never import higher ones (see docs/architecture.md)."""
  layers = [
      {'tf_tickets.errors', 'tf_tickets.steps', 'tf_tickets.keras',
       'tf_tickets.settings', 'tf_tickets.console', 'tf_tickets.stats'},
      {'tf_tickets.data', 'tf_tickets.sources', 'tf_tickets.models',
       'tf_tickets.zoo', 'tf_tickets.gin_config', 'tf_tickets.pipelines',
       'tf_tickets.blocks', 'tf_tickets.topk', 'tf_tickets.structure',
       'tf_tickets.distributions',
       'tf_tickets.wrapper', 'tf_tickets.rundir'},
      {'tf_tickets.masks', 'tf_tickets.flops'},
      {'tf_tickets.algorithms', 'tf_tickets.pruning', 'tf_tickets'},
      # tf_tickets: the public API
      {'tf_tickets.training'},
      {'tf_tickets.summaries', 'tf_tickets.export'},
      {'tf_tickets.experiments', 'tf_tickets.callbacks'},
      {'tf_tickets.runner', 'tf_tickets.grid', 'tf_tickets.launchers',
       'tf_tickets.sweeping', 'tf_tickets.comparing', 'tf_tickets.reports'},
      # the command lines: they load the layer above after their flags
      {'tf_tickets.train', 'tf_tickets.sweep', 'tf_tickets.compare'},
  ]
  rank = {}
  for i, layer in enumerate(layers):
    for m in layer:
      rank[m] = i

  def layer_of(name):
    while name not in rank:
      assert '.' in name, f'{name}: put it in a layer of this test'
      name = name.rpartition('.')[0]
    return rank[name]

  for name, deps in graph().items():
    for dep in deps:
      if dep.split('.')[:2] == name.split('.')[:2]:
        continue  # inside one package
      assert layer_of(dep) <= layer_of(name), f'{name} imports {dep}'
  # export is a leaf: it reads finished runs, nothing imports it but the CLI.
  for name, deps in graph().items():
    if not name.startswith(('tf_tickets.export', 'tf_tickets.runner')):
      assert not any(d.startswith('tf_tickets.export') for d in deps), name
  for name in graph():
    if name.startswith('tf_tickets.export'):
      assert layer_of(name) == rank['tf_tickets.export']


def test_modules_are_small():
  big = {name: n for name, path in modules().items()
         if (n := len(open(path).read().splitlines())) > MAX_LINES}
  assert not big, big


def test_run_dir_layout_spelled_in_one_module():
  pattern = re.compile(r"""['"](results\.csv|result\.json|operative_config"""
                       r"""\.gin|config\.json|checkpoints|final|start)['"]""")
  places = []
  for name, path in modules().items():
    if name == 'tf_tickets.rundir':
      continue
    for i, line in enumerate(open(path), 1):
      if pattern.search(line) or re.search(
          r"f['\"](level|branch)_\{|['\"](level|branch)_\*?['\"]", line):
        places.append(f'{name}:{i}: {line.strip()}')
  for tool in os.listdir(os.path.join(cli.REPO, 'tools')):
    if tool.endswith('.py'):
      for i, line in enumerate(open(os.path.join(cli.REPO, 'tools', tool)),
                               1):
        if re.search(r"['\"]results\.csv['\"]|f['\"]branch_\{", line):
          places.append(f'tools/{tool}:{i}: {line.strip()}')
  assert not places, '\n'.join(places)


def test_algorithms_import_no_tensorflow():
  """Algorithms work on numpy arrays: no module of algorithms/ imports
  TensorFlow, tfmot or Keras itself."""
  banned = ('tensorflow', 'tensorflow_model_optimization', 'tf_keras',
            'keras', 'tf_tickets.keras')
  found = []
  for name, path in modules().items():
    if not name.startswith('tf_tickets.algorithms'):
      continue
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        targets = [node.module or '']
      else:
        continue
      found += [f'{name}: {t}' for t in targets
                if t.split('.')[0] in banned or t.startswith(banned)]
  assert not found, found
  # Nor through what they import: the package loads without TensorFlow.
  proc = subprocess.run(
      [sys.executable, '-c', 'import sys, tf_tickets.algorithms; print('
       '[m for m in sys.modules if m.split(".")[0] in ("tensorflow", '
       '"tf_keras", "keras", "tensorflow_model_optimization")])'],
      capture_output=True, text=True, check=True, cwd=cli.REPO)
  assert proc.stdout.strip() == '[]', proc.stdout


def test_only_summaries_write_tensorboard_events():
  """The summaries package is the one writer of TensorBoard events (and
  the maker of writers, `summaries.file_writer`)."""
  pattern = re.compile(r'tf\.summary\.|write_raw_pb|create_file_writer')
  found = []
  for name, path in modules().items():
    if name.startswith('tf_tickets.summaries'):
      continue
    for i, line in enumerate(open(path), 1):
      if pattern.search(line):
        found.append(f'{name}:{i}: {line.strip()}')
  assert not found, '\n'.join(found)


def _external_imports(path):
  """Top-level names of everything `path` imports (functions included)."""
  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and not node.level:
      out.add(node.module or '')
  return out


def test_the_library_reads_no_gin():
  """Settings are passed down: gin is read by one adapter module, which
  only the entrypoints (the two command lines) use; no library module
  imports gin or the adapter, and the settings classes are plain."""
  readers = {name for name, path in modules().items()
             if any(t.split('.')[0] == 'gin' for t in _external_imports(path))}
  assert readers == {'tf_tickets.gin_config'}, readers
  users = {name for name, deps in graph().items()
           if 'tf_tickets.gin_config' in deps}
  assert users <= {'tf_tickets.runner', 'tf_tickets.export.cli'}, users
  proc = subprocess.run(
      [sys.executable, '-c', 'import sys, tf_tickets.experiments, '
       'tf_tickets.export.core, tf_tickets.callbacks; '
       'print([m for m in sys.modules if m.split(".")[0] == "gin" or '
       'm == "tf_tickets.gin_config"])'],
      capture_output=True, text=True, check=True, cwd=cli.REPO,
      env=dict(cli.env(), TF_CPP_MIN_LOG_LEVEL='3'))
  assert proc.stdout.strip().splitlines()[-1] == '[]', proc.stdout
