// Package client is the Go SDK of fleetscan. It wraps the generated gRPC
// stubs with authentication (a token, a token file, or a client
// certificate), TLS, iterators over paginated lists and errors a caller
// can test with errors.Is. Reads (Get…, List…, Diff…, Compare…) that meet
// a server that is unavailable are retried up to 4 times with backoff;
// calls that change something never are.
//
//	c, err := client.New("fleetscan.example.com:8443", client.WithToken(token))
//	if err != nil { ... }
//	defer c.Close()
//	for f, err := range c.Findings(ctx, &fleetscanv1.ListFindingsRequest{MinSeverity: fleetscanv1.Severity_SEVERITY_CRITICAL}) {
//		if err != nil { ... }
//		fmt.Println(f.ClusterId, f.CheckId, f.Message)
//	}
package client
