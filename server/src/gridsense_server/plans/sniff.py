"""What an uploaded plan image really is, read from its bytes (never its name or the type the
browser claims): PNG, JPEG or SVG, with its size in pixels.

An SVG is XML that could carry script. It is only ever shown as an image (where browsers run
no script) and served with a sandboxing policy; refusing scripts, event handlers, embedded
HTML and outside references here as well means a copy saved elsewhere stays harmless too.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

PNG = "image/png"
JPEG = "image/jpeg"
SVG = "image/svg+xml"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# Elements that run code or pull in HTML or other documents.
_ACTIVE_ELEMENTS = frozenset({"script", "foreignobject", "iframe", "embed", "object", "handler",
                              "listener", "audio", "video"})
# SOF markers carrying the frame size (not DHT C4, JPG C8, DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_LENGTH = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*$")


class ImageRefused(ValueError):
    """The bytes are not a plan image this server shows; the message says why, Chinese first."""


@dataclass(frozen=True, slots=True)
class PlanImage:
    content_type: str
    width: int
    height: int


def sniff(data: bytes, max_side: int) -> PlanImage:
    """The image's type and size; raises ImageRefused for anything else, for an SVG with
    active content, and for a side longer than ``max_side`` pixels."""
    if data.startswith(_PNG_SIGNATURE):
        image = _png(data)
    elif data.startswith(b"\xff\xd8\xff"):
        image = _jpeg(data)
    elif _looks_like_xml(data):
        image = _svg(data)
    else:
        raise ImageRefused("不是 PNG、JPEG 或 SVG 图片 / not a PNG, JPEG or SVG image "
                           "(the type is read from the file's bytes, not its name)")
    if not (1 <= image.width <= max_side and 1 <= image.height <= max_side):
        raise ImageRefused(f"图片尺寸 {image.width}×{image.height} 超出 1–{max_side} 像素 / "
                           f"image size {image.width}×{image.height} is outside 1–{max_side} "
                           "pixels a side")
    return image


def _png(data: bytes) -> PlanImage:
    # The first chunk is IHDR (13 bytes: width, height, ...); the last is IEND.
    if len(data) < 33 or data[12:16] != b"IHDR" or data[-8:-4] != b"IEND":
        raise ImageRefused("PNG 文件不完整或已损坏 / a truncated or damaged PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return PlanImage(PNG, width, height)


def _jpeg(data: bytes) -> PlanImage:
    """Walks the markers to the frame header (SOFn) that holds the size."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length field
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan before any frame header
            break
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in _SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return PlanImage(JPEG, width, height)
        at += 2 + length
    raise ImageRefused("JPEG 文件缺少图像尺寸或已损坏 / a JPEG file without a frame header "
                       "(damaged or truncated)")


def _looks_like_xml(data: bytes) -> bool:
    """Markup of some kind: the SVG parser then says what it is (HTML is refused there)."""
    return data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _svg(data: bytes) -> PlanImage:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImageRefused("SVG 须为 UTF-8 编码 / an SVG must be UTF-8 text") from None
    # No document type at all: entity declarations are how XML expands a small file into a
    # huge one, and an HTML page begins with one.
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ImageRefused("不是 SVG 图片（含文档类型声明，可能是 HTML） / not an SVG image "
                           "(it declares a document type: HTML, or XML entities)")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ImageRefused(f"SVG 不是合法的 XML / the SVG is not well-formed XML: {exc}") from None
    if root.tag != f"{_SVG_NS}svg":
        raise ImageRefused(f"不是 SVG 图片（根元素为 {_local(root.tag)}） / not an SVG image "
                           f"(its root element is {_local(root.tag)!r}, not svg)")
    for element in root.iter():
        _refuse_active(element)
    return PlanImage(SVG, *_svg_size(root))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _refuse_active(element: ElementTree.Element) -> None:
    name = _local(element.tag).lower()
    if name in _ACTIVE_ELEMENTS:
        raise ImageRefused(f"SVG 含有不允许的元素 <{name}> / the SVG contains a <{name}> "
                           "element (scripts and embedded documents are refused)")
    for attribute, value in element.attrib.items():
        local = _local(attribute).lower()
        if local.startswith("on"):
            raise ImageRefused(f"SVG 含有事件属性 {local} / the SVG contains an event handler "
                               f"attribute {local!r}")
        if (attribute in ("href", _XLINK_HREF) and not value.startswith("#")
                and not value.startswith(("data:image/png", "data:image/jpeg"))):
            raise ImageRefused("SVG 引用了外部资源 / the SVG refers to something outside "
                               f"itself ({value[:80]!r}); only #fragments and embedded PNG/JPEG")


def _svg_size(root: ElementTree.Element) -> tuple[int, int]:
    """width/height in pixels (or unitless), else the viewBox's."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width is not None and height is not None:
        return round(width), round(height)
    parts = (root.get("viewBox") or "").replace(",", " ").split()
    try:
        box = [float(part) for part in parts]
    except ValueError:
        box = []
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        return round(box[2]), round(box[3])
    raise ImageRefused("SVG 须有 width/height（像素）或 viewBox / the SVG needs width and height "
                       "in pixels, or a viewBox, to be placed on")


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    return float(match.group(1)) if match else None
