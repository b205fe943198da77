"""Maps operator/ and planner/ into the import package `execplanner` (see pyproject.toml).

Everything else lives in pyproject.toml; this file only lists the packages, because the
folder names differ from the import names and setuptools cannot discover them itself.
"""
from setuptools import find_packages, setup

ROOTS = {"execplanner": "src/execplanner", "execplanner.operator": "operator", "execplanner.planner": "planner"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS, package_data={"execplanner": ["py.typed"], "execplanner.planner": ["web/*"]})
