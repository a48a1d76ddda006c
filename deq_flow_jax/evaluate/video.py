"""Writing videos of (H, W, 3) uint8 RGB frames: MP4 (OpenCV) or GIF (Pillow).

MP4 frames of odd height or width are padded by one replicated row / column
(the codec needs even sizes). The file appears only when `close()` succeeds: frames go to a temporary file
next to the destination (`deq_flow_jax.io.atomic_path`), renamed at the end;
`abort()` (or an exception inside a `with` block) removes it.
"""
from __future__ import annotations

import os

import numpy as np

from deq_flow_jax.io.common import atomic_path

VIDEO_FORMATS = ("mp4", "gif")


class VideoWriter:
    """Streams RGB frames into an .mp4 or .gif file.

    Args:
        path: destination; its extension (.mp4 or .gif) picks the format.
        fps: frames per second (> 0).

    Use as a context manager, or call `write(frame)` then `close()`.
    """

    def __init__(self, path: str, fps: float = 10.0):
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext not in VIDEO_FORMATS:
            raise ValueError(f"{path}: video format must be one of {VIDEO_FORMATS}, got {ext!r}")
        if not fps > 0:
            raise ValueError(f"fps must be positive; got {fps}")
        self.path, self.fps, self.format = path, float(fps), ext
        self._target = atomic_path(path)
        self._tmp = self._target.__enter__()
        self._size = None
        self._gif_frames: list = []
        self._cv = None
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        """Appends one (H, W, 3) uint8 RGB frame (all frames must share one size)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"video frames must be (H, W, 3) uint8; got {frame.shape} {frame.dtype}")
        if self._size is None:
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            raise ValueError(f"video frame size {frame.shape[:2]} differs from the first {self._size}")
        if self.format == "gif":
            from PIL import Image

            self._gif_frames.append(Image.fromarray(frame))
        else:
            import cv2

            # MP4 codecs want even sizes: pad odd frames by one replicated row / column
            ph, pw = self._size[0] % 2, self._size[1] % 2
            if ph or pw:
                frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")
            if self._cv is None:
                h, w = frame.shape[:2]
                self._cv = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                if not self._cv.isOpened():
                    raise OSError(f"{self.path}: OpenCV cannot write MP4 (mp4v) video here")
            self._cv.write(np.ascontiguousarray(frame[..., ::-1]))
        self.count += 1

    def close(self) -> str:
        """Finishes the file and moves it into place; returns its path."""
        if self.count == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frame was written")
        if self.format == "gif":
            first, *rest = self._gif_frames
            first.save(self._tmp, format="GIF", save_all=True, append_images=rest,
                       duration=int(round(1000.0 / self.fps)), loop=0)
            self._gif_frames = []
        else:
            self._cv.release()
            self._cv = None
        target, self._target = self._target, None
        target.__exit__(None, None, None)   # renames the finished file into place
        return self.path

    def abort(self) -> None:
        """Drops the partial file."""
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        self._gif_frames = []
        if self._target is not None:
            target, self._target = self._target, None
            target.__exit__(InterruptedError, InterruptedError("aborted"), None)  # removes it

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
