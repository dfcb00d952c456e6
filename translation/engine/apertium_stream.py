"""A long-lived Apertium pipeline: every stage of a mode started once, in null-flush mode (-z), so a message
costs about a millisecond of CPU instead of the ~150 ms start-up of the `apertium` script.

Output is the same as `apertium -u -f html-noent MODE` on that message alone (checked in the tests). What this
rests on (Apertium 3.8, lttoolbox 3.7, Transfuse 0.5, Debian):

* `apertium -f html-noent` runs `tf-extract | <mode stages> | tf-inject` (Transfuse is installed); the stages are
  run here directly and tf-extract/tf-inject's work for plain text is done in Python (escaping, a newline run as
  one superblank, the inserted sentence-end ".", the closing "[]\\n").
* `apertium -z` itself cannot be kept running: the script wraps the mode in two gawk filters that each hold a
  record back until the next separator, so answers come two messages late.
* `lt-proc -z -b` and `lt-proc -z -n` do not pass on a "\\0" straight after a lexical unit's "$"; every block ends
  in a blank, as Transfuse's do: ".[]\\n\\0".
* The HMM tagger (`apertium-tagger -g`) permanently changes its model when a word has an ambiguity class the model
  lacks (every English "I" in eng-spa), so later messages could be tagged differently than by a fresh process.
  It runs with -d, which reports exactly that on stderr, between two Python relays, and after such a message it
  is swapped for a pre-started spare (~4 ms CPU, ~9 MB).

No Django here: this is part of the framework-free engine layer.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_MODES_DIR = Path("/usr/share/apertium/modes")

# Characters Transfuse (tf-extract 0.5.8) backslash-escapes in block text.
_ESCAPE = re.compile(r"([\^$\[\]{}/\\<>@])")
# A run of line breaks (with any whitespace between them) becomes one superblank, as tf-extract merges
# adjacent <br> tags.
_NEWLINE_RUN = re.compile(r"\n(?:\s*\n)*")
_LINE_END_BLANKS = re.compile(r"[ \t]*(\n+)[ \t]*")


class StreamError(RuntimeError):
    """A stage could not start, died twice in a row, or answered out of step."""


def stage_commands(mode: str, modes_dir: Path = DEFAULT_MODES_DIR, *, unknown_marks: bool = False) -> list[list[str]]:
    """The argv of each stage of a mode, null-flush on, as the `apertium` script would run them."""
    mode_file = Path(modes_dir) / f"{mode}.mode"
    try:
        # What `apertium` itself runs: -z on every stage, plus the wblank-attach/detach helpers.
        text = subprocess.run(
            ["apertium-wblank-mode", "-z", str(mode_file)], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        text = mode_file.read_text()  # older apertium: -z is added below
    gen_flag = "-g" if unknown_marks else "-n"  # `apertium -u` passes -n to the generator
    stages: list[list[str]] = [[]]
    for token in shlex.split(text.strip()):
        if token == "|":
            stages.append([])
        elif token == "$1":
            stages[-1].append(gen_flag)
        elif token == "$2":
            continue  # tagger option (-m for `apertium -a`); empty by default
        else:
            stages[-1].append(token)
    for argv in stages:
        if not argv:
            raise StreamError(f"empty stage in {mode_file}")
        if "-z" not in argv and "--null-flush" not in argv and not argv[0].startswith("apertium-wblank-"):
            argv.insert(1, "-z")
    return stages


def deformat(text: str) -> tuple[str, list[str]]:
    """Plain text -> one Apertium stream block (without its \\0) and the line-break runs it replaced."""
    text = text.replace("\0", " ").replace("\r\n", "\n").replace("\r", "\n").strip()
    runs: list[str] = []
    parts: list[str] = []
    last = 0
    for match in _NEWLINE_RUN.finditer(text):
        parts.append(_ESCAPE.sub(r"\\\1", text[last : match.start()]))
        parts.append(f"[tf:P:{len(runs)}]")
        runs.append("\n" * match.group(0).count("\n"))
        last = match.end()
    parts.append(_ESCAPE.sub(r"\\\1", text[last:]))
    # "." marks a possible sentence end (tf-extract adds it too); "[]\n" makes every stage flush.
    return "[tf-block:1]\n\n" + "".join(parts) + ".[]\n", runs


def reformat(block: str, runs: list[str]) -> str:
    """One translated block -> plain text (what the engine makes of tf-inject's HTML)."""
    end = block.rfind("[]")
    if end >= 0:
        block = block[:end]
        if block.endswith("."):
            block = block[:-1]  # tf-inject drops the inserted sentence end
    out: list[str] = []
    i, n = 0, len(block)
    while i < n:
        c = block[i]
        if c == "\\" and i + 1 < n:
            out.append(block[i + 1])
            i += 2
        elif c == "[":
            wordbound = block.startswith("[[", i)
            j = i + (2 if wordbound else 1)
            content: list[str] = []
            while j < n and block[j] != "]":
                if block[j] == "\\" and j + 1 < n:
                    j += 1
                content.append(block[j])
                j += 1
            i = j + (2 if wordbound else 1)
            text = "".join(content)
            if wordbound or text.startswith("tf-block:"):
                continue
            if text.startswith("tf:P:"):
                try:
                    out.append(runs[int(text[5:])])
                except (ValueError, IndexError):
                    out.append("\n")
            else:
                out.append(text)
        else:
            out.append(c)
            i += 1
    return _LINE_END_BLANKS.sub(r"\1", "".join(out)).strip()


class _Chain:
    """Stages chained with OS pipes; Python writes the first stdin and reads the last stdout."""

    def __init__(self, commands: list[list[str]], stderr, env: dict[str, str]):
        self.procs: list[subprocess.Popen] = []
        previous = None
        try:
            for argv in commands:
                proc = subprocess.Popen(
                    argv,
                    stdin=previous.stdout if previous else subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    close_fds=True,
                )
                if previous is not None:
                    previous.stdout.close()  # only the next stage keeps the read end
                self.procs.append(proc)
                previous = proc
        except OSError as exc:
            self.stop()
            raise StreamError(f"cannot start {argv[0]}: {exc}") from exc
        self.stdin = self.procs[0].stdin
        self.stdout = self.procs[-1].stdout
        os.set_blocking(self.stdin.fileno(), False)

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()


class ApertiumStream:
    """One Apertium mode kept running. ``translate``/``translate_many`` are thread-safe (serialised)."""

    def __init__(
        self,
        mode: str,
        modes_dir: str | Path = DEFAULT_MODES_DIR,
        *,
        unknown_marks: bool = False,
        timeout_s: float = 30.0,
        fresh_tagger: bool = True,
    ):
        self.mode = mode
        self.modes_dir = Path(modes_dir)
        self.timeout_s = timeout_s
        self.commands = stage_commands(mode, self.modes_dir, unknown_marks=unknown_marks)
        # Split around the HMM tagger so it can be swapped for a fresh one (see module docstring).
        cut = next((i for i, argv in enumerate(self.commands) if argv[0] == "apertium-tagger" and "-g" in argv), None)
        if not fresh_tagger or cut is None:
            self._parts = [self.commands]
            self._tagger_argv = None
        else:
            tagger = self.commands[cut]
            self._tagger_argv = tagger if "-d" in tagger else [tagger[0], "-d", *tagger[1:]]
            self._parts = [self.commands[:cut], self.commands[cut + 1 :]]
        self._env = dict(os.environ, LC_ALL=os.environ.get("LC_ALL", "C.UTF-8"))
        self._lock = threading.Lock()
        self._chains: list[_Chain] = []
        self._tagger: _Chain | None = None
        self._spare: _Chain | None = None
        self._spare_thread: threading.Thread | None = None
        self._dirty = False
        self._err_tail = b""
        self._stderr = None
        self.restarts = -1
        self.tagger_swaps = 0
        with self._lock:
            self._restart()

    # -- process management -----------------------------------------------------------------------
    def _new_tagger(self) -> _Chain:
        chain = _Chain([self._tagger_argv], subprocess.PIPE, self._env)
        os.set_blocking(chain.procs[0].stderr.fileno(), False)
        return chain

    def _all_chains(self) -> list[_Chain]:
        return [c for c in (*self._chains, self._tagger, self._spare) if c is not None]

    def _stop(self) -> None:
        if self._spare_thread is not None:
            self._spare_thread.join()
            self._spare_thread = None
        for chain in self._all_chains():
            chain.stop()
        self._chains, self._tagger, self._spare = [], None, None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the stages write to it for their whole life)
        self._dirty = False
        self._err_tail = b""
        try:
            self._chains = [_Chain(part, self._stderr, self._env) for part in self._parts]
            if self._tagger_argv is not None:
                self._tagger = self._new_tagger()
                self._spare = self._new_tagger()
        except StreamError:
            self._stop()
            raise

    def _swap_tagger(self) -> None:
        """Replace the tagger whose model changed by the idle spare (already loaded); the old one is
        stopped and the next spare started off the request path, in a helper thread."""
        if self._spare_thread is not None:
            self._spare_thread.join()  # two swaps in a row: wait for the spare being started
        old, self._tagger, self._spare = self._tagger, self._spare, None
        self._dirty = False
        self._err_tail = b""
        self.tagger_swaps += 1

        def replace() -> None:
            old.stop()
            try:
                self._spare = self._new_tagger()
            except StreamError:
                self._spare = None  # _alive() sees no spare ... restart on the next request

        self._spare_thread = threading.Thread(target=replace, daemon=True)
        self._spare_thread.start()

    def _alive(self) -> bool:
        if self._spare_thread is not None and not self._spare_thread.is_alive():
            self._spare_thread = None
        if self._tagger_argv is not None and self._spare is None and self._spare_thread is None:
            return False  # the spare could not be started
        chains = [c for c in (*self._chains, self._tagger) if c is not None]
        if self._spare_thread is None and self._spare is not None:
            chains.append(self._spare)
        return bool(chains) and all(chain.alive() for chain in chains)

    def _a_stage_died(self, settle_s: float = 0.2) -> bool:
        """Whether any stage has exited, allowing a dying one a moment to be seen as dead."""
        deadline = time.monotonic() + settle_s
        while True:
            if not self._alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-500:].decode("utf-8", "replace").strip()
        except (OSError, AttributeError, ValueError):
            return ""

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- I/O ------------------------------------------------------------------------------------------
    def _tagger_changed(self) -> bool:
        """Drain the tagger's stderr; true if it reported a new ambiguity class (its model changed)."""
        fd = self._tagger.procs[0].stderr.fileno()
        seen = self._err_tail
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            seen = seen[-32:] + data
            if b"ambiguity class" in seen:
                self._dirty = True
        self._err_tail = seen[-32:]
        return self._dirty

    def _roundtrip(self, blocks: list[bytes]) -> list[bytes]:
        """Send \\0-terminated blocks through all parts; return one answer per block.

        One select() loop moves data between the parts, so big inputs cannot deadlock on full pipes.
        With a tagger in the middle, it gets one block at a time, and is swapped before the next block
        if the previous one changed its model.
        """
        first, last = self._chains[0], self._chains[-1]
        outbox: dict[int, bytearray] = {first.stdin.fileno(): bytearray(b"".join(blocks))}
        inbox: dict[int, bytearray] = {}
        answers: list[bytes] = []
        queue: list[bytes] = []  # blocks waiting for the tagger
        tagger_busy = False
        deadline = time.monotonic() + self.timeout_s
        before = after = None
        if self._tagger is not None:
            before = self._chains[0]
            after = self._chains[1]
            outbox[after.stdin.fileno()] = bytearray()
        while len(answers) < len(blocks):
            if self._tagger is not None and not tagger_busy and queue:
                if self._dirty:
                    self._swap_tagger()
                outbox[self._tagger.stdin.fileno()] = bytearray(queue.pop(0))
                tagger_busy = True
            readers = [last.stdout.fileno()]
            if self._tagger is not None:
                # stderr too: with -d the tagger can write more warnings than a pipe buffer holds
                tagger_err = self._tagger.procs[0].stderr.fileno()
                readers += [before.stdout.fileno(), self._tagger.stdout.fileno(), tagger_err]
            writers = [fd for fd, data in outbox.items() if data]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.mode}: no answer within {self.timeout_s}s")
            readable, writable, _ = select.select(readers, writers, [], remaining)
            for fd in writable:
                data = outbox[fd]
                written = os.write(fd, data[:65536])
                del data[:written]
            for fd in readable:
                if self._tagger is not None and fd == tagger_err:
                    self._tagger_changed()
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise BrokenPipeError(f"{self.mode}: a stage closed its output")
                buf = inbox.setdefault(fd, bytearray())
                buf += chunk
                while (end := buf.find(b"\0")) >= 0:
                    block = bytes(buf[: end + 1])
                    del buf[: end + 1]
                    if fd == last.stdout.fileno():
                        answers.append(block[:-1])
                    elif fd == before.stdout.fileno():
                        queue.append(block)
                    else:  # tagger answered: its warnings, if any, were written before this \0
                        self._tagger_changed()
                        outbox[after.stdin.fileno()] += block
                        tagger_busy = False
        if any(inbox.values()):
            raise StreamError(f"{self.mode}: unexpected output after the answer")
        return answers

    def translate_many(self, texts: list[str]) -> list[str]:
        """Translate several texts in one round trip (one block each; same result as one by one)."""
        todo = [i for i, t in enumerate(texts) if t.strip()]
        results = [t.strip() for t in texts]  # a blank text stays blank
        if not todo:
            return results
        formatted = [deformat(texts[i]) for i in todo]
        blocks = [block.encode("utf-8") + b"\0" for block, _ in formatted]
        with self._lock:
            for attempt in (1, 2):
                if not self._alive():
                    self._restart()
                try:
                    raw = self._roundtrip(blocks)
                    if not all(raw) and self._a_stage_died():
                        # A killed stage's neighbours flush and pass on "\0" at end of input: an empty answer
                        # from a broken chain, not a translation.
                        raise StreamError(f"{self.mode}: a stage died during the round trip")
                    break
                except (OSError, TimeoutError, StreamError) as exc:
                    tail = self._stderr_tail()
                    self._restart()  # a half-read answer would desynchronise the stream
                    if attempt == 2 or isinstance(exc, TimeoutError):
                        raise StreamError(f"{exc} {tail}".strip()) from exc
        for i, answer, (_, runs) in zip(todo, raw, formatted, strict=True):
            results[i] = reformat(answer.decode("utf-8", "replace"), runs)
        return results

    def translate(self, text: str) -> str:
        return self.translate_many([text])[0]

    def pids(self) -> list[int]:
        """The stage processes (spare tagger included): what a benchmark reads memory from."""
        return [proc.pid for chain in self._all_chains() for proc in chain.procs]
