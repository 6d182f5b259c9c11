"""Stage checkpoints and fingerprints: what ``socialgraph run --resume`` skips, and why.

Every stage of a run has a **fingerprint**: a SHA-256 over everything that decides its result
and nothing else — the code (every source file of the engine and the pipeline), the input files
it reads (path, size and modification time of each; the bytes of small text files), the config
sections it reads, and the fingerprints of the stages whose results it uses. All of them are
known before any work starts, so ``manifest.json`` lists them (``fingerprints``) for every run.

After a stage finishes, its result is saved under ``OUT/.checkpoints/<stage>/`` next to its
fingerprint (written to a hidden temporary and renamed into place, so a checkpoint is whole or
absent). ``--resume`` loads a stage's result instead of computing it when the saved
fingerprint equals the new one; a changed input or setting re-runs exactly the stages that
depend on it (a new FDR re-runs circles, offers, back-test and report, not the graph). A job
killed mid-run resumes from the last finished stage. Settings that cannot change a result
(the cluster, the Dask blocksize) are not fingerprinted: the determinism tests prove it.

What is not checkpointed: the call graph (rebuilt from the tie table in seconds) and the
``write`` stage, which always runs (so the published files always come from this run).

Checkpoints hold the same personal data as the outputs (numbers as internal keys), so the
directory is owner-only, and a checkpoint not owned by the user running the job is ignored
(it is loaded with ``pickle``, which must never read another user's file). A run with
``--no-checkpoints`` keeps none and removes old ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import pickle
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path

from . import catalog
from .io import FILE_MODE, ensure_dir, parquet_file_infos, remove_leftovers, replace_dir

CHECKPOINTS = ".checkpoints"
_FINGERPRINT = "fingerprint"
_PAYLOAD = "payload.pkl"

#: stage -> the stages whose results it uses ("call_graph" is not saved but fingerprinted:
#: it adds the subscriber and operator tables to everything downstream)
DEPENDS = {
    "graph": (),
    "call_graph": ("graph",),
    "scores": ("call_graph",),
    "number_changes": ("call_graph",),
    "circles": ("call_graph", "scores", "number_changes"),
    "offers": ("circles", "scores", "number_changes"),
    "backtest": ("offers", "circles", "scores"),
    "report": ("backtest", "offers", "circles", "scores", "call_graph"),
}
SAVED = ("graph", "scores", "number_changes", "circles", "offers", "backtest", "report")


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def code_fingerprint() -> str:
    """SHA-256 over the source of ``socialgraph`` and ``pipelines`` (any code change re-runs all)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in ("socialgraph", "pipelines"):
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def file_fingerprint(path: str | None, parquet: bool = True) -> object:
    """What identifies an input: each file's path, size and modification time (Parquet inputs,
    which may be large and remote), or the bytes' hash (a small local text file)."""
    if path is None:
        return None
    if not parquet:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    fs, infos = parquet_file_infos(path)  # the listing's facts: no request per file
    out = []
    for f in sorted(infos):
        info = infos[f]
        changed = next((info[k] for k in ("mtime", "LastModified", "updated", "ETag", "etag") if k in info), None)
        name = info.get("name", f)
        if "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)):
            name = os.path.realpath(name)  # the same file through another path or a symlink
        out.append([name, info.get("size"), str(changed)])
    return out


def _section(section) -> object:
    return asdict(section) if is_dataclass(section) else section


def stage_fingerprints(*, cfg, cdr: str, subscribers: str, operators: str | None, as_of, skip_bad_files: bool,
                       previous: str | None, secret: bytes | None) -> dict[str, str]:
    """Every stage's fingerprint, from the inputs, the config and the code (nothing computed)."""
    code = code_fingerprint()
    # A pseudonymised run writes key-dependent ties (the graph stage), so a new key must re-run
    # it. The HMAC of a constant under the key reveals no more about the key than the pseudonyms
    # of numbers in the outputs already do, and only its hash (inside the fingerprint) is kept.
    key_check = None if secret is None else hmac.new(secret, b"socialgraph checkpoint", "sha256").hexdigest()
    previous_manifest = None
    if previous is not None:
        m = Path(previous) / catalog.MANIFEST
        previous_manifest = hashlib.sha256(m.read_bytes()).hexdigest() if m.exists() else str(previous)
    own = {
        "graph": {"cdr": file_fingerprint(cdr), "as_of": as_of, "skip_bad_files": skip_bad_files,
                  "columns": _section(cfg.columns), "numbers": _section(cfg.numbers),
                  "window": _section(cfg.window), "ties": _section(cfg.ties),
                  "ingest": {k: v for k, v in _section(cfg.ingest).items() if k != "blocksize"},
                  "block_days": cfg.scoring.block_days, "key": key_check},
        "call_graph": {"subscribers": file_fingerprint(subscribers),
                       "operators": file_fingerprint(operators, parquet=False),
                       # who may be contacted is read with the subscribers (a resumed run must
                       # never list someone a changed setting keeps off)
                       "contact_unknown_dnd": cfg.privacy.contact_unknown_dnd},
        "scores": {"scoring": _section(cfg.scoring)},
        "number_changes": {"number_changes": _section(cfg.number_changes)},
        "circles": {"circles": _section(cfg.circles), "contagion": _section(cfg.contagion),
                    "previous": previous_manifest},
        "offers": {"offers": _section(cfg.offers), "previous": previous_manifest},
        "backtest": {"backtest": _section(cfg.backtest)},
        "report": {},
    }
    fps: dict[str, str] = {}
    for stage, deps in DEPENDS.items():  # in dependency order
        fps[stage] = _digest({"stage": stage, "code": code, "seed": cfg.seed, "own": own[stage],
                              "after": [fps[d] for d in deps]})
    return fps


