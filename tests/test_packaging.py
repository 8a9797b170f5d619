"""The built wheel: one import namespace (`edgegan.*`), every sub-package shipped, and nothing that a user's own
`runtime.py`, `export.py` or `trainer.py` can shadow.

The wheel is built from this checkout (setuptools, no network when setuptools is installed) and unzipped onto a
child process's path, which is what `pip install` of that wheel puts in site-packages.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# import name -> folder in the checkout (pyproject.toml [tool.setuptools.package-dir])
ROOTS = {"edgegan": "command", "edgegan.runtime": "runtime", "edgegan.export": "export", "edgegan.trainer": "trainer"}


def _not_source(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: build outputs, virtual environments and npm packages (tests/web's, ~450 MB) anywhere;
    the user's runs/models only at the top (trainer/models/ is
    the architecture registry)."""
    skip = {
        n
        for n in names
        if n in {".git", "build", "dist", "__pycache__", ".pytest_cache", ".venv", "node_modules"}
        or n.endswith(".egg-info")
        or n.startswith(".carry")
    }
    if Path(folder) == REPO:
        skip |= {n for n in names if n in {"runs", "models"}}
    return skip


def _can_build_here() -> bool:
    """setuptools here can build a wheel: it has bdist_wheel built in (>= 70.1) or the `wheel` package beside it."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools never cleans build/lib, so an in-place build can ship modules deleted since.
    source = tmp_path_factory.mktemp("source") / "edgegan"
    shutil.copytree(REPO, source, ignore=_not_source)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)]
    if _can_build_here():
        cmd.append("--no-build-isolation")  # else pip fetches setuptools from the package index
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    (found,) = out.glob("edgegan-*.whl")
    return found


def _checkout_packages() -> set[str]:
    """Every folder with an __init__.py under the mapped roots, as the import name it must have in the wheel."""
    names = set()
    for name, folder in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            names.add(".".join([name, *rel.parts]))
    return names


def test_wheel_installs_only_the_edgegan_namespace(wheel):
    tops = {Path(n).parts[0] for n in zipfile.ZipFile(wheel).namelist()}
    dist_info = [t for t in tops if t.endswith(".dist-info")]
    assert len(dist_info) == 1 and tops == {"edgegan", *dist_info}, sorted(tops)


def test_wheel_ships_every_sub_package(wheel):
    shipped = {
        str(Path(n).parent).replace("/", ".") for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/__init__.py")
    }
    missing = _checkout_packages() - shipped
    assert not missing, f"add these to pyproject.toml [tool.setuptools] packages: {sorted(missing)}"
    assert "edgegan/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_installed_edgegan_ignores_users_files_named_like_its_packages(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("runtime", "export", "trainer"):  # a user's own modules in the working folder
        (work / f"{name}.py").write_text(f"raise ImportError('the user file {name}.py was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    for args in (["--help"], ["sample", "--help"], ["eval", "--help"], ["bench", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "edgegan", *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, (args, proc.stderr)
        assert "user file" not in proc.stderr
    code = (
        "import edgegan, edgegan.runtime, sys; from edgegan.runtime import Generator; "
        "print(edgegan.__file__, edgegan.runtime.__file__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert all(str(site) in p for p in proc.stdout.split())


# ------------------------------------------------------------------------------------------ the editable install
IMPORT_ROOTS = (
    f"import importlib, json; print(json.dumps({{m: importlib.import_module(m).__file__ for m in {tuple(ROOTS)!r}}}))"
)


@pytest.mark.parametrize("where", ["the repository root", "another folder"])
def test_every_edgegan_package_comes_from_this_checkout(where, tmp_path):
    """`edgegan` and each mapped package resolve to this checkout's folders, from its root (where pytest and
    `python -m benchmarks.NAME` run, with the root on sys.path) and from elsewhere: never half from this checkout and
    half from another one that is installed editable (the two-checkouts mix a root `edgegan/` folder can cause)."""
    import json

    cwd = REPO if where == "the repository root" else tmp_path
    proc = subprocess.run([sys.executable, "-c", IMPORT_ROOTS], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"from {where}: {proc.stderr.strip().splitlines()[-1:]} (run scripts/setup.sh)"
    files = json.loads(proc.stdout)
    for name, folder in ROOTS.items():
        got = Path(files[name]).resolve()  # a strict editable install links; the link's target is the real file
        assert got == (REPO / folder / "__init__.py").resolve(), f"{name} from {where}: {got}, not this checkout"


def _editable_tree() -> Path:
    """The folder the editable install's .pth file puts on sys.path (strict mode: a tree of links to the checkout)."""
    import importlib.metadata

    # every edgegan distribution on sys.path (the root's edgegan.egg-info, a build by-product, is one), then the
    # installed one's .pth
    pth = [
        Path(dist.locate_file(f))
        for dist in importlib.metadata.distributions(name="edgegan")
        for f in dist.files or ()
        if f.name.startswith("__editable__") and f.suffix == ".pth"
    ]
    assert pth, "edgegan is not installed editable: run scripts/setup.sh"
    lines = [line.strip() for line in pth[0].read_text().splitlines() if line.strip()]
    hooks = [line for line in lines if line.startswith("import")]
    assert not hooks, (
        "edgegan is installed through an import hook mypy and pyright cannot follow: reinstall with "
        "`pip install -e . --config-settings editable_mode=strict` (scripts/setup.sh)"
    )
    (tree,) = lines
    return Path(tree)


def test_editable_install_is_a_tree_type_checkers_read():
    """A path on sys.path (no import hook) holding edgegan/ with every module of the checkout linked under its
    import name: what mypy and pyright resolve `edgegan.*` through, to this checkout's files."""
    tree = _editable_tree() / "edgegan"
    missing = []
    for name, folder in ROOTS.items():
        sub = tree.joinpath(*name.split(".")[1:])
        for source in (REPO / folder).rglob("*.py"):
            rel = source.relative_to(REPO / folder)
            if "__pycache__" in rel.parts:
                continue
            linked = sub / rel
            if not linked.exists() or linked.resolve() != source.resolve():
                missing.append(f"{name}: {rel}")
    assert not missing, f"run scripts/setup.sh again (a strict editable install links the files it saw): {missing}"
