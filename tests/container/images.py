"""The images of the container test, all made on this machine (no registry can be reached):

- the base: Debian bookworm from `debootstrap --variant=minbase` with the mirror apt uses here,
  imported with `docker import`, plus the host's CA bundle (the network here re-signs TLS, so
  apt, pip and npm inside builds trust only that). Tagged by a content key (mirror, suite,
  CA bundle, this recipe): made once per machine, reused by every later run;
- stand-ins for the official images the production files name: `python:3.11-slim` (Debian's
  Python 3.11), `node:20` (the host's Node.js, which Debian's 18 is too old for) and one image
  with Debian's PostgreSQL 15, RabbitMQ 3.10, Redis 7 and nginx 1.22 for the infrastructure,
  configured like the official ones by the scripts in standins/;
- devicelab's own image, from the production Dockerfile with those stand-ins as its base
  images (build arguments), built by Compose with BuildKit as `up --build` would (the
  stand-ins are built by the classic builder: Debian's docker 20.10 has no buildx for
  `docker build` to use BuildKit).

Each is built only when its tag is missing, so the second run builds only what changed."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.container.engine import BUILD_ENV, CommandFailed, compose_binary, run

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
RECIPE_VERSION = "2"  # bump to rebuild every base
# what each stand-in's Dockerfile copies from standins/, besides itself
STANDIN_FILES = {"infra": ("standin-entrypoint",)}
BASE_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 900
# where the host's CA bundle goes in the base (a path of its own: Debian's ca-certificates,
# when a package pulls it in, rewrites /etc/ssl/certs), and how the tools find it
CA_PATH = "/etc/ssl/host-ca-bundle.crt"
CA_ENV = {
    "SSL_CERT_FILE": CA_PATH,
    "PIP_CERT": CA_PATH,
    "REQUESTS_CA_BUNDLE": CA_PATH,
    "NODE_EXTRA_CA_CERTS": CA_PATH,
    "npm_config_cafile": CA_PATH,
}


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 sources or sources.list)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        text = path.read_text()
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.M
        ):
            if "security" not in uri:
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], 30, check=False, quiet=True).returncode == 0


def _forget_other_tags(name: str) -> None:
    """Removes the older keys of an image made here (a machine keeps one of each)."""
    repository, _, keep = name.partition(":")
    listed = run(["docker", "images", repository, "--format", "{{.Tag}}"], 30).stdout.split()
    stale = [f"{repository}:{tag}" for tag in listed if tag != keep]
    if stale:
        run(["docker", "rmi", *stale], 120, check=False, quiet=True)


def base_image() -> str:
    """Debian bookworm minbase with the host's CA bundle, imported once per content key."""
    mirror = debian_mirror()
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    name = f"devicelab-test-base:{_digest(RECIPE_VERSION, SUITE, mirror, ca)}"
    if image_exists(name):
        return name
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise CommandFailed("debootstrap is not installed (make docker installs it)")
    with tempfile.TemporaryDirectory(prefix="devicelab-base-") as scratch:
        root = Path(scratch) / "root"
        run(
            [debootstrap, "--variant=minbase", SUITE, str(root), mirror],
            BASE_TIMEOUT_S,
        )
        if ca:
            (root / CA_PATH.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / CA_PATH.lstrip("/")).write_bytes(ca)
        # the image's apt lists and caches are fetched again by every build that installs
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        changes = [f"ENV {key}={value}" for key, value in CA_ENV.items()]
        changes += ["ENV LANG=C.UTF-8", 'CMD ["bash"]']
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            command = ["docker", "import"]
            for change in changes:
                command += ["--change", change]
            imported = subprocess.run(
                [*command, "-", name], stdin=tar.stdout, capture_output=True, timeout=300
            )
        finally:
            tar.stdout.close()
            tar.wait(timeout=60)
        if imported.returncode != 0:
            raise CommandFailed(f"docker import failed: {imported.stderr.decode()[-2000:]}")
    _forget_other_tags(name)
    return name


def _build(tag: str, context: Path, dockerfile: Path, args: dict[str, str]) -> None:
    command = ["docker", "build", "-q", "-t", tag, "-f", str(dockerfile)]
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    run([*command, str(context)], BUILD_TIMEOUT_S, env=BUILD_ENV)


def standin_image(kind: str, base: str) -> str:
    """devicelab-test-<kind>: standins/Dockerfile.<kind> on the base, once per content key."""
    dockerfile = STANDINS / f"Dockerfile.{kind}"
    sources = [dockerfile, *(STANDINS / name for name in STANDIN_FILES.get(kind, ()))]
    key = _digest(base, *(p.name + p.read_text() for p in sources))
    if kind == "node":
        node = shutil.which("node")
        if node is None:
            raise CommandFailed("the Node.js stand-in copies the host's node: install Node 20")
        version = run([node, "--version"], 30).stdout.strip()
        key = _digest(key, version)
    name = f"devicelab-test-{kind}:{key}"
    if image_exists(name):
        return name
    with tempfile.TemporaryDirectory(prefix=f"devicelab-{kind}-") as scratch:
        context = Path(scratch)
        for source in sources:
            shutil.copy(source, context / source.name)
        if kind == "node":
            node_path = Path(os.path.realpath(node))
            shutil.copy(node_path, context / "node")
            npm = node_path.parent.parent / "lib" / "node_modules" / "npm"
            shutil.copytree(npm, context / "npm", symlinks=True)
        _build(name, context, context / dockerfile.name, {"BASE": base})
    _forget_other_tags(name)
    return name


def devicelab_image(tag: str, python_image: str, node_image: str) -> str:
    """The production Dockerfile, built the way `docker compose up --build` builds it: Compose
    with BuildKit (the daemon's own), which a `# syntax=` line would send to a registry. Only
    what changed is built again (BuildKit's cache stays in the daemon between runs)."""
    command = [compose_binary(), "--env-file", str(REPO / "deploy" / "env.example")]
    command += ["-f", str(REPO / "deploy" / "compose.yaml"), "build", "--quiet"]
    command += ["--build-arg", f"PYTHON_IMAGE={python_image}"]
    command += ["--build-arg", f"NODE_IMAGE={node_image}", "api"]
    run(command, BUILD_TIMEOUT_S, env={"IMAGE": tag})
    return tag
