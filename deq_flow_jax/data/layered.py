"""A layered scene renderer with exact flow (FlyingChairs / AutoFlow style), on the fly.

`render(seed, index, cfg)` draws one image pair deterministically from (seed, index):
a textured background plane and 4-15 textured foreground objects (random polygons,
ellipses, smooth blobs, thin strokes; soft anti-aliased edges, some with holes), each
with its own motion: a homography M_l of the frame (translation, rotation, scale,
perspective) about the object's centre. Objects are composited back to front with their
soft masks; a pixel belongs to the top-most layer whose mask covers it by more than half.

Geometry. Layer l has a source image S_l (a photograph or a procedural texture), a map G_l
from S_l's pixels to the layer's own plane, a placement A_l of that plane in frame 1 and
the motion M_l, so frame 1 shows S_l through A_l G_l and frame 2 through M_l A_l G_l
(`cv2.warpPerspective`, pixel centres at integer coordinates, the convention of
`synthetic.py`). The forward flow of a frame-1 pixel x of layer l is therefore exactly
    flow(x) = pi(M_l [x, 1]) - x,     pi([a, b, c]) = (a / c, b / c),
defined for every pixel (dense: valid = 1 everywhere). A pixel is occluded when its
frame-2 position leaves the image or is covered there by another layer.

Displacements follow real data: per layer, a translation that is sub-pixel with some
probability and otherwise log-uniform over 1-2 decades, plus rotation, zoom and
perspective; most pixels move a few pixels, a long tail moves tens of pixels and more.
Photometric changes between the frames (gain, contrast, gamma, noise, blur, JPEG) are
applied after the geometry (`cfg.photometric=False` renders without them).

`render_photo_pair(seed, index, cfg)` gives the held-out "photo pairs": one held-out
photograph moved by a smooth global homography, with the same photometric changes.
`render_sequence(seed, index, cfg, frames)` gives video: one scene shown for T frames, every
layer moving by its M_l again at each frame (frame t shows it through M_l^t A_l G_l), so each
consecutive pair has exact flow; `VIDEO_CONFIG` holds its slower per-frame motions.
Arrays: images (H, W, 3) uint8 RGB, flow (H, W, 2) float32 (u, v) pixels.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import cv2
import numpy as np

from deq_flow_jax.data import photos
from deq_flow_jax.data.synthetic import _texture

SALT = {"train": 0, "validation": 1, "photo_pairs": 2, "video_train": 3, "video_validation": 4,
        "large_warps": 5}
_REF_WIDTH = 512.0          # motions are given for this width and scaled with cfg.width


@dataclasses.dataclass(frozen=True)
class LayeredConfig:
    """Parameters of the renderer. Shifts are pixels at width 512 (scaled with `width`).

    Attributes:
      height, width: frame size in pixels.
      min_objects, max_objects: number of foreground objects (inclusive range).
      photo_prob: probability that a layer's texture is a photograph (else procedural).
      bg_still_prob, obj_still_prob: probability that a layer moves less than ~1 px.
      bg_shift, obj_shift: (low, high) of the log-uniform translation of moving layers.
      bg_rot, obj_rot: largest rotation (degrees; drawn as max * U(-1, 1)^3).
      bg_zoom, obj_zoom: largest log scale change (same law).
      perspective_prob, bg_perspective, obj_perspective: probability of a perspective term
        and its largest relative depth change across the layer.
      photometric: apply the photometric changes between frames.
      noise: largest std of the Gaussian pixel noise (grey levels).
      blur_prob, jpeg_prob: probability of a Gaussian blur (per frame), of JPEG (per pair).
      camera_only_prob: probability that a *train* scene is the background alone (camera
        motion, no objects), as most of real footage is; the validation split ignores it, so
        its scenes stay the same whatever the training mixture.
      parallax_prob: probability that a *train* scene with objects is one camera moving
        through a static scene: every layer moves by the same camera rotation and zoom, and
        by the camera translation scaled by the layer's inverse depth (1 for the background,
        1 to `max_parallax` for the objects, nearer objects drawn in front), as a real camera
        sees depth. Each object still moves on its own with probability `mover_prob`.
        Validation ignores it, as camera_only_prob.
      ground_prob: probability that a *train* scene whose background moves with the camera
        (camera-only and parallax scenes) shows the background as a slanted plane (a floor,
        ceiling or wall) instead of a fronto-parallel one: its inverse depth varies linearly
        across the frame, from `ground_rho` far to 1.5x-`max_parallax`x that near (p = 0.6
        nearer towards the bottom, as a floor), so its flow is the plane-induced homography
        of the camera motion and grows steadily across the frame (a real stereo pair's floor
        goes from ~10 to ~60 px). Validation ignores it.
      ground_rho: (low, high) of the far end's inverse depth (1 = the fronto-parallel
        background's).
      flat_prob: probability that a layer of a *train* scene is a nearly textureless surface
        (`_flat_texture`: one colour under a faint ramp, a few broad bumps and fine grain of a
        grey level or two) instead of a photograph or procedural texture: sky, walls, painted
        or shaded surfaces, whose motion shows only at their edges and in the camera noise.
        Validation ignores it.
      flat_photo_prob: probability that such a flat layer is cut from a smooth part of a
        training photograph instead (`_smooth_photo_source`: a square window where under 2 %
        of the pixels have 4 grey levels or more of 7x7 local contrast: the wall behind the
        clock, the fundus of the retina, the astronaut's backdrop, the blurred background
        behind the cat), under a random colour change: real flat regions, with their sensor
        grain, gradients and compression, where the drawn ones are one colour under a ramp.
        Needs flat_prob > 0; validation ignores it.
      flat_lowpass_prob: probability that such a photographed flat layer is instead a strongly
        low-passed window of *any* training photograph (`_lowpass_photo_source`: the window
        averaged to 2x2-5x5 cells, smoothly interpolated back, its contrast scaled down until
        no 7x7 neighbourhood exceeds 1-2.5 grey levels, with grain and, half the time, JPEG
        compression added): flats of every size and of every photograph's colours, where the
        smooth windows of `flat_photo_prob` come from four photographs and, at 96 px or more,
        from two. Needs flat_prob and flat_photo_prob > 0; validation ignores it.
      bg_motion_scale: the largest rotation and zoom of a *train* scene's background (and of
        its camera, in camera-only and parallax scenes) are bg_rot and bg_zoom times this: with
        1.5, up to 6 degrees and a zoom of e^0.12, as a camera that rolls or moves forward
        shows. The draws stay the same, only scaled. Validation ignores it.
      bg_motion_prob: the share of train scenes that get bg_motion_scale's law; the rest keep
        bg_rot and bg_zoom, each scene exactly as at scale 1 (a mixture of the two laws; the
        pick has its own generator, so the scenes' random stream does not change).
      extra_photos: opt-in photographs (`photos.extra_names()`: scikit-learn's china and
        flower, with large smooth sky and out-of-focus background) added to the *train*
        split's bank, as textures and as sources of photographed flats; () keeps the bank
        and so every draw of configs without them. Validation ignores it.
      num_train: virtual length of the train split (samples are rendered on demand).
      num_val, num_photo_pairs: sizes of the fixed validation and photo-pair sets.
    """
    height: int = 384
    width: int = 512
    min_objects: int = 4
    max_objects: int = 15
    photo_prob: float = 0.75
    bg_still_prob: float = 0.3
    obj_still_prob: float = 0.2
    bg_shift: tuple[float, float] = (0.5, 30.0)
    obj_shift: tuple[float, float] = (1.0, 110.0)
    bg_rot: float = 4.0
    obj_rot: float = 30.0
    bg_zoom: float = 0.08
    obj_zoom: float = 0.3
    perspective_prob: float = 0.3
    bg_perspective: float = 0.06
    obj_perspective: float = 0.15
    photometric: bool = True
    noise: float = 4.0
    blur_prob: float = 0.15
    jpeg_prob: float = 0.3
    camera_only_prob: float = 0.0
    parallax_prob: float = 0.0
    max_parallax: float = 4.0
    mover_prob: float = 0.25
    ground_prob: float = 0.0
    ground_rho: tuple[float, float] = (0.25, 1.0)
    flat_prob: float = 0.0
    flat_photo_prob: float = 0.0
    flat_lowpass_prob: float = 0.0
    bg_motion_scale: float = 1.0
    bg_motion_prob: float = 1.0
    extra_photos: tuple[str, ...] = ()
    num_train: int = 1_000_000
    num_val: int = 64
    num_photo_pairs: int = 32

    def __post_init__(self):
        if self.height < 32 or self.width < 32:
            raise ValueError(f"layered frames must be at least 32x32, got {self.height}x{self.width}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, "
                             f"{self.max_objects}")
        for k in ("camera_only_prob", "parallax_prob", "mover_prob", "ground_prob", "flat_prob",
                  "flat_photo_prob", "flat_lowpass_prob", "bg_motion_prob"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ValueError(f"{k} must be in [0, 1], got {getattr(self, k)}")
        if not 0.0 < self.bg_motion_scale <= 4.0:
            raise ValueError(f"bg_motion_scale must be in (0, 4], got {self.bg_motion_scale}")
        if not 1.0 <= self.max_parallax <= 20.0:
            raise ValueError(f"max_parallax must be in [1, 20], got {self.max_parallax}")
        lo, hi = self.ground_rho
        if not 0.05 <= lo <= hi <= 1.0:
            raise ValueError(f"ground_rho must be (low, high) with 0.05 <= low <= high <= 1, "
                             f"got {self.ground_rho}")
        for k in ("num_train", "num_val", "num_photo_pairs"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        extra = self.extra_photos
        if isinstance(extra, str):
            raise ValueError(f"extra_photos must be a tuple of names, got the string {extra!r}")
        object.__setattr__(self, "extra_photos", tuple(extra))
        try:                 # a wrong name, or scikit-learn missing: here, not in a data worker
            photos.photo_names("train", self.extra_photos)
            for name in self.extra_photos:
                photos.load_photo(name)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"extra_photos: {e}") from None

    def replace(self, **kw) -> LayeredConfig:
        return dataclasses.replace(self, **kw)


# ---------------------------------------------------------------- geometry helpers

def _translate(tx, ty) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _cubic(rng) -> float:
    """U(-1, 1)^3: mostly small, sometimes close to +-1."""
    return float(rng.uniform(-1, 1) ** 3)


def _motion(rng, centre, radius, still_prob, shift, max_rot, max_zoom, persp_prob, max_persp,
            scale) -> np.ndarray:
    """A random frame homography about `centre`: translate * perspective * rotate * zoom."""
    still = rng.uniform() < still_prob
    if still:
        mag, damp = rng.uniform(0.0, 0.8), 0.02
    else:
        mag, damp = math.exp(rng.uniform(math.log(shift[0]), math.log(shift[1]))) * scale, 1.0
    phi = rng.uniform(0, 2 * math.pi)
    a = math.radians(max_rot * _cubic(rng) * damp)
    z = math.exp(max_zoom * _cubic(rng) * damp)
    persp = np.eye(3)
    if rng.uniform() < persp_prob:
        k = max_persp * rng.uniform(-1, 1) * damp / max(radius, 1.0)
        d = rng.uniform(0, 2 * math.pi)
        persp[2, :2] = (k * math.cos(d), k * math.sin(d))
    c, s = z * math.cos(a), z * math.sin(a)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    cx, cy = centre
    m = _translate(cx + mag * math.cos(phi), cy + mag * math.sin(phi)) @ persp @ rot @ _translate(-cx, -cy)
    return m / m[2, 2]


def _shape_mask(rng, radius: float) -> np.ndarray:
    """A random shape on a square canvas centred on the object: (n, n) uint8 alpha 0..255."""
    n = int(math.ceil(2 * radius)) + 6
    c = (n - 1) / 2.0
    mask = np.zeros((n, n), np.uint8)
    sh = 4                                     # sub-pixel vertices (cv2 `shift` bits)
    pts = lambda p: np.round(np.asarray(p) * (1 << sh)).astype(np.int32)  # noqa: E731
    kind = rng.choice(4, p=[0.3, 0.2, 0.35, 0.15])
    if kind == 0:                              # star-convex polygon
        k = int(rng.integers(3, 11))
        ang = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        r = radius * rng.uniform(0.45, 1.0, size=k)
        cv2.fillPoly(mask, [pts(np.stack([c + r * np.cos(ang), c + r * np.sin(ang)], -1))], 255,
                     cv2.LINE_AA, sh)
    elif kind == 1:                            # ellipse
        axes = (radius * rng.uniform(0.5, 1.0), radius * rng.uniform(0.2, 1.0))
        cv2.ellipse(mask, (int(round(c * 16)), int(round(c * 16))),
                    (int(axes[0] * 16), int(axes[1] * 16)), float(rng.uniform(0, 180)), 0, 360, 255,
                    -1, cv2.LINE_AA, sh)
    elif kind == 2:                            # smooth blob: a Fourier series radius
        ang = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        r = np.ones_like(ang)
        for f in range(2, 6):
            r += rng.uniform(-1, 1) * 0.35 / f * np.cos(f * ang + rng.uniform(0, 2 * np.pi))
        r = radius * np.clip(r, 0.2, None) / r.max()
        cv2.fillPoly(mask, [pts(np.stack([c + r * np.cos(ang), c + r * np.sin(ang)], -1))], 255,
                     cv2.LINE_AA, sh)
    else:                                      # thin stroke: a bent polyline, 1.5-6 px wide
        k = int(rng.integers(2, 5))
        d = rng.uniform(0, np.pi)
        t = np.linspace(-radius, radius, k)
        off = rng.uniform(-0.25, 0.25, size=k) * radius
        p = np.stack([c + t * np.cos(d) - off * np.sin(d), c + t * np.sin(d) + off * np.cos(d)], -1)
        cv2.polylines(mask, [pts(p)], False, 255, int(rng.integers(2, 7)), cv2.LINE_AA, sh)
    if kind != 3 and rng.uniform() < 0.15:     # a hole shows the layers behind
        cv2.circle(mask, (int(c), int(c)), max(1, int(radius * rng.uniform(0.15, 0.35))), 0, -1,
                   cv2.LINE_AA)
    if rng.uniform() < 0.3:                    # softer (defocused) edges
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 1.5))
    return mask


@dataclasses.dataclass
class _Layer:
    src: np.ndarray            # (hs, ws, 3) uint8 source image
    to_plane: np.ndarray       # 3x3 G: source pixels -> layer plane
    colour: np.ndarray | None  # (3, 4) affine colour change or None
    mask: np.ndarray | None    # (n, n) uint8 alpha in plane coordinates (None: background)
    place: np.ndarray          # 3x3 A: plane -> frame 1
    motion: np.ndarray         # 3x3 M: frame 1 -> frame 2


def _zoom_about(point, log_zoom: float) -> np.ndarray:
    z = math.exp(log_zoom)
    return _translate(*point) @ np.diag([z, z, 1.0]) @ _translate(-point[0], -point[1])


class _CameraRig:
    """A camera moving through a static scene (drawn by `_camera_rig`).

    rot: 3x3 rotation about the image centre, shared by all depths; t: (2,) translation in
    px at inverse depth 1; forward: log zoom at inverse depth 1 about the focus of expansion
    foe (x, y). `layer(rho)` is the frame homography of a fronto-parallel layer at inverse
    depth rho, `plane(l)` that of a slanted plane whose inverse depth at pixel x is
    l . [x, 1].
    """

    def __init__(self, rot, t, forward, foe):
        self.rot, self.t, self.forward, self.foe = rot, np.asarray(t, np.float64), forward, foe

    def layer(self, rho: float) -> np.ndarray:
        """R T(rho t) Z_foe(rho forward): nearer layers move more, in the same direction."""
        m = self.rot @ _translate(*(rho * self.t)) @ _zoom_about(self.foe, rho * self.forward)
        return m / m[2, 2]

    def plane(self, l: np.ndarray) -> np.ndarray:
        """R (I + [w; tz] l^T): the pinhole camera's image of a plane under a translation
        with forward component tz = -forward (per unit inverse depth) and lateral image
        shift t + tz * foe, so x' = (x + rho(x) w) / (1 + rho(x) tz) with rho(x) = l . [x, 1]
        (affine in x for a plane): at constant rho this is `layer(rho)` to first order."""
        tz = -self.forward
        w = self.t + tz * np.asarray(self.foe, np.float64)
        m = self.rot @ (np.eye(3) + np.outer([w[0], w[1], tz], l))
        return m / m[2, 2]


def _camera_rig(rng, cfg: LayeredConfig, h: int, w: int, scale: float) -> _CameraRig:
    """A camera moving through a static scene (`_CameraRig`).

    The rotation (about the image centre, bg_rot/bg_zoom's laws) is shared by all depths; the
    translation t (log-uniform in bg_shift, px at the background's depth) and the forward
    motion (log zoom about a focus of expansion) scale with the inverse depth `rho`
    (1 = background), so nearer layers move more, in the same direction.
    """
    still = rng.uniform() < cfg.bg_still_prob
    mag = (rng.uniform(0.0, 0.8) if still else
           math.exp(rng.uniform(math.log(cfg.bg_shift[0]), math.log(cfg.bg_shift[1]))) * scale)
    damp = 0.02 if still else 1.0
    phi = rng.uniform(0, 2 * math.pi)
    t = np.array([mag * math.cos(phi), mag * math.sin(phi)])
    forward = cfg.bg_zoom * _cubic(rng) * damp
    foe = (rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h)
    a = math.radians(cfg.bg_rot * _cubic(rng) * damp)
    c, s_ = math.cos(a), math.sin(a)
    centre = (0.5 * w, 0.5 * h)
    rot = _translate(*centre) @ np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]]) \
        @ _translate(-centre[0], -centre[1])
    return _CameraRig(rot, t, forward, foe)


def _ground_plane(rng, cfg: LayeredConfig, h: int, w: int) -> np.ndarray:
    """l (3,): the inverse depth l . [x, 1] of a slanted background plane over an h x w
    frame, `ground_rho` at its far edge, 1.5 to max(1.5, max_parallax) times that at its
    near edge; the near side is the bottom (+-17 degrees) with p = 0.6, else any side."""
    far = rng.uniform(*cfg.ground_rho)
    near = far * math.exp(rng.uniform(math.log(1.5), math.log(max(1.5, cfg.max_parallax))))
    ang = (math.pi / 2 + rng.normal(0.0, 0.3)) if rng.uniform() < 0.6 else rng.uniform(0, 2 * math.pi)
    d = np.array([math.cos(ang), math.sin(ang)])          # direction of growing inverse depth
    extent = abs(d[0]) * (w - 1) + abs(d[1]) * (h - 1)
    g = d * (near - far) / extent
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return np.array([g[0], g[1], 0.5 * (near + far) - g @ centre])


def _flat_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A nearly textureless surface: (h, w, 3) float32 0..255. One colour; a linear ramp of up to
    24 grey levels across the plane; 0-2 broad Gaussian bumps of up to +-12 levels (sigma
    0.15-0.5 of the plane); fine grain of std up to 1.5 levels; a tint of +-15 % per channel on
    the shading. Contrast stays below the camera noise's few levels over any few pixels."""
    n = float(max(h, w))
    yy, xx = np.mgrid[:h, :w].astype(np.float32) / np.float32(n)
    ang = rng.uniform(0.0, 2.0 * math.pi)
    ramp = np.float32(math.cos(ang)) * xx + np.float32(math.sin(ang)) * yy
    shade = np.float32(rng.uniform(0.0, 24.0)) * (ramp - ramp.mean())
    for _ in range(int(rng.integers(0, 3))):
        cx, cy = rng.uniform(0.0, w / n), rng.uniform(0.0, h / n)
        s2 = 2.0 * rng.uniform(0.15, 0.5) ** 2
        shade += np.float32(rng.uniform(-12.0, 12.0)) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / np.float32(s2))
    shade = shade + np.float32(rng.uniform(0.0, 1.5)) * rng.standard_normal((h, w), dtype=np.float32)
    tint = (1.0 + rng.uniform(-0.15, 0.15, size=3)).astype(np.float32)
    base = rng.uniform(20.0, 235.0, size=3).astype(np.float32)
    return np.clip(base + shade[..., None] * tint, 0, 255).astype(np.float32)


def local_contrast(img: np.ndarray, window: int = 7) -> np.ndarray:
    """Standard deviation of the grey level (mean of the channels) over each pixel's
    window x window neighbourhood: (H, W, 3) or (H, W) image -> (H, W) float32 grey levels.
    Flat surfaces (`_flat_texture`) stay below ~2; textured photographs reach tens."""
    g = np.asarray(img, np.float32)
    g = g.mean(-1) if g.ndim == 3 else g
    m, m2 = cv2.blur(g, (window, window)), cv2.blur(g * g, (window, window))
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


def _drawn_source(rng, hw, texture) -> tuple:
    """A drawn texture (`texture(rng, h, w)` -> float32 0..255: `_texture`, `_flat_texture`)
    as the source of a plane of size hw, drawn at <= 160 px and stretched over the plane:
    (uint8 image, G, None)."""
    h, w = hw
    f = max(1.0, max(h, w) / 160.0)
    th, tw = max(8, int(round(h / f))), max(8, int(round(w / f)))
    tex = np.clip(np.round(texture(rng, th, tw)), 0, 255).astype(np.uint8)
    return tex, np.diag([w / tw, h / th, 1.0]), None


# Smooth windows of the photographs: sides tried (photo pixels); the 7x7 local contrast (grey
# levels) that at most SMOOTH_ROUGH of a window's pixels may reach; the mean grey level a window
# must lie within (not clipped to black or white).
SMOOTH_SIDES = (48, 64, 96, 128, 160)
SMOOTH_CONTRAST = 4.0
SMOOTH_ROUGH = 0.02
_SMOOTH_MEAN = (12.0, 243.0)


@functools.cache
def _smooth_sums(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Summed-area tables, (H+1, W+1) float64 with a zero first row and column, of bank
    photograph `name`'s rough pixels (7x7 local contrast >= `SMOOTH_CONTRAST`) and of its grey
    level; computed once per photograph for every window side (`smooth_windows`)."""
    img = photos.load_photo(name)
    rough = (local_contrast(img, 7) >= SMOOTH_CONTRAST).astype(np.float64)
    grey = img.astype(np.float64).mean(-1)
    return tuple(np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0))) for a in (rough, grey))


@functools.cache
def smooth_windows(name: str, side: int) -> np.ndarray:
    """Top-left corners (K, 2) int64 (y, x), on a grid of stride side // 8, of the side x side
    windows of bank photograph `name` where at most a fraction `SMOOTH_ROUGH` of the pixels
    have a 7x7 local contrast of `SMOOTH_CONTRAST` or more and whose mean grey level is within
    _SMOOTH_MEAN. Cached per process."""
    ir, ig = _smooth_sums(name)
    h, w = ir.shape[0] - 1, ir.shape[1] - 1
    if h < side or w < side:
        return np.zeros((0, 2), np.int64)
    stride = max(1, side // 8)
    ys, xs = np.meshgrid(np.arange(0, h - side + 1, stride), np.arange(0, w - side + 1, stride), indexing="ij")

    def box(i):
        return i[ys + side, xs + side] - i[ys, xs + side] - i[ys + side, xs] + i[ys, xs]

    mean = box(ig) / side ** 2
    ok = (box(ir) <= SMOOTH_ROUGH * side * side) & (mean >= _SMOOTH_MEAN[0]) & (mean <= _SMOOTH_MEAN[1])
    return np.stack([ys[ok], xs[ok]], -1).astype(np.int64)


def _flat_side(rng, hw) -> int:
    """The side (photo pixels) of a photographed flat's window for a plane of size hw: one of
    the `SMOOTH_SIDES` up to the plane's larger side (the smallest when none is)."""
    fits = [s for s in SMOOTH_SIDES if s <= max(hw)] or [SMOOTH_SIDES[0]]
    return fits[int(rng.integers(len(fits)))]


def _smooth_photo_source(rng, bank, hw, used: list):
    """A flat-surface source cut from a smooth window of a `bank` photograph for a plane of size
    hw: (uint8 crop, G stretching it over the plane, colour matrix), or None when no photograph
    has one. The side is drawn by `_flat_side`, the photograph by weight among those with
    windows of that side, the window uniformly; the crop is turned by a multiple of 90 degrees
    and h-flipped at random."""
    h, w = hw
    side = _flat_side(rng, hw)
    have = [b for b in bank if len(smooth_windows(b.name, side))]
    if not have:
        return None
    photo = photos.choose_photo(rng, have)
    wins = smooth_windows(photo.name, side)
    y, x = wins[int(rng.integers(len(wins)))]
    crop = np.rot90(photo.image[y:y + side, x:x + side], int(rng.integers(4)))
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    used.append(photo.name)
    col = photos.colour_matrix(rng, photo.grey, strength=rng.uniform(0.2, 1.0))
    return np.ascontiguousarray(crop), np.diag([w / side, h / side, 1.0]), col


def _lowpass_photo_source(rng, bank, hw, used: list):
    """A flat-surface source made from any `bank` photograph for a plane of size hw: (uint8 image, G
    stretching it over the plane, colour matrix). The side is drawn by `_flat_side`; a square window
    of 1-3x that side (at most the photograph's shorter side) is averaged to k x k cells (k in 2..5)
    and cubically interpolated back to the side, then its deviation from the mean colour is scaled
    by 0.15-0.6 and further, if need be, until its largest 7x7 local contrast (`local_contrast`) is
    1-2.5 grey levels; grain of std 0.3-1.5 grey levels (80 % shared by the channels) is added and,
    with p = 0.5, JPEG compression at quality 30-90. Every 7x7 neighbourhood thus stays well under
    `SMOOTH_CONTRAST` but for compression blocks: real colours and shading, at any size."""
    h, w = hw
    side = _flat_side(rng, hw)
    photo = photos.choose_photo(rng, bank)
    ph, pw = photo.image.shape[:2]
    win = int(min(ph, pw, round(side * math.exp(rng.uniform(0.0, math.log(3.0))))))
    y, x = int(rng.integers(ph - win + 1)), int(rng.integers(pw - win + 1))
    k = int(rng.integers(2, 6))
    cells = cv2.resize(photo.image[y:y + win, x:x + win].astype(np.float32), (k, k),
                       interpolation=cv2.INTER_AREA)
    smooth = cv2.resize(cells, (side, side), interpolation=cv2.INTER_CUBIC)
    mean = smooth.reshape(-1, 3).mean(0)
    peak = float(local_contrast(smooth, 7).max())
    amp = min(rng.uniform(0.15, 0.6), rng.uniform(1.0, 2.5) / max(peak, 1e-6))
    grain = np.float32(rng.uniform(0.3, 1.5)) * (
        np.float32(0.8) * rng.standard_normal((side, side, 1), dtype=np.float32)
        + np.float32(0.2) * rng.standard_normal((side, side, 3), dtype=np.float32))
    img = np.clip(np.round(mean + np.float32(amp) * (smooth - mean) + grain), 0, 255).astype(np.uint8)
    if rng.uniform() < 0.5:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img
    used.append(photo.name)
    col = photos.colour_matrix(rng, photo.grey, strength=rng.uniform(0.2, 1.0))
    return img, np.diag([w / side, h / side, 1.0]), col


def _flat_source(rng, hw, bank, photo_prob: float, used: list, lowpass_prob: float = 0.0):
    """A flat-surface source for a plane of size hw: (image, G, colour matrix or None): with
    probability photo_prob (drawn only when > 0) one from a bank photograph: with probability
    lowpass_prob (drawn only when > 0) a low-passed window of any (`_lowpass_photo_source`),
    else a smooth window (`_smooth_photo_source`); otherwise a drawn surface
    (`_flat_texture`)."""
    if photo_prob > 0 and rng.uniform() < photo_prob:
        if bank and lowpass_prob > 0 and rng.uniform() < lowpass_prob:
            return _lowpass_photo_source(rng, bank, hw, used)
        src = _smooth_photo_source(rng, bank, hw, used)
        if src is not None:
            return src
    return _drawn_source(rng, hw, _flat_texture)


def _source(rng, bank, photo_prob, hw, used: list):
    """A texture source for a plane of size hw: (image, G, colour matrix)."""
    h, w = hw
    if bank and rng.uniform() < photo_prob:
        photo = photos.choose_photo(rng, bank)
        used.append(photo.name)
        img, g = photo.source(photos.photo_view(rng, photo.image.shape[:2], hw))
        return img, g, photos.colour_matrix(rng, photo.grey, strength=rng.uniform(0.2, 1.0))
    return _drawn_source(rng, hw, _texture)


def _motion_law(cfg: LayeredConfig, key: list, train: bool) -> LayeredConfig:
    """`cfg` with one scene's background and camera law: for a train scene, bg_rot and bg_zoom
    times bg_motion_scale, in a bg_motion_prob share of scenes. That share is drawn from its own
    generator (seeded by the scene's `key` plus one number), so each scene is exactly the scene
    at scale 1 or at the full scale, and configs without it keep their random stream."""
    if not train or cfg.bg_motion_scale == 1.0:
        return cfg
    if cfg.bg_motion_prob < 1.0 and np.random.default_rng(key + [1]).uniform() >= cfg.bg_motion_prob:
        return cfg
    return cfg.replace(bg_rot=cfg.bg_rot * cfg.bg_motion_scale, bg_zoom=cfg.bg_zoom * cfg.bg_motion_scale)


def _sample_scene(rng, cfg: LayeredConfig, bank, used: list, train_mixture: bool = False
                  ) -> list[_Layer]:
    """Background + objects. `train_mixture` (the train split) draws the scene kinds of
    camera_only_prob, parallax_prob, ground_prob and flat_prob; each draw is made only when its
    probability is > 0, so a config without them (and every validation scene) keeps its random
    stream. The background's and camera's law is `cfg`'s (see `_motion_law`)."""
    camera_only_prob = cfg.camera_only_prob if train_mixture else 0.0
    parallax_prob = cfg.parallax_prob if train_mixture else 0.0
    h, w = cfg.height, cfg.width
    scale = w / _REF_WIDTH
    half_diag = 0.5 * math.hypot(h, w)
    flat_prob = cfg.flat_prob if train_mixture else 0.0
    # Each flat draw is made only when flat_prob > 0, so configs without it keep their stream.
    flat_bg = flat_prob > 0 and rng.uniform() < flat_prob
    flat_photo, n_used = cfg.flat_photo_prob, len(used)
    if flat_bg:
        src, g, col = _flat_source(rng, (h, w), bank, flat_photo, used, cfg.flat_lowpass_prob)
    else:
        src, g, col = _source(rng, bank, cfg.photo_prob, (h, w), used)
    layers = [_Layer(src, g, col, None, np.eye(3),
                     _motion(rng, (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h), half_diag,
                             cfg.bg_still_prob, cfg.bg_shift, cfg.bg_rot, cfg.bg_zoom,
                             cfg.perspective_prob, cfg.bg_perspective, scale))]
    ground_prob = cfg.ground_prob if train_mixture else 0.0
    # Drawn only when asked for, so scenes without it keep their random stream.
    if camera_only_prob > 0 and rng.uniform() < camera_only_prob:
        if flat_bg:          # a flat frame alone would show its motion nowhere: texture it
            del used[n_used:]
            layers[0].src, layers[0].to_plane, layers[0].colour = _source(
                rng, bank, cfg.photo_prob, (h, w), used)
        if ground_prob > 0 and rng.uniform() < ground_prob:
            layers[0].motion = _camera_rig(rng, cfg, h, w, scale).plane(_ground_plane(rng, cfg, h, w))
        return layers
    rig = None
    if parallax_prob > 0 and rng.uniform() < parallax_prob:
        rig = _camera_rig(rng, cfg, h, w, scale)
        layers[0].motion = rig.layer(1.0)
        if ground_prob > 0 and rng.uniform() < ground_prob:
            layers[0].motion = rig.plane(_ground_plane(rng, cfg, h, w))
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    if rig is not None:        # inverse depths, ascending: later (front) objects are nearer
        rhos = np.sort(np.exp(rng.uniform(0.0, math.log(cfg.max_parallax), n_obj)))
    for i in range(n_obj):
        radius = min(h, w) * math.exp(rng.uniform(math.log(0.04), math.log(0.45)))
        mask = _shape_mask(rng, radius)
        n = mask.shape[0]
        centre = (rng.uniform(-0.05, 1.05) * w, rng.uniform(-0.05, 1.05) * h)
        if flat_prob > 0 and rng.uniform() < flat_prob:
            src, g, col = _flat_source(rng, (n, n), bank, flat_photo, used, cfg.flat_lowpass_prob)
        else:
            src, g, col = _source(rng, bank, cfg.photo_prob, (n, n), used)
        place = _translate(centre[0] - (n - 1) / 2.0, centre[1] - (n - 1) / 2.0)
        motion = _motion(rng, centre, radius, cfg.obj_still_prob, cfg.obj_shift, cfg.obj_rot,
                         cfg.obj_zoom, cfg.perspective_prob, cfg.obj_perspective, scale)
        if rig is not None and rng.uniform() >= cfg.mover_prob:
            motion = rig.layer(float(rhos[i]))
        layers.append(_Layer(src, g, col, mask, place, motion))
    return layers


# ---------------------------------------------------------------- rendering

def _box(m: np.ndarray, n: int, h: int, w: int):
    """Integer bounding box (x0, y0, x1, y1) in the frame of an n x n canvas mapped by m."""
    corners = np.array([[-1, -1, 1], [n, -1, 1], [-1, n, 1], [n, n, 1]], np.float64).T
    p = m @ corners
    x, y = p[0] / p[2], p[1] / p[2]
    x0, y0 = max(0, int(math.floor(x.min()))), max(0, int(math.floor(y.min())))
    x1, y1 = min(w, int(math.ceil(x.max())) + 1), min(h, int(math.ceil(y.max())) + 1)
    return x0, y0, x1, y1


def _colour(img: np.ndarray, cm) -> np.ndarray:
    out = img.astype(np.float32)
    return out if cm is None else cv2.transform(out, cm)


def _compose(layers, frame: int, h: int, w: int):
    """Frame `frame` (0, 1, 2, ...): each layer seen through M_l^frame A_l G_l, composited
    back to front -> (image (h, w, 3) float32, labels (h, w) int32 visible layer)."""
    lin = cv2.INTER_LINEAR
    img = np.empty((h, w, 3), np.float32)
    labels = np.zeros((h, w), np.int32)
    for l, layer in enumerate(layers):
        to_frame = layer.place if frame == 0 else np.linalg.matrix_power(layer.motion, frame) @ layer.place
        if layer.mask is None:
            tex = cv2.warpPerspective(layer.src, to_frame @ layer.to_plane, (w, h), flags=lin,
                                      borderMode=cv2.BORDER_REFLECT_101)
            img[:] = _colour(tex, layer.colour)
            continue
        x0, y0, x1, y1 = _box(to_frame, layer.mask.shape[0], h, w)
        if x1 <= x0 or y1 <= y0:
            continue
        sub = _translate(-x0, -y0) @ to_frame
        size = (x1 - x0, y1 - y0)
        alpha = cv2.warpPerspective(layer.mask, sub, size, flags=lin,
                                    borderMode=cv2.BORDER_CONSTANT).astype(np.float32) / 255.0
        tex = cv2.warpPerspective(layer.src, sub @ layer.to_plane, size, flags=lin,
                                  borderMode=cv2.BORDER_REFLECT_101)
        region = img[y0:y1, x0:x1]
        region += alpha[..., None] * (_colour(tex, layer.colour) - region)
        labels[y0:y1, x0:x1][alpha > 0.5] = l
    return img, labels


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int):
    """(xx, yy) float64 (h, w) pixel-centre coordinates, read-only."""
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    xx.setflags(write=False)
    yy.setflags(write=False)
    return xx, yy


def _flow_and_occlusion(layers, labels1, labels2):
    """Exact flow of every frame-1 pixel through its layer's motion; occlusion masks."""
    h, w = labels1.shape
    table = np.stack([layer.motion.reshape(9) for layer in layers]).T.copy()   # (9, layers)
    c = [np.take(table[k], labels1) for k in range(9)]                          # 9 x (h, w)
    xx, yy = _grid(h, w)
    x2, y2 = c[0] * xx + c[1] * yy + c[2], c[3] * xx + c[4] * yy + c[5]
    if np.any(table[6:8]):
        den = c[6] * xx + c[7] * yy + c[8]
        x2 /= den
        y2 /= den
    flow = np.stack([x2 - xx, y2 - yy], -1).astype(np.float32)
    xi, yi = np.round(x2).astype(np.int64), np.round(y2).astype(np.int64)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    seen = np.full((h, w), -1, np.int32)
    seen[inside] = labels2[yi[inside], xi[inside]]
    out_of_frame = ~inside
    occlusion = out_of_frame | (seen != labels1)
    return flow, occlusion.astype(np.float32), out_of_frame.astype(np.float32)


def _lighting(rng: np.random.Generator, mean: float):
    """One lighting change of a frame whose mean is `mean`: contrast about the mean, gain and
    bias as one affine map x -> scale * x + offset, then a gamma -> (scale, offset, gamma)."""
    contrast, gain = 2.0 ** rng.uniform(-0.2, 0.2), 2.0 ** rng.uniform(-0.25, 0.25)
    offset = gain * mean * (1 - contrast) + rng.uniform(-8, 8)
    return contrast * gain, offset, 2.0 ** rng.uniform(-0.2, 0.2)


def _camera(rng: np.random.Generator, cfg: LayeredConfig):
    """The camera of a pair or sequence: (noise sigma in grey levels or 0, JPEG on)."""
    sigma = rng.uniform(0, cfg.noise) if rng.uniform() < 0.5 else 0.0
    return sigma, rng.uniform() < cfg.jpeg_prob


def _expose(rng: np.random.Generator, img: np.ndarray, cfg: LayeredConfig, sigma: float, jpeg: bool,
            gamma: float | None) -> np.ndarray:
    """One float32 (H, W, 3) frame -> uint8: blur with p = cfg.blur_prob, noise of `sigma`,
    rounding, the `gamma` curve (None: none), JPEG at a random quality when `jpeg`."""
    if rng.uniform() < cfg.blur_prob:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.5))
    if sigma > 0:
        img = img + np.float32(sigma) * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if gamma is not None:
        img = cv2.LUT(img, np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8))
    if jpeg:
        quality = int(rng.integers(30, 96))
        _, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(img)


