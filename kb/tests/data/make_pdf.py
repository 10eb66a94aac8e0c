"""Writes acme/new-patients.pdf: a minimal one-page PDF (Helvetica text, no dependencies).

Run: python3 kb/tests/data/make_pdf.py
"""
import os

PARAGRAPHS = [
    ("New patients", True),
    ("We welcome new patients of all ages, and most new patients can be seen within one week.", False),
    ("To register, call reception or fill in the online form. Please arrive 15 minutes early for", False),
    ("your first visit to complete the medical history form.", False),
    ("What to bring to your first visit", True),
    ("Bring a photo ID, your insurance card, a list of the medicines you take, and any recent", False),
    ("X-rays from your previous dentist. The first visit takes about one hour and includes a full", False),
    ("examination, X-rays if needed, and a treatment plan with costs.", False),
    ("New patient offer", True),
    ("New patients without insurance pay $120 for the first examination including X-rays and a", False),
    ("cleaning, instead of the usual price.", False),
]

def esc(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

lines = ["BT", "/F1 11 Tf", "50 780 Td", "14 TL"]
for text, heading in PARAGRAPHS:
    if heading:
        lines += ["T*", "/F1 14 Tf", f"({esc(text)}) Tj", "T*", "/F1 11 Tf"]
    else:
        lines += [f"({esc(text)}) Tj", "T*"]
lines.append("ET")
stream = "\n".join(lines).encode("latin-1")

objects = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
]
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, body in enumerate(objects, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
for off in offsets:
    out += b"%010d 00000 n \n" % off
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "acme", "new-patients.pdf")
with open(path, "wb") as f:
    f.write(out)
