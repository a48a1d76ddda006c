"""User inputs for inference: two images, a folder of frames, or a video file.

`open_frames(paths)` validates the input up front and returns a `FrameSequence`
that streams (H, W, 3) uint8 RGB frames. Everything a user can get wrong is
reported as an `InputError` naming the file and the problem: fewer than two
frames, frames of different sizes, an unreadable image (every frame is decoded
once up front, so a corrupt last frame is found before any flow is computed), a
video that cannot be decoded. Files in a frames folder without an image
extension are listed in `FrameSequence.skipped` (the CLI prints them).
Frame names (the output file names) are unique: frames with the same file name
in different folders are named after their folder too.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Sequence

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class InputError(ValueError):
    """An input file or folder that cannot be used; the message says which and why."""


def read_rgb(path: str) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB (grey is repeated, alpha dropped).

    Raises:
        InputError: the file is missing or cannot be decoded as an image.
    """
    from deq_flow_jax import io

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such image file")
    try:
        return io.read_image(path)
    except ValueError as err:  # io.FlowFormatError names the file already
        raise InputError(str(err)) from None


def _image_size(path: str) -> tuple[int, int]:
    """(H, W) of an image from its header (`io.read_image_size`)."""
    from deq_flow_jax import io

    try:
        return io.read_image_size(path)
    except ValueError as err:   # io.FlowFormatError names the file already
        raise InputError(str(err)) from None


@dataclasses.dataclass
class FrameSequence:
    """An ordered, validated sequence of frames of one size.

    Attributes:
        kind: "images" (files given or a folder) or "video".
        names: one name per frame (file stem, or `frame_000000` for video).
        size: (H, W) shared by all frames.
        fps: frames per second (video) or None.
        paths: the image files (kind "images") or the single video file.
        skipped: files of an input folder that were not used (no image extension).
    """

    kind: str
    names: list
    size: tuple
    fps: float | None
    paths: list
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def pair_label(self, i: int) -> str:
        """Names pair i in messages: "a.png -> b.png" (or "VIDEO frames i -> i+1")."""
        if self.kind == "images":
            return f"{self.paths[i]} -> {self.paths[i + 1]}"
        return f"{self.paths[0]} frames {i} -> {i + 1}"

    def frames(self) -> Iterator[np.ndarray]:
        """Yields each frame as (H, W, 3) uint8 RGB; raises InputError on a bad one."""
        if self.kind == "images":
            for path in self.paths:
                frame = read_rgb(path)
                if frame.shape[:2] != tuple(self.size):
                    raise InputError(f"{path}: frame size {frame.shape[:2]} differs from {tuple(self.size)}")
                yield frame
            return
        yield from _video_frames(self.paths[0], len(self.names), self.size)


def _video_frames(path: str, count: int, size) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        for i in range(count):
            ok, frame = cap.read()
            if not ok or frame is None:
                raise InputError(f"{path}: could not decode frame {i} of {count}")
            if frame.shape[:2] != tuple(size):
                raise InputError(f"{path}: frame {i} has size {frame.shape[:2]}, expected {tuple(size)}")
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _probe_video(path: str, max_frames: int | None) -> FrameSequence:
    """Decodes the whole video once to count and check its frames."""
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InputError(f"{path}: cannot open this file as a video (unknown container or codec)")
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        count, size = 0, None
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if size is None:
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                raise InputError(f"{path}: frame {count} has size {frame.shape[:2]}, expected {size}")
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise InputError(f"{path}: no frame of this video could be decoded")
    if count < 2:
        raise InputError(f"{path}: the video has {count} decodable frame; flow needs at least 2")
    return FrameSequence("video", [f"frame_{i:06d}" for i in range(count)], tuple(size), fps, [path])


def frame_names(paths: Sequence[str]) -> list[str]:
    """Unique output names for image files: the stem; the extension too when two stems
    collide (a.png, a.jpg); the folders too when two files share a name (x/a.png, y/a.png);
    the position too when one file is given twice."""
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(names)) == len(names):
        return names
    names = [os.path.basename(p).replace(".", "_") for p in paths]
    if len(set(names)) == len(names):
        return names
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    names = [os.path.relpath(p, root).replace(os.sep, "__").replace(".", "_") for p in absolute]
    if len(set(names)) != len(names):  # the same file twice
        names = [f"{i:06d}_{n}" for i, n in enumerate(names)]
    return names


def _images(paths: Sequence[str], where: str, decode: bool = True) -> FrameSequence:
    if len(paths) < 2:
        found = ", ".join(os.path.basename(p) for p in paths) or "none"
        raise InputError(f"{where}: need at least 2 frames, found {len(paths)} ({found})")
    size, first = None, None
    for path in paths:
        hw = _image_size(path)
        if size is None:
            size, first = hw, path
        elif hw != size:
            raise InputError(f"{path}: frame size {hw} (H, W) differs from {size} of {first}; "
                             "all frames must have the same size")
    names = frame_names(paths)
    if decode:  # headers were fine; now every pixel, before any pair is computed
        for path in paths:
            read_rgb(path)
    return FrameSequence("images", names, size, None, list(paths))


def open_frames(inputs: Sequence[str], max_frames: int | None = None,
                decode: bool = True) -> FrameSequence:
    """Validates user inputs and returns the frame sequence.

    Args:
        inputs: one folder (its images, sorted by name), one video file, or two or
            more image files (in the given order).
        max_frames: use at most this many frames (None: all; else at least 2).
        decode: decode every image once now (a corrupt frame is an error before any
            work); False checks only the headers. Videos are always decoded once.

    Raises:
        InputError: with the offending path and the reason.
    """
    inputs = [os.fspath(p) for p in inputs]
    if max_frames is not None and max_frames < 2:
        raise InputError(f"--max-frames: must be >= 2 (flow needs two frames); got {max_frames}")
    if not inputs:
        raise InputError("no input given: pass two images, a folder of frames or a video file")
    for p in inputs:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or folder")
    if len(inputs) == 1:
        (path,) = inputs
        if os.path.isdir(path):
            entries = sorted(f for f in os.listdir(path) if os.path.isfile(os.path.join(path, f)))
            files = [f for f in entries if f.lower().endswith(IMAGE_EXTENSIONS)]
            skipped = [f for f in entries if not f.lower().endswith(IMAGE_EXTENSIONS)]
            files = [os.path.join(path, f) for f in files][:max_frames]
            seq = _images(files, path, decode)
            seq.skipped = skipped
            return seq
        if path.lower().endswith(IMAGE_EXTENSIONS):
            raise InputError(f"{path}: a single image; give two images, a folder or a video")
        return _probe_video(path, max_frames)
    dirs = [p for p in inputs if os.path.isdir(p)]
    if dirs:
        raise InputError(f"{dirs[0]}: is a folder; give either one folder or a list of image files")
    return _images(inputs[:max_frames], inputs[0], decode)
