"""The photo texture bank: natural photographs that ship inside installed packages (no download).

Every photograph below is a file of the scikit-image 0.26.0 wheel (`skimage/data/`, read
through `skimage.data`) or of the scikit-learn 1.9.1 wheel (`sklearn/datasets/images/`, read
from the file with OpenCV, without importing scikit-learn), so nothing touches the network;
source and licence of each are recorded in `PHOTOS` and in docs/data_layered.md. The split is
fixed:

  train       astronaut, chelsea, hubble_deep_field, retina, immunohistochemistry,
              brick, grass, gravel, coins, clock
              + the opt-in extras china, flower (scikit-learn's two photographs, with large
              smooth sky and out-of-focus background; a bank includes them only when asked,
              `photo_bank(split, extra=...)`, so renders without them keep their stream)
  validation  coffee, rocket, camera   (held out: only the validation renders and the
              photo pairs use them)

The Middlebury pair `stereo_motorcycle` is in neither split: it is a real-image check
(`motorcycle_pair`), never a texture. `translation_pair` cuts two windows of one photograph an
integer shift apart: exact flow with no resampling, a check of sub-pixel precision. Grey
photographs are tinted at sampling time.

A texture is a random view of a photograph: `photo_view` gives the 3x3 map from photo
pixels to texture-plane pixels (random scale, rotation, flip, offset) and `colour_matrix`
a random affine colour change (gain, contrast, saturation, hue rotation, tint). Both are
linear, so the renderer applies them after warping (one resampling per frame).
Pixel centres sit at integer coordinates (OpenCV's convention). Images are (H, W, 3)
uint8 RGB.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

SPLITS = ("train", "validation")


@dataclasses.dataclass(frozen=True)
class Photo:
    """One bundled photograph: its name (`skimage.data.<name>()`, or `<name>.jpg` of
    scikit-learn's sample images), split, source and licence."""
    name: str
    split: str
    source: str
    licence: str
    weight: float = 1.0    # relative sampling weight within its split
    package: str = "skimage"   # the installed package whose wheel holds it
    extra: bool = False        # opt-in: in a bank only when named (`photo_bank(extra=...)`)


PHOTOS = (
    Photo("astronaut", "train", "NASA Great Images (Eileen Collins)", "public domain"),
    Photo("chelsea", "train", "Stefan van der Walt (Chelsea the cat)", "CC0"),
    Photo("hubble_deep_field", "train", "NASA / HubbleSite, Hubble eXtreme Deep Field",
          "public domain (NASA media guidelines)", 0.5),
    Photo("retina", "train", "Wikimedia Commons, Mikael Haggstrom (fundus photograph)",
          "CC0 1.0", 0.5),
    Photo("immunohistochemistry", "train", "Center for Microscopy And Molecular Imaging (CMMI)",
          "no known copyright restrictions"),
    Photo("brick", "train", "CC0Textures Bricks25 (perspective-corrected crop)", "CC0"),
    Photo("grass", "train", "DeviantArt linolafett, Grass-01 (crop)", "CC0"),
    Photo("gravel", "train", "CC0Textures Gravel04 (crop)", "CC0"),
    Photo("coins", "train", "Brooklyn Museum Collection (Greek coins from Pompeii)",
          "no known copyright restrictions"),
    Photo("clock", "train", "Stefan van der Walt (motion-blurred wall clock)", "public domain"),
    Photo("china", "train", "Flickr, danielbuechele (Summer Palace, Beijing; retrieved by Robert "
          "Layton for scikit-learn)", "CC BY 2.0", package="sklearn", extra=True),
    Photo("flower", "train", "Flickr, vultilion (dahlia; retrieved by Robert Layton for "
          "scikit-learn)", "CC BY 2.0", package="sklearn", extra=True),
    Photo("coffee", "validation", "Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0"),
    Photo("rocket", "validation", "SpaceX (DSCOVR launch on Falcon 9)", "public domain"),
    Photo("camera", "validation", "Lav Varshney (camera man)", "CC0"),
)

# Bundled images we do not use, and why (recorded in docs/data_layered.md).
EXCLUDED = {
    "motorcycle_left, motorcycle_right, motorcycle_disp": "the real-image check (Middlebury 2014)",
    "moon, page": "no licence stated in the scikit-image docstring",
    "text, horse, logo, colorwheel, checkerboard, chessboard": "drawings / graphics, not photographs",
    "cell, microaneurysms, lfw_subset": "tiny or single-structure scientific images",
    "eagle, skin, lily, kidney, brain, ...": "not in the wheel: skimage downloads them with pooch",
}


def extra_names(split: str = "train") -> tuple[str, ...]:
    """Names of the opt-in photographs of a split (`Photo.extra`)."""
    if split not in SPLITS:
        raise ValueError(f"photo split must be one of {SPLITS}, got {split!r}")
    return tuple(p.name for p in PHOTOS if p.split == split and p.extra)


def photo_names(split: str, extra=()) -> tuple[str, ...]:
    """Names of the photographs of a split ('train' or 'validation'): those that are not
    opt-in, then the opt-in ones named in `extra` (each must be one of `extra_names(split)`),
    in `PHOTOS` order."""
    known = extra_names(split)
    bad = sorted(set(extra) - set(known))
    if bad:
        raise ValueError(f"{bad} are not opt-in {split} photographs; known: {list(known)}")
    return tuple(p.name for p in PHOTOS if p.split == split and (not p.extra or p.name in extra))


def _as_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def _sklearn_image(name: str) -> np.ndarray:
    """scikit-learn's sample photograph `<name>.jpg` as RGB uint8, decoded by OpenCV from the
    installed wheel's file (importing scikit-learn would load scipy and more for two files)."""
    import importlib.util
    import os

    import cv2

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"photograph {name!r} ships with scikit-learn, which is not installed "
                           "(pip install scikit-learn==1.9.1)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "images", f"{name}.jpg")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError(f"{path}: missing or not a readable JPEG (scikit-learn's sample image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """A bank photograph as (H, W, 3) uint8 RGB (grey images repeated), cached per process."""
    by_name = {p.name: p for p in PHOTOS}
    if name not in by_name:
        raise ValueError(f"{name!r} is not a bank photograph; known: {list(by_name)}")
    if by_name[name].package == "sklearn":
        img = _as_rgb(_sklearn_image(name))
    else:
        import skimage.data

        img = _as_rgb(getattr(skimage.data, name)())
    img.setflags(write=False)
    return img


@dataclasses.dataclass(frozen=True)
class BankPhoto:
    """A loaded bank photograph: image (H, W, 3) uint8, the same at half size (area
    filtered, for minified views), whether it is grey, its sampling weight."""
    name: str
    image: np.ndarray
    half: np.ndarray
    grey: bool
    weight: float

    def source(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(image, map) for a view (3x3, photo -> plane): the half-size image when the view
        shrinks the photo below 0.7x, so warps do not alias."""
        if math.sqrt(abs(np.linalg.det(view[:2, :2]))) >= 0.7:
            return self.image, view
        sy, sx = self.image.shape[0] / self.half.shape[0], self.image.shape[1] / self.half.shape[1]
        # half-size pixel i covers full-size pixels [s*i, s*(i+1)), centre s*i + (s-1)/2
        up = np.array([[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2], [0.0, 0.0, 1.0]])
        return self.half, view @ up


def photo_bank(split: str, extra=()) -> tuple[BankPhoto, ...]:
    """The photographs of a split (with the opt-in ones named in `extra`, see `photo_names`),
    loaded through `load_photo` on every call (cached there)."""
    names = photo_names(split, extra)
    return tuple(BankPhoto(p.name, load_photo(p.name), _half(p.name), _is_grey(p.name), p.weight)
                 for p in PHOTOS if p.name in names)


@functools.cache
def _is_grey(name: str) -> bool:
    img = load_photo(name)
    return bool(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]))


@functools.cache
def _half(name: str) -> np.ndarray:
    import cv2

    img = load_photo(name)
    half = cv2.resize(img, ((img.shape[1] + 1) // 2, (img.shape[0] + 1) // 2), interpolation=cv2.INTER_AREA)
    half.setflags(write=False)
    return half


def choose_photo(rng: np.random.Generator, bank) -> BankPhoto:
    """Draws one photograph of `bank` by weight."""
    w = np.array([b.weight for b in bank], np.float64)
    return bank[int(rng.choice(len(bank), p=w / w.sum()))]


def photo_view(rng: np.random.Generator, photo_hw, out_hw, log2_scale=(-1.0, 0.7),
               rotate_prob: float = 0.5) -> np.ndarray:
    """A random 3x3 map photo pixels -> texture-plane pixels showing part of the photo.

    The plane is `out_hw` = (h, w) pixels; the view is scaled by 2^U(log2_scale), rotated
    (any angle with p=rotate_prob, else within +-10 degrees), h-flipped with p=0.5, and
    centred on a random photo point that keeps the view inside the photo where it fits
    (elsewhere the renderer reflects the photo at its border).
    """
    ph, pw = photo_hw
    h, w = out_hw
    s = 2.0 ** rng.uniform(*log2_scale)
    a = rng.uniform(-math.pi, math.pi) if rng.uniform() < rotate_prob else math.radians(rng.uniform(-10, 10))
    flip = -1.0 if rng.uniform() < 0.5 else 1.0
    c, si = s * math.cos(a), s * math.sin(a)
    lin = np.array([[c * flip, -si], [si * flip, c]])
    # Half extent of the view in photo pixels: keep it inside the photo where it fits.
    half = np.abs(np.linalg.inv(lin)) @ np.array([w / 2.0, h / 2.0])
    src = np.empty(2)
    for k, size in enumerate((pw, ph)):
        lo, hi = half[k], size - 1 - half[k]
        src[k] = rng.uniform(lo, hi) if hi > lo else rng.uniform(0.4, 0.6) * (size - 1)
    dst = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = dst - lin @ src
    return m


def colour_matrix(rng: np.random.Generator, grey: bool, strength: float = 1.0) -> np.ndarray:
    """A random affine colour change as a (3, 4) float32 matrix for `cv2.transform`.

    out = gain * (S @ R @ (in - mean)) + mean' with a hue rotation R about the grey axis,
    a saturation change S, contrast and brightness; grey photographs get a random tint.
    """
    theta = rng.uniform(-math.pi, math.pi) * strength
    axis = np.ones(3) / math.sqrt(3.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(theta) * k + (1 - math.cos(theta)) * (k @ k)
    grey_proj = np.full((3, 3), 1.0 / 3.0)
    sat = rng.uniform(1 - 0.6 * strength, 1 + 0.5 * strength)
    sat_m = grey_proj + sat * (np.eye(3) - grey_proj)
    lin = sat_m @ rot
    if grey:   # a tint: scale the channels of the (equal-channel) photo differently
        tint = rng.uniform(0.55, 1.0, size=3)
        lin = np.diag(tint / tint.max() * rng.uniform(0.8, 1.2)) @ lin
    contrast = 2.0 ** rng.uniform(-0.6 * strength, 0.5 * strength)
    lin = contrast * lin
    mean_in = 128.0
    mean_out = 128.0 + rng.uniform(-50, 50) * strength
    bias = mean_out - lin @ np.full(3, mean_in)
    return np.concatenate([lin, bias[:, None]], axis=1).astype(np.float32)


def stereo_occlusion(disp: np.ndarray, tol: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion masks of a rectified left image from its disparity.

    disp: (H, W) left-image disparity in pixels (the left pixel x shows at x - d in the right
    image), non-finite where unknown. Returns (occlusion, out_of_frame), (H, W) float32 1/0:
    out_of_frame where round(x - d) leaves the right image (the convention of the rendered
    sets); occlusion also where a pixel of the same row whose disparity is more than `tol`
    px larger (a nearer surface) lands within one pixel of it. Unknown pixels are 0.
    """
    disp = np.asarray(disp, np.float64)
    h, w = disp.shape
    known = np.isfinite(disp)
    d = np.where(known, disp, -np.inf)
    target = np.where(known, np.round(np.arange(w)[None, :] - np.where(known, disp, 0.0)), -10 * w)
    inside = known & (target >= 0) & (target < w)
    # Largest disparity landing on each right-image column (padded by one on each side).
    nearest = np.full((h, w + 2), -np.inf)
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
    np.maximum.at(nearest, (rows[inside], target[inside].astype(np.int64) + 1), d[inside])
    t = np.clip(target, -1, w).astype(np.int64) + 1
    cover = np.maximum(np.maximum(np.take_along_axis(nearest, np.clip(t - 1, 0, w + 1), 1),
                                  np.take_along_axis(nearest, t, 1)),
                       np.take_along_axis(nearest, np.clip(t + 1, 0, w + 1), 1))
    out_of_frame = known & ~inside
    occluded = out_of_frame | (inside & (d < cover - tol))
    return occluded.astype(np.float32), out_of_frame.astype(np.float32)


def motorcycle_pair() -> dict:
    """skimage's rectified Middlebury stereo pair as a flow pair (left -> right).

    Returns {"image1", "image2": (500, 741, 3) uint8, "flow": (500, 741, 2) float32 with
    flow = (-disparity, 0), "valid": (500, 741) float32, 0 where the disparity is unknown
    (non-finite), "occlusion", "out_of_frame": (500, 741) float32 from `stereo_occlusion`,
    "meta": {...}}. Only for evaluation (SPEC 7): never a training texture.
    """
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    disp = np.asarray(disp, np.float32)
    finite = np.isfinite(disp)
    flow = np.zeros(disp.shape + (2,), np.float32)
    flow[..., 0] = np.where(finite, -disp, 0.0)
    occlusion, out_of_frame = stereo_occlusion(disp)
    return {"image1": _as_rgb(left), "image2": _as_rgb(right), "flow": flow,
            "valid": finite.astype(np.float32), "occlusion": occlusion, "out_of_frame": out_of_frame,
            "meta": {"scene": "motorcycle", "frame": 0, "id": "motorcycle", "dataset": "motorcycle",
                     "split": "validation", "index": 0}}


TRANSLATION_SHIFTS = ((0, 0), (1, 0), (4, 0), (0, 16), (-32, 0))
# Motions of a tenth to two fifths of a 384x512 frame: where a solve from zero flow gets lost.
LARGE_SHIFTS = ((48, 0), (0, -64), (96, 0), (-128, 0), (0, 160))


def translation_pair(name: str, shift: tuple[int, int], size: tuple[int, int] = (384, 512)) -> dict:
    """Two windows of the photograph `name`, the second showing its content moved by `shift`.

    shift: (dx, dy) integer pixels; frame 2 at p + shift shows frame 1 at p, so the flow is
    `shift` everywhere, exactly (no resampling, no photometric change). The photograph is
    first enlarged (bicubic, aspect kept) if it is smaller than size + |shift|.
    Returns {"image1", "image2": (H, W, 3) uint8, "flow": (H, W, 2) float32 = shift,
    "valid": ones (H, W) float32, "occlusion", "out_of_frame": (H, W) float32, 1 where
    p + shift leaves frame 2, "meta": {"photos": [name], "shift": [dx, dy], ...}}.
    """
    import cv2

    dx, dy = (int(v) for v in shift)
    h, w = (int(v) for v in size)
    img = load_photo(name)
    need_h, need_w = h + abs(dy), w + abs(dx)
    if img.shape[0] < need_h or img.shape[1] < need_w:
        f = max(need_h / img.shape[0], need_w / img.shape[1])
        img = cv2.resize(img, (math.ceil(img.shape[1] * f), math.ceil(img.shape[0] * f)),
                         interpolation=cv2.INTER_CUBIC)
    # window 1 at (y0, x0), window 2 at (y0 - dy, x0 - dx): both inside, centred in the photo
    y0 = max(dy, 0) + (img.shape[0] - need_h) // 2
    x0 = max(dx, 0) + (img.shape[1] - need_w) // 2
    image1 = np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])
    image2 = np.ascontiguousarray(img[y0 - dy:y0 - dy + h, x0 - dx:x0 - dx + w])
    flow = np.broadcast_to(np.array([dx, dy], np.float32), (h, w, 2)).copy()
    ys, xs = np.mgrid[0:h, 0:w]
    out = ((xs + dx < 0) | (xs + dx >= w) | (ys + dy < 0) | (ys + dy >= h)).astype(np.float32)
    return {"image1": image1, "image2": image2, "flow": flow, "valid": np.ones((h, w), np.float32),
            "occlusion": out, "out_of_frame": out.copy(),
            "meta": {"photos": [name], "shift": [dx, dy], "dataset": "translations",
                     "split": "validation", "id": f"{name}_{dx}_{dy}"}}
