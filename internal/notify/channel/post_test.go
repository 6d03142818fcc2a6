package channel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/notify/channel"
)

func TestPostClassifiesAnswers(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		wantErr    bool
		permanent  bool
		wait       time.Duration
	}{
		{200, "", false, false, 0},
		{202, "", false, false, 0},
		{204, "", false, false, 0},
		{400, "", true, true, 0},
		{401, "", true, true, 0},
		{404, "", true, true, 0},
		{410, "", true, true, 0},
		{408, "", true, false, 0},
		{429, "3", true, false, 3 * time.Second},
		{500, "", true, false, 0},
		{503, "120", true, false, 2 * time.Minute},
		{302, "", true, true, 0}, // a redirect that was not followed
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
		}))
		err := channel.Post(context.Background(), srv.Client(), channel.Request{URL: srv.URL, Target: "test", Body: []byte(`{}`)})
		srv.Close()
		if (err != nil) != tc.wantErr || channel.IsPermanent(err) != tc.permanent {
			t.Errorf("status %d: err %v, permanent %v; want error %v, permanent %v", tc.status, err, channel.IsPermanent(err), tc.wantErr, tc.permanent)
		}
		if wait, _ := channel.RetryAfter(err); wait != tc.wait {
			t.Errorf("status %d: RetryAfter %v, want %v", tc.status, wait, tc.wait)
		}
	}
}

func TestPostSendsJSON(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Clone(context.Background()) }))
	defer srv.Close()
	h := http.Header{"X-A": {"1"}, "Content-Type": {"text/plain"}}
	if err := channel.Post(context.Background(), srv.Client(), channel.Request{URL: srv.URL, Target: "t", Body: []byte(`{}`), Header: h}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-A") != "1" ||
		r.Header.Get("User-Agent") != channel.UserAgent {
		t.Errorf("request %s %v", r.Method, r.Header)
	}
}

// TestPostHidesSecrets: neither a network error nor a quoting receiver
// reveals a secret URL, and the error still names the target.
func TestPostHidesSecrets(t *testing.T) {
	const secretURL = "http://127.0.0.1:1/services/T01/B02/s3cr3tT0ken?key=QUERYSECRET"
	err := channel.Post(context.Background(), &http.Client{}, channel.Request{
		URL: secretURL, Target: "slack webhook from env X", Body: []byte(`{}`), Secrets: channel.SecretURLParts(secretURL),
	})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "QUERYSECRET") ||
		!strings.HasPrefix(err.Error(), "post to slack webhook from env X: ") {
		t.Errorf("network error: %v", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such hook "+r.URL.Path+" token s3cr3tT0ken", http.StatusNotFound)
	}))
	defer srv.Close()
	u := srv.URL + "/services/T01/B02/s3cr3tT0ken"
	err = channel.Post(context.Background(), srv.Client(), channel.Request{URL: u, Target: "hook", Body: []byte(`{}`), Secrets: channel.SecretURLParts(u)})
	var se *channel.StatusError
	if !errors.As(err, &se) || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("status error: %v", err)
	}

	err = channel.Post(context.Background(), srv.Client(), channel.Request{URL: "http://bad host/" + "s3cr3t", Target: "hook"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("invalid URL error: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 30 ", 30 * time.Second},
		{"soon", 0},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999999", 365 * 24 * time.Hour},
	} {
		if got := channel.ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
