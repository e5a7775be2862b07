#!/usr/bin/env bash
# make cluster-up / make cluster-down: one local Kubernetes control plane
# (etcd and kube-apiserver, built from source by build-tools.sh into the
# same cache as make e2e), on loopback only, with PID files, to point a
# worker at. No nodes: pods are stored, never run, which is all a scan
# reads. Usage: cluster.sh up|down|status. CLUSTER_DIR (default
# .tmp/cluster) holds the data, logs, PID files and admin.kubeconfig;
# CLUSTER_PORT (default 16443) is the API server's port, ETCD_PORT
# (default 23790) and ETCD_PORT+1 etcd's.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${CLUSTER_DIR:-.tmp/cluster}
port=${CLUSTER_PORT:-16443}
etcd_port=${ETCD_PORT:-23790}

running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

stop() {
	for p in kube-apiserver etcd; do
		if running "$p"; then
			kill "$(cat "$dir/$p.pid")"
			for _ in $(seq 100); do running "$p" || break; sleep 0.1; done
			running "$p" && kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null || true
		fi
		rm -f "$dir/$p.pid"
	done
}

case "${1:-}" in
up)
	if running kube-apiserver; then
		echo "already up; export KUBECONFIG=$PWD/$dir/admin.kubeconfig"
		exit 0
	fi
	command -v openssl >/dev/null || { echo "cluster.sh: needs openssl for the ServiceAccount keys (apt-get install openssl)" >&2; exit 2; }
	bin=$(bash deploy/e2e/build-tools.sh)
	stop
	rm -rf "$dir" && mkdir -p "$dir/certs" && chmod 700 "$dir"
	trap 'status=$?; if [ $status -ne 0 ]; then echo "cluster.sh: the control plane did not start; last log lines:" >&2; tail -n 15 "$dir"/*.log >&2 || true; stop; fi' EXIT
	token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	echo "$token,cluster-admin,cluster-admin,\"system:masters\"" >"$dir/tokens.csv"
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	nohup "$bin/etcd" --name local --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
		--initial-cluster "local=http://127.0.0.1:$((etcd_port + 1))" --log-level warn >"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"
	nohup "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
		--cert-dir "$dir/certs" --token-auth-file "$dir/tokens.csv" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
		--service-cluster-ip-range 172.20.0.0/16 --authorization-mode Node,RBAC --allow-privileged=true \
		--endpoint-reconciler-type none --profiling=false >"$dir/kube-apiserver.log" 2>&1 &
	echo $! >"$dir/kube-apiserver.pid"
	kc=$dir/admin.kubeconfig
	for _ in $(seq 600); do
		[ -f "$dir/certs/apiserver.crt" ] && break
		running kube-apiserver || exit 1
		sleep 0.2
	done
	"$bin/kubectl" config --kubeconfig "$kc" set-cluster local --server "https://127.0.0.1:$port" \
		--certificate-authority "$dir/certs/apiserver.crt" --embed-certs >/dev/null
	"$bin/kubectl" config --kubeconfig "$kc" set-credentials cluster-admin --token "$token" >/dev/null
	"$bin/kubectl" config --kubeconfig "$kc" set-context local --cluster local --user cluster-admin >/dev/null
	"$bin/kubectl" config --kubeconfig "$kc" use-context local >/dev/null
	for _ in $(seq 600); do
		"$bin/kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1 && break
		running kube-apiserver || exit 1
		sleep 0.2
	done
	"$bin/kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null
	cat <<EOF
A control plane listens on https://127.0.0.1:$port (etcd on 127.0.0.1:$etcd_port), data in $dir.
  export KUBECONFIG=$PWD/$kc         # cluster-admin; kubectl is $bin/kubectl
  kubectl create namespace shop
  kubectl -n shop create deployment web --image nginx:latest   # something to scan: stored, never run (no nodes)
  .tmp/bin/fleetscan-worker scan --kubeconfig \$KUBECONFIG      # or a worker connected to a server
  make cluster-down                                  # stop it and remove its data
EOF
	;;
down)
	stop
	rm -rf "$dir"
	echo "control plane stopped; $dir removed"
	;;
status)
	for p in etcd kube-apiserver; do
		if running "$p"; then echo "$p: running (pid $(cat "$dir/$p.pid"))"; else echo "$p: not running"; fi
	done
	;;
*)
	echo "usage: cluster.sh up|down|status" >&2
	exit 2
	;;
esac
