#!/usr/bin/env python3
"""Checks the links of the built book (every relative href and #anchor of every page resolves)
and of the Markdown files at the root of the repository (README.md: every relative link names a
file or folder that exists). Usage: check-links.py BOOK_HTML_DIR [MARKDOWN ...]. Exit 1 on a
broken link, naming it."""
import html.parser
import pathlib
import re
import sys
import urllib.parse


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value and tag != "link" and tag != "script":
                self.hrefs.append(value)


def parse(path):
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def external(href):
    return re.match(r"^[a-z][a-z0-9+.-]*:", href) is not None


def check_book(root):
    broken, pages = [], {}
    for page in sorted(root.rglob("*.html")):
        pages[page.resolve()] = parse(page)
    for page, links in pages.items():
        if page.name in ("print.html", "toc.html", "404.html"):
            continue
        for href in links.hrefs:
            if external(href) or href.startswith("javascript"):
                continue
            target, _, anchor = href.partition("#")
            target_path = (page.parent / urllib.parse.unquote(target)).resolve() if target else page
            if target and not target_path.exists():
                broken.append(f"{page.relative_to(root.resolve())}: {href} (no such file)")
            elif anchor and target_path.suffix == ".html":
                ids = pages[target_path].ids if target_path in pages else parse(target_path).ids
                if anchor not in ids:
                    broken.append(f"{page.relative_to(root.resolve())}: {href} (no such anchor)")
    return broken, len(pages)


def check_markdown(path):
    broken = []
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for href in re.findall(r"\]\(([^)\s]+)\)", text):
        if external(href) or href.startswith("#"):
            continue
        target = href.partition("#")[0]
        if not (path.parent / target).exists():
            broken.append(f"{path}: {href} (no such file)")
    return broken


def main():
    book = pathlib.Path(sys.argv[1])
    broken, pages = check_book(book)
    for md in sys.argv[2:]:
        broken += check_markdown(pathlib.Path(md))
    for b in broken:
        print("broken link:", b)
    print(f"{pages} pages and {len(sys.argv) - 2} Markdown files checked, {len(broken)} broken link(s)")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