def photometric(rng: np.random.Generator, img1: np.ndarray, img2: np.ndarray, cfg: LayeredConfig):
    """Camera effects on a float32 pair -> uint8 pair: frame 2 gets a gain, contrast and gamma
    change; each frame Gaussian noise and (sometimes) blur; the pair (sometimes) JPEG."""
    scale, offset, gamma = _lighting(rng, float(img2.mean()))
    img2 = img2 * np.float32(scale) + np.float32(offset)
    sigma, jpeg = _camera(rng, cfg)
    return (_expose(rng, img1, cfg, sigma, jpeg, None), _expose(rng, img2, cfg, sigma, jpeg, gamma))


def _finish(rng, layers, cfg: LayeredConfig, used) -> dict:
    h, w = cfg.height, cfg.width
    img1, labels1 = _compose(layers, 0, h, w)
    img2, labels2 = _compose(layers, 1, h, w)
    flow, occlusion, out_of_frame = _flow_and_occlusion(layers, labels1, labels2)
    if cfg.photometric:
        img1, img2 = photometric(rng, img1, img2, cfg)
    else:
        img1, img2 = (np.clip(np.round(x), 0, 255).astype(np.uint8) for x in (img1, img2))
    return {"image1": img1, "image2": img2, "flow": flow, "valid": np.ones((h, w), np.float32),
            "occlusion": occlusion, "out_of_frame": out_of_frame, "layers": labels1,
            "photos": tuple(sorted(set(used)))}


