#!/usr/bin/env python3
"""Build docs/terms.pdf from docs-src/terms.txt, standard library only.

The PDF is written by hand: Type1 Helvetica / Helvetica-Bold with
WinAnsiEncoding, US Letter pages, one BT/ET text object per line, and an
xref table with exact byte offsets.

Layout rules: the first two lines of the source are the title; any other
short line (under 60 characters, no final punctuation) that stands alone
between blank lines is a heading; everything else is paragraph text,
word-wrapped to fit the page.

Usage: python3 make_pdf.py   (run from this folder)
"""
import os
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "docs-src", "terms.txt")
DST = os.path.join(HERE, "docs", "terms.pdf")

PAGE_W, PAGE_H = 612, 792
MARGIN = 72
BODY_SIZE, HEAD_SIZE, TITLE_SIZE = 10.5, 13, 16
LEADING = 14
WRAP = 92  # characters per body line; fits 468 pt of 10.5 pt Helvetica


def pdf_string(text):
    raw = text.encode("cp1252")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + raw + b")"


def is_heading(block):
    return (len(block) == 1 and len(block[0]) < 60
            and block[0][-1] not in ".,:;!?")


def layout(text):
    """Return a list of (font, size, text, space_before) lines."""
    blocks, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.strip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    out = []
    for i, block in enumerate(blocks):
        if i == 0:
            for j, line in enumerate(block):
                out.append(("F2", TITLE_SIZE if j == 0 else HEAD_SIZE, line, 0 if j == 0 else 6))
        elif is_heading(block):
            out.append(("F2", HEAD_SIZE, block[0], 12))
        else:
            para = " ".join(block)
            for j, line in enumerate(textwrap.wrap(para, WRAP)):
                out.append(("F1", BODY_SIZE, line, 6 if j == 0 else 0))
    return out


def paginate(lines):
    pages, cur, y = [], [], PAGE_H - MARGIN
    for font, size, text, before in lines:
        step = LEADING + (size - BODY_SIZE) + before
        if cur and y - step < MARGIN:
            pages.append(cur)
            cur, y = [], PAGE_H - MARGIN
            step = LEADING + (size - BODY_SIZE)
        y -= step
        cur.append((font, size, text, y))
    if cur:
        pages.append(cur)
    return pages


def content_stream(page_lines, page_no, page_count):
    parts = []
    for font, size, text, y in page_lines:
        parts.append(b"BT /%s %g Tf %d %g Td %s Tj ET" % (
            font.encode(), size, MARGIN, y, pdf_string(text)))
    footer = "BrightPath Driving School - Terms and Conditions - page %d of %d" % (page_no, page_count)
    parts.append(b"BT /F1 8 Tf %d %d Td %s Tj ET" % (MARGIN, MARGIN // 2, pdf_string(footer)))
    return b"\n".join(parts) + b"\n"


def build(pages):
    # Object numbers: 1 catalog, 2 pages, 3 F1, 4 F2, then per page: page, content.
    objects = {}
    n_pages = len(pages)
    page_ids = [5 + 2 * i for i in range(n_pages)]
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % p for p in page_ids), n_pages)
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objects[4] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    for i, page in enumerate(pages):
        pid, cid = page_ids[i], page_ids[i] + 1
        objects[pid] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
                        b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
                        b"/Contents %d 0 R >>" % (PAGE_W, PAGE_H, cid))
        stream = content_stream(page, i + 1, n_pages)
        objects[cid] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
    return bytes(out)


def main():
    with open(SRC, encoding="utf-8") as f:
        text = f.read()
    pages = paginate(layout(text))
    data = build(pages)
    with open(DST, "wb") as f:
        f.write(data)
    print("wrote %s: %d pages, %d bytes" % (DST, len(pages), len(data)))


if __name__ == "__main__":
    main()
