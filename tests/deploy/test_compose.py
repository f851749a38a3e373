"""docker-compose.yml: parses, pins its images, and references only files that exist.

Docker cannot run on CI, so these checks stand in for `docker compose config`: everything
compose would resolve on the host (build contexts, Dockerfiles, bind mounts, the files the
containers are told to read) is resolved here and must exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

ALWAYS_ON = {"fake-provider", "demo-app", "collector", "processor", "jaeger", "tempo", "prometheus", "grafana"}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) < 2:
                raise ValueError(f"anonymous volume {entry!r}: give it a name or a host path")
            out.append((parts[0], parts[1]))
        else:
            out.append((str(entry.get("source", "")), str(entry["target"])))
    return out


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def bind_mount_errors(compose: dict[str, Any], base: Path) -> list[str]:
    errors = []
    named = set((compose.get("volumes") or {}).keys())
    for name, svc in compose["services"].items():
        for source, _target in _mounts(svc):
            if _is_bind(source):
                if not (base / source).exists():
                    errors.append(f"{name}: bind mount source {source} does not exist")
            elif source not in named:
                errors.append(f"{name}: named volume {source!r} is not declared under top-level volumes")
    return errors


def _container_path_to_host(svc: dict[str, Any], container_path: str) -> Path | None:
    """Map a path inside a container back to the repository file a bind mount puts there."""
    target = PurePosixPath(container_path)
    for source, mount_target in _mounts(svc):
        mt = PurePosixPath(mount_target)
        if _is_bind(source) and (target == mt or mt in target.parents):
            return ROOT / source / target.relative_to(mt)
    return None


def test_compose_file_parses_with_services(compose):
    assert isinstance(compose["services"], dict) and compose["services"]


def test_default_stack_has_every_component(compose):
    always_on = {name for name, svc in compose["services"].items() if not svc.get("profiles")}
    assert always_on >= ALWAYS_ON


def test_scale_profile_runs_two_processors_behind_the_loadbalancing_collector(compose):
    services = compose["services"]
    scale = {name for name, svc in services.items() if "scale" in svc.get("profiles", [])}
    processors = {n for n in scale if services[n].get("command", [None])[:2] == ["gensight", "serve"]}
    assert len(processors) == 2
    lb = services["collector-lb"]
    assert any(target.endswith("/config.yaml") and source.endswith("collector-config/loadbalancing.yaml")
               for source, target in _mounts(lb))
    for name in processors:
        assert name in lb["depends_on"]
        assert f"{name}:4317" in lb["environment"].values()


def test_every_image_tag_is_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        if "build" in svc:
            continue  # our own image, built from this repository
        assert image, f"{name} has neither image nor build"
        assert re.search(r":[^/:]+$", image), f"{name}: image {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: image {image} is not pinned"


def test_build_context_and_dockerfile_exist(compose):
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build is None:
            continue
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert context.is_dir(), f"{name}: build context {context} missing"
        assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} missing"


def test_dockerfile_copies_only_existing_paths_and_installs_processor_extra():
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    assert re.search(r"pip install '\.\[[^\]]*processor", text)
    base = next(ln for ln in text.splitlines() if ln.startswith("FROM "))
    assert re.fullmatch(r"FROM [\w./-]+:\d[\w.-]*", base), f"base image not pinned: {base}"


def test_every_bind_mount_source_exists(compose):
    assert bind_mount_errors(compose, ROOT) == []


def test_missing_bind_mount_source_is_reported(tmp_path):
    broken = {"services": {"x": {"image": "a:1", "volumes": ["./nope.yaml:/etc/x.yaml:ro", "data:/data"]}}}
    errors = bind_mount_errors(broken, tmp_path)
    assert any("nope.yaml does not exist" in e for e in errors)
    assert any("'data' is not declared" in e for e in errors)


def test_depends_on_names_defined_services(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on undefined service {dep}"
            # a default service must not wait on one that only runs in a profile
            if not svc.get("profiles"):
                assert not services[dep].get("profiles"), f"{name} depends on profile-only {dep}"


def test_config_files_named_in_commands_are_mounted_from_the_repo(compose):
    """Every --config/-config.file/--config.file path in a command resolves to a repo file."""
    for name, svc in compose["services"].items():
        command = svc.get("command", [])
        for arg in command if isinstance(command, list) else command.split():
            m = re.match(r"-{1,2}config(?:\.file)?=(.+)", arg)
            if not m:
                continue
            host = _container_path_to_host(svc, m.group(1))
            assert host is not None, f"{name}: {m.group(1)} is not bind-mounted"
            assert host.is_file(), f"{name}: {m.group(1)} maps to missing {host}"


def test_grafana_home_dashboard_is_a_provisioned_file(compose):
    grafana = compose["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    host = _container_path_to_host(grafana, home)
    assert host is not None and host.is_file()


def test_collectors_mount_only_configs_that_exist(compose):
    for name in ("collector", "collector-lb"):
        sources = [s for s, t in _mounts(compose["services"][name]) if t == "/etc/otelcol-contrib/config.yaml"]
        assert len(sources) == 1 and (ROOT / sources[0]).is_file()


def test_apps_export_to_a_collector_in_the_stack(compose):
    services = compose["services"]
    for name, svc in services.items():
        env = svc.get("environment") or {}
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") if isinstance(env, dict) else None
        if endpoint is None:
            continue
        host = re.match(r"https?://([^:/]+)", endpoint)
        assert host and host.group(1) in services, f"{name} exports to unknown host {endpoint}"
        if not svc.get("profiles"):
            assert not services[host.group(1)].get("profiles"), f"{name} exports to a profile-only service"


def test_prometheus_enables_the_remote_write_receiver(compose):
    assert "--web.enable-remote-write-receiver" in compose["services"]["prometheus"]["command"]


def _gensight_commands() -> list[list[str]]:
    """Distinct commands of our own image that run a Gensight entry point."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    out: list[list[str]] = []
    for svc in compose["services"].values():
        cmd = svc.get("command")
        ours = isinstance(cmd, list) and (cmd[:1] == ["gensight"] or cmd[:3] == ["python", "-m", "gensight.fakes"])
        if ours and cmd not in out:
            out.append(cmd)
    return out


