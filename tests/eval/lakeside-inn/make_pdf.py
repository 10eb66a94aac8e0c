#!/usr/bin/env python3
"""Build docs/restaurant-and-activities.pdf from docs-src/restaurant-and-activities.txt.

Standard library only. The PDF is written by hand: US Letter pages, the
standard Type1 fonts Helvetica and Helvetica-Bold with WinAnsiEncoding, one
BT/ET text object per line, and a cross-reference table with exact offsets,
so that tools such as pdftotext can read the text layer back.

Source format: paragraphs separated by blank lines. A paragraph whose lines
are all short and do not end in punctuation is a heading (the first one is
the title). Lines starting with "- " are bullets, one per line.

Usage: python3 make_pdf.py [SOURCE.txt [OUTPUT.pdf]]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "docs-src", "restaurant-and-activities.txt")
OUT = os.path.join(HERE, "docs", "restaurant-and-activities.pdf")

PAGE_W, PAGE_H = 612, 792          # US Letter, in points
MARGIN_L, MARGIN_R = 72, 72
MARGIN_T, MARGIN_B = 72, 72
BODY_SIZE, BODY_LEAD = 10.5, 14
HEAD_SIZE, HEAD_LEAD = 13, 18
TITLE_SIZE, TITLE_LEAD = 18, 24
BULLET_INDENT = 9   # hanging indent of wrapped bullet lines

# Helvetica advance widths (1/1000 em) for codes 32..126 under WinAnsiEncoding.
_HELV = [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333,
         278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278,
         584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
         500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944,
         667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556,
         278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
         278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]


def text_width(s, size, bold=False):
    total = 0
    for b in s.encode("cp1252"):
        total += _HELV[b - 32] if 32 <= b <= 126 else 556
    if bold:  # Helvetica-Bold is slightly wider; a safe over-estimate
        total *= 1.08
    return total * size / 1000.0


def wrap(text, width, size, bold=False):
    words, lines, cur = text.split(), [], ""
    for w in words:
        trial = w if not cur else cur + " " + w
        if text_width(trial, size, bold) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    return lines


def pdf_string(s):
    out = bytearray(b"(")
    for b in s.encode("cp1252"):
        if b in (0x28, 0x29, 0x5C):          # ( ) \
            out += b"\\" + bytes([b])
        elif b < 32 or b > 126:
            out += b"\\%03o" % b
        else:
            out.append(b)
    return bytes(out + b")")


def paragraphs(text):
    block = []
    for line in text.splitlines():
        if line.strip():
            block.append(line.strip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def is_heading(block):
    return all(len(l) <= 60 and not l.startswith("- ") and l[-1] not in ".,:;!?"
               for l in block)


def layout(text):
    """Return a list of pages; each page is a list of (font, size, x, y, text)."""
    usable = PAGE_W - MARGIN_L - MARGIN_R
    pages, page = [], []
    y = PAGE_H - MARGIN_T

    def emit(font, size, lead, x, s, space_before=0):
        nonlocal y, page
        if page:
            y -= space_before
        if y - lead < MARGIN_B:
            pages.append(page)
            page, y = [], PAGE_H - MARGIN_T
        y -= lead
        page.append((font, size, x, y, s))

    for i, block in enumerate(paragraphs(text)):
        if is_heading(block):
            size, lead = (TITLE_SIZE, TITLE_LEAD) if i == 0 else (HEAD_SIZE, HEAD_LEAD)
            for j, line in enumerate(block):
                for k, piece in enumerate(wrap(line, usable, size, True)):
                    emit("F2", size, lead, MARGIN_L, piece, 8 if j == k == 0 else 0)
            continue
        first = True
        for line in block:
            if line.startswith("- "):
                pieces = wrap(line[2:], usable - BULLET_INDENT, BODY_SIZE)
                for k, piece in enumerate(pieces):
                    if k == 0:  # the dash and the text share one text object
                        emit("F1", BODY_SIZE, BODY_LEAD, MARGIN_L, "- " + piece,
                             6 if first else 0)
                    else:
                        emit("F1", BODY_SIZE, BODY_LEAD, MARGIN_L + BULLET_INDENT, piece)
                    first = False
            else:
                for piece in wrap(line, usable, BODY_SIZE):
                    emit("F1", BODY_SIZE, BODY_LEAD, MARGIN_L, piece, 6 if first else 0)
                    first = False
    if page:
        pages.append(page)
    return pages


def content_stream(page):
    out = bytearray()
    for font, size, x, y, s in page:
        out += b"BT /%s %g Tf %g %g Td %s Tj ET\n" % (
            font.encode(), size, round(x, 2), round(y, 2), pdf_string(s))
    return bytes(out)


def build_pdf(pages, title):
    # Object numbers: 1 catalog, 2 pages, 3 F1, 4 F2, 5 info, then page/content pairs.
    n_pages = len(pages)
    page_ids = [6 + 2 * i for i in range(n_pages)]
    objs = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % p for p in page_ids)
           + b"] /Count %d >>" % n_pages,
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica"
           b" /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold"
           b" /Encoding /WinAnsiEncoding >>",
        5: b"<< /Title " + pdf_string(title) + b" /Producer (make_pdf.py) >>",
    }
    for pid, page in zip(page_ids, pages):
        stream = content_stream(page)
        objs[pid] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d]"
                     b" /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >>"
                     b" /Contents %d 0 R >>" % (PAGE_W, PAGE_H, pid + 1))
        objs[pid + 1] = (b"<< /Length %d >>\nstream\n" % len(stream) + stream
                         + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    size = max(objs) + 1
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, xref_at))
    return bytes(out)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else SRC
    dst = sys.argv[2] if len(sys.argv) > 2 else OUT
    with open(src, encoding="utf-8") as f:
        text = f.read()
    pages = layout(text)
    data = build_pdf(pages, "The Lakeside Inn - Restaurant and Activities Guide 2025")
    with open(dst, "wb") as f:
        f.write(data)
    print("wrote %s: %d pages, %d bytes" % (dst, len(pages), len(data)))


if __name__ == "__main__":
    main()