def _bank(cfg: LayeredConfig, split: str):
    """The photographs a `split` scene draws from: the train split's with cfg.extra_photos."""
    return photos.photo_bank(split, cfg.extra_photos if split == "train" else ())


def render(seed: int, index: int, cfg: LayeredConfig = LayeredConfig(), split: str = "train") -> dict:
    """Renders pair `index` of `split` ('train' or 'validation' photos) from `seed`.

    Returns:
      {"image1", "image2": (H, W, 3) uint8, "flow": (H, W, 2) float32 frame 1 -> 2,
       "valid": (H, W) float32 ones (the flow is dense), "occlusion": (H, W) float32, 1 where
       the frame-1 pixel is hidden in frame 2 or leaves it, "out_of_frame": (H, W) float32,
       "layers": (H, W) int32 visible layer in frame 1 (0 = background), "photos": names of the
       photographs used}.
    """
    if split not in ("train", "validation"):
        raise ValueError(f"layered split must be 'train' or 'validation', got {split!r}")
    key = [int(seed), SALT[split], int(index)]
    rng, cfg = np.random.default_rng(key), _motion_law(cfg, key, split == "train")
    used: list = []
    layers = _sample_scene(rng, cfg, _bank(cfg, split), used, train_mixture=split == "train")
    return _finish(rng, layers, cfg, used)


