"""Summary values built on the host and written with one op (`Batch`)."""
import numpy as np
import tensorflow as tf

from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata


def metadata(plugin, description=None):
  """The SummaryMetadata of a TensorBoard plugin, with a description."""
  return tf.compat.v1.SummaryMetadata.FromString(
      plugin.create_summary_metadata(
          display_name=None, description=description).SerializeToString())


_SCALAR_METADATA = metadata(scalar_metadata)
_HISTOGRAM_METADATA = metadata(histogram_metadata)
_IMAGE_METADATA = metadata(image_metadata)
_TEXT_METADATA = metadata(text_metadata)


class Batch:
  """Summary values built on the host and written with one op.

  The values are what `tf.summary.scalar` / `histogram` / `image` write
  (tensor summaries with the plugins' metadata), but one `write_raw_pb`
  call writes them all: much cheaper than one eager summary op per value.
  """

  def __init__(self):
    self.summary = tf.compat.v1.Summary()

  def _add(self, tag, metadata, array):
    value = self.summary.value.add(tag=tag)
    value.metadata.CopyFrom(metadata)
    value.tensor.CopyFrom(tf.make_tensor_proto(array))

  def merge(self, summary):
    """Adds the values of another tf.compat.v1.Summary."""
    self.summary.value.extend(summary.value)

  def scalar(self, tag, value):
    self._add(tag, _SCALAR_METADATA, np.float32(value))

  def histogram(self, tag, values, buckets=30, bounds=None, metadata=None):
    """Buckets as `tf.summary.histogram` ([k, 3]: left, right, count) over
    the values' range or fixed `bounds` (lo, hi); no value for empty
    `values`; non-finite values (a diverged run) are left out."""
    values = np.asarray(values, np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if not values.size:
      return
    lo, hi = bounds or (float(values.min()), float(values.max()))
    if lo == hi:
      edges = np.full(buckets + 1, lo)
      counts = np.zeros(buckets)
      counts[-1] = values.size
    else:
      counts, edges = np.histogram(values, buckets, (lo, hi))
    self._add(tag, metadata or _HISTOGRAM_METADATA,
              np.stack([edges[:-1], edges[1:], counts], axis=1))

  def image(self, tag, image, metadata=None):
    """A grey (H, W) float image in [0, 1], as PNG (fast compression)."""
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    self.png(tag, tf.io.encode_png(u8[:, :, None], compression=1).numpy(),
             metadata)

  def png(self, tag, png, metadata=None):
    """An image already encoded as PNG bytes."""
    width = int.from_bytes(png[16:20], 'big')
    height = int.from_bytes(png[20:24], 'big')
    self._add(tag, metadata or _IMAGE_METADATA,
              np.array([str(width).encode(), str(height).encode(), png],
                       dtype=object))

  def text(self, tag, markdown):
    """A Markdown text (TensorBoard's Text tab)."""
    self._add(tag, _TEXT_METADATA, np.array(markdown.encode()))

  def write(self, writer, step):
    if self.summary.value:
      with writer.as_default():
        tf.summary.experimental.write_raw_pb(self.summary.SerializeToString(),
                                             step=step)
