"""What the schemas cannot tell about the deployment files: run by deploy/check.sh.

    check.py kustomize DIR      builds DIR's kustomization without kubectl (a fallback:
                                resources, configMapGenerator files, images) to stdout
    check.py names              every CARROT_* name in the deployment files is one the
                                binary reads
    check.py app APP MIGRATE MONITORING COMPOSE POSTGRES CNPG
                                the built manifests and `docker compose config`'s JSON:
                                Pod Security "restricted", images, secrets, the migration
                                step, the connection budgets (on one PostgreSQL and on the
                                CloudNativePG Cluster), the Ingress, the NetworkPolicies,
                                the ServiceMonitor and the alert rules
    check.py without-crds FILE  FILE's objects but custom resources (for the validator)

Each check prints one line when it passes; the first failure exits 1 with what is wrong.
"""

import json
import math
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent

# PostgreSQL keeps these for superusers (superuser_reserved_connections' default).
RESERVED = 3
# Connections kept for `carrot migrate`, operators' `carrot replay` / `saga recover`, psql.
HEADROOM = 10
# The binary's default CARROT_DB_POOL_SIZE, for a process that does not set it.
DEFAULT_POOL = 64
# What the Ingress may route to the world (everything else stays inside the cluster).
PUBLIC_PATHS = {"/auth", "/listings", "/requests", "/payments", "/mypage", "/notifications"}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# --- a kustomize build without kubectl -------------------------------------------------


def kustomize(directory):
    """The objects of a kustomization: its resources (files and kustomization folders),
    its generated ConfigMaps and its `images:` applied. Enough for these files only."""
    directory = pathlib.Path(directory)
    path = directory / "kustomization.yaml"
    if not path.is_file():
        fail(f"{directory}: no kustomization.yaml")
    k = yaml.safe_load(path.read_text())
    objects = []
    for resource in k.get("resources", []):
        target = (directory / resource).resolve()
        if target.is_dir():
            objects += kustomize(target)
        elif target.is_file():
            objects += load_all(target)
        else:
            fail(f"{path}: resource {resource} does not exist")
    for generator in k.get("configMapGenerator", []):
        data = {}
        for entry in generator.get("files", []):
            key, _, name = entry.rpartition("=")
            source = directory / name
            if not source.is_file():
                fail(f"{path}: configMapGenerator file {name} does not exist")
            data[key or source.name] = source.read_text()
        labels = generator.get("options", {}).get("labels", {})
        metadata = {"name": generator["name"], "labels": labels} if labels else {"name": generator["name"]}
        if "namespace" in generator:
            metadata["namespace"] = generator["namespace"]
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for image in k.get("images", []):
        for _, container in containers(objects):
            name, tag = split_image(container["image"])
            if name == image["name"]:
                new_name = image.get("newName", name)
                container["image"] = f"{new_name}:{image['newTag']}" if "newTag" in image else new_name
    return objects


# --- CARROT_* names --------------------------------------------------------------------


def known_names():
    """The names the binary reads: clap's `env = "CARROT_..."` in config/, and the two
    that telemetry.rs reads before the command line is parsed (CARROT_LOG, _FORMAT)."""
    names = set()
    for config in (ROOT / "crates/api/src/config").glob("*.rs"):
        names |= set(re.findall(r'env\s*=\s*"(CARROT_[A-Z0-9_]+)"', config.read_text()))
    for source in (ROOT / "crates/api/src").rglob("*.rs"):
        names |= set(
            re.findall(
                r'(?:env::var(?:_os)?|from_env|try_from_env)\(\s*"(CARROT_[A-Z0-9_]+)"',
                source.read_text(),
            )
        )
    if len(names) < 10:
        fail(f"found only {len(names)} CARROT_* names in crates/api/src: did config/ move?")
    return names


def check_names():
    known = known_names()
    files = [ROOT / "docker-compose.yml", ROOT / "Dockerfile"]
    for folder in ("deploy/k8s", "deploy/nginx"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file())
    unknown = []
    used = set()
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(r"\bCARROT_[A-Z0-9][A-Z0-9_]*", line):
                used.add(name)
                if name not in known:
                    unknown.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    if unknown:
        fail("names the binary does not read (crates/api/src/config/):\n  " + "\n  ".join(unknown))
    print(f"CARROT_* names: the {len(used)} used in the deployment files are all read by the binary")


