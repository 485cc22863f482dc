"""Turn a rendered overlay into what `podman kube play` can run on one machine.

Reads the `kubectl kustomize` output on stdin; writes the ConfigMap and the API Deployment
(one replica) to stdout and a Secret to SECRET_OUT. Changed for a single host without a cluster, and
nothing else: host networking on PORT, the locally built IMAGE, and the addresses of this
machine's PostgreSQL, Redis, SMTP server and S3 server. Probes, security context, volumes,
envFrom and the mount paths are kept as rendered.

Usage: python kube_play_manifest.py IMAGE PORT DATABASE_URL REDIS_PREFIX SMTP_PORT \
           S3_ENDPOINT S3_BUCKET SIGNING_KEY_FILE SECRET_OUT < rendered.yaml > play.yaml
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import yaml


def main(argv: list[str]) -> None:
    image, port, database_url, redis_prefix, smtp_port, s3_endpoint, bucket, key_file = argv[:8]
    secret_out = argv[8]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    config: dict[str, Any] = by_name[("ConfigMap", "atrium-config")]
    api: dict[str, Any] = by_name[("Deployment", "atrium-api")]

    config["data"].update(
        {
            "ATRIUM_MAIL__SMTP_HOST": "127.0.0.1",
            "ATRIUM_MAIL__SMTP_PORT": smtp_port,
            "ATRIUM_MAIL__SMTP_SECURITY": "none",
            "ATRIUM_STORAGE__S3_ENDPOINT_URL": s3_endpoint,
            "ATRIUM_STORAGE__S3_BUCKET": bucket,
            "ATRIUM_STORAGE__S3_REGION": "us-east-1",
            "ATRIUM_STORAGE__S3_PATH_STYLE": "true",
            "ATRIUM_REDIS__KEY_PREFIX": redis_prefix,
            "ATRIUM_HTTP__TRUSTED_PROXIES": '["127.0.0.1/32"]',
        }
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "atrium-secrets", "namespace": config["metadata"]["namespace"]},
        "type": "Opaque",
        "data": {
            "ATRIUM_DATABASE__URL": database_url,
            "ATRIUM_REDIS__URL": "redis://127.0.0.1:6379/0",
            "ATRIUM_STORAGE__S3_ACCESS_KEY_ID": "testing",
            "ATRIUM_STORAGE__S3_SECRET_ACCESS_KEY": "testing",
            "ATRIUM_METRICS__TOKEN": "kube-play-metrics-token",
            "ATRIUM_API_KEYS__HMAC_SECRET": "kube-play-api-key-secret",
            "signing_key": Path(key_file).read_text(),
        },
    }
    secret["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in secret["data"].items()}

    api["spec"]["replicas"] = 1
    pod = api["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod.pop("topologySpreadConstraints", None)
    container = pod["containers"][0]
    container["image"] = image
    container["imagePullPolicy"] = "Never"
    args = container["args"]
    args[args.index("--port") + 1] = port
    # With host networking podman refuses port mappings; the process binds PORT itself.
    container.pop("ports", None)
    container["env"] = [
        {"name": "HEALTHCHECK_URL", "value": f"http://127.0.0.1:{port}/health/live"}
    ]
    # podman 4.3 (Debian 12) crashes on `secret` volumes (a nil dereference in
    # VolumeFromSecret); the same key file is mounted from the host path instead.
    for volume in pod["volumes"]:
        if "secret" in volume:
            volume.pop("secret")
            volume["hostPath"] = {"path": str(Path(key_file).parent), "type": "Directory"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        container[probe]["httpGet"]["port"] = int(port)

    # The Secret becomes a podman secret of the same name before the play: podman 4.3
    # reads an envFrom secretRef from a podman secret holding the JSON object of the
    # Secret's `data` (key -> base64 value).
    Path(secret_out).write_text(json.dumps(secret["data"]))
    yaml.safe_dump_all([config, api], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
