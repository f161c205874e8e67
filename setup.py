"""Lists doorwatch's packages: three top-level folders mapped onto one import package."""

from setuptools import find_packages, setup

# pyproject.toml maps the folders (package-dir); setuptools cannot discover subpackages
# across such a mapping by itself, so they are listed here from the tree.
FOLDERS = {"doorwatch": "daemon", "doorwatch.adapters": "adapters", "doorwatch.rules": "rules"}

packages = []
for name, folder in FOLDERS.items():
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(packages=packages)
