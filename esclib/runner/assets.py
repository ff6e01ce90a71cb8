"""The book's JavaScript served locally, so the HTML reads offline (Jupyter Book loads MathJax, require.js and the widget manager from CDNs by default).

MathJax 3, require.js and the Jupyter widget manager (which draws the saved tqdm progress bars) load from CDNs by
default. ``esc book`` fetches pinned versions once with ``npm pack`` (the npm registry; npm checks each tarball's
integrity) into ``.esclib-cache/book-assets/`` under the repository root, and ``_config.yml`` serves that folder
as a Sphinx static path (``mathjax_path`` and ``nb_ipywidgets_js`` point into it). It is not the book's
``_static/``, whose every ``.js`` jupyter-book would add to every page. The files are not committed (about 12 MB);
a machine that built the book once builds it offline afterwards.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

#: where the assets live, relative to the repository root (``html_static_path`` in ``_config.yml``)
ASSETS_DIR = Path(".esclib-cache") / "book-assets"

#: npm package -> {pattern of files inside the package (fnmatch): destination folder inside ASSETS_DIR}
NPM_ASSETS: dict[str, dict[str, str]] = {
    "mathjax@3.2.2": {
        "es5/tex-chtml.js": "mathjax",
        "es5/input/tex/extensions/*": "mathjax/input/tex/extensions",
        "es5/output/chtml/fonts/woff-v2/*": "mathjax/output/chtml/fonts/woff-v2",
        "es5/ui/*": "mathjax/ui",
        "es5/a11y/*": "mathjax/a11y",
        "es5/sre/*": "mathjax/sre",
        "es5/adaptors/*": "mathjax/adaptors",
        "LICENSE": "mathjax",
    },
    "requirejs@2.3.8": {"require.js": "requirejs", "LICENSE": "requirejs"},
    "@jupyter-widgets/html-manager@1.0.15": {
        "dist/embed-amd.js": "html-manager",
        "dist/*.woff*": "html-manager",
        "dist/*.ttf": "html-manager",
        "dist/*.eot": "html-manager",
        "dist/*.svg": "html-manager",
    },
}

#: files whose presence means the assets are in place (relative to ASSETS_DIR)
REQUIRED: tuple[str, ...] = ("mathjax/tex-chtml.js", "requirejs/require.js", "html-manager/embed-amd.js")


def assets_ready(root: Path) -> bool:
    """Whether every required asset is in ``<root>/.esclib-cache/book-assets``."""
    return all((root / ASSETS_DIR / name).is_file() for name in REQUIRED)


def _extract(tarball: Path, patterns: dict[str, str], dest: Path) -> int:
    count = 0
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            inner = member.name.removeprefix("package/")
            if not member.isfile():
                continue
            for pattern, folder in patterns.items():
                if fnmatch.fnmatch(inner, pattern):
                    target = dest / folder / Path(inner).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                    count += 1
                    break
    return count


def fetch_assets(root: Path, *, force: bool = False) -> Path:
    """Fetch the pinned npm packages of :data:`NPM_ASSETS` and copy the files the book needs into
    ``<root>/.esclib-cache/book-assets`` (skipped when present unless ``force``). Returns that folder."""
    dest = root / ASSETS_DIR
    if assets_ready(root) and not force:
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is needed once to fetch the book's offline JavaScript ({', '.join(NPM_ASSETS)}) into {dest}; "
            "install Node.js / npm (e.g. apt-get install npm) and run `esc book` again")
    with tempfile.TemporaryDirectory(prefix="esc-assets-") as tmp:
        staging = Path(tmp) / "assets"
        for package, patterns in NPM_ASSETS.items():
            done = subprocess.run([npm, "pack", package, "--json", "--pack-destination", tmp],
                                  capture_output=True, text=True, cwd=tmp)
            if done.returncode != 0:
                raise RuntimeError(f"npm pack {package} failed:\n{done.stderr.strip()}")
            tarball = Path(tmp) / json.loads(done.stdout)[0]["filename"]
            if _extract(tarball, patterns, staging) == 0:
                raise RuntimeError(f"{package} has none of the files {list(patterns)}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), dest)
    return dest


_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_URL = r'="((?:https?:)?//[^"]+)"'


def remote_assets(html_dir: Path) -> dict[str, list[str]]:
    """Scripts and stylesheets the built pages still load from other hosts: {page: [urls]} (empty when the book
    reads offline). Hyperlinks and ``<link rel="canonical">`` are not assets and are ignored."""
    found = {}
    for page in sorted(html_dir.rglob("*.html")):
        urls = set()
        for tag in _TAG.finditer(page.read_text(errors="replace")):
            text, is_script = tag.group(0), tag.group(1).lower() == "script"
            url = re.search(("src" if is_script else "href") + _URL, text)
            if url and (is_script or re.search(r'rel="(?:stylesheet|preload|modulepreload)"', text)):
                urls.add(url.group(1))
        if urls:
            found[str(page.relative_to(html_dir))] = sorted(urls)
    return found