# --- manifests -------------------------------------------------------------------------


def split_image(image):
    """(name, tag or digest) of an image reference; the tag is '' when there is none."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, ""


def pod_templates(objects):
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
            yield o, spec["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            yield o, spec


def containers(objects):
    for o, pod in pod_templates(objects):
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            yield o, c


def name_of(o):
    return f"{o['kind']}/{o['metadata']['name']}"


def find(objects, kind, name):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    fail(f"no {kind}/{name} in the build")


def is_carrot(container):
    return split_image(container["image"])[0].rsplit("/", 1)[-1] == "carrot"


def check_restricted(objects):
    """Pod Security Standards, level restricted (what the namespace enforces)."""
    count = 0
    for o, pod in pod_templates(objects):
        where = name_of(o)
        sc = pod.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                fail(f"{where}: {key}")
        for volume in pod.get("volumes", []):
            if "hostPath" in volume:
                fail(f"{where}: a hostPath volume")
        if (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            fail(f"{where}: the pod's securityContext.seccompProfile must be RuntimeDefault")
        if sc.get("runAsUser") == 0:
            fail(f"{where}: runAsUser 0")
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            csc = c.get("securityContext", {})
            if not (csc.get("runAsNonRoot", sc.get("runAsNonRoot"))):
                fail(f"{where}/{c['name']}: runAsNonRoot is not true")
            if csc.get("runAsUser") == 0:
                fail(f"{where}/{c['name']}: runAsUser 0")
            if csc.get("allowPrivilegeEscalation") is not False:
                fail(f"{where}/{c['name']}: allowPrivilegeEscalation must be false")
            if csc.get("privileged"):
                fail(f"{where}/{c['name']}: privileged")
            caps = csc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                fail(f"{where}/{c['name']}: capabilities must drop ALL")
            if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                fail(f"{where}/{c['name']}: adds capabilities")
            if any("hostPort" in p for p in c.get("ports", [])):
                fail(f"{where}/{c['name']}: a hostPort")
            if "seccompProfile" in csc and csc["seccompProfile"].get("type") not in ("RuntimeDefault", "Localhost"):
                fail(f"{where}/{c['name']}: seccompProfile")
        count += 1
    return count


def check_images(app, migrate):
    carrot = set()
    for o, c in containers(app + migrate):
        name, tag = split_image(c["image"])
        if tag in ("", "latest"):
            fail(f"{name_of(o)}: image {c['image']} is not pinned to a version")
        if is_carrot(c):
            carrot.add(c["image"])
        elif not tag.startswith("sha256:") and not re.match(r"^\d+\.\d+", tag):
            fail(f"{name_of(o)}: image {c['image']}: pin a full version (15.18-...) or a digest")
    if len(carrot) != 1:
        fail(f"the carrot containers run different images (set the same `images:` in "
             f"deploy/k8s and deploy/k8s/migrate): {sorted(carrot)}")
    return carrot.pop()


def env_value(objects, container, name):
    """A container's value for `name`: its env, else a ConfigMap of its envFrom."""
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value", "<from a reference>")
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            for o in objects:
                if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"] and name in o.get("data", {}):
                    return o["data"][name]
    return None


def surge(deployment):
    replicas = deployment["spec"].get("replicas", 1)
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    value = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def max_connections(args):
    joined = " ".join(args or [])
    m = re.search(r"max_connections=(\d+)", joined)
    return int(m.group(1)) if m else 100


