"""Custom lm-eval task folders (`--include-path DIR`) that work from any working directory.

lm-eval hands a task's `dataset_kwargs` to `datasets.load_dataset` as written, and `datasets` reads a relative
`data_files` path (and `data_dir`, and a local `dataset_path` folder) against the process's working directory,
not against the YAML's folder: `harness bench --include-path tasks/` run from elsewhere finds no data.

`mirror_include_path` therefore mirrors the folder into a scratch folder: every YAML file (`*.yaml`, `*.yml`, and
include templates such as `_default_template_yaml`) is copied, with each relative data path that exists next to
the YAML that declares it made absolute; every other file (data, `utils.py` for `!function`) is linked to the
original. Includes inside the folder keep working (the tree keeps its shape); an include that leaves the folder is
made absolute. Paths that do not exist next to their YAML are left alone: a data file inside a Hugging Face dataset
repository (`dataset_path: org/name`) is relative to that repository, not to the YAML."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UserError

# `datasets` builders named by dataset_path, never a folder even when one of that name sits next to the YAML
PACKAGED_BUILDERS = frozenset(
    {"json", "csv", "parquet", "text", "arrow", "pandas", "xml", "sql", "webdataset", "hdf5"}
    | {"imagefolder", "audiofolder", "videofolder", "pdffolder", "niftifolder"}
)
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Rewrite:
    """One path made absolute: in which YAML (relative to the include folder), which key, from what to what."""

    file: str
    key: str
    old: str
    new: str


class _Tagged(str):
    """A tagged scalar (`!function utils.process_docs`) kept verbatim through a rewrite."""

    tag: str = ""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> _Tagged:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, f"unsupported tagged node !{tag_suffix}", node.start_mark)
    value = _Tagged(loader.construct_scalar(node))
    value.tag = "!" + tag_suffix
    return value


def _represent_tagged(dumper: yaml.SafeDumper, value: _Tagged) -> yaml.Node:
    return dumper.represent_scalar(value.tag, str(value))


_Loader.add_multi_constructor("!", _construct_tagged)
_Dumper.add_representer(_Tagged, _represent_tagged)


def is_yaml_name(name: str) -> bool:
    """A file lm-eval may read as YAML: a task file, or an include template named like `_default_template_yaml`."""
    return name.endswith(("yaml", ".yml"))


def _local(value: str) -> bool:
    return "://" not in value and not value.startswith("hf:")


def _exists(base: Path, value: str) -> bool:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(c in value for c in GLOB_CHARS):
        anchor = Path(path.anchor)
        return next(anchor.glob(str(path.relative_to(anchor))), None) is not None
    return path.exists()


def _absolute(value: Any, base: Path) -> str | None:
    """The absolute form of a relative local path that exists next to the YAML (globs: that matches), else None."""
    if isinstance(value, _Tagged) or not isinstance(value, str) or not value or not _local(value):
        return None
    if Path(value).expanduser().is_absolute() or not _exists(base, value):
        return None
    return os.path.normpath(base / Path(value).expanduser())


class _Rewriter:
    def __init__(self, base: Path, root: Path, file: str) -> None:
        self.base = base  # the original YAML's folder
        self.root = root  # the original include folder
        self.file = file
        self.changes: list[Rewrite] = []

    def path(self, value: Any, key: str) -> Any:
        new = _absolute(value, self.base)
        if new is None:
            return value
        self.changes.append(Rewrite(self.file, key, str(value), new))
        return new

    def data_files(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {split: self.data_files(v) for split, v in value.items()}
        if isinstance(value, list):
            return [self.path(v, "dataset_kwargs.data_files") for v in value]
        return self.path(value, "dataset_kwargs.data_files")

    def include(self, value: Any) -> Any:
        """An include leaving the include folder, made absolute (inside it, the mirror has the same shape)."""
        if isinstance(value, list):
            return [self.include(v) for v in value]
        if not isinstance(value, str) or Path(value).is_absolute():
            return value
        target = Path(os.path.normpath(self.base / value))
        if target.is_relative_to(self.root):
            return value
        self.changes.append(Rewrite(self.file, "include", value, str(target)))
        return str(target)

    def node(self, value: Any) -> Any:
        """Rewrite every mapping in the document: a group's inline task entries carry dataset keys too."""
        if isinstance(value, list):
            return [self.node(v) for v in value]
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key == "dataset_kwargs" and isinstance(item, dict):
                kwargs = dict(item)
                if "data_files" in kwargs:
                    kwargs["data_files"] = self.data_files(kwargs["data_files"])
                if "data_dir" in kwargs:
                    kwargs["data_dir"] = self.path(kwargs["data_dir"], "dataset_kwargs.data_dir")
                out[key] = kwargs
            elif key == "dataset_path" and isinstance(item, str) and item not in PACKAGED_BUILDERS:
                out[key] = self.path(item, "dataset_path")
            elif key == "include":
                out[key] = self.include(item)
            else:
                out[key] = self.node(item)
        return out


def rewrite_yaml(text: str, base: Path, root: Path, file: str) -> tuple[str, list[Rewrite]]:
    """The YAML text with its relative data paths made absolute against `base` (unchanged text when none)."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader that keeps tagged scalars as text
    except yaml.YAMLError:
        return text, []  # lm-eval reports it when it reads the task, with its own message
    rewriter = _Rewriter(base, root, file)
    new = rewriter.node(doc)
    if not rewriter.changes:
        return text, []
    dumped = yaml.dump(new, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return dumped, rewriter.changes


def _link(src: Path, dest: Path) -> None:
    try:
        dest.symlink_to(src)
    except OSError:  # no symlinks here (e.g. Windows without the privilege): a copy reads the same
        shutil.copy2(src, dest)


def mirror_include_path(src: Path, dest: Path) -> list[Rewrite]:
    """Mirror the task folder `src` into the empty folder `dest` (see the module docstring); the rewrites made."""
    if not src.is_dir():
        raise UserError("not a folder of lm-eval task YAML files", file=src, field="--include-path")
    root = src.resolve()
    changes: list[Rewrite] = []
    seen: set[str] = set()  # folders walked, by real path: a symlinked folder is mirrored once, a link cycle ends
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        seen.add(os.path.realpath(dirpath))
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIPPED_DIRS and os.path.realpath(os.path.join(dirpath, d)) not in seen
        )
        here = Path(dirpath)
        out_dir = dest / here.relative_to(root)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            source = here / name
            if not is_yaml_name(name):
                _link(source, out_dir / name)
                continue
            try:
                text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read the task file: {exc}", file=source, field="--include-path") from None
            new, made = rewrite_yaml(text, here, root, str(source.relative_to(root)))
            (out_dir / name).write_text(new, encoding="utf-8")
            changes.extend(made)
    return changes