def render_photo_pair(seed: int, index: int, cfg: LayeredConfig = LayeredConfig()) -> dict:
    """A held-out photograph under a smooth global homography (one layer), same outputs as
    `render`. The view keeps the photograph's scale (2^U(0, 0.5)) and orientation (+-10 deg)."""
    rng = np.random.default_rng([int(seed), SALT["photo_pairs"], int(index)])
    h, w = cfg.height, cfg.width
    photo = photos.choose_photo(rng, photos.photo_bank("validation"))
    g = photos.photo_view(rng, photo.image.shape[:2], (h, w), log2_scale=(0.0, 0.5), rotate_prob=0.0)
    centre = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h)
    motion = _motion(rng, centre, 0.5 * math.hypot(h, w), 0.25, (0.5, 40.0), 5.0, 0.1, 0.5, 0.06,
                     w / _REF_WIDTH)
    return _finish(rng, [_Layer(photo.image, g, None, None, np.eye(3), motion)], cfg, [photo.name])


def _rotate_about(point, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return _translate(*point) @ r @ _translate(-point[0], -point[1])


# Large motions that are not translations, for benchmarks/pretrained.py's large_warps set: the
# kinds of large motion a camera makes (zoom, roll, forward motion, and each with a pan), where
# no single shift fits the frame. Pans are pixels at width 512 (scaled with the width); at
# 384x512 the mean motion is 36-121 px.
LARGE_WARPS = ("zoom_in", "zoom_out", "roll", "forward", "zoom_pan", "roll_pan", "pan_zoom")


def large_warp(name: str, height: int, width: int) -> np.ndarray:
    """The frame homography (3x3, frame-1 pixels -> frame-2 pixels) of LARGE_WARPS' `name`:
    zoom_in / zoom_out: by e^+-0.25 (1.28x) about the centre; roll: 12 degrees about the centre;
    forward: zoom e^0.3 (1.35x) about a point 0.4 of the height down the centre line (a camera
    moving towards a horizon above the centre); zoom_pan: zoom e^0.18 then 60 px right;
    roll_pan: 6 degrees then 80 px down; pan_zoom: zoom e^0.1 then 120 px left."""
    c, k = ((width - 1) / 2.0, (height - 1) / 2.0), width / _REF_WIDTH
    warps = {"zoom_in": lambda: _zoom_about(c, 0.25), "zoom_out": lambda: _zoom_about(c, -0.25),
             "roll": lambda: _rotate_about(c, 12.0),
             "forward": lambda: _zoom_about((c[0], 0.4 * (height - 1)), 0.3),
             "zoom_pan": lambda: _translate(60.0 * k, 0.0) @ _zoom_about(c, 0.18),
             "roll_pan": lambda: _translate(0.0, 80.0 * k) @ _rotate_about(c, 6.0),
             "pan_zoom": lambda: _translate(-120.0 * k, 0.0) @ _zoom_about(c, 0.1)}
    if name not in warps:
        raise ValueError(f"large warp must be one of {', '.join(LARGE_WARPS)}; got {name!r}")
    return warps[name]()


def render_warp_pair(seed: int, index: int, cfg: LayeredConfig = LayeredConfig()) -> dict:
    """Pair `index` of the large_warps set: held-out photograph `index // len(LARGE_WARPS)`
    (in `photos.photo_names("validation")` order) under `large_warp(LARGE_WARPS[index %
    len(LARGE_WARPS)])`, one layer viewed as in `render_photo_pair` (scale 2^U(0, 0.3), no
    rotation; beyond the photograph the renderer reflects it), photometric changes as cfg says.
    Same outputs as `render`, plus "meta": {"photos": [name], "warp": warp name, "dataset":
    "large_warps", "id"}. index must be below len(LARGE_WARPS) x the held-out photographs."""
    names = photos.photo_names("validation")
    if not 0 <= int(index) < len(names) * len(LARGE_WARPS):
        raise ValueError(f"large_warps has {len(names) * len(LARGE_WARPS)} pairs; got index {index}")
    name, warp = names[int(index) // len(LARGE_WARPS)], LARGE_WARPS[int(index) % len(LARGE_WARPS)]
    rng = np.random.default_rng([int(seed), SALT["large_warps"], int(index)])
    h, w = cfg.height, cfg.width
    image = photos.load_photo(name)
    g = photos.photo_view(rng, image.shape[:2], (h, w), log2_scale=(0.0, 0.3), rotate_prob=0.0)
    ex = _finish(rng, [_Layer(image, g, None, None, np.eye(3), large_warp(warp, h, w))], cfg, [name])
    ex["meta"] = {"photos": [name], "warp": warp, "dataset": "large_warps", "id": f"{name}_{warp}"}
    return ex


# Per-frame motions of the video renderer: M_l is applied once per frame, so a layer's
# displacement grows linearly along the sequence (and its rotation, zoom and perspective
# compound). At the pairs' ranges (objects up to 110 px, 30 degrees, e^0.3 per frame) a
# 10-frame sequence would lose most objects out of the frame or turn them inside out, so
# video draws from ranges about a third as wide (see docs/data_layered.md).
VIDEO_CONFIG = LayeredConfig(bg_shift=(0.5, 10.0), obj_shift=(1.0, 32.0), bg_rot=1.0, obj_rot=6.0,
                             bg_zoom=0.02, obj_zoom=0.06, bg_perspective=0.015, obj_perspective=0.03)


def render_sequence(seed: int, index: int, cfg: LayeredConfig = VIDEO_CONFIG, frames: int = 10,
                    split: str = "validation") -> dict:
    """Renders video `index` of `split` ('train' or 'validation' photos) from `seed`.

    One scene of `render` (same law, its own random stream), shown for `frames` frames: frame t
    shows layer l through M_l^t A_l G_l, i.e. every layer keeps a constant image-space motion
    M_l from frame to frame, so the flow of a frame-t pixel x of layer l to frame t + 1 is
    exactly pi(M_l [x, 1]) - x. Objects may leave the frame or be uncovered along the way.

    With `cfg.photometric`, the camera (noise level, JPEG on or off) is drawn once per
    sequence; every frame gets its own blur (p = cfg.blur_prob), noise and JPEG quality, and
    the lighting does a random walk: frame t + 1's lighting is frame t's followed by one draw of
    the pairs' frame-2 change (contrast, gain, bias, gamma), applied to the unclipped
    intensities. Frame 0 is unchanged, so (frame 0, frame 1) is a pair of `render`'s law.
    Frames are drawn in order: the first k frames of a longer sequence are the k-frame sequence.

    Returns:
      {"images": (T, H, W, 3) uint8 RGB frames (NHWC), "flows": (T-1, H, W, 2) float32 (u, v)
       pixels, frame t -> t + 1, "valid": (T-1, H, W) float32 ones (dense), "occlusion":
       (T-1, H, W) float32, 1 where the frame-t pixel is hidden in frame t + 1 or leaves it,
       "out_of_frame": (T-1, H, W) float32, "layers": (T, H, W) int32 visible layer per frame
       (0 = background), "photos": names of the photographs used}.
    """
    if split not in ("train", "validation"):
        raise ValueError(f"layered split must be 'train' or 'validation', got {split!r}")
    if int(frames) < 2:
        raise ValueError(f"a sequence needs at least 2 frames, got {frames}")
    key = [int(seed), SALT["video_" + split], int(index)]
    rng, cfg = np.random.default_rng(key), _motion_law(cfg, key, split == "train")
    used: list = []
    layers = _sample_scene(rng, cfg, _bank(cfg, split), used, train_mixture=split == "train")
    h, w = cfg.height, cfg.width
    composed = [_compose(layers, t, h, w) for t in range(int(frames))]
    labels = np.stack([lab for _, lab in composed])
    flows, occlusion, out_of_frame = (np.stack(a) for a in zip(
        *(_flow_and_occlusion(layers, labels[t], labels[t + 1]) for t in range(len(labels) - 1))))
    images = np.empty((len(labels), h, w, 3), np.uint8)
    if cfg.photometric:
        sigma, jpeg = _camera(rng, cfg)
        scale, offset, gamma = 1.0, 0.0, None
        for t, (img, _) in enumerate(composed):
            if t > 0:
                s, o, g = _lighting(rng, scale * float(img.mean()) + offset)
                scale, offset, gamma = scale * s, offset * s + o, (gamma or 1.0) * g
                img = img * np.float32(scale) + np.float32(offset)
            images[t] = _expose(rng, img, cfg, sigma, jpeg, gamma)
    else:
        for t, (img, _) in enumerate(composed):
            images[t] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return {"images": images, "flows": flows, "valid": np.ones(occlusion.shape, np.float32),
            "occlusion": occlusion, "out_of_frame": out_of_frame, "layers": labels,
            "photos": tuple(sorted(set(used)))}
