"""Input images: the keys a client's uploads are stored under, and what an upload's bytes are, read from their
header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X) and the structure around it, never decoding a pixel, with the
standard library, so the Worker reads them too.

ComfyUI's LoadImage decodes every frame of a file (PIL.ImageSequence) and hands the GPU a batch of those of the
first one's size: an animated PNG or WebP is refused, and a multi-picture JPEG (MPO: a phone photo with its HDR
gain map, a stereo pair) counts the pixels of all its pictures, each of which ComfyUI decodes, though it keeps the
first alone. A structure that would have Pillow decode another size than the header says, decode for minutes, or
decode nothing at all (a job failed, billed, every time) is refused too."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# Every upload lives under it: the cloud bucket's lifecycle rule (infra) and the local store's expiry
# (goldgate.local.object_store) delete these keys after storage.result_ttl_days, as they do results.
INPUTS_PREFIX = "inputs/"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# \Z, not $: $ also matches before a final newline
INPUT_KEY = re.compile(r"^inputs/[0-9a-f]{32}\.(png|jpg|webp)\Z")
INPUT_KEY_SHAPE = "inputs/<32 lowercase hex>.<png|jpg|webp>"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# The JPEG frame headers that give the image's size: SOF0-SOF15 but for DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# The differential (hierarchical) frames, which libjpeg refuses: SOF5-7, SOF13-15.
_JPEG_HIERARCHICAL = frozenset((0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF))
# Markers that stand alone, without a length: TEM, RST0-RST7 (SOI is the file's first).
_JPEG_BARE = frozenset((0x01, *range(0xD0, 0xD8)))
_JPEG_FILL = re.compile(rb"\xff+")
# The shortest side an input image may have. The shipped image workflow (sdxl-img2img) feeds its LoadImage straight
# into a VAEEncode, no resize between, which crops each side to a multiple of 8 (Stable Diffusion's VAE encodes 8x8
# blocks): a side under 8 leaves nothing to encode, and the job fails on the GPU, queued and billed. An upload is no
# one workflow's, so this holds for all; the EXIF orientation ComfyUI applies swaps the sides, never shortens one.
MIN_SIDE = 8
_WEBP_ANIMATION = 0x02  # VP8X flags
_MAX_DIMENSION = 2**31 - 1  # PNG's own limit
# Real JPEGs have dozens of segments before their image data; walking millions of 4-byte ones would cost the Worker
# seconds of CPU for each upload (a multi-picture one's for each picture).
_MAX_SEGMENTS = 10_000
# A multi-picture JPEG: a stereo pair, a photo with its previews or HDR gain map. ComfyUI decodes each picture.
_MAX_PICTURES = 16
# A progressive JPEG's passes over the whole image: encoders write about 10. libjpeg goes over every block of the image
# again for each, however few bytes it is: 16 bytes a scan, 20 MiB would hold a million, hours of a GPU worker's CPU
# inside ComfyUI's LoadImage.
_MAX_SCANS = 100
# A marker inside entropy-coded data: 0xFF (and any fill 0xFF) before a byte that is no stuffing (00) or restart.
_JPEG_SCAN_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


class NotThatImage(ValueError):
    """The bytes are not an image of the claimed type, or its header is cut short or unreadable; the message says
    which, in words a client can act on."""


@dataclass(frozen=True)
class ImageHeader:
    content_type: str
    width: int  # the first (or only) picture's, as ComfyUI's LoadImage sizes its image
    height: int
    # The further pictures' (width, height), in a multi-picture JPEG (MPO)
    more: tuple[tuple[int, int], ...] = ()

    @property
    def pictures(self) -> int:
        return 1 + len(self.more)

    @property
    def pixels(self) -> int:
        """What ComfyUI decodes: every picture's pixels."""
        return self.width * self.height + sum(width * height for width, height in self.more)


def media_type(content_type: str | None) -> str:
    """A Content-Type's media type, lower-cased, its parameters dropped ("" for none)."""
    return (content_type or "").split(";")[0].strip(" \t").lower()


