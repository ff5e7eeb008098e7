#!/usr/bin/env bash
# Interop suite: onesoidc against panva oidc-provider (OpenID Certified) on loopback.
# Needs Node >= 20.18 with npm, and Go. Fails (non-zero) when any of them is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for tool in node npm go; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "interop.sh: $tool is not on PATH; the interop suite needs Node >= 20.18, npm and Go" >&2
		exit 1
	fi
done
echo "interop.sh: node $(node --version), npm $(npm --version), $(go version)"

(cd internal/interop/provider && npm ci --no-audit --no-fund)
go test -race -count=1 -tags interop ./internal/interop/...
