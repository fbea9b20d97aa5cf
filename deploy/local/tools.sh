#!/usr/bin/env bash
# Offline validation tools for deploy/ (cached under .local/, installed once):
#   kustomize (built from its Go module) and KEDA's CRDs (from the KEDA Go module) for the ScaledObject schema.
# Prints the paths to use as environment lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.local/bin"
kustomize_version=v5.4.3
keda_version=v2.15.1
mkdir -p "$bin"
if [ ! -x "$bin/kustomize" ]; then
  command -v go >/dev/null || { echo "tools: Go is needed to build kustomize" >&2; exit 1; }
  echo "tools: building kustomize $kustomize_version from its Go module (once)" >&2
  GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version" >&2
fi
keda_dir=$(cd /tmp && go mod download -json "github.com/kedacore/keda/v2@$keda_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
# Debian's Chromium for the browser tests of the console and the chat widget (Playwright drives it).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "tools: installing Debian's chromium (once)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tools: Chromium is missing; run: sudo apt-get install -y chromium" >&2
  fi
fi
echo "export SWITCHBOARD_TEST_CHROMIUM=/usr/bin/chromium"
echo "export SWITCHBOARD_TEST_KUSTOMIZE=$bin/kustomize"
echo "export SWITCHBOARD_TEST_KEDA_CRDS=$keda_dir/config/crd/bases"
