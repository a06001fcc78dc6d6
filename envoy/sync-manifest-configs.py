#!/usr/bin/env python3
"""Rewrite the filter configs embedded in the deployment manifests (envoy/istio, envoy/gateway-api)
from the demo gateway's (envoy/gateway.yaml), in their deploy form:

- every `match.route_name` becomes the path match of the gateway route of that name (Istio and
  Envoy Gateway generate route names, so a route_name rule never matches there);
- api-key-auth's consumers become placeholders (no demo consumer or key digest in a manifest);
- the suite module's config (`apim_suite`: WasmPlugin, EnvoyFilter, EnvoyExtensionPolicy) is a
  section per filter, each that filter's deploy form.

`cargo test -p apim-integration --test deploy_manifests` holds the manifests to exactly this
(`every_filter_config_is_the_deploy_form_of_gateway_yaml`); run this after changing a filter
config in envoy/gateway.yaml:

    python3 envoy/sync-manifest-configs.py            # rewrite (needs PyYAML: python3-yaml)
    python3 envoy/sync-manifest-configs.py --check    # exit 1 if a manifest would change

Only the config blocks are rewritten (WasmPlugin `pluginConfig`, EnvoyExtensionPolicy
`wasm[].config`, EnvoyFilter `configuration.value`); comments and everything else stay.
Keep ROUTE_PATHS and PLACEHOLDER_CONSUMERS equal to the test's tables
(tests/integration/src/manifests.rs: `ROUTE_PATHS`, `placeholder_consumers`).
"""

import copy
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The gateway's routes (envoy/gateway.yaml) as path matches. Loosening rules (public: anonymous,
# health/oauth: skip) get the tightest form; restricting ones (admin, graphql) the widest, case
# ignored too (a case-insensitive backend serves /ADMIN as /admin).
ROUTE_PATHS = {
    "health": ({"exact": "/health"}, False),
    "public": ({"prefix": "/public/"}, False),
    "admin": ({"prefix": "/admin"}, True),
    "oauth": ({"prefix": "/oauth/"}, False),
    "graphql": ({"prefix": "/graphql"}, True),
}


# The suite module (apim_suite.wasm) and its sections, in the suite's order: each section is
# exactly that filter's module config (filters/suite/README.md).
SUITE_MODULE = "apim_suite"
SUITE_SECTIONS = ["api_key_auth", "scope_authz", "graphql_guard", "quota", "transform"]


def placeholder(n):
    return "0" * 62 + "%02x" % n


PLACEHOLDER_CONSUMERS = [
    {"id": "example-partner", "plan": "gold", "groups": ["partners"],
     "scopes": ["pets:read", "pets:write"], "keys": [{"sha256": placeholder(1)}]},
    {"id": "example-reader", "plan": "silver", "scopes": ["pets:read"],
     "keys": [{"sha256": placeholder(2)}]},
    {"id": "example-ops", "groups": ["ops"], "keys": [{"sha256": placeholder(3)}]},
]


