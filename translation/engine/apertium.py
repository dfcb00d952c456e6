"""Apertium (rule-based MT, Debian packages) as a translation engine.

Starting the `apertium` script costs ~150 ms of CPU, more than translating a chat message, so by default each
engine keeps its mode's stages running (`apertium_stream.ApertiumStream`, started on first use) and a message
costs about a millisecond. `persistent=False` runs the script once per batch instead: each text is an HTML
paragraph (newlines become ``<br>``) through apertium's HTML deformatter, which keeps tags in place, so the output
splits back into exactly one paragraph per input text. Both give the same translations.
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import subprocess
import threading
from pathlib import Path

from translation.engine.apertium_stream import ApertiumStream, StreamError
from translation.engine.base import PRIORITY_APERTIUM, EngineError

DEFAULT_MODES_DIR = Path("/usr/share/apertium/modes")

# Apertium's newer pairs use ISO 639-3 names; the product speaks ISO 639-1.
ISO3_TO_ISO1 = {
    "eng": "en",
    "spa": "es",
    "cat": "ca",
    "glg": "gl",
    "fra": "fr",
    "por": "pt",
    "ita": "it",
    "deu": "de",
    "nld": "nl",
    "oci": "oc",
    "eus": "eu",
    "ron": "ro",
}
_PLAIN_MODE = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_LINE_BREAK = re.compile(r"[ \t]*<br\s*/?>[ \t]*", re.IGNORECASE)


def _iso1(code: str) -> str | None:
    if len(code) == 2:
        return code
    return ISO3_TO_ISO1.get(code)


def _package_version(mode_file: Path) -> str:
    """The Debian version of the package that installed ``mode_file`` ("unknown" off Debian)."""
    try:
        modified = mode_file.stat().st_mtime
    except OSError:
        return "unknown"
    return _package_version_at(mode_file, modified)


@functools.lru_cache(maxsize=256)
def _package_version_at(mode_file: Path, modified: float) -> str:
    # Keyed by the mode file's mtime: an upgraded package rewrites it, so a new version is seen.
    try:
        owner = subprocess.run(
            ["dpkg-query", "-S", str(mode_file)], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        package = owner.split(":", 1)[0].strip()
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return version or "unknown"


class ApertiumEngine:
    """One installed Apertium mode (language direction), e.g. ``eng-spa`` served as en->es."""

    priority = PRIORITY_APERTIUM

    def __init__(
        self,
        mode: str,
        source: str,
        target: str,
        *,
        modes_dir: str | Path = DEFAULT_MODES_DIR,
        version: str | None = None,
        timeout_s: float = 60.0,
        persistent: bool = True,
    ):
        self.mode = mode
        self.source = source
        self.target = target
        self.modes_dir = Path(modes_dir)
        self.name = f"apertium-{source}-{target}"
        self.version = version if version is not None else _package_version(self.modes_dir / f"{mode}.mode")
        self.timeout_s = timeout_s
        self.persistent = persistent
        self._stream: ApertiumStream | None = None
        self._stream_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApertiumEngine({self.mode!r}, {self.source}->{self.target}, version={self.version!r})"

    @classmethod
    def discover(cls, modes_dir: str | Path = DEFAULT_MODES_DIR, *, persistent: bool = True) -> list[ApertiumEngine]:
        """One engine per installed plain ``xx-yy`` mode whose codes map to ISO 639-1 (variants are skipped)."""
        modes_dir = Path(modes_dir)
        if shutil.which("apertium") is None or not modes_dir.is_dir():
            return []
        chosen: dict[tuple[str, str], str] = {}
        for mode_file in sorted(modes_dir.glob("*.mode")):
            match = _PLAIN_MODE.match(mode_file.stem)
            if not match:
                continue
            source, target = (_iso1(code) for code in match.groups())
            if not source or not target or source == target:
                continue
            previous = chosen.get((source, target))
            # The ISO 639-3 named packages are the maintained ones; prefer them over old 2-letter modes.
            if previous is None or len(mode_file.stem) > len(previous):
                chosen[(source, target)] = mode_file.stem
        return [
            cls(mode, source, target, modes_dir=modes_dir, persistent=persistent)
            for (source, target), mode in sorted(chosen.items())
        ]

    def pairs(self) -> set[tuple[str, str]]:
        return {(self.source, self.target)}

    def translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate every text: through the running stages, or with a single apertium process."""
        if (source, target) != (self.source, self.target):
            raise EngineError(f"{self.name} does not translate {source}->{target}")
        todo = [index for index, text in enumerate(texts) if text.strip()]
        results = list(texts)
        if not todo:
            return results
        translate = self._translate_streamed if self.persistent else self._translate_once
        for index, translated in zip(todo, translate([texts[index] for index in todo]), strict=True):
            results[index] = translated
        return results

    def close(self) -> None:
        """Stops the running stages, if any (the next batch starts them again)."""
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def stage_pids(self) -> list[int]:
        """The running stages' processes (none before the first batch, or with persistent=False)."""
        return self._stream.pids() if self._stream is not None else []

    def _translate_streamed(self, texts: list[str]) -> list[str]:
        try:
            with self._stream_lock:
                if self._stream is None:
                    self._stream = ApertiumStream(self.mode, self.modes_dir, timeout_s=self.timeout_s)
            return self._stream.translate_many(texts)
        except (StreamError, OSError) as exc:
            raise EngineError(f"{self.name}: {exc}"[:500]) from exc

    def _translate_once(self, texts: list[str]) -> list[str]:
        payload = "\n".join("<p>" + html.escape(text, quote=False).replace("\n", "<br>") + "</p>" for text in texts)
        try:
            completed = subprocess.run(
                # -u: no '*' marks on unknown words; html-noent: keep UTF-8 instead of named entities.
                ["apertium", "-u", "-f", "html-noent", "-d", str(self.modes_dir.parent), self.mode],
                input=payload,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(f"{self.name}: {exc}") from exc
        if completed.returncode != 0:
            raise EngineError(f"{self.name} exited {completed.returncode}: {completed.stderr.strip()[:500]}")
        paragraphs = _PARAGRAPH.findall(completed.stdout)
        if len(paragraphs) != len(texts):
            raise EngineError(f"{self.name} returned {len(paragraphs)} paragraphs for {len(texts)} texts")
        # A dropped pronoun ("I have" -> "Tengo") leaves its blank behind; trim it per line.
        return [html.unescape(_LINE_BREAK.sub("\n", paragraph)).strip() for paragraph in paragraphs]