def sniffed_type(data: bytes) -> str | None:
    """Which of the three types `data` begins as (its magic bytes), or None."""
    if data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if data.startswith(_JPEG_SOI):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_header(data: bytes, content_type: str) -> ImageHeader:
    """The size of the `content_type` image `data` holds (of each picture, a multi-picture JPEG), from its header;
    NotThatImage when the bytes are another format (named when it is one of the three), the header is cut short or
    malformed, the image is animated, or its structure would have ComfyUI decode another size or for minutes."""
    name = _NAMES[content_type]
    found = sniffed_type(data)
    if found != content_type:
        other = f"it is a {_NAMES[found]} image: send it with Content-Type {found}" if found else \
            f"it does not begin with a {name} signature"
        raise NotThatImage(f"the body is not a {name} image as its Content-Type {content_type} says: {other}")
    try:
        sizes = _READERS[content_type](data)
    except (struct.error, IndexError):
        raise NotThatImage(f"the {name} header is cut short: the body ends before the image's size or its data; "
                           "send the whole file") from None
    for width, height in sizes:
        if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
            raise NotThatImage(f"the {name} header gives a size of {width}x{height}, which no image has")
    return ImageHeader(content_type, *sizes[0], tuple(sizes[1:]))


def _png(data: bytes) -> list[tuple[int, int]]:
    length, kind, width, height = struct.unpack_from(">I4sII", data, 8)
    if kind != b"IHDR" or length != 13:
        raise NotThatImage("the PNG's first chunk is not its IHDR header; the file is damaged")
    # The chunks up to the image data: an acTL among them makes it an APNG (Pillow reads no acTL after an IDAT).
    # A body that ends before its IDAT (a download cut off inside the metadata before it) opens in Pillow, which
    # reads no further than the IDAT's header, but decodes to nothing, LOAD_TRUNCATED_IMAGES or not. No cap on the
    # chunks: walking a crafted 20 MiB of 12-byte ones costs the upload about what hashing it does.
    pos = 8
    while True:
        pos += 12 + length
        try:
            length, kind = struct.unpack_from(">I4s", data, pos)
        except struct.error:
            raise NotThatImage(f"the PNG is cut short before its image data (IDAT): the body ends after {len(data)} "
                               "bytes, among the chunks before it; send the whole file") from None
        if kind == b"IDAT":
            return [(width, height)]
        if kind == b"IEND":
            raise NotThatImage("the PNG ends before its image data (IDAT); the file is damaged")
        if kind == b"acTL":
            raise NotThatImage("the PNG is animated (APNG): ComfyUI's LoadImage would load every frame, a batch "
                               "of full-size images on the GPU; send one still frame, saved as a plain PNG")


def _jpeg(data: bytes) -> list[tuple[int, int]]:
    """Every picture's size: the file's own frame header, then each further picture a multi-picture (MPF) index in
    an APP2 segment names, as Pillow (JpegImagePlugin.jpeg_factory, MpoImagePlugin) reads them. Pictures follow one
    another (CIPA DC-007): each is walked once, so a crafted index cannot have the same bytes walked again and
    again."""
    size, mpf, end = _jpeg_frame(data, 0)
    sizes = [size]
    for offset in sorted(_mpf_offsets(mpf)[1:]):  # the first picture is the file's own
        if offset < end:
            raise NotThatImage(f"picture {len(sizes) + 1} of the multi-picture JPEG (MPF) begins inside another; the "
                               "file is damaged: save it again as a plain JPEG")
        if data[offset:offset + 3] != _JPEG_SOI:
            raise NotThatImage(f"picture {len(sizes) + 1} of the multi-picture JPEG (MPF) is not where its index "
                               "says; the file is damaged: save it again as a plain JPEG")
        size, _, end = _jpeg_frame(data, offset)
        sizes.append(size)
    return sizes


