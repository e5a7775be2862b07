#!/usr/bin/env bash
# Builds the Kubernetes control plane the end-to-end tests run against:
# kube-apiserver and kubectl from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server/v3. There are no prebuilt binaries to download here,
# so they are compiled from the Go module proxy. Each comes from its own
# module under tools/, whose go.mod and go.sum pin every dependency
# (fleetscan's own go.mod must not carry Kubernetes' dependency graph). The
# binaries go to a cache directory outside the repository, keyed by a hash
# of those modules and this script: the first build takes minutes, later
# runs reuse it, and a change of version or recipe builds afresh.
#
# Usage: build-tools.sh          prints the directory holding the binaries
# Env:   FLEETSCAN_E2E_CACHE     cache root (default ~/.cache/fleetscan-e2e)
#
# To move to another Kubernetes release, set k8s.io/kubernetes and the
# k8s.io/* replace lines (its staging modules, which it requires at v0.0.0,
# at their published v0.x tags) in tools/kubernetes/go.mod, then run
# `go mod tidy` there; likewise for etcd in tools/etcd.
set -euo pipefail

# RECIPE changes when the way the binaries are built changes (flags,
# ldflags), so that binaries built the old way are not reused. The key
# also covers the pinned modules and the toolchain, not this file's text:
# a comment edit must not cost a rebuild.
RECIPE=3
GO=${GO:-go}
# The caller's GOFLAGS (-race, -tags, -mod=mod) are not for these builds.
export GOFLAGS=
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/tools
cache=${FLEETSCAN_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetscan-e2e}
key=$({
	echo "recipe $RECIPE"
	$GO env GOVERSION GOOS GOARCH CGO_ENABLED
	cat "$tools"/kubernetes/go.mod "$tools"/kubernetes/go.sum "$tools"/etcd/go.mod "$tools"/etcd/go.sum "$tools"/etcd/main.go
} | sha256sum | cut -c1-16)
bin=$cache/bin/$key

# Binaries of other versions or recipes are 300 MB each. Another checkout
# on this machine may be building or running them right now, so only those
# unused for a week go, and only under the lock: a run touches its own.
prune() { find "$cache/bin" -mindepth 1 -maxdepth 1 ! -name "$key" -mtime +7 -exec rm -rf {} +; }
log() { echo "build-tools: $*" >&2; }

if [[ -x $bin/kube-apiserver && -x $bin/kubectl && -x $bin/etcd ]]; then
	touch "$bin"
	echo "$bin"
	exit 0
fi
mkdir -p "$bin"
# Two suites starting at once on one machine build once: the second waits.
exec 9>"$cache/build.lock"
flock 9
if [[ -x $bin/kube-apiserver && -x $bin/kubectl && -x $bin/etcd ]]; then
	echo "$bin"
	exit 0
fi

cd "$tools/kubernetes"
version=$($GO list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)
# A module build has no git tree to stamp the version from; without these
# the API server reports v0.0.0-master, which the version checks would read.
minor=${version#v1.}
minor=${minor%%.*}
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kubectl; do
	if [[ ! -x $bin/$cmd ]]; then
		hint=""
		[[ $cmd == kube-apiserver ]] && hint=" (about 4 minutes on 2 cores with a cold Go build cache)"
		log "building $cmd $version$hint"
		start=$SECONDS
		$GO build -mod=readonly -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
		mv "$bin/$cmd.tmp" "$bin/$cmd"
		log "built $cmd in $((SECONDS - start)) s"
	fi
done

cd "$tools/etcd"
if [[ ! -x $bin/etcd ]]; then
	log "building etcd $($GO list -mod=readonly -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
	start=$SECONDS
	$GO build -mod=readonly -trimpath -o "$bin/etcd.tmp" .
	mv "$bin/etcd.tmp" "$bin/etcd"
	log "built etcd in $((SECONDS - start)) s"
fi
prune
echo "$bin"
