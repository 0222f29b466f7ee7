"""A tiny document model (headings, paragraphs, tables, figures, collapsible sections) with two
renderers, HTML and Markdown, so that `index.html` and `report.md` say the same thing.

The HTML is self-contained: inline CSS, images by relative path beside the file, no scripts,
no network. Collapsible sections are `<details>` elements (also rendered by GitHub's Markdown).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Code:
    text: str


Inline = str | Link | Code


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    parts: tuple[Inline, ...]
    css: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: tuple[bool, ...] = ()  # right-align these columns


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    caption: str


@dataclass(frozen=True)
class Details:
    summary: str
    blocks: tuple = field(default_factory=tuple)
    open: bool = False


Block = Heading | Para | Bullets | Table | Image | Details

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0 auto;
max-width:1180px;padding:0 18px 40px;color:#222;line-height:1.45;font-size:15px}
h1{font-size:1.7em;margin-top:.8em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.4em 0 1.2em;font-size:12.5px}
th,td{border:1px solid #d0d0d0;padding:2px 7px;vertical-align:top}
th{background:#f0f3f7;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
caption{caption-side:bottom;text-align:left;font-size:12px;color:#555;padding-top:4px}
figure{margin:1em 0 1.6em}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12.5px;color:#555;max-width:1000px}
details{margin:.3em 0}summary{cursor:pointer;font-weight:600}
details>table,details>figure,details>p{margin-left:1.2em}
code{background:#f3f3f3;padding:0 3px;border-radius:3px;font-size:.92em}
.timestamp{color:#777;font-size:12px}.note{color:#444}
nav ul{columns:2;font-size:14px}
"""


# -- HTML -----------------------------------------------------------------------------------


def _h_inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Link):
            out.append(f'<a href="{html.escape(p.href)}">{html.escape(p.text)}</a>')
        elif isinstance(p, Code):
            out.append(f"<code>{html.escape(p.text)}</code>")
        else:
            out.append(html.escape(p))
    return "".join(out)


def _h_block(b: Block) -> str:
    if isinstance(b, Heading):
        aid = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{aid}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = f' class="{b.css}"' if b.css else ""
        return f"<p{cls}>{_h_inline(b.parts)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{_h_inline(i)}</li>" for i in b.items) + "\n</ul>"
    if isinstance(b, Table):
        num = b.numeric or (False,) * len(b.columns)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
        body = "\n".join(
            "<tr>"
            + "".join(
                f'<td class="n">{html.escape(v)}</td>' if n else f"<td>{html.escape(v)}</td>"
                for v, n in zip(r, num)
            )
            + "</tr>"
            for r in b.rows
        )
        cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
        return f"<table>{cap}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"
    if isinstance(b, Image):
        return (
            f'<figure><img src="{html.escape(b.src)}" alt="{html.escape(b.alt)}">'
            f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Details):
        inner = "\n".join(_h_block(x) for x in b.blocks)
        op = " open" if b.open else ""
        return f"<details{op}><summary>{html.escape(b.summary)}</summary>\n{inner}\n</details>"
    raise TypeError(type(b))


def to_html(title: str, blocks: Sequence[Block]) -> str:
    body = "\n".join(_h_block(b) for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


# -- Markdown -------------------------------------------------------------------------------


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _m_inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Link):
            out.append(f"[{p.text}]({p.href})")
        elif isinstance(p, Code):
            out.append(f"`{p.text}`")
        else:
            out.append(p)
    return "".join(out)


def _m_block(b: Block) -> str:
    if isinstance(b, Heading):
        anchor = f'<a id="{b.anchor}"></a>\n' if b.anchor else ""
        return f"{anchor}{'#' * b.level} {b.text}"
    if isinstance(b, Para):
        text = _m_inline(b.parts)
        return f"_{text}_" if b.css == "timestamp" else text
    if isinstance(b, Bullets):
        return "\n".join(f"- {_m_inline(i)}" for i in b.items)
    if isinstance(b, Table):
        num = b.numeric or (False,) * len(b.columns)
        lines = [
            "| " + " | ".join(_md_escape(c) for c in b.columns) + " |",
            "|" + "|".join("---:" if n else "---" for n in num) + "|",
        ]
        lines += ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in b.rows]
        if b.caption:
            lines += ["", f"_{b.caption}_"]
        return "\n".join(lines)
    if isinstance(b, Image):
        return f"![{b.alt}]({b.src})\n\n_{b.caption}_"
    if isinstance(b, Details):
        inner = "\n\n".join(_m_block(x) for x in b.blocks)
        op = " open" if b.open else ""
        return f"<details{op}><summary>{html.escape(b.summary)}</summary>\n\n{inner}\n\n</details>"
    raise TypeError(type(b))


def to_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join(_m_block(b) for b in blocks) + "\n"