def test_compose_runs_the_processor_and_the_fake_provider():
    heads = {" ".join(cmd[:2]) for cmd in _gensight_commands()}
    assert heads == {"gensight serve", "python -m"}


@pytest.mark.parametrize("cmd", _gensight_commands(), ids=lambda c: " ".join(c[:3]))
def test_gensight_command_in_compose_uses_existing_flags(cmd):
    """Every --flag the compose file passes to a Gensight command is one that command accepts."""
    argv = [sys.executable, "-m", "gensight", cmd[1]] if cmd[0] == "gensight" else [sys.executable, *cmd[1:3]]
    proc = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd[:3])} --help failed: {proc.stderr[-500:]}"
    for flag in [arg.split("=", 1)[0] for arg in cmd if arg.startswith("--")]:
        assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", proc.stdout), f"no flag {flag} in --help"


def test_python_scripts_run_by_compose_exist(compose):
    """A script is either bind-mounted into the image's working directory or baked in (examples/)."""
    workdir = "/opt/gensight"
    assert f"WORKDIR {workdir}" in (ROOT / "Dockerfile").read_text()
    scripts = 0
    for name, svc in compose["services"].items():
        for arg in svc.get("command") or []:
            if not (isinstance(arg, str) and arg.endswith(".py")):
                continue
            scripts += 1
            host = _container_path_to_host(svc, f"{workdir}/{arg}")
            if host is None:
                assert arg.startswith("examples/"), f"{name}: {arg} is neither mounted nor in the image"
                host = ROOT / arg
            assert host.is_file(), f"{name} runs missing {arg}"
    assert scripts
