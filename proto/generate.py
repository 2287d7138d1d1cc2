#!/usr/bin/env python3
"""Generate the Python gRPC code of the carddaemon.v1 contract into ``daemon/api/v1/``.

    .venv/bin/python proto/generate.py            # regenerate (commit the result)
    .venv/bin/python proto/generate.py --check    # exit 1, listing files, if the tree is stale

Runs ``grpc_tools.protoc`` with its own ``--python_out``/``--grpc_python_out`` and
mypy-protobuf's ``--mypy_out``/``--mypy_grpc_out``, so every module has a ``.pyi`` stub that
strict mypy understands (including the ``grpc.aio`` servicer and stub types).

Why the imports are rewritten: protoc names Python modules after the proto package, so
``carddaemon/v1/reader_service.proto`` imports ``from carddaemon.v1 import common_pb2``. The
proto package must stay ``carddaemon.v1`` (it is the wire name of every service and type), but
the Python package is ``daemon.api.v1``; the script rewrites those module references and
nothing else (the serialized descriptors, full type names and RPC paths keep ``carddaemon.v1``).

The output is deterministic for a given set of tool versions, which is why they are pinned
here and checked before anything is generated: generated code and runtime must pair exactly
(the ``_pb2.py`` files validate the protobuf runtime version, the ``_pb2_grpc.py`` files the
grpcio version).
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import importlib.resources
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "carddaemon" / "v1"
OUT_DIR = ROOT / "daemon" / "api" / "v1"

PROTO_PACKAGE = "carddaemon.v1"
PYTHON_PACKAGE = "daemon.api.v1"

#: The generator versions; change them together with the generated tree (run this script).
PINS = {"grpcio-tools": "1.85.1", "mypy-protobuf": "5.1.0"}

#: Suffixes of the files this script owns in OUT_DIR (``__init__.py`` is hand-written).
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")

_MODULE = r"\w+_pb2(?:_grpc)?"
_FROM_IMPORT = re.compile(rf"^from {re.escape(PROTO_PACKAGE)} import ", re.MULTILINE)
_DOTTED = re.compile(rf"(?<![\w.]){re.escape(PROTO_PACKAGE)}\.({_MODULE})\b")
_IMPORT = re.compile(rf"^import {re.escape(PROTO_PACKAGE)}\.({_MODULE})\b", re.MULTILINE)
_MODULE_NAME = re.compile(rf"'{re.escape(PROTO_PACKAGE)}\.({_MODULE})'")


def check_pins() -> None:
    """Refuse to generate with other tool versions than the pinned ones."""
    wrong = []
    for dist, want in PINS.items():
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            have = "not installed"
        if have != want:
            wrong.append(f"{dist}=={want} (installed: {have})")
    if wrong:
        sys.exit("proto/generate.py needs " + ", ".join(wrong) + "; pip install them first")


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def _plugin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            sys.exit(f"{name} not found next to {sys.executable} or on PATH (mypy-protobuf)")
        return found
    return str(path)


def _protoc(args: list[str]) -> None:
    wkt = importlib.resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{wkt}", *args]
    # the command is this interpreter, our own paths and fixed flags: no untrusted input
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"protoc failed ({done.returncode}):\n{done.stderr}")


def descriptor_set(out: Path, *, source_info: bool = True) -> Path:
    """Write the contract's FileDescriptorSet (with comments) to ``out``; used by the tests."""
    args = [f"--descriptor_set_out={out}"]
    if source_info:
        args.append("--include_source_info")
    _protoc([*args, *(str(p.relative_to(PROTO_ROOT)) for p in proto_files())])
    return out


def rewrite(text: str) -> str:
    """Point module references from the proto package to the Python package."""
    text = _FROM_IMPORT.sub(f"from {PYTHON_PACKAGE} import ", text)
    text = _IMPORT.sub(rf"import {PYTHON_PACKAGE}.\1", text)
    text = _MODULE_NAME.sub(rf"'{PYTHON_PACKAGE}.\1'", text)
    return _DOTTED.sub(rf"{PYTHON_PACKAGE}.\1", text)


def generate(dest: Path) -> list[Path]:
    """Generate every module into ``dest`` (flat, like OUT_DIR); returns the files written."""
    with tempfile.TemporaryDirectory(prefix="carddaemon-proto-") as tmp:
        work = Path(tmp)
        _protoc(
            [
                f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
                f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
                f"--python_out={work}",
                f"--grpc_python_out={work}",
                f"--mypy_out={work}",
                f"--mypy_grpc_out={work}",
                *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
            ]
        )
        produced = work / Path(*PROTO_PACKAGE.split("."))
        written = []
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted(produced.iterdir()):
            if not src.name.endswith(GENERATED_SUFFIXES):
                continue
            target = dest / src.name
            target.write_text(rewrite(src.read_text(encoding="utf-8")), encoding="utf-8")
            written.append(target)
    return written


def generated_names(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def stale(committed: Path, fresh: Path) -> list[str]:
    """What differs between the committed tree and a fresh generation, one line per file."""
    have, want = generated_names(committed), generated_names(fresh)
    out = [f"missing: {committed / n}" for n in sorted(want - have)]
    out += [f"not generated (remove it): {committed / n}" for n in sorted(have - want)]
    out += [
        f"differs: {committed / n}"
        for n in sorted(have & want)
        if not filecmp.cmp(committed / n, fresh / n, shallow=False)
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="regenerate into a temp dir and compare; write nothing"
    )
    args = parser.parse_args(argv)
    check_pins()
    if args.check:
        with tempfile.TemporaryDirectory(prefix="carddaemon-proto-check-") as tmp:
            generate(Path(tmp))
            problems = stale(OUT_DIR, Path(tmp))
        if problems:
            sys.stderr.write("generated code is stale; run: python proto/generate.py\n")
            sys.stderr.writelines(f"  {line}\n" for line in problems)
            return 1
        sys.stdout.write(f"{OUT_DIR.relative_to(ROOT)}: up to date\n")
        return 0
    for old in generated_names(OUT_DIR):
        (OUT_DIR / old).unlink()
    for path in generate(OUT_DIR):
        sys.stdout.write(f"{path.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
