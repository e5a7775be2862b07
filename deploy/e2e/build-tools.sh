#!/usr/bin/env bash
# Builds the Kubernetes control plane the end-to-end tests run against:
# kube-apiserver and kubectl from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server/v3. There are no prebuilt binaries to download here,
# so they are compiled from the Go module proxy, each in a scratch module
# outside the repository (fleetscan's own go.mod must not carry Kubernetes'
# dependency graph), and kept in a cache directory keyed by version: the
# first build takes minutes, later runs reuse the binaries.
#
# Usage: build-tools.sh            prints the directory holding the binaries
# Env:   FLEETSCAN_E2E_CACHE       cache root (default ~/.cache/fleetscan-e2e)
set -euo pipefail

K8S_VERSION=v1.37.2
STAGING_VERSION=v0.37.2 # k8s.io/kubernetes requires its staging modules at v0.0.0
ETCD_VERSION=v3.7.3
GO=${GO:-go}

cache=${FLEETSCAN_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetscan-e2e}
# RECIPE changes whenever the way the binaries are built changes, so that a
# cache from an older recipe is not reused.
RECIPE=2
bin=$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-r$RECIPE
# Binaries of other versions or recipes are 300 MB each and never used again.
prune() { find "$cache/bin" -mindepth 1 -maxdepth 1 ! -name "$(basename "$bin")" -exec rm -rf {} +; }
if [[ -x $bin/kube-apiserver && -x $bin/kubectl && -x $bin/etcd ]]; then
	prune
	echo "$bin"
	exit 0
fi
mkdir -p "$bin"
log() { echo "build-tools: $*" >&2; }

# Kubernetes: one scratch module whose tool directives name both commands.
k8s=$cache/src/kubernetes-$K8S_VERSION
if [[ ! -f $k8s/go.sum ]]; then
	log "resolving k8s.io/kubernetes@$K8S_VERSION"
	rm -rf "$k8s" && mkdir -p "$k8s"
	gomod=$($GO mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[[ -f $gomod ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
	{
		echo "module fleetscan.e2e/kubernetes"
		echo
		echo "go 1.26"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		# Every staging module pinned at v0.0.0 is served under its published tag.
		grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
		echo
		echo "tool ("
		echo "	k8s.io/kubernetes/cmd/kube-apiserver"
		echo "	k8s.io/kubernetes/cmd/kubectl"
		echo ")"
	} >"$k8s/go.mod.tmp"
	mv "$k8s/go.mod.tmp" "$k8s/go.mod"
	(cd "$k8s" && GOFLAGS=-mod=mod $GO mod tidy)
fi
# A module build has no git tree to stamp the version from; without these
# the API server reports v0.0.0-master, which the version checks would read.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kubectl; do
	if [[ ! -x $bin/$cmd ]]; then
		log "building $cmd $K8S_VERSION (kube-apiserver takes about 12 minutes on 2 cores with a cold Go build cache)"
		start=$SECONDS
		(cd "$k8s" && $GO build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
		mv "$bin/$cmd.tmp" "$bin/$cmd"
		log "built $cmd in $((SECONDS - start)) s"
	fi
done

# etcd: server/v3 carries etcdmain; a two-line main runs it.
etcd=$cache/src/etcd-$ETCD_VERSION
if [[ ! -x $bin/etcd ]]; then
	if [[ ! -f $etcd/go.sum ]]; then
		log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		rm -rf "$etcd" && mkdir -p "$etcd"
		cat >"$etcd/go.mod" <<MOD
module fleetscan.e2e/etcd

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
		cat >"$etcd/main.go" <<'GO'
// Command etcd runs etcd's own main, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
		(cd "$etcd" && GOFLAGS=-mod=mod $GO mod tidy)
	fi
	log "building etcd $ETCD_VERSION"
	start=$SECONDS
	(cd "$etcd" && $GO build -trimpath -o "$bin/etcd.tmp" .)
	mv "$bin/etcd.tmp" "$bin/etcd"
	log "built etcd in $((SECONDS - start)) s"
fi
prune
echo "$bin"
