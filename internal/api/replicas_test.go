package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func TestListReplicas(t *testing.T) {
	h, _, _ := newHandler(t, func(c *api.Config) { c.Replicas = apitest.ReplicasAt(now) })
	res := do(t, h, "GET", "/api/v1/replicas", "")
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s, body %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	var got []model.Replica
	if err := json.Unmarshal([]byte(res.body), &got); err != nil {
		t.Fatalf("body is not an array of replicas: %v\n%s", err, res.body)
	}
	if len(got) != 3 || got[1].ID != "serve-b" || !got[1].Leader || !got[2].Gone || got[0].Routes["checkout"].Weight != 100 {
		t.Errorf("replicas = %+v", got)
	}
	// The field names scripts and the dashboard rely on (issue 12).
	var raw []map[string]any
	_ = json.Unmarshal([]byte(res.body), &raw)
	for _, key := range []string{"id", "leader", "admin", "version", "routeRevision", "routes", "startedAt", "lastHeartbeat", "gone"} {
		if _, ok := raw[0][key]; !ok {
			t.Errorf("replica object lacks %q: %v", key, raw[0])
		}
	}
}

func TestListReplicasEmptyIsAnArray(t *testing.T) {
	h, _, _ := newHandler(t, func(c *api.Config) {
		c.Replicas = func(context.Context) ([]model.Replica, error) { return nil, nil }
	})
	if res := do(t, h, "GET", "/api/v1/replicas", ""); res.status != 200 || res.body != "[]\n" {
		t.Errorf("no replicas: %d %q, want 200 []", res.status, res.body)
	}
}

func TestListReplicasWithoutRegistryIs404(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "GET", "/api/v1/replicas", "")
	if res.status != 404 {
		t.Fatalf("status %d, want 404; body %s", res.status, res.body)
	}
	errorBody(t, res)
}

// TestListReplicasStoreErrorIs503: the store's error is logged, once a
// minute, and not shown to the client (it may name hosts).
func TestListReplicasStoreErrorIs503(t *testing.T) {
	h, _, logs := newHandler(t, func(c *api.Config) {
		c.Replicas = func(context.Context) ([]model.Replica, error) {
			return nil, errors.New("cluster: list replicas: dial tcp db.internal:5432: connection refused")
		}
	})
	for range 3 {
		res := do(t, h, "GET", "/api/v1/replicas", "")
		if res.status != 503 {
			t.Fatalf("status %d, want 503; body %s", res.status, res.body)
		}
		if b := errorBody(t, res); !strings.Contains(b.Error, "try again") || strings.Contains(b.Error, "db.internal") {
			t.Errorf("error body %q", b.Error)
		}
	}
	if n := strings.Count(logs.String(), "cannot list the replicas"); n != 1 || !strings.Contains(logs.String(), "db.internal") {
		t.Errorf("want the store error logged once, got %d lines:\n%s", n, logs.String())
	}
}

func TestListReplicasNeedsTheReadRights(t *testing.T) {
	const token = "s3cret-token"
	for _, tt := range []struct {
		name         string
		readOnlyAnon bool
		auth         string
		want         int
	}{
		{"no token", false, "", 401},
		{"right token", false, "Bearer " + token, 200},
		{"anonymous read allowed", true, "", 200},
	} {
		h, _, _ := newHandler(t, func(c *api.Config) {
			c.Token = token
			c.ReadOnlyAnonymous = tt.readOnlyAnon
			c.Replicas = apitest.ReplicasAt(now)
		})
		var headers []string
		if tt.auth != "" {
			headers = []string{"Authorization", tt.auth}
		}
		if res := do(t, h, "GET", "/api/v1/replicas", "", headers...); res.status != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, res.status, tt.want)
		}
	}
	h, _, _ := newHandler(t, func(c *api.Config) { c.Replicas = apitest.ReplicasAt(now) })
	if res := do(t, h, "POST", "/api/v1/replicas", "{}"); res.status != 405 {
		t.Errorf("POST: status %d, want 405", res.status)
	}
}
