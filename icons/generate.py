#!/usr/bin/env python3
"""Draws the console's icons (a toll barrier on an indigo tile) without any image library.

Run from anywhere: `python3 icons/generate.py`. Writes 32x32.png, 128x128.png, icon.png (256)
and icon.ico (Windows builds need it) next to this file.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TILE = (79, 70, 229)      # indigo
POST = (255, 255, 255)
STRIPE = (251, 191, 36)   # amber


def pixel(x, y):
    """Colour at (x, y) in a 1.0 x 1.0 square, or None for transparent."""
    r = 0.18  # corner radius
    cx = min(max(x, r), 1 - r)
    cy = min(max(y, r), 1 - r)
    if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
        return None
    if 0.20 <= x <= 0.30 and 0.28 <= y <= 0.80:  # post
        return POST
    if 0.18 <= x <= 0.32 and 0.76 <= y <= 0.82:  # foot
        return POST
    if 0.30 <= x <= 0.84 and 0.40 <= y <= 0.52:  # barrier arm, striped
        return STRIPE if int((x - 0.30) / 0.09) % 2 == 0 else POST
    return TILE


def png(size):
    rows = []
    n = 4  # supersampling per axis, for smooth edges
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(n):
                for sx in range(n):
                    c = pixel((px + (sx + 0.5) / n) / size, (py + (sy + 0.5) / n) / size)
                    if c:
                        acc[0] += c[0]; acc[1] += c[1]; acc[2] += c[2]; acc[3] += 255
            covered = acc[3] // 255
            if covered:
                row += bytes([acc[0] // covered, acc[1] // covered, acc[2] // covered, acc[3] // (n * n)])
            else:
                row += bytes(4)
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def ico(png_bytes, size):
    """An .ico holding one PNG image (supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png_bytes), 6 + 16)
    return header + entry + png_bytes


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    write("32x32.png", png(32))
    write("128x128.png", png(128))
    big = png(256)
    write("icon.png", big)
    write("icon.ico", ico(big, 256))
