"""Mutation audit of POST /api/inputs' header reader (service/inputs.py): headers that are almost right, each of
which a weaker check would have taken or misread. The reader is what stands between a client's upload and a GPU
worker decoding it, so each is read directly, as the service reads it."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from service.inputs import NotThatImage, read_header, sniffed_type


def _png_with(kind: bytes, length: int, width: int, height: int) -> bytes:
    """A PNG whose first chunk is `kind`, of `length`, holding an IHDR's fields, then an empty IDAT chunk (a PNG that
    ends before its IDAT is refused as cut short, whatever its header says)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", length) + kind + ihdr
            + struct.pack(">I", zlib.crc32(kind + ihdr)) + struct.pack(">I4sI", 0, b"IDAT", zlib.crc32(b"IDAT")))


def _jpeg(width: int = 37, height: int = 21) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, "JPEG")
    return out.getvalue()


def test_a_riff_file_that_is_not_webp_is_no_webp_image_the_client_is_told_to_send_as_webp() -> None:
    wav = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + b"\0" * 40
    assert sniffed_type(wav) is None
    with pytest.raises(NotThatImage) as refused:
        read_header(wav, "image/png")
    assert "does not begin with a PNG signature" in str(refused.value) and "WebP" not in str(refused.value)


def test_a_png_taller_than_png_allows_is_refused_as_no_image_has_that_size() -> None:
    with pytest.raises(NotThatImage, match=r"size of 1x2147483648, which no image has"):
        read_header(_png_with(b"IHDR", 13, 1, 2**31), "image/png")


@pytest.mark.parametrize(("kind", "length"), [(b"IHDR", 12), (b"IHDR", 14), (b"tEXt", 13), (b"IDAT", 13)])
def test_a_png_whose_first_chunk_is_not_a_13_byte_ihdr_is_refused_as_damaged(kind: bytes, length: int) -> None:
    with pytest.raises(NotThatImage, match="first chunk is not its IHDR header"):
        read_header(_png_with(kind, length, 64, 64), "image/png")


def test_fill_bytes_before_a_jpeg_marker_are_skipped_as_the_standard_allows() -> None:
    data = _jpeg(37, 21)
    padded = data[:2] + b"\xff\xff\xff" + data[2:]  # SOI, fill bytes, then the APP0 marker's own 0xFF
    header = read_header(padded, "image/jpeg")
    assert (header.width, header.height) == (37, 21)


@pytest.mark.parametrize("bare", [b"\xff\x01", b"\xff\xd0", b"\xff\xd7"])
def test_a_jpeg_marker_without_a_length_before_the_frame_header_is_stepped_over(bare: bytes) -> None:
    data = _jpeg(37, 21)
    header = read_header(data[:2] + bare + data[2:], "image/jpeg")
    assert (header.width, header.height) == (37, 21)


@pytest.mark.parametrize("length", [0, 1])
def test_a_jpeg_segment_shorter_than_its_own_length_field_is_named_as_such(length: int) -> None:
    data = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", length) + b"\0" * 64
    with pytest.raises(NotThatImage, match=f"a segment of length {length} \\(byte 4\\)"):
        read_header(data, "image/jpeg")


def _sof0(width: int, height: int) -> bytes:
    return b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"


@pytest.mark.parametrize("table", [b"\xff\xc4", b"\xff\xcc"])  # DHT, DAC: in the SOF range, yet no frame header
def test_a_huffman_or_arithmetic_table_before_the_frame_header_is_not_read_as_its_size(table: bytes) -> None:
    data = _jpeg(37, 21)
    header = read_header(data[:2] + table + struct.pack(">H", 6) + b"\x00\x10\x20\x30" + data[2:], "image/jpeg")
    assert (header.width, header.height) == (37, 21)


def test_a_jpeg_leaving_its_height_to_a_dnl_segment_is_refused_saying_to_save_it_again() -> None:
    with pytest.raises(NotThatImage, match="DNL segment.*save it again"):
        read_header(b"\xff\xd8" + _sof0(640, 0) + b"\xff\xd9", "image/jpeg")


def _webp(mode: str, size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (255, 0, 0, 128) if mode == "RGBA" else "red").save(out, "WEBP", **options)
    return out.getvalue()


def test_a_lossy_webps_scale_bits_are_not_read_as_part_of_its_size() -> None:
    data = bytearray(_webp("RGB", (301, 17)))
    assert data[12:16] == b"VP8 "
    data[27] |= 0xC0  # the width's upscale bits (RFC 6386 9.1): the size is the low 14 bits
    data[29] |= 0x40
    header = read_header(bytes(data), "image/webp")
    assert (header.width, header.height) == (301, 17)


@pytest.mark.parametrize(("mode", "options", "chunk", "cut"), [
    ("RGBA", {}, b"VP8X", 27), ("RGBA", {}, b"VP8X", 29), ("RGB", {}, b"VP8 ", 24), ("RGB", {}, b"VP8 ", 25),
    ("RGB", {}, None, 14), ("RGB", {}, None, 15)])
def test_a_webp_header_cut_short_is_refused_as_cut_short(mode: str, options: dict[str, object], chunk: bytes | None,
                                                         cut: int) -> None:
    data = _webp(mode, (301, 17), **options)
    if chunk is not None:
        assert data[12:16] == chunk
    with pytest.raises(NotThatImage, match="the WebP (header )?is cut short"):
        read_header(data[:cut], "image/webp")


def test_a_lossless_webp_without_its_signature_byte_is_refused_as_damaged() -> None:
    data = bytearray(_webp("RGB", (301, 17), lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    data[20] = 0x2E
    with pytest.raises(NotThatImage, match="VP8L data has no signature byte"):
        read_header(bytes(data), "image/webp")


def test_a_jpeg_whose_scan_starts_before_any_frame_header_is_refused_as_damaged() -> None:
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    with pytest.raises(NotThatImage, match=r"no frame header \(SOF\) before its image data"):
        read_header(b"\xff\xd8" + sos + _sof0(640, 480) + b"\xff\xd9", "image/jpeg")


def test_a_jpeg_with_a_stray_byte_where_a_marker_belongs_is_refused_naming_the_byte() -> None:
    app0 = b"\xff\xe0" + struct.pack(">H", 4) + b"\0\0"
    with pytest.raises(NotThatImage, match=r"no marker where one belongs \(byte 8\)"):
        read_header(b"\xff\xd8" + app0 + b"\xc0" + _sof0(640, 480), "image/jpeg")