def gateway_configs():
    doc = yaml.safe_load((ROOT / "envoy/gateway.yaml").read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    out = {}
    for f in hcm["http_filters"]:
        config = f.get("typed_config", {}).get("config")
        if config:
            out[config["root_id"]] = json.loads(config["configuration"]["value"])
    return out


def global_tier_configs():
    """The quota config of demo/compose/global-tier.yaml (the global tier), as `quota`."""
    doc = yaml.safe_load((ROOT / "demo/compose/global-tier.yaml").read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    for f in hcm["http_filters"]:
        config = f.get("typed_config", {}).get("config")
        if config and config["root_id"] == "quota":
            return {"quota": json.loads(config["configuration"]["value"])}
    raise SystemExit("demo/compose/global-tier.yaml: no quota filter")


def deploy_form(module, config):
    config = copy.deepcopy(config)

    def walk(v):
        if isinstance(v, dict):
            if "route_name" in v:
                items = []
                for k, x in v.items():
                    if k == "route_name":
                        path, ignore_case = ROUTE_PATHS[x]
                        items.append(("path", copy.deepcopy(path)))
                        if ignore_case:
                            items.append(("ignore_case", True))
                    else:
                        items.append((k, x))
                v.clear()
                v.update(items)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(config)
    if module == "api_key_auth":
        # Keyless consumers (the anonymous identity) stay; every consumer with keys is replaced.
        keyless = [c for c in config.get("consumers", []) if not c.get("keys")]
        config["consumers"] = copy.deepcopy(PLACEHOLDER_CONSUMERS) + keyless
    return config


def manifest_config(path, module, configs):
    """The config a manifest's plugin of `module` gets: the deploy form of the gateway's; for the
    suite module (apim_suite), a section per filter, each the deploy form of that filter's.
    `None` for a module the configs do not know."""
    if module == SUITE_MODULE:
        if not all(s in configs for s in SUITE_SECTIONS):
            return None
        return {s: manifest_config(path, s, configs) for s in SUITE_SECTIONS}
    if module not in configs:
        return None
    want = deploy_form(module, configs[module])
    if module == "graphql_guard" and "envoyfilter" not in str(path):
        # A WasmPlugin / EnvoyExtensionPolicy cannot set Envoy's
        # allow_on_headers_stop_iteration, so the guard there does not hold the headers.
        want = dict(want, hold_headers=False)
    return want


def block_end(lines, start, indent):
    """Index after the block of lines more indented than `indent` following `start`."""
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if line.strip() and (len(line) - len(line.lstrip())) <= indent:
            break
        i += 1
    # Trailing blank lines belong to what follows.
    while i > start + 1 and not lines[i - 1].strip():
        i -= 1
    return i


def render_yaml(value, indent):
    text = yaml.dump(value, default_flow_style=False, sort_keys=False, width=100)
    return [" " * indent + l if l else l for l in text.rstrip("\n").split("\n")]


def render_json(value, indent):
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return [" " * indent + l for l in text.split("\n")]


def rewrite(path, configs):
    lines = path.read_text().split("\n")
    out = []
    i = 0
    module = None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)(?:- )?(?:pluginName|rootID|root_id): (\S+)\s*$", line)
        if m:
            module = m.group(2)
        m = re.match(r"^(\s*)(pluginConfig|config|value):( \|)?\s*$", line)
        kind = None
        if m and m.group(2) == "pluginConfig":
            kind = "yaml"
        elif m and m.group(2) == "config" and "gateway-api" in str(path) and module:
            kind = "yaml"
        elif m and m.group(2) == "value" and m.group(3):
            kind = "json"
        if kind is None:
            out.append(line)
            i += 1
            continue
        indent = len(m.group(1))
        end = block_end(lines, i, indent)
        want = manifest_config(path, module, configs)
        if want is None:
            raise SystemExit(f"{path}:{i + 1}: config of unknown module {module!r}")
        out.append(line)
        if kind == "yaml":
            out.extend(render_yaml(want, indent + 2))
        else:
            first = next(l for l in lines[i + 1:end] if l.strip())
            content_indent = len(first) - len(first.lstrip())
            out.extend(render_json(want, content_indent))
        i = end
        module = None
    return "\n".join(out)


def main():
    check = "--check" in sys.argv[1:]
    configs = gateway_configs()
    global_configs = global_tier_configs()
    changed = []
    for tree in ["envoy/istio", "envoy/gateway-api"]:
        for path in sorted((ROOT / tree).rglob("*.yaml")):
            old = path.read_text()
            # quota-global.yaml: the global tier's quota config (demo/compose/global-tier.yaml).
            new = rewrite(path, global_configs if path.stem == "quota-global" else configs)
            if new != old:
                changed.append(str(path.relative_to(ROOT)))
                if not check:
                    path.write_text(new)
    for c in changed:
        print(("stale: " if check else "rewritten: ") + c)
    if check and changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
