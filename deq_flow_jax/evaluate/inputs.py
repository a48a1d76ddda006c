"""User inputs for inference: two images, a folder of frames, or a video file.

`open_frames(paths)` validates the input up front and returns a `FrameSequence`
that streams (H, W, 3) uint8 RGB frames. Everything a user can get wrong is
reported as an `InputError` naming the file and the problem: fewer than two
frames, frames of different sizes, an unreadable image, a video that cannot be
decoded.
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
    """(H, W) of an image from its header (Pillow reads only the header)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: cannot read this file as an image ({err})") from None
    return h, w


@dataclasses.dataclass
class FrameSequence:
    """An ordered, validated sequence of frames of one size.

    Attributes:
        kind: "images" (files given or a folder) or "video".
        names: one name per frame (file stem, or `frame_000000` for video).
        size: (H, W) shared by all frames.
        fps: frames per second (video) or None.
        paths: the image files (kind "images") or the single video file.
    """

    kind: str
    names: list
    size: tuple
    fps: float | None
    paths: list

    def __len__(self) -> int:
        return len(self.names)

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


def _images(paths: Sequence[str], where: str) -> FrameSequence:
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
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(names)) != len(names):  # e.g. a.png and a.jpg: keep the extension to stay unique
        names = [os.path.basename(p).replace(".", "_") for p in paths]
    return FrameSequence("images", names, size, None, list(paths))


def open_frames(inputs: Sequence[str], max_frames: int | None = None) -> FrameSequence:
    """Validates user inputs and returns the frame sequence.

    Args:
        inputs: one folder (its images, sorted by name), one video file, or two or
            more image files (in the given order).
        max_frames: use at most this many frames (None: all).

    Raises:
        InputError: with the offending path and the reason.
    """
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise InputError("no input given: pass two images, a folder of frames or a video file")
    for p in inputs:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or folder")
    if len(inputs) == 1:
        (path,) = inputs
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(path, f)))
            files = [os.path.join(path, f) for f in files][:max_frames]
            return _images(files, path)
        if path.lower().endswith(IMAGE_EXTENSIONS):
            raise InputError(f"{path}: a single image; give two images, a folder or a video")
        return _probe_video(path, max_frames)
    dirs = [p for p in inputs if os.path.isdir(p)]
    if dirs:
        raise InputError(f"{dirs[0]}: is a folder; give either one folder or a list of image files")
    return _images(inputs[:max_frames], inputs[0])
