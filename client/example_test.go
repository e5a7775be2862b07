package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// These examples are compile-only: they need a running server
// (FLEETSCAN_SERVER, FLEETSCAN_TOKEN_FILE, FLEETSCAN_CA), so they carry no
// "Output:" comment and go test builds them without running them. The
// tenant guide's program, which TestTenantGuideGoProgram runs against a
// real server, is the one that is run.

// connect builds a client from the environment, as the CLI does.
func connect() *client.Client {
	token, err := os.ReadFile(os.Getenv("FLEETSCAN_TOKEN_FILE"))
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(os.Getenv("FLEETSCAN_SERVER"),
		client.WithToken(strings.TrimSpace(string(token))),
		client.WithCAFile(os.Getenv("FLEETSCAN_CA")))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// Register a cluster and keep the join token its worker needs.
func ExampleClient_registerCluster() {
	c := connect()
	defer c.Close()
	resp, err := c.ClusterService.RegisterCluster(context.Background(), &fleetscanv1.RegisterClusterRequest{
		ClusterId: "prod-eu-1", Tenant: "acme", Labels: map[string]string{"env": "prod"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("prod-eu-1.token", []byte(resp.JoinToken), 0o600); err != nil {
		log.Fatal(err)
	}
}

// Scan every production cluster and wait for the result.
func ExampleClient_WaitScan() {
	c := connect()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	started, err := c.ScanService.StartScan(ctx, &fleetscanv1.StartScanRequest{
		Target: &fleetscanv1.ScanTarget{LabelSelector: "env=prod"},
	})
	if err != nil {
		log.Fatal(err)
	}
	scan, err := c.WaitScan(ctx, started.Scan.Id, 2*time.Second, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range scan.Jobs {
		fmt.Println(j.ClusterId, j.State, j.Findings.GetCritical(), "critical")
	}
}

// List a tenant's open critical findings, page by page, with errors.Is on
// the typed errors.
func ExampleClient_Findings() {
	c := connect()
	defer c.Close()
	req := &fleetscanv1.ListFindingsRequest{ClusterId: "prod-eu-1", MinSeverity: fleetscanv1.Severity_SEVERITY_CRITICAL}
	for f, err := range c.Findings(context.Background(), req) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.CheckId, f.Resource.Namespace, f.Resource.Name, f.Message)
	}
}

// Fetch the fleet's posture over the last 90 days, week by week.
func ExampleClient_trend() {
	c := connect()
	defer c.Close()
	resp, err := c.FindingService.GetTrend(context.Background(), &fleetscanv1.GetTrendRequest{
		Scope:  &fleetscanv1.Scope{Scope: &fleetscanv1.Scope_Fleet{Fleet: true}},
		Since:  timestamppb.New(time.Now().AddDate(0, 0, -90)),
		Bucket: fleetscanv1.TrendBucket_TREND_BUCKET_WEEK,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range resp.Points {
		if p.Score == nil {
			continue // a gap: nothing scanned yet
		}
		fmt.Println(p.Time.AsTime().Format(time.DateOnly), p.GetScore(), p.Counts.GetCritical())
	}
}