class Checkpoints:
    """Save and load stage results under ``OUT/.checkpoints``.

    ``keep``: save results (and keep the directory); ``resume``: load results whose
    fingerprint matches instead of computing them.
    """

    def __init__(self, out: Path, fingerprints: dict[str, str], *, keep: bool, resume: bool, run_id: str):
        self.root = Path(out) / CHECKPOINTS
        self.fingerprints = fingerprints
        self.keep = keep
        self.resume = resume
        self.tag = run_id[:8]
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self.root.is_dir():  # created by the first save
            remove_leftovers(self.root)

    def _dir(self, stage: str) -> Path:
        return self.root / stage

    def has(self, stage: str) -> bool:
        """Whether ``--resume`` may use this stage's saved result."""
        if not self.resume:
            return False
        d = self._dir(stage)
        try:
            if d.stat().st_uid != os.getuid() or (d / _PAYLOAD).stat().st_uid != os.getuid():
                return False
            return (d / _FINGERPRINT).read_text().strip() == self.fingerprints[stage]
        except (FileNotFoundError, NotADirectoryError):
            return False

    def load(self, stage: str):
        """The saved result of ``stage`` (None when it must be computed)."""
        if not self.has(stage):
            return None
        with open(self._dir(stage) / _PAYLOAD, "rb") as fh:
            return pickle.load(fh)

    def path(self, stage: str) -> Path:
        """The directory of a stage's saved result (for datasets saved beside the payload)."""
        return self._dir(stage)

    @contextlib.contextmanager
    def saving(self, stage: str):
        """Yield a fresh directory for extra files of ``stage``'s result; :meth:`save` commits it."""
        tmp = self.root / f".{stage}.tmp-{self.tag}"
        shutil.rmtree(tmp, ignore_errors=True)
        ensure_dir(self.root)
        ensure_dir(tmp)
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def cached(self, stage: str, rec: dict, compute):
        """``stage``'s saved result when ``--resume`` may use it (marking ``rec`` resumed),
        else ``compute()``, saved."""
        payload = self.load(stage)
        if payload is not None:
            rec["resumed"] = True
            return payload
        payload = compute()
        self.save(stage, payload)
        return payload

    def save(self, stage: str, payload, staged: Path | None = None) -> None:
        """Save ``payload`` (and the files already in ``staged``, from :meth:`saving`) as
        ``stage``'s result."""
        if not self.keep:
            return
        if staged is None:
            with self.saving(stage) as tmp:
                self._commit(stage, payload, tmp)
        else:
            self._commit(stage, payload, staged)

    def _commit(self, stage: str, payload, tmp: Path) -> None:
        with open(tmp / _PAYLOAD, "wb") as fh:
            pickle.dump(payload, fh, protocol=5)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp / _PAYLOAD, FILE_MODE)
        (tmp / _FINGERPRINT).write_text(self.fingerprints[stage] + "\n")  # last: marks it whole
        os.chmod(tmp / _FINGERPRINT, FILE_MODE)
        replace_dir(tmp, self._dir(stage))

    def prune(self) -> None:
        """Remove checkpoints of other fingerprints (after a complete run)."""
        if not self.keep or not self.root.exists():
            return
        for d in self.root.iterdir():
            fp = d / _FINGERPRINT
            if not d.is_dir() or not fp.exists() or fp.read_text().strip() != self.fingerprints.get(d.name):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()


def link_tree(src: Path, dst: Path) -> None:
    """Copy a dataset directory as hard links (no extra disk), falling back to copies."""
    ensure_dir(dst)
    for path in sorted(Path(src).iterdir()):
        target = dst / path.name
        if path.is_dir():
            link_tree(path, target)
            continue
        try:
            os.link(path, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(path, target)
            os.chmod(target, FILE_MODE)


__all__ = ["CHECKPOINTS", "Checkpoints", "DEPENDS", "SAVED", "code_fingerprint", "file_fingerprint",
           "link_tree", "stage_fingerprints"]