def check_budget(app, migrate, limit, where):
    """(API pods at most x pool) + (workers x pool) + headroom <= max_connections - reserved,
    `limit` being the max_connections `where` sets."""
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in app if o["kind"] == "HorizontalPodAutoscaler"}
    terms, total = [], 0
    for o, c in containers(app):
        if o["kind"] != "Deployment" or not is_carrot(c) or (c.get("args") or [""])[0] != "serve":
            continue
        if env_value(app, c, "CARROT_MIGRATE") is not None:
            fail(f"{name_of(o)} sets CARROT_MIGRATE: serving processes never migrate (the carrot-migrate Job does)")
        pool = int(env_value(app, c, "CARROT_DB_POOL_SIZE") or DEFAULT_POOL)
        hpa = hpas.get(o["metadata"]["name"])
        most = hpa["spec"]["maxReplicas"] if hpa else o["spec"].get("replicas", 1)
        pods = most + surge(o)
        terms.append(f"{o['metadata']['name']} {pods} x {pool}")
        total += pods * pool
    for _, c in containers(migrate):
        pool = int(env_value(migrate, c, "CARROT_DB_POOL_SIZE") or DEFAULT_POOL)
        if pool > HEADROOM // 2:
            fail(f"the migrate Job's pool ({pool}) takes more than half the headroom ({HEADROOM})")
    total += HEADROOM
    line = f"{' + '.join(terms)} + headroom {HEADROOM} = {total} <= {limit} - {RESERVED}"
    if total > limit - RESERVED:
        fail(f"deploy/k8s connection budget on {where}: {line.replace('<=', '>')}: lower a pool "
             f"size or maxReplicas, or raise max_connections ({where}), and README.md's table")
    print(f"deploy/k8s connection budget on {where}: {line} (pods at most, rollout surge included)")


def statefulset_limit(postgres):
    statefulset = find(postgres, "StatefulSet", "postgres")
    return max_connections(statefulset["spec"]["template"]["spec"]["containers"][0].get("args"))


def check_cnpg(app, migrate, cnpg):
    """The CloudNativePG Cluster: three instances at least, synchronous, logical decoding on,
    the connection budget within its max_connections, reachable by Carrot's pods and its
    own instances only (and the operator's namespace)."""
    clusters = [o for o in cnpg if o["kind"] == "Cluster" and o["apiVersion"].startswith("postgresql.cnpg.io/")]
    if len(clusters) != 1:
        fail("deploy/k8s/cnpg must hold exactly one CloudNativePG Cluster")
    cluster = clusters[0]
    spec, name = cluster["spec"], cluster["metadata"]["name"]
    if spec.get("instances", 1) < 3:
        fail(f"{name_of(cluster)}: fewer than 3 instances (a primary, a synchronous standby, a spare)")
    if spec.get("minSyncReplicas", 0) < 1 and spec.get("postgresql", {}).get("synchronous", {}).get("number", 0) < 1:
        fail(f"{name_of(cluster)}: no synchronous standby: a failover could lose acknowledged commits")
    parameters = spec.get("postgresql", {}).get("parameters", {})
    if parameters.get("wal_level") != "logical":
        fail(f"{name_of(cluster)}: wal_level is not logical (the log's stream needs it)")
    if any(o["kind"] in ("StatefulSet", "Deployment") for o in cnpg):
        fail("deploy/k8s/cnpg holds workloads of its own: the operator runs the instances")
    check_budget(app, migrate, int(parameters.get("max_connections", 100)), f"{name_of(cluster)}")
    instance_labels = {"cnpg.io/cluster": name}
    pods = {n: labels for n, labels in
            ((o["metadata"]["name"], o["spec"]["template"]["metadata"]["labels"]) for o, _ in pod_templates(app + migrate))}
    admitted = set()
    for p in (o for o in cnpg if o["kind"] == "NetworkPolicy"):
        if not selects(p["spec"]["podSelector"], instance_labels):
            continue
        for rule in p["spec"].get("ingress", []):
            for peer in rule.get("from") or [{"anyone": True}]:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    admitted |= {n for n, labels in pods.items() if selects(peer["podSelector"], labels)}
                    if selects(peer["podSelector"], instance_labels):
                        admitted.add("its instances")
                elif "namespaceSelector" in peer:
                    admitted.add("the operator's namespace")
                else:
                    admitted.add("*anyone*")
    want = {"carrot-api", "carrot-worker", "carrot-migrate", "its instances", "the operator's namespace"}
    if admitted != want:
        fail(f"NetworkPolicy: {name} is reachable from {sorted(admitted)}, expected {sorted(want)}")
    print(f"cnpg: {name_of(cluster)} with {spec['instances']} instances, a synchronous standby, "
          f"wal_level logical; reachable from api/worker/migrate, its instances and the operator only")