def _mpf_offsets(mpf: tuple[int, bytes] | None) -> list[int]:
    """Where each picture of a multi-picture JPEG begins in the file: its MP index (CIPA DC-007) is a TIFF structure
    inside one APP2 segment, (where it begins in the file, its bytes), whose MPEntry offsets count from its start.
    Pillow takes a file of one picture as a plain JPEG: []."""
    if mpf is None:
        return []
    start, index = mpf
    order = {b"II": "<", b"MM": ">"}.get(bytes(index[:2]))  # the body may be a bytearray (the Worker's)
    try:
        if order is None:
            raise struct.error
        (ifd,) = struct.unpack_from(f"{order}I", index, 4)
        (count,) = struct.unpack_from(f"{order}H", index, ifd)
        fields = dict(struct.unpack_from(f"{order}H6xI", index, ifd + 2 + 12 * n) for n in range(count))
        pictures, entries = fields.get(0xB001, 1), fields.get(0xB002)
        if pictures <= 1 or entries is None:
            return []
        if pictures > _MAX_PICTURES:
            raise NotThatImage(f"the JPEG holds {pictures} pictures (MPF); ComfyUI's LoadImage decodes each: this "
                               f"API takes at most {_MAX_PICTURES}; save the one you mean as a plain JPEG")
        return [0] + [start + struct.unpack_from(f"{order}I", index, entries + 16 * n + 8)[0]
                      for n in range(1, pictures)]
    except struct.error:
        raise NotThatImage("the JPEG's multi-picture (MPF) index is damaged; save it again as a plain JPEG") from None


def _jpeg_frame(data: bytes, pos: int) -> tuple[tuple[int, int], tuple[int, bytes] | None, int]:
    """The size the frame header of the JPEG beginning at `pos` gives, its MPF index (where it begins, its bytes;
    None for none), and where the JPEG ends (past its EOI, or the body's end). Up to its scan: libjpeg refuses a
    second frame header, where Pillow would take the last one's size, and Pillow reads every APPn before the scan
    (the last MPF counts)."""
    size: tuple[int, int] | None = None
    mpf: tuple[int, bytes] | None = None
    pos += 2
    for _ in range(_MAX_SEGMENTS):
        if data[pos] != 0xFF:
            raise NotThatImage(f"the JPEG has no marker where one belongs (byte {pos}); the file is damaged")
        pos = _JPEG_FILL.match(data, pos).end()  # fill bytes may come before a marker
        marker = data[pos]
        pos += 1
        if marker in _JPEG_BARE:
            continue
        if marker in (0xD9, 0xDA) and size is None:  # EOI, or the scan's data, before any frame header
            raise NotThatImage("the JPEG has no frame header (SOF) before its image data; the file is damaged")
        if marker == 0xDA:
            return size, mpf, _count_scans(data, pos)
        if marker == 0xD9:  # no scan at all: Pillow opens it, then decodes nothing (LOAD_TRUNCATED_IMAGES or not)
            raise NotThatImage("the JPEG ends (EOI) after its headers with no image data (no scan, SOS): it holds no "
                               "picture; save the image again with any common tool and send that file")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise NotThatImage(f"the JPEG has a segment of length {length} (byte {pos}); the file is damaged")
        if marker in _JPEG_SOF:
            if size is not None:
                raise NotThatImage("the JPEG has two frame headers (SOF) before its image data; the file is damaged")
            height, width = struct.unpack_from(">HH", data, pos + 3)
            if height == 0:  # its height given later, by a DNL segment after the scan: rare, and unbounded here
                raise NotThatImage("the JPEG's frame header leaves its height to a DNL segment, which this API does "
                                   "not read; save it again with any common tool")
            _decodable(marker, data[pos + 2], data[pos + 7])
            size = (width, height)
        elif marker == 0xE2 and data[pos + 2:pos + 6] == b"MPF\0":
            mpf = (pos + 6, data[pos + 6:pos + length])
        pos += length
    raise NotThatImage(f"the JPEG has over {_MAX_SEGMENTS} segments before its image data, which no image tool "
                       "writes; save it again with any common tool")


