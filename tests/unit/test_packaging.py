"""operator/ and planner/ are importable only as execplanner.operator and
execplanner.planner, after `pip install .` and after `pip install -e .`, and
`import operator` still means the standard library's module."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import json, operator, sys
import execplanner, execplanner.operator, execplanner.planner, execplanner.engine
try:
    import operator.plans  # our module, reached through the top-level name: must fail
    leaked = True
except ImportError:
    leaked = False
print(json.dumps({
    "stdlib_operator": operator.__file__,
    "has_itemgetter": hasattr(operator, "itemgetter"),
    "execplanner.operator": execplanner.operator.__file__,
    "execplanner.planner": execplanner.planner.__file__,
    "leaked": leaked,
    "top_level_planner": __import__("importlib.util").util.find_spec("planner") is not None,
    "web_assets": sorted(p.name for p in __import__("importlib.resources").resources.files(
        "execplanner.planner").joinpath("web").iterdir()),
}))
"""


@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-editable"])
def test_install_maps_folders_into_execplanner(tmp_path: Path, editable: bool):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # The dependencies come from the test run's own environment (a .pth line adds its
    # site-packages), so only execplanner itself is installed into the new venv.
    site = Path(subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if editable:
        target = ["-e", str(ROOT)]
    else:
        # setuptools builds in the source tree (build/): build a copy, not the checkout.
        copy = tmp_path / "src"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                  ".hypothesis", ".pytest_cache"))
        target = [str(copy)]
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", *target],
                   check=True, capture_output=True, text=True, cwd=tmp_path)

    import json
    for cwd in (tmp_path, ROOT):  # also from the checkout, where ./operator is a folder
        out = json.loads(subprocess.check_output([py, "-c", CHECK], text=True, cwd=cwd))
        stdlib = sysconfig.get_paths()["stdlib"]
        assert out["stdlib_operator"].startswith(stdlib), out
        assert out["has_itemgetter"]
        assert not out["leaked"], "execplanner's operator code is importable as top-level operator"
        assert not out["top_level_planner"] or cwd == ROOT, "planner must not be a top-level package"
        # The web page's assets ship in the package (setup.py's package_data).
        assert {"index.html", "app.js", "style.css", "favicon.svg"} <= set(out["web_assets"]), out["web_assets"]
        where = Path(out["execplanner.operator"]).resolve()
        if editable:
            assert where == (ROOT / "operator" / "__init__.py").resolve()
        else:
            assert site.resolve() in where.parents, f"{where} is not inside the installed site-packages"
            assert Path(out["execplanner.planner"]).resolve().parent == site.resolve() / "execplanner" / "planner"
