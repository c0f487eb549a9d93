"""Open a page in headless Chromium, for tests: the DOM after its scripts ran, a screenshot, the network requests
the page made.

`open_in_chromium(path, screenshot=PNG)` runs the browser once as a subprocess on the page's file:// URL with the
flags the issue names (`--headless --no-sandbox --disable-gpu --disable-background-networking
--disable-component-update --no-first-run`) and a fresh `--user-data-dir`, plus:

- `--virtual-time-budget`: the page's scripts, timers included, run to completion (virtual time) before the DOM is
  serialised (`--dump-dom`) and the screenshot taken (`--screenshot`, `--window-size=1280,2400`), in one launch;
- `--host-resolver-rules=MAP * ~NOTFOUND`: no host name resolves, so nothing leaves the machine;
- `--log-net-log`: Chromium's own network log, from which `BrowserResult.page_requests` lists every network
  request the *page* started (the browser's own background requests carry no initiator and are left out).
  A self-contained report has none.

The binary: `$HARNESS_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` on PATH. When none is
found the test fails (never skips) saying how to install it: `make install-browser`.

Helpers for the assertions: `parse_html` (a small DOM tree from the serialisation), `assert_charts_rendered`
(every plotly chart of a page built on reports/templates/base.html.j2 was drawn), `read_png` (decodes the
screenshot, so a test can look at its pixels).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"  # kept after the tests (CI artifacts); git-ignored
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
INSTALL_HINT = (
    "install Chromium with `make install-browser` (Debian/Ubuntu: `apt-get install -y --no-install-recommends "
    "chromium`), or point HARNESS_CHROMIUM at a Chromium or Chrome binary"
)
WINDOW = (1280, 2400)


@dataclass(frozen=True)
class BrowserResult:
    dom: str  # the document serialised after its scripts ran (Chromium's --dump-dom)
    screenshot: Path | None  # the PNG taken at the same moment, when one was asked for
    page_requests: list[str] = field(default_factory=list)  # network URLs the page requested (none when offline)
    log: str = ""  # Chromium's stderr, for failure messages


def find_chromium() -> str:
    """The browser binary, or a test failure that says how to install one."""
    configured = os.environ.get("HARNESS_CHROMIUM")
    if configured:
        found = shutil.which(configured)
        if found is None:
            pytest.fail(f"HARNESS_CHROMIUM={configured!r} is not an executable; {INSTALL_HINT}", pytrace=False)
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"headless Chromium is needed for the browser tests and none of {', '.join(CANDIDATES)} is on PATH: "
        + INSTALL_HINT,
        pytrace=False,
    )


def open_in_chromium(
    html_path: Path,
    screenshot: Path | None = None,
    *,
    budget_ms: int = 5000,
    timeout_s: float = 60.0,
    window: tuple[int, int] = WINDOW,
) -> BrowserResult:
    """Load `html_path` (file://) in headless Chromium, let its scripts run for `budget_ms` of virtual time, and
    return the DOM then; with `screenshot`, also write a PNG of the top `window` of the page there."""
    binary = find_chromium()
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="harness-chromium-", ignore_cleanup_errors=True) as tmp:
        profile = Path(tmp) / "profile"
        netlog = Path(tmp) / "netlog.json"
        args = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--log-net-log={netlog}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
        ]
        if screenshot is not None:
            screenshot = Path(screenshot).resolve()
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.unlink(missing_ok=True)
            args += [f"--window-size={window[0]},{window[1]}", "--hide-scrollbars", f"--screenshot={screenshot}"]
        dom, log = _run([*args, url], timeout_s)
        requests = page_requests(netlog, log)
    if not dom.rstrip().endswith("</html>"):
        raise AssertionError(f"Chromium returned no complete DOM for {url}; its log:\n{_tail(log)}")
    if screenshot is not None and not screenshot.is_file():
        raise AssertionError(f"Chromium wrote no screenshot to {screenshot}; its log:\n{_tail(log)}")
    return BrowserResult(dom=dom, screenshot=screenshot, page_requests=requests, log=log)


def _run(args: list[str], timeout_s: float) -> tuple[str, str]:
    """Run the browser in its own process group; on a timeout the whole group (renderer, zygote, ...) is killed."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        raise AssertionError(
            f"Chromium did not finish within {timeout_s:.0f} s: {' '.join(args)}\n{_tail(err.decode(errors='replace'))}"
        ) from None
    finally:
        _kill_group(proc.pid)  # a helper process left behind by the browser, if any
    log = err.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"Chromium exited with {proc.returncode}: {' '.join(args)}\n{_tail(log)}")
    return out.decode("utf-8", errors="replace"), log


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(log: str, lines: int = 30) -> str:
    return "\n".join(log.splitlines()[-lines:])


def page_requests(netlog: Path, log: str = "") -> list[str]:
    """URLs of the network requests the page started, from Chromium's net log: URL_REQUEST_START_JOB events that
    carry an initiator origin (the page's; `null` for a file:// page). Requests of the browser itself (time sync,
    sign-in, spell-check dictionaries) say `not an origin` and are left out; they fail to resolve anyway."""
    if not netlog.is_file():
        raise AssertionError(f"Chromium wrote no net log (--log-net-log), so offline cannot be checked:\n{_tail(log)}")
    data = _load_netlog(netlog.read_text(encoding="utf-8", errors="replace"))
    start_job = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in data["events"]:
        params = event.get("params") or {}
        if event.get("type") == start_job and "url" in params and params.get("initiator") != "not an origin":
            urls.append(str(params["url"]))
    return urls