def check_migration_step(app, migrate):
    jobs = [o for o in migrate if o["kind"] == "Job"]
    if len(jobs) != 1:
        fail("deploy/k8s/migrate must hold exactly one Job")
    job = jobs[0]
    c = job["spec"]["template"]["spec"]["containers"][0]
    if (c.get("args") or [""])[0] != "migrate":
        fail(f"{name_of(job)} does not run `carrot migrate`")
    if not env_value(migrate, c, "CARROT_APP_ROLE"):
        fail(f"{name_of(job)}: CARROT_APP_ROLE is not set (the application role gets no rights)")
    owner_secret = next(
        (e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if e["name"] == "DATABASE_URL" and "valueFrom" in e),
        None,
    )
    if not owner_secret:
        fail(f"{name_of(job)}: DATABASE_URL must come from the owner's Secret")
    if any(o["kind"] == "Job" for o in app):
        fail("the application's kustomization holds a Job: migrations are their own step (migrate/)")
    for o, c in containers(app):
        refs = {s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s}
        refs |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
        if is_carrot(c) and owner_secret in refs:
            fail(f"{name_of(o)} uses the owner's Secret {owner_secret}: serve connects as the application role")
    print(f"migrations: {name_of(job)} runs `carrot migrate` as the owner (Secret {owner_secret}) "
          f"with CARROT_APP_ROLE; no Deployment migrates or holds the owner's credentials")


def check_no_secrets(*builds):
    for objects in builds:
        for o in objects:
            if o["kind"] == "Secret":
                fail(f"{name_of(o)} is in a kustomization: applying it would overwrite the real one "
                     f"with what is committed; create Secrets out of band (README.md)")
    print("secrets: none committed; the manifests only reference them")


def check_namespace(app):
    ns = find(app, "Namespace", "carrot")
    if ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
        fail("the carrot namespace must enforce Pod Security restricted")


def check_ingress(app):
    ingresses = [o for o in app if o["kind"] == "Ingress"]
    if not ingresses:
        fail("no Ingress")
    for ing in ingresses:
        spec = ing["spec"]
        tls_hosts = {h for t in spec.get("tls", []) if t.get("secretName") for h in t.get("hosts", [])}
        paths = set()
        if "defaultBackend" in spec:
            fail(f"{name_of(ing)}: a defaultBackend sends every path to a backend")
        for rule in spec.get("rules", []):
            if rule.get("host") not in tls_hosts:
                fail(f"{name_of(ing)}: host {rule.get('host')} has no tls entry with a secretName")
            for p in rule["http"]["paths"]:
                path = p["path"].rstrip("/") or "/"
                if path not in PUBLIC_PATHS or p["pathType"] not in ("Prefix", "Exact"):
                    fail(f"{name_of(ing)}: routes {p['path']} ({p['pathType']}); public are only {sorted(PUBLIC_PATHS)}")
                paths.add(path)
    print(f"ingress: TLS, and only the public paths ({', '.join(sorted(paths))})")


def selects(selector, labels):
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        value = labels.get(e["key"])
        op = e["operator"]
        if op == "In" and value not in e["values"]:
            return False
        if op == "NotIn" and value in e["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def check_network_policies(app, migrate):
    policies = [o for o in app if o["kind"] == "NetworkPolicy"]
    if not any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress")
               for p in policies):
        fail("no default-deny ingress NetworkPolicy")
    pods = {}
    for o, _ in pod_templates(app + migrate):
        pods[o["metadata"]["name"]] = o["spec"]["template"]["metadata"]["labels"]

    def allowed(target):
        """The pods (by workload name) that may connect to `target`, or '*' for peers
        outside the namespace."""
        who = set()
        for p in policies:
            if not selects(p["spec"]["podSelector"], pods[target]):
                continue
            for rule in p["spec"].get("ingress", []):
                peers = rule.get("from")
                if not peers:
                    who.add("*anyone*")
                for peer in peers or []:
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        who |= {n for n, labels in pods.items() if selects(peer["podSelector"], labels)}
                    else:
                        who.add("*" + json.dumps(peer.get("namespaceSelector", peer), sort_keys=True) + "*")
        return who

    expected = {
        "postgres": {"carrot-api", "carrot-worker", "carrot-migrate"},
        "payment-sim": {"carrot-api", "carrot-worker"},
    }
    for target, want in expected.items():
        got = allowed(target)
        if got != want:
            fail(f"NetworkPolicy: {target} is reachable from {sorted(got)}, expected only {sorted(want)}")
    for target in ("carrot-api", "carrot-worker"):
        got = allowed(target)
        if not got or any(not w.startswith("*") for w in got):
            fail(f"NetworkPolicy: {target} should be reachable only from the ingress/monitoring namespaces, got {sorted(got)}")
    print("network policies: default deny; postgres from api/worker/migrate, payment-sim from "
          "api/worker, api and worker from the ingress and monitoring namespaces only")


