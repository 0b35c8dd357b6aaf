"""A tiny TFDS image classification dataset made with TFDS's own tools
(no network): `python tests/plugins/tiny_tfds.py DATA_DIR` prepares
'tiny_shapes' (16x16x3, 3 classes, 300 train / 90 test) in DATA_DIR."""
import sys

import numpy as np
import tensorflow_datasets as tfds


class TinyShapes(tfds.core.GeneratorBasedBuilder):
  """Noise images whose class is the brightest channel."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(16, 16, 3)),
            'label': tfds.features.ClassLabel(num_classes=3)}),
        supervised_keys=('image', 'label'))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(300, 0),
            'test': self._generate_examples(90, 1)}

  def _generate_examples(self, n, seed):
    rng = np.random.default_rng(seed)
    for i in range(n):
      label = i % 3
      image = (rng.random((16, 16, 3)) * 60).astype(np.uint8)
      image[..., label] += 150
      yield i, {'image': image, 'label': label}


if __name__ == '__main__':
  TinyShapes(data_dir=sys.argv[1]).download_and_prepare()
