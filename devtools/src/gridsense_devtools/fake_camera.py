"""A video for Chromium's fake camera (``--use-file-for-fake-video-capture=<file>.y4m``): a
still picture — e.g. a point's QR label — as uncompressed YUV4MPEG2 frames, which Chromium
loops. Pure Python (Pillow, segno): no ffmpeg needed."""

from __future__ import annotations

import io
from pathlib import Path

import segno
from PIL import Image

WIDTH, HEIGHT = 640, 480


def qr_picture(text: str, *, size: int = 360) -> Image.Image:
    """The QR code of ``text`` centred on a grey background, as a camera held over it sees."""
    out = io.BytesIO()
    segno.make_qr(text, error="q").save(out, kind="png", scale=10, border=4)
    code = Image.open(io.BytesIO(out.getvalue())).convert("RGB").resize((size, size))
    frame = Image.new("RGB", (WIDTH, HEIGHT), (150, 150, 150))
    frame.paste(code, ((WIDTH - size) // 2, (HEIGHT - size) // 2))
    return frame


def write_y4m(picture: Image.Image, path: Path, *, frames: int = 10, fps: int = 10) -> Path:
    """``frames`` copies of ``picture`` (resized to 640×480) in 4:2:0, the layout Chromium's
    file capture reads."""
    image = picture.convert("RGB").resize((WIDTH, HEIGHT))
    y, cb, cr = image.convert("YCbCr").split()
    half = (WIDTH // 2, HEIGHT // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + planes)
    return path