# --- monitoring ------------------------------------------------------------------------


def check_monitoring(app, monitoring):
    import promql_parser

    # Every metric name the sources spell out; a histogram's series add _bucket/_sum/_count.
    sources = "\n".join(p.read_text() for p in (ROOT / "crates").rglob("*.rs") if "/tests/" not in str(p))
    exposed = set(re.findall(r"\bcarrot_[a-z0-9_]+", sources))
    monitors = [o for o in monitoring if o["kind"] == "ServiceMonitor"]
    rules = [o for o in monitoring if o["kind"] == "PrometheusRule"]
    if not monitors or not rules:
        fail("deploy/k8s/monitoring needs a ServiceMonitor and a PrometheusRule")
    for o in monitoring:
        if o.get("apiVersion") != "monitoring.coreos.com/v1" or not o["metadata"].get("namespace"):
            fail(f"{name_of(o)}: apiVersion monitoring.coreos.com/v1 and a namespace")
    services = [o for o in app if o["kind"] == "Service"]
    for m in monitors:
        scraped = [s for s in services if selects(m["spec"]["selector"], s["metadata"].get("labels", {}))]
        components = {s["metadata"]["labels"].get("app.kubernetes.io/component") for s in scraped}
        if components != {"api", "worker"}:
            fail(f"{name_of(m)} selects the Services of {sorted(map(str, components))}, not api and worker")
        for endpoint in m["spec"]["endpoints"]:
            if endpoint.get("path", "/metrics") != "/metrics":
                fail(f"{name_of(m)}: path {endpoint.get('path')}")
            for s in scraped:
                if endpoint.get("port") not in {p.get("name") for p in s["spec"]["ports"]}:
                    fail(f"{name_of(m)}: Service {s['metadata']['name']} has no port named {endpoint.get('port')}")
    alerts = []
    for r in rules:
        for group in r["spec"]["groups"]:
            if not group.get("name") or not group.get("rules"):
                fail(f"{name_of(r)}: a group needs a name and rules")
            for rule in group["rules"]:
                alert = rule.get("alert")
                if not alert or not rule.get("expr"):
                    fail(f"{name_of(r)}: every rule needs alert and expr: {rule}")
                try:
                    promql_parser.parse(rule["expr"])
                except ValueError as e:
                    fail(f"{alert}: expr does not parse: {e}: {rule['expr']}")
                for metric in re.findall(r"\bcarrot_[a-z0-9_]+", rule["expr"]):
                    if re.sub(r"_(bucket|sum|count)$", "", metric) not in exposed:
                        fail(f"{alert}: the binary exposes no metric {metric} (crates/)")
                if "for" in rule and not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", str(rule["for"])):
                    fail(f"{alert}: for: {rule['for']} is not a duration")
                if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                    fail(f"{alert}: labels.severity must be critical, warning or info")
                if not rule.get("annotations", {}).get("summary"):
                    fail(f"{alert}: annotations.summary")
                alerts.append(alert)
    if len(alerts) != len(set(alerts)):
        fail("two alerts have the same name")
    print(f"monitoring: the ServiceMonitor scrapes api and worker; {len(alerts)} alerts parse "
          f"as PromQL on metrics the binary exposes")


# --- docker-compose.yml ----------------------------------------------------------------


