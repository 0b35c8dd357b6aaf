"""tf_tickets: lottery tickets and sparse training for TensorFlow / tf_keras."""
import setuptools

# tf-keras must have the same minor version as tensorflow (each tf-keras
# release is built against one TensorFlow minor), hence the ~= pins on both.
# tfmot 0.8.1 is the first release that runs on tf_keras with Keras 3 present.
INSTALL_REQUIRES = [
    'tensorflow~=2.21.0',
    'tf-keras~=2.21.0',
    'tensorflow-model-optimization>=0.8.1',
    'tensorflow-datasets>=4.9.4',
    # tensorflow-datasets 4.9.x imports it to download but does not declare it.
    'importlib_resources>=6.0',
    'absl-py>=1.4.0',
    'gin-config>=0.5.0',
    'tensorboard>=2.21.0',
    'numpy>=1.26',
    # The export loads and runs every .tflite it writes on LiteRT's
    # interpreter, as apps do (tf.lite.Interpreter is deprecated).
    'ai-edge-litert>=2.0',
    # The lottery's per-level figure in TensorBoard (and tools/plot_tickets).
    'matplotlib>=3.8',
]

EXTRAS = {
    # pytest-xdist: the README's test command runs the suite on 2 processes;
    # ray and submitit: the sweep's launchers are tested too.
    'test': ['pytest>=8.0', 'pytest-xdist>=3.5', 'ray>=2.9', 'submitit>=1.5'],
    # python -m tf_tickets.sweep --launcher=ray / --launcher=slurm
    'ray': ['ray>=2.9'],
    'slurm': ['submitit>=1.5'],
    # LiteRT is a core dependency; the extra stays so that
    # `pip install 'tf_tickets[edge]'` keeps working.
    'edge': [],
    # matplotlib is a core dependency now; the extra keeps
    # `pip install 'tf_tickets[plots]'` working.
    'plots': [],
    # tools/bench_speed.py's peer reference (a jitted JAX/optax loop).
    'bench': ['jax>=0.4.30', 'optax>=0.2.3'],
}

setuptools.setup(
    name='tf_tickets',
    version='0.1.0',
    description=('Lottery tickets (IMP with rewinding) and dynamic sparse '
                 'training (RigL, SET) for TensorFlow / tf_keras, exported as '
                 'sparse SavedModel and TFLite.'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['tf_tickets', 'tf_tickets.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    license='Apache-2.0',
)
