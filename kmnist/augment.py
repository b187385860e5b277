"""On-the-fly augmentation: one random affine warp, optionally with elastic distortion, per training image.

All changes are folded into a single map of source coordinates and sampled once (bilinear). Chaining
Keras' RandomRotation/Shear/Translation/Zoom layers resamples four times, which visibly blurs 28x28
strokes, so the network would train on softer images than it is tested on.
"""
from __future__ import annotations

import numpy as np

SIZE = 28  # image side in pixels
ROTATION = 0.25  # radians (about 14°) at strength 1
SHEAR = 0.15  # horizontal shear factor at strength 1
ZOOM = 0.10  # relative scale change at strength 1
SHIFT = 2.0  # pixels at strength 1
ELASTIC_ALPHA = 34.0  # displacement scale at elastic 1 (Simard et al. 2003, for 28x28 digits)
ELASTIC_SIGMA = 4.0  # smoothing of the random displacement field, pixels


def _smoothing_matrix(sigma: float) -> np.ndarray:
    """(SIZE, SIZE) matrix M with M @ v = v convolved with a Gaussian (3 sigma wide, zero outside the frame).

    One matrix product per axis smooths a whole batch of fields; depthwise convolutions with the same
    25-tap kernel cost about twice as much on CPU.
    """
    r = int(3 * sigma)
    k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma**2))
    k /= k.sum()
    offset = np.arange(SIZE)[None, :] - np.arange(SIZE)[:, None]
    return np.where(np.abs(offset) <= r, k[np.clip(offset + r, 0, 2 * r)], 0.0).astype(np.float32)


def _bilinear(images, src_y, src_x):
    """Sample single-channel `images` (N, H, W, 1) at float coordinates (N, H, W); outside is 0."""
    import tensorflow as tf
    n = tf.shape(images)[0]
    flat = tf.reshape(images, [n, SIZE * SIZE])
    y0, x0 = tf.floor(src_y), tf.floor(src_x)
    wy, wx = src_y - y0, src_x - x0
    out = tf.zeros_like(src_y)
    for dy, dx, w in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        y, x = y0 + dy, x0 + dx
        inside = (y >= 0) & (y <= SIZE - 1) & (x >= 0) & (x <= SIZE - 1)
        idx = tf.cast(tf.clip_by_value(y, 0, SIZE - 1) * SIZE + tf.clip_by_value(x, 0, SIZE - 1), tf.int32)
        tap = tf.reshape(tf.gather(flat, tf.reshape(idx, [n, -1]), batch_dims=1), tf.shape(src_y))
        out += tf.where(inside, tap * w, 0.0)
    return out[..., None]


def augmenter(strength: float, elastic: float = 0.0):
    """A function `warp(images, seed)` warping a batch of 0..255 images (N, 28, 28, 1) at random, image by image.

    `strength` scales the affine ranges (1 = rotation ±14°, shear ±0.15, zoom ±10%, shift ±2 px);
    `elastic` scales a smoothed random displacement field (the classic handwriting distortion), 0 = off.
    Ink moved in from outside the frame is background (0).

    The draws are stateless: `seed` (two integers; the training pipeline gives each batch its own) alone
    fixes the warp, so a parallel map, thread scheduling or a rerun cannot change what a batch sees.
    """
    import tensorflow as tf
    c = (SIZE - 1) / 2
    grid_y, grid_x = (g.astype(np.float32) - c for g in np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij"))
    smooth = tf.constant(_smoothing_matrix(ELASTIC_SIGMA))

    def warp(images, seed):
        n = tf.shape(images)[0]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)  # one stream per draw

        def uniform(limit: float, stream: int):
            return tf.random.stateless_uniform([n, 1, 1], seeds[stream], -limit, limit)

        angle, shear = uniform(ROTATION * strength, 0), uniform(SHEAR * strength, 1)
        scale = 1.0 + uniform(ZOOM * strength, 2)
        shift_y, shift_x = uniform(SHIFT * strength, 3), uniform(SHIFT * strength, 4)
        cos, sin = tf.cos(angle), tf.sin(angle)
        # Inverse map: each output pixel reads the input at the rotated, sheared, scaled, shifted spot.
        src_x = (cos * grid_x - sin * grid_y + shear * grid_y) / scale + c + shift_x
        src_y = (sin * grid_x + cos * grid_y) / scale + c + shift_y
        if elastic > 0:
            field = tf.random.stateless_uniform([n, SIZE, SIZE, 2], seeds[5], -1.0, 1.0)
            field = tf.einsum("yi,nijc,xj->nyxc", smooth, field, smooth) * (ELASTIC_ALPHA * elastic)
            src_y, src_x = src_y + field[..., 0], src_x + field[..., 1]
        return _bilinear(tf.cast(images, tf.float32), src_y, src_x)

    return warp


def cutmixer(share: float):
    """A function `mix(images, onehots, seed)` pasting, into a `share` of a batch's images, a random box cut
    from the next image in the batch (CutMix, Yun et al. 2019); each label becomes the two one-hots
    weighted by the area each image keeps.

    The box's area is uniform in (0, 1) (CutMix's Beta(1, 1)); it is clipped at the frame, and the label
    weights follow the clipped area. Stateless like `augmenter`: `seed` alone fixes the boxes. The batch
    is already shuffled, so its neighbour is a random partner.
    """
    import tensorflow as tf
    rows = tf.range(SIZE, dtype=tf.float32)[None, :, None]
    cols = tf.range(SIZE, dtype=tf.float32)[None, None, :]

    def mix(images, onehots, seed):
        n = tf.shape(images)[0]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
        draw = [tf.random.stateless_uniform([n, 1, 1], seeds[i]) for i in range(4)]
        side = SIZE * tf.sqrt(draw[0])  # a square box of area share draw[0] before clipping
        cy, cx = draw[1] * SIZE, draw[2] * SIZE
        inside = ((tf.abs(rows + 0.5 - cy) < side / 2) & (tf.abs(cols + 0.5 - cx) < side / 2)
                  & (draw[3] < share))
        inside = tf.cast(inside, tf.float32)
        partner = tf.roll(images, 1, axis=0)
        mixed = images * (1.0 - inside[..., None]) + partner * inside[..., None]
        taken = tf.reduce_mean(inside, axis=[1, 2])[:, None]  # area share from the partner, 0 when not mixed
        labels = onehots * (1.0 - taken) + tf.roll(onehots, 1, axis=0) * taken
        return mixed, labels

    return mix