def _load_netlog(text: str) -> dict[str, Any]:
    """A net log is one JSON object; one cut short (the browser killed) lacks its closing brackets."""
    for suffix in ("", "]}", "{}]}"):
        with contextlib.suppress(json.JSONDecodeError):
            data: dict[str, Any] = json.loads(text.rstrip().rstrip(",") + suffix)
            return data
    raise AssertionError("Chromium's net log does not parse as JSON")


# a DOM tree from the serialisation ----------------------------------------------------------------------------

# HTML elements without an end tag
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Element]:
        """This element and every element under it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [e for e in self.iter() if (tag is None or e.tag == tag) and (cls is None or cls in e.classes())]

    def by_id(self, element_id: str) -> Element:
        found = [e for e in self.iter() if e.attrs.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]

    def text(self) -> str:
        """The text content, entities decoded (what the reader sees, script and style text included)."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(markup: str) -> Element:
    """The document as a tree of `Element`s (tag names lowercased). Good for a browser's serialisation, where
    every non-void element has its end tag; no HTML5 error recovery beyond closing unclosed elements."""
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    return builder.root


# charts ----------------------------------------------------------------------------------------------------

_CHARTS_DATA = re.compile(r'<script id="charts-data" type="application/json">(.*?)</script>', re.S)
SVG_TRACE_TYPES = frozenset({"bar", "scatter", "box", "violin", "histogram", "heatmap", "pie"})


def chart_specs(html: str) -> list[dict[str, Any]]:
    """The charts a page built on base.html.j2 asks for: the `charts-data` JSON ({id, traces, layout} each)."""
    match = _CHARTS_DATA.search(html)
    assert match, "no charts-data script in the page"
    specs: list[dict[str, Any]] = json.loads(match.group(1))
    return specs


def assert_charts_rendered(dom: str | Element, html: str) -> dict[str, int]:
    """Every chart of the page (from its charts-data) was drawn by plotly in the browser: its element became a
    `js-plotly-plot` holding a `main-svg`, with one trace group per trace (for SVG trace types). Returns the
    number of trace groups per chart id. `html` is the page as written, `dom` as the browser left it."""
    specs = chart_specs(html)
    assert specs, "the page has no charts"
    tree = dom if isinstance(dom, Element) else parse_html(dom)
    drawn = {}
    for spec in specs:
        assert f'id="{spec["id"]}"' in html, f"chart {spec['id']} has data but no element in the page"
        element = tree.by_id(spec["id"])
        assert "js-plotly-plot" in element.classes(), f"chart {spec['id']} was not drawn: {element.attrs}"
        svgs = element.find_all("svg", "main-svg")
        assert svgs, f"chart {spec['id']} has no main-svg"
        groups = [e for e in element.find_all("g") if "trace" in e.classes()]
        visible = [t for t in spec["traces"] if t.get("visible", True) is True]
        if visible and all(t.get("type", "scatter") in SVG_TRACE_TYPES for t in visible):
            assert len(groups) == len(visible), f"chart {spec['id']}: {len(groups)} trace groups, {len(visible)} traces"
        elif visible:
            assert groups or element.find_all("canvas"), f"chart {spec['id']} drew no trace"
        drawn[spec["id"]] = len(groups)
    return drawn


# PNG -------------------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA), 8 bits each
    rows: list[bytes]  # unfiltered scanlines, width * channels bytes each

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        c = self.channels
        return tuple(self.rows[y][x * c : (x + 1) * c])

    def array(self) -> Any:
        """The pixels as a numpy array of shape (height, width, channels)."""
        import numpy as np

        return np.frombuffer(b"".join(self.rows), dtype=np.uint8).reshape(self.height, self.width, self.channels)

    def count(self, rgb: tuple[int, int, int], tolerance: int = 0) -> int:
        """How many pixels have this colour (each channel within `tolerance`)."""
        import numpy as np

        diff = np.abs(self.array()[:, :, :3].astype(np.int16) - np.array(rgb, dtype=np.int16))
        return int((diff <= tolerance).all(axis=2).sum())

    def colours(self) -> int:
        """The number of distinct colours."""
        import numpy as np

        pixels = self.array().astype(np.uint32)
        packed = pixels[:, :, 0] << 16 | pixels[:, :, 1] << 8 | pixels[:, :, 2]
        if self.channels == 4:
            packed = packed | pixels[:, :, 3] << 24
        return len(np.unique(packed))


def read_png(path: Path) -> Png:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), checking its structure and CRCs."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path}: no IHDR first or IEND last"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"{path}: unsupported PNG (depth {depth}, {colour})"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    assert len(raw) == height * (stride + 1), f"{path}: {len(raw)} bytes of pixel data for {width}x{height}"
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), prev, channels)
        rows.append(row)
        prev = row
    return Png(width, height, channels, rows)


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> bytes:
    n = len(line)
    if kind == 0:
        return bytes(line)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        import numpy as np

        return (np.frombuffer(line, dtype=np.uint8) + np.frombuffer(prev, dtype=np.uint8)).tobytes()
    elif kind == 3:  # Average
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    else:
        raise AssertionError(f"unknown PNG filter type {kind}")
    return bytes(line)
