package main

import (
	"testing"

	"k8s.io/client-go/rest"
)

// TestListConfig: the worker lists as protobuf at --kube-qps, unless the
// kubeconfig sets a rate of its own.
func TestListConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       rest.Config
		qps       float32
		wantQPS   float32
		wantBurst int
	}{
		{"default", rest.Config{}, DefaultKubeQPS, DefaultKubeQPS, 2 * DefaultKubeQPS},
		{"flag", rest.Config{}, 50, 50, 100},
		{"kubeconfig's own rate", rest.Config{QPS: 7, Burst: 9}, DefaultKubeQPS, 7, 9},
		{"zero keeps client-go's default", rest.Config{}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			listConfig(&cfg, tc.qps)
			if cfg.QPS != tc.wantQPS || cfg.Burst != tc.wantBurst {
				t.Errorf("QPS %v, burst %d; want %v, %d", cfg.QPS, cfg.Burst, tc.wantQPS, tc.wantBurst)
			}
			if cfg.ContentType != "application/vnd.kubernetes.protobuf" {
				t.Errorf("content type %q, want protobuf", cfg.ContentType)
			}
		})
	}
}