def check_compose(compose):
    services = compose["services"]

    def command(s):
        c = services[s].get("command") or []
        return c if isinstance(c, list) else c.split()

    serving = [s for s in services if command(s)[:1] == ["serve"]]
    migrate = [s for s in services if command(s)[:1] == ["migrate"]]
    if len(migrate) != 1:
        fail("docker-compose.yml: one service must run `carrot migrate`")
    migrate = migrate[0]
    menv = services[migrate].get("environment", {})
    if not menv.get("CARROT_APP_ROLE"):
        fail(f"docker-compose.yml: {migrate} without CARROT_APP_ROLE")
    owner = re.match(r"postgres(?:ql)?://([^:@/]+)", menv.get("DATABASE_URL", ""))
    total, terms = HEADROOM, []
    for s in serving:
        env = services[s].get("environment", {})
        if "CARROT_MIGRATE" in env:
            fail(f"docker-compose.yml: {s} sets CARROT_MIGRATE; the {migrate} service migrates")
        user = re.match(r"postgres(?:ql)?://([^:@/]+)", env.get("DATABASE_URL", ""))
        if not user or not owner or user.group(1) == owner.group(1):
            fail(f"docker-compose.yml: {s} must connect as the application role, not the owner")
        dep = services[s].get("depends_on", {}).get(migrate, {})
        if dep.get("condition") != "service_completed_successfully":
            fail(f"docker-compose.yml: {s} must depend on {migrate} (service_completed_successfully)")
        grace = services[s].get("stop_grace_period", "10s")
        seconds = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", grace))
        drain = int(env.get("CARROT_SHUTDOWN_TIMEOUT_SECONDS", 25))
        if seconds <= drain:
            fail(f"docker-compose.yml: {s}'s stop_grace_period ({grace}) must exceed its {drain} s drain")
        replicas = (services[s].get("deploy") or {}).get("replicas", 1)
        pool = int(env.get("CARROT_DB_POOL_SIZE", DEFAULT_POOL))
        terms.append(f"{s} {replicas} x {pool}")
        total += replicas * pool
    postgres = next((s for s in services if str(services[s].get("image", "")).startswith("postgres")), None)
    if not postgres:
        fail("docker-compose.yml: no postgres service")
    limit = max_connections(services[postgres].get("command"))
    line = f"{' + '.join(terms)} + headroom {HEADROOM} = {total} <= {limit} - {RESERVED}"
    if total > limit - RESERVED:
        fail(f"docker-compose.yml connection budget: {line.replace('<=', '>')}")
    print(f"docker-compose.yml: {migrate} runs first as the owner; {', '.join(serving)} connect as the "
          f"application role; connection budget {line}")


def main(argv):
    if argv[:1] == ["kustomize"] and len(argv) == 2:
        yaml.safe_dump_all(kustomize(argv[1]), sys.stdout, sort_keys=False)
    elif argv[:1] == ["without-crds"] and len(argv) == 2:
        yaml.safe_dump_all([o for o in load_all(argv[1]) if "." not in o["apiVersion"].split("/")[0]
                            or o["apiVersion"].split("/")[0].endswith(".k8s.io")], sys.stdout, sort_keys=False)
    elif argv == ["names"]:
        check_names()
    elif argv[:1] == ["app"] and len(argv) == 7:
        app, migrate, monitoring, postgres, cnpg = (load_all(p) for p in argv[1:4] + argv[5:7])
        with open(argv[4]) as f:
            compose = json.load(f)
        check_namespace(app)
        if any(o["kind"] == "StatefulSet" for o in app):
            fail("the application's kustomization holds a database: it is applied on its own (postgres/ or cnpg/)")
        check_cnpg(app, migrate, cnpg)
        app = app + postgres
        count = check_restricted(app + migrate)
        print(f"pod security: all {count} pod templates meet Pod Security \"restricted\"")
        image = check_images(app, migrate)
        print(f"images: every carrot container runs {image}; the others pin a version")
        check_no_secrets(app, migrate, monitoring, cnpg)
        check_migration_step(app, migrate)
        check_budget(app, migrate, statefulset_limit(postgres), "postgres/postgres.yaml")
        check_ingress(app)
        check_network_policies(app, migrate)
        check_monitoring(app, monitoring)
        check_compose(compose)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
