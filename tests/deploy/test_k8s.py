"""Structure of the Kubernetes manifests of the ground segment (deploy/k8s): every resource
the kustomization names exists and parses; stations and workers have probes and resources;
their settings are settings fields; the workers scale on the queue; nothing is reachable
unless a NetworkPolicy allows it."""

from pathlib import Path

import yaml

from ground.settings import GroundSettings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())


def documents() -> list[dict]:
    docs = []
    for name in KUSTOMIZATION["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def kind(k: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == k}


def test_every_resource_exists_and_has_a_kind():
    for name in KUSTOMIZATION["resources"]:
        assert (K8S / name).is_file(), name
    assert all("kind" in d and "metadata" in d for d in documents())
    assert KUSTOMIZATION["namespace"] == "targetfuse"


def test_stations_and_workers_are_probed_limited_and_keyed():
    deployments = kind("Deployment")
    assert {"station", "worker"} <= set(deployments)
    for name in ("station", "worker"):
        spec = deployments[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["readinessProbe"] and container["livenessProbe"], name
        assert container["resources"]["limits"]["memory"], name
        assert spec["securityContext"]["runAsNonRoot"], name
        assert {"name": "keys", "mountPath": "/keys", "readOnly": True} in \
            container["volumeMounts"]
    assert deployments["worker"]["spec"]["template"]["spec"]["containers"][0]["command"] == \
        ["targetfuse-ground-worker"]
    assert deployments["station"]["spec"]["template"]["spec"]["containers"][0][
        "readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_segments_settings_are_ground_settings_fields():
    (config,) = KUSTOMIZATION["configMapGenerator"]
    names = [lit.split("=", 1)[0] for lit in config["literals"]]
    for name in ("station", "worker"):
        env = kind("Deployment")[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        names += [e["name"] for e in env]
    fields = [n[len("TARGETFUSE_GROUND_"):].lower() for n in names]
    assert all(n.startswith("TARGETFUSE_GROUND_") for n in names)
    assert set(fields) <= set(GroundSettings.model_fields)
    assert {"database_url", "nats_url", "api_keys_file", "link_keys_file", "tls_cert_file",
            "tls_key_file"} <= set(fields)
    assert "link_tls" not in fields  # the link runs TLS, with the keys step's certificate
    secret = KUSTOMIZATION["secretGenerator"][0]
    assert {f.split("=")[0] for f in secret["files"]} == {
        "api-keys", "link-keys", "nats-station-password", "nats-worker-password",
        "link-ground.pem", "link-ground.key"}


def test_workers_scale_on_the_queue_backlog():
    (scaler,) = kind("ScaledObject").values()
    assert scaler["spec"]["scaleTargetRef"]["name"] == "worker"
    (trigger,) = scaler["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == GroundSettings.model_fields["nats_stream"].default
    assert trigger["metadata"]["consumer"] == "counters"  # ground.tile_queue's durable
    assert scaler["spec"]["maxReplicaCount"] > scaler["spec"]["minReplicaCount"] >= 1


def test_nothing_is_reachable_unless_a_policy_allows_it():
    policies = kind("NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and \
        "ingress" not in deny
    for store in ("postgres-from-segment", "nats-from-segment"):
        sources = [f["podSelector"]["matchLabels"]["app"]
                   for rule in policies[store]["spec"]["ingress"] for f in rule["from"]
                   if "podSelector" in f]
        assert set(sources) == {"station", "worker"}, store
    stateful = kind("StatefulSet")
    assert {"postgres", "nats"} <= set(stateful)
    assert "-js" in stateful["nats"]["spec"]["template"]["spec"]["containers"][0]["args"]
