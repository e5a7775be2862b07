package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
)

// A receiver verifies a request, then reads its event.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		e, err := webhook.Parse(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d, ok := e.Data.(webhook.NewFindingsData); ok {
			fmt.Println(e.ID, d.Summary())
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What the server sends.
	body := `{"specversion":"1.0","id":"01JD5S0Q4C3Y8X2M7V6K1N9B0T","source":"/fleetscan/clusters/prod-eu-1","type":"dev.fleetscan.findings.new",` +
		`"data":{"cluster_id":"prod-eu-1","min_severity":"HIGH","counts":{"CRITICAL":1},"total":1}}`
	key, _ := webhook.ParseSecret(secret)
	now := time.Now().Unix()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(webhook.HeaderID, "01JD5S0Q4C3Y8X2M7V6K1N9B0T")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now, 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", now, []byte(body)))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 01JD5S0Q4C3Y8X2M7V6K1N9B0T prod-eu-1: 1 new finding(s) at high or worse: 1 critical
	// 204
}
