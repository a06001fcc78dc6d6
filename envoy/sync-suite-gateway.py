#!/usr/bin/env python3
"""Write envoy/gateway-suite.yaml, the demo gateway in its suite form, from envoy/gateway.yaml.

The five Wasm filters of gateway.yaml (apim.api_key_auth … apim.transform) become one filter
running target/wasm32-wasip1/release/apim_suite.wasm, whose config is one JSON object with a
section per filter holding that filter's config text unchanged. Everything else (listener,
routes, clusters, comments) is copied as it is, so the two gateways differ only in the form.

`cargo test -p apim-integration --test chain` holds gateway-suite.yaml to exactly this
(`the_suite_gateway_is_generated_from_gateway_yaml`); run this after changing gateway.yaml:

    python3 envoy/sync-suite-gateway.py            # rewrite
    python3 envoy/sync-suite-gateway.py --check    # exit 1 if gateway-suite.yaml would change

Standard library only: the file is processed as text.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "envoy" / "gateway.yaml"
TARGET = ROOT / "envoy" / "gateway-suite.yaml"

# The suite's order; each is the filter's config `name` in gateway.yaml and its section key.
SECTIONS = ["api_key_auth", "scope_authz", "graphql_guard", "quota", "transform"]
FILTER_INDENT = " " * 10  # `          - name: apim.x`

HEADER = """\
# GENERATED from envoy/gateway.yaml by envoy/sync-suite-gateway.py: edit gateway.yaml, then run
# `python3 envoy/sync-suite-gateway.py` (the chain e2e test fails while the two differ).
#
# The demo gateway in its suite form: the same five filter configs, run by one module
# (apim_suite.wasm, one VM, one pass over the request) instead of five. Same answers.
# `make demo SUITE=1` runs it.
#
"""


def filter_blocks(lines):
    """(start, end) line ranges of the http_filters entries, in order."""
    starts = [i for i, l in enumerate(lines) if l.startswith(FILTER_INDENT + "- name: ")]
    blocks = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        # A comment line right before the next entry belongs to the next entry.
        while end > start and lines[end - 1].lstrip().startswith("#"):
            end -= 1
        blocks.append((start, end))
    return blocks


def config_text(block):
    """The filter's JSON config lines (the `value: |` block) and its config name."""
    name = None
    for l in block:
        s = l.strip()
        if s.startswith("name: ") and name is None and not s.startswith("name: apim."):
            name = s[len("name: "):]
    start = next(i for i, l in enumerate(block) if l.strip() == "value: |")
    indent = len(block[start]) - len(block[start].lstrip()) + 2
    body = []
    for l in block[start + 1:]:
        if l.strip() and len(l) - len(l.lstrip()) < indent:
            break
        body.append(l)
    while body and not body[-1].strip():
        body.pop()
    return name, indent, body


def generate(text):
    lines = text.split("\n")
    first = next(i for i, l in enumerate(lines) if not l.startswith("#"))
    lines = lines[first:]
    blocks = filter_blocks(lines)
    wasm = [(s, e) for s, e in blocks if lines[s].strip().startswith("- name: apim.")]
    if len(wasm) != len(SECTIONS):
        sys.exit(f"expected {len(SECTIONS)} apim.* filters in gateway.yaml, found {len(wasm)}")
    sections = {}
    indent = None
    for s, e in wasm:
        name, indent, body = config_text(lines[s:e])
        sections[name] = body
    if list(sections) != SECTIONS:
        sys.exit(f"gateway.yaml's filters are {list(sections)}, expected {SECTIONS}")
    pad = " " * indent
    value = [pad + "{"]
    for n, key in enumerate(SECTIONS):
        body = ["  " + l if l.strip() else l for l in sections[key]]
        body[0] = pad + f'  "{key}": ' + body[0].lstrip()
        if n + 1 < len(SECTIONS):
            body[-1] += ","
        value += body
    value.append(pad + "}")
    suite = f"""\
{FILTER_INDENT}# The whole suite in one module: api-key-auth → scope-authz → graphql-guard → quota →
{FILTER_INDENT}# transform, each section exactly that filter's config in gateway.yaml.
{FILTER_INDENT}- name: apim.suite
{FILTER_INDENT}  typed_config:
{FILTER_INDENT}    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
{FILTER_INDENT}    config:
{FILTER_INDENT}      name: apim_suite
{FILTER_INDENT}      root_id: apim_suite
{FILTER_INDENT}      # Every stage fails closed, as each module does: a broken VM answers 503.
{FILTER_INDENT}      failure_policy: FAIL_CLOSED
{FILTER_INDENT}      # graphql-guard holds the headers until it has judged the body (StopIteration).
{FILTER_INDENT}      allow_on_headers_stop_iteration: true
{FILTER_INDENT}      vm_config:
{FILTER_INDENT}        vm_id: apim_suite
{FILTER_INDENT}        runtime: envoy.wasm.runtime.v8
{FILTER_INDENT}        code: {{ local: {{ filename: target/wasm32-wasip1/release/apim_suite.wasm }} }}
{FILTER_INDENT}      configuration:
{FILTER_INDENT}        "@type": type.googleapis.com/google.protobuf.StringValue
{FILTER_INDENT}        value: |""".split("\n") + value
    first_wasm, last_wasm = wasm[0][0], wasm[-1][1]
    # Comments just above the first module describe it: they go with it.
    while first_wasm > 0 and lines[first_wasm - 1].lstrip().startswith("#"):
        first_wasm -= 1
    out = lines[:first_wasm] + suite + lines[last_wasm:]
    return HEADER + "\n".join(out)


def main():
    want = generate(SOURCE.read_text())
    if "--check" in sys.argv[1:]:
        have = TARGET.read_text() if TARGET.exists() else ""
        if have != want:
            print(f"{TARGET.relative_to(ROOT)} is not in sync with envoy/gateway.yaml: "
                  "run python3 envoy/sync-suite-gateway.py", file=sys.stderr)
            sys.exit(1)
        return
    TARGET.write_text(want)


if __name__ == "__main__":
    main()
