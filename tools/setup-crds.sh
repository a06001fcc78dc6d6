#!/usr/bin/env bash
# Installs what `make manifests-check` and tests/integration/tests/crd_schemas.rs validate the
# Kubernetes manifests with, all from the Go module proxy, pinned (see the Makefile):
#   - kubeconform (go install) at $KUBECONFORM_BIN;
#   - the CRD YAML that istio.io/api, github.com/envoyproxy/gateway and sigs.k8s.io/gateway-api
#     publish in their modules, turned into JSON Schemas in $CRD_SCHEMAS by `apim crd-schemas`.
#
#   tools/setup-crds.sh KUBECONFORM_VERSION ISTIO_API_VERSION ENVOY_GATEWAY_VERSION GATEWAY_API_VERSION
set -euo pipefail
kubeconform_version="$1" istio="$2" gateway="$3" gateway_api="$4"
: "${KUBECONFORM_BIN:?}" "${CRD_SCHEMAS:?}"

if [[ ! -x "$KUBECONFORM_BIN" ]]; then
  echo "==> installing kubeconform $kubeconform_version from the Go module proxy into $(dirname "$KUBECONFORM_BIN") (once per machine, ~1 min cold)"
  GOBIN="$(dirname "$KUBECONFORM_BIN")" go install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
fi

[[ -f "$CRD_SCHEMAS/.complete" ]] && exit 0
echo "==> the CRDs of istio.io/api $istio, Envoy Gateway $gateway and Gateway API $gateway_api (Go module proxy, ~12 MB once per machine) into $CRD_SCHEMAS"
# Where `go mod download` unpacked a module (outside any Go module: -mod=mod).
module_dir() {
  GOFLAGS=-mod=mod go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}
istio_dir=$(module_dir "istio.io/api@$istio")
gateway_dir=$(module_dir "github.com/envoyproxy/gateway@$gateway")
gateway_api_dir=$(module_dir "sigs.k8s.io/gateway-api@$gateway_api")
rm -rf "$CRD_SCHEMAS"
target/debug/apim crd-schemas "$CRD_SCHEMAS" \
  "$istio_dir/kubernetes/customresourcedefinitions.gen.yaml" \
  "$gateway_dir"/charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_*.yaml \
  "$gateway_api_dir"/config/crd/standard/*.yaml
touch "$CRD_SCHEMAS/.complete"
