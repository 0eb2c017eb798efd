"""The deployment files (Dockerfile, compose.yaml, .env.example, deploy/entrypoint.sh) read as data, for
tests/test_deployment_*.py."""

import json
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
ENV_EXAMPLE = ROOT / ".env.example"
# The values a deployment must choose itself; the tests fill them in as an operator would.
FILLED_IN = {"DJANGO_SECRET_KEY": "a-test-secret-key", "POSTGRES_PASSWORD": "a-test-password"}

_ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
_INTERPOLATION = re.compile(r"\$\$?\{?([A-Z][A-Z0-9_]*)")
_CODE_READS = (
    re.compile(r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]*)\""),
    re.compile(r"\bos\.environ(?:\.get|\.setdefault)?[(\[]\s*\"([A-Z][A-Z0-9_]*)\""),
)
CODE = ["catalog", "ingest", "search", "revimg", "gunicorn.conf.py", "manage.py"]


def env_example_lines():
    """{name: value} of .env.example's variables, and the names of those left commented out."""
    values, commented = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match:
            values[match[1]] = match[2]
            if line.startswith("#"):
                commented.add(match[1])
    return values, commented


def env_file_from_example(overrides=FILLED_IN):
    """.env as an operator makes it: .env.example with the required values filled in."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match and not line.startswith("#") and match[1] in overrides:
            line = f"{match[1]}={overrides[match[1]]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def compose_project(folder, env_text):
    """A folder laid out like a checkout for compose: compose.yaml and the build context, and .env."""
    for name in ("compose.yaml", "Dockerfile"):
        (folder / name).symlink_to(ROOT / name)
    (folder / ".env").write_text(env_text)
    return folder


def compose(program, folder, *args):
    return subprocess.run(
        [program, "--file", str(folder / "compose.yaml"), "--project-directory", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_config(program, folder):
    """compose.yaml as compose resolves it (interpolated, anchors merged), as a dict."""
    result = compose(program, folder, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _compose_text():
    return (ROOT / "compose.yaml").read_text()


def compose_names():
    """Every variable compose.yaml names: keys of its environment sections and ${...} / $$... uses."""
    names = set(_INTERPOLATION.findall(_compose_text()))
    for service in yaml.safe_load(_compose_text())["services"].values():
        names.update(service.get("environment") or {})
    return names | set(compose_app_environment())


def compose_app_environment():
    """What compose.yaml sets for every app container (its x-app environment), before interpolation."""
    return yaml.safe_load(_compose_text())["x-app"]["environment"]


def compose_demands():
    """The variables compose refuses to run without (${NAME:?message})."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", _compose_text()))


def names_read_by_code():
    """The variables the app's code reads by name (the env_* helpers and os.environ)."""
    files = [path for part in CODE for path in _python_files(ROOT / part)]
    text = "\n".join(path.read_text() for path in files)
    return {name for pattern in _CODE_READS for name in pattern.findall(text)}


def _python_files(path):
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def entrypoint_commands():
    """The command names deploy/entrypoint.sh handles itself."""
    return set(re.findall(r"^([a-z]+)\)$", ENTRYPOINT.read_text(), re.MULTILINE))


def dockerfile_healthcheck():
    """The HEALTHCHECK's command, as the JSON list written in the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.MULTILINE)
    return json.loads(match[1])


def exporter_requirements():
    """The requirements.txt lines the Dockerfile leaves out of the serving environment, and its pattern."""
    pattern = re.search(r"grep -vE '([^']+)' requirements.txt", (ROOT / "Dockerfile").read_text())[1]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line for line in lines if re.match(pattern, line)]
