#!/bin/sh
# Builds havip-agent and its .deb and .rpm into dist/.
#
#   packaging/build.sh              # both formats
#   FORMATS=deb packaging/build.sh  # only one
#
# Environment: VERSION, REVISION (default from git), GOARCH (default: the
# host's), FORMATS (default "deb rpm"), GO (default go).
# nfpm is installed on first use into bin/tools/ (not committed).
set -eu

cd "$(dirname "$0")/.."

GO=${GO:-go}
NFPM_VERSION=v2.44.0 # v2.48.0 needs modules the proxy does not serve
TOOLS=$PWD/bin/tools
NFPM=$TOOLS/nfpm
FORMATS=${FORMATS:-deb rpm}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
GOARCH=${GOARCH:-$($GO env GOARCH)}

# deb and rpm versions must start with a digit and rpm's must not contain
# '-': v1.2.3-4-gabcdef-dirty becomes 1.2.3+4+gabcdef+dirty; an untagged
# tree becomes 0.0.0+git.<revision>.
case "$VERSION" in
v[0-9]*.[0-9]* | [0-9]*.[0-9]*) PKG_VERSION=$(printf '%s' "${VERSION#v}" | tr -- '-' '+') ;;
*) PKG_VERSION="0.0.0+git.$(printf '%s' "$REVISION" | tr -c 'A-Za-z0-9.\n' '.')" ;;
esac

if ! [ -x "$NFPM" ] || ! $GO version -m "$NFPM" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+$NFPM_VERSION[[:space:]]"; then
	echo "installing nfpm $NFPM_VERSION into $TOOLS"
	mkdir -p "$TOOLS"
	GOBIN=$TOOLS GOFLAGS= $GO install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

# nfpm.yaml packages dist/build/havip-agent (nfpm does not expand
# variables in contents), so one architecture is built per run.
# Old packages would be picked up by test-packages.sh.
rm -rf dist/build dist/*.deb dist/*.rpm
mkdir -p dist/build
BINARY=dist/build/havip-agent
echo "building $BINARY for linux/$GOARCH ($VERSION, $REVISION)"
CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH $GO build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
	-o "$BINARY" ./cmd/havip-agent

for f in $FORMATS; do
	HAVIP_PKG_VERSION=$PKG_VERSION HAVIP_GOARCH=$GOARCH \
		"$NFPM" package --config packaging/nfpm.yaml --packager "$f" --target dist/
done
ls -l dist/*.deb dist/*.rpm 2>/dev/null || true