def _webp_chunks_fit(data: bytes) -> None:
    """libwebp's demuxer (Pillow's WebP decoder) decodes nothing of a file whose RIFF size runs past the body, or whose
    chunks (the first, in a simple file; all, in an extended one) run past its RIFF size: a job would fail on it every
    time. Bytes after the RIFF size are ignored, by libwebp and here."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if end > len(data):
        raise NotThatImage(f"the WebP is cut short: its RIFF header gives {end} bytes, the body has {len(data)}; send "
                           "the whole file")
    pos, extended = 12, data[12:16] == b"VP8X"
    for _ in range(_MAX_SEGMENTS):
        if pos + 8 > end:
            break
        (size,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8 + size + (size & 1)  # a chunk is padded to an even size
        if pos > end:
            break
        if pos == end or not extended:
            return
    else:
        raise NotThatImage(f"the WebP has over {_MAX_SEGMENTS} chunks, which no image tool writes; save it again "
                           "with any common tool")
    raise NotThatImage(f"the WebP's chunks run past the {end} bytes its RIFF header gives; the file is damaged")


def _decodable(marker: int, precision: int, components: int) -> None:
    """Refuses a frame ComfyUI's Pillow cannot decode (JpegImagePlugin.SOF, libjpeg): a job would fail on it, billed,
    or render from a black image (node_helpers.pillow retries a failed load with LOAD_TRUNCATED_IMAGES)."""
    if marker in _JPEG_HIERARCHICAL:
        raise NotThatImage(f"the JPEG is hierarchical (frame header SOF{marker - 0xC0}), which libjpeg does not "
                           "decode; save it again as an ordinary JPEG")
    if precision != 8:
        raise NotThatImage(f"the JPEG has {precision}-bit samples; Pillow, which ComfyUI loads images with, reads "
                           "8-bit JPEGs only: save it as an ordinary 8-bit JPEG (or a 16-bit PNG)")
    if components not in (1, 3, 4):
        raise NotThatImage(f"the JPEG has {components} colour components; Pillow, which ComfyUI loads images with, "
                           "reads 1 (grey), 3 (colour) or 4 (CMYK): save it again as an ordinary JPEG")


def _count_scans(data: bytes, pos: int) -> int:
    """Walks a JPEG from its first scan's header at `pos` to its end (past its EOI, or the body's end, returned),
    counting the scans (SOS) among the segments between them; NotThatImage past _MAX_SCANS or _MAX_SEGMENTS."""
    scans = 0
    for _ in range(_MAX_SEGMENTS):
        (length,) = struct.unpack_from(">H", data, pos)
        scans += data[pos - 1] == 0xDA
        if scans > _MAX_SCANS:
            raise NotThatImage(f"the JPEG has over {_MAX_SCANS} scans (progressive passes): ComfyUI would decode the "
                               "image again for each, for minutes; save it again with any common tool")
        found = _JPEG_SCAN_MARKER.search(data, pos + length)
        while found is not None and found[1][0] == 0x01:  # TEM: a marker without a length
            found = _JPEG_SCAN_MARKER.search(data, found.end())
        if found is None:  # a body cut short: nothing more to count
            return len(data)
        if found[1][0] == 0xD9:  # the image's end (EOI)
            return found.end()
        pos = found.end()
    raise NotThatImage(f"the JPEG has over {_MAX_SEGMENTS} segments, which no image tool writes; save it again with "
                       "any common tool")


def _webp(data: bytes) -> list[tuple[int, int]]:
    size = _webp_size(data)
    _webp_chunks_fit(data)
    return [size]


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if len(chunk) < 4:
        raise struct.error
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            if len(data) < 26:
                raise struct.error
            raise NotThatImage("the WebP's VP8 frame has no start code; the file is damaged")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise NotThatImage("the WebP's VP8L data has no signature byte; the file is damaged")
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        if len(data) < 30:
            raise struct.error
        # libwebp's demuxer (which Pillow decodes every WebP with) takes more than one frame only under this flag
        if data[20] & _WEBP_ANIMATION:
            raise NotThatImage("the WebP is animated: ComfyUI's LoadImage would load every frame, a batch of "
                               "full-size images on the GPU; send one still frame, saved as a plain WebP")
        return width, height
    raise NotThatImage(f"the WebP's first chunk is {chunk!r}, not VP8, VP8L or VP8X; the file is damaged")


_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
_READERS = {"image/png": _png, "image/jpeg": _jpeg, "image/webp": _webp}
