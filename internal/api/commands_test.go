package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// decodeView decodes a 200 response holding a View.
func decodeView(t *testing.T, res response) model.View {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var v model.View
	dec := json.NewDecoder(strings.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body is not a View: %v\n%s", err, res.body)
	}
	return v
}

// status summarises a view as "Phase[/Reason] step N weight W stable S canary C".
func status(v model.View) string {
	st := v.Status
	s := string(st.Phase)
	if st.PauseReason != "" {
		s += "/" + string(st.PauseReason)
	}
	return s + " step " + itoa(st.StepIndex) + " weight " + ftoa(st.Weight) + " stable " + st.StableVersion + " canary " + st.CanaryVersion
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func ftoa(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// requestCase is one request and the answer it must get: a status summary
// (see status) for 200, or the error's field and a substring of its message.
type requestCase struct {
	name         string
	method, path string
	body         string
	wantStatus   int
	wantView     string // for 200
	wantField    string
	wantMsg      string
}

func runCases(t *testing.T, cases []requestCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			h, fake, _ := newHandler(t, nil)
			name := strings.Split(strings.TrimPrefix(tt.path, "/api/v1/rollouts/"), "/")[0]
			before, _ := fake.Get(context.Background(), name)
			res := do(t, h, tt.method, tt.path, tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
			if tt.wantStatus == http.StatusOK {
				v := decodeView(t, res)
				if got := status(v); got != tt.wantView {
					t.Errorf("view = %s\n     want %s", got, tt.wantView)
				}
				stored, _ := fake.Get(context.Background(), name)
				if stored.Status.LastEventSeq != v.Status.LastEventSeq || stored.Status.Phase != v.Status.Phase {
					t.Errorf("the returned view is not the stored one")
				}
				return
			}
			b := errorBody(t, res)
			if b.Field != tt.wantField {
				t.Errorf("field = %q, want %q (error %q)", b.Field, tt.wantField, b.Error)
			}
			if !strings.Contains(b.Error, tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", b.Error, tt.wantMsg)
			}
			after, _ := fake.Get(context.Background(), name)
			if after.Status.LastEventSeq != before.Status.LastEventSeq || !after.Status.UpdatedAt.Equal(before.Status.UpdatedAt) {
				t.Errorf("a rejected request changed the rollout")
			}
		})
	}
}

const huge = `{"pad": "` + "x" // completed by hugeBody

func hugeBody() string { return huge + strings.Repeat("x", 2<<20) + `"}` }

func TestPromote(t *testing.T) {
	const p = "/api/v1/rollouts/checkout/promote"
	runCases(t, []requestCase{
		{"no body", "POST", p, "", 200, "Progressing step 4 weight 1 stable v1.4.2 canary v1.5.0", "", ""},
		{"empty object", "POST", p, `{}`, 200, "Progressing step 4 weight 1 stable v1.4.2 canary v1.5.0", "", ""},
		{"full false", "POST", p, `{"full": false}`, 200, "Progressing step 4 weight 1 stable v1.4.2 canary v1.5.0", "", ""},
		{"whitespace body", "POST", p, " \n", 200, "Progressing step 4 weight 1 stable v1.4.2 canary v1.5.0", "", ""},
		{"full", "POST", p, `{"full": true}`, 200, "Healthy step 8 weight 0 stable v1.5.0 canary ", "", ""},
		{"healthy", "POST", "/api/v1/rollouts/search/promote", "", 409, "", "", `rollout "search" is Healthy: there is nothing to promote`},
		{"aborted", "POST", "/api/v1/rollouts/payments/promote", `{"full": true}`, 409, "", "", `retry it or undo`},
		{"missing rollout", "POST", "/api/v1/rollouts/nope/promote", "", 404, "", "", `rollout "nope" not found`},
		{"wrong type", "POST", p, `{"full": "yes"}`, 400, "", "full", `field "full" must be a boolean, not a string`},
		{"unknown field", "POST", p, `{"ful": true}`, 400, "", "ful", `unknown field "ful"`},
		{"case", "POST", p, `{"Full": true}`, 400, "", "Full", `did you mean "full"?`},
		{"duplicate", "POST", p, `{"full": false, "full": true}`, 400, "", "full", "appears more than once"},
		{"trailing data", "POST", p, `{"full": true} {}`, 400, "", "", "data after the JSON object"},
		{"not an object", "POST", p, `[true]`, 400, "", "", "must be a JSON object, not an array"},
		{"syntax", "POST", p, `{"full": tru}`, 400, "", "", "not valid JSON"},
		{"too large", "POST", p, hugeBody(), 413, "", "", "larger than the limit of 1 MiB"},
	})
}

func TestSimpleCommands(t *testing.T) {
	r := "/api/v1/rollouts/"
	runCases(t, []requestCase{
		{"abort", "POST", r + "checkout/abort", "", 200, "Degraded step 3 weight 0 stable v1.4.2 canary v1.5.0", "", ""},
		{"abort with {}", "POST", r + "checkout/abort", "{}", 200, "Degraded step 3 weight 0 stable v1.4.2 canary v1.5.0", "", ""},
		{"abort with null", "POST", r + "checkout/abort", "null", 200, "Degraded step 3 weight 0 stable v1.4.2 canary v1.5.0", "", ""},
		{"abort twice", "POST", r + "payments/abort", "", 409, "", "", `rollout "payments" is already aborted`},
		{"abort healthy", "POST", r + "search/abort", "", 409, "", "", "nothing to abort"},
		{"abort missing", "POST", r + "nope/abort", "", 404, "", "", `rollout "nope" not found`},
		{"abort with a field", "POST", r + "checkout/abort", `{"force": true}`, 400, "", "force", `unknown field "force"`},
		{"abort with an array", "POST", r + "checkout/abort", `[]`, 400, "", "", "must be a JSON object"},
		{"abort with trailing data", "POST", r + "checkout/abort", `{}{}`, 400, "", "", "data after the JSON object"},
		{"abort too large", "POST", r + "checkout/abort", hugeBody(), 413, "", "", "larger than the limit"},

		{"retry", "POST", r + "payments/retry", "", 200, "Progressing step 1 weight 5 stable v2.0.1 canary v2.1.0", "", ""},
		{"retry running", "POST", r + "checkout/retry", "{}", 409, "", "", "only an aborted revision can be retried"},
		{"retry missing", "POST", r + "nope/retry", "", 404, "", "", `rollout "nope" not found`},
		{"retry with a field", "POST", r + "payments/retry", `{"step": 0}`, 400, "", "step", `unknown field "step"`},

		{"pause", "POST", r + "checkout/pause", "", 200, "Paused/Manual step 3 weight 1 stable v1.4.2 canary v1.5.0", "", ""},
		{"pause aborted", "POST", r + "payments/pause", "", 409, "", "", "nothing to pause"},
		{"pause missing", "POST", r + "nope/pause", "", 404, "", "", `rollout "nope" not found`},
		{"pause with a field", "POST", r + "checkout/pause", `{"reason": "x"}`, 400, "", "reason", `unknown field "reason"`},

		{"resume a pause step", "POST", r + "checkout/resume", "", 409, "", "", "not paused by hand"},
		{"resume healthy", "POST", r + "search/resume", "", 409, "", "", "nothing to resume"},
		{"resume missing", "POST", r + "nope/resume", "", 404, "", "", `rollout "nope" not found`},
		{"resume wrong type", "POST", r + "checkout/resume", `"now"`, 400, "", "", "must be a JSON object, not a string"},
	})
}

func TestResumeAfterPause(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	decodeView(t, do(t, h, "POST", "/api/v1/rollouts/checkout/pause", ""))
	v := decodeView(t, do(t, h, "POST", "/api/v1/rollouts/checkout/resume", "{}"))
	if got := status(v); got != "Paused/PauseStep step 3 weight 1 stable v1.4.2 canary v1.5.0" {
		t.Errorf("after resume: %s", got)
	}
}

func TestUndo(t *testing.T) {
	const p = "/api/v1/rollouts/checkout/undo"
	runCases(t, []requestCase{
		{"to the previous revision, which v1.5.0 superseded", "POST", p, "", 200, "Paused/PauseStep step 3 weight 1 stable v1.4.2 canary v1.5.0-rc.1", "", ""},
		{"an aborted canary: back to its stable", "POST", "/api/v1/rollouts/payments/undo", "", 200, "Healthy step 0 weight 0 stable v2.0.1 canary ", "", ""},
		{"to a revision", "POST", p, `{"toRevision": 2}`, 200, "Paused/PauseStep step 3 weight 1 stable v1.4.2 canary v1.5.0-rc.1", "", ""},
		{"healthy, fast", "POST", "/api/v1/rollouts/search/undo", `{}`, 200, "Healthy step 3 weight 0 stable v0.8.3 canary ", "", ""},
		{"the current revision", "POST", p, `{"toRevision": 3}`, 409, "", "", "revision 3 is the current revision"},
		{"an unknown revision", "POST", p, `{"toRevision": 9}`, 400, "", "toRevision", `rollout "checkout" has no revision 9`},
		{"zero", "POST", p, `{"toRevision": 0}`, 400, "", "toRevision", "1 or more, not 0"},
		{"negative", "POST", p, `{"toRevision": -2}`, 400, "", "toRevision", "1 or more, not -2"},
		{"fraction", "POST", p, `{"toRevision": 1.5}`, 400, "", "toRevision", "whole number"},
		{"string", "POST", p, `{"toRevision": "2"}`, 400, "", "toRevision", "must be a number, not a string"},
		{"unknown field", "POST", p, `{"revision": 2}`, 400, "", "revision", `unknown field "revision"`},
		{"missing rollout", "POST", "/api/v1/rollouts/nope/undo", "", 404, "", "", `rollout "nope" not found`},
		{"too large", "POST", p, hugeBody(), 413, "", "", "larger than the limit"},
	})
}

func TestSetCanary(t *testing.T) {
	const p = "/api/v1/rollouts/search/canary"
	runCases(t, []requestCase{
		{"new revision", "PUT", p, `{"version": "v1.0.0", "endpoints": ["http://127.0.0.1:9202"]}`, 200,
			"Paused/PauseStep step 1 weight 20 stable v0.9.0 canary v1.0.0", "", ""},
		{"same canary", "PUT", "/api/v1/rollouts/checkout/canary", `{"version": "v1.5.0", "endpoints": ["http://127.0.0.1:9002", "http://127.0.0.1:9003"]}`, 409,
			"", "", "already rolling out v1.5.0"},
		{"missing rollout", "PUT", "/api/v1/rollouts/nope/canary", `{"version": "v2", "endpoints": ["http://127.0.0.1:1"]}`, 404, "", "", `rollout "nope" not found`},
		{"no version", "PUT", p, `{"endpoints": ["http://127.0.0.1:9202"]}`, 400, "", "version", `"version" is required`},
		{"blank version", "PUT", p, `{"version": " ", "endpoints": ["http://127.0.0.1:9202"]}`, 400, "", "version", `"version" is required`},
		{"no endpoints", "PUT", p, `{"version": "v2"}`, 400, "", "endpoints", "at least one URL"},
		{"empty endpoints", "PUT", p, `{"version": "v2", "endpoints": []}`, 400, "", "endpoints", "at least one URL"},
		{"endpoints not a list", "PUT", p, `{"version": "v2", "endpoints": "http://127.0.0.1:1"}`, 400, "", "endpoints", "must be an array, not a string"},
		{"endpoint not a string", "PUT", p, `{"version": "v2", "endpoints": [7]}`, 400, "", "endpoints[0]", "must be a string, not a number"},
		{"bad endpoint (service validation)", "PUT", p, `{"version": "v2", "endpoints": ["ftp://x"]}`, 400, "", "spec.canary.endpoints[0]", ""},
		{"unknown field", "PUT", p, `{"version": "v2", "endpoints": ["http://127.0.0.1:1"], "weight": 5}`, 400, "", "weight", `unknown field "weight"`},
		{"empty body", "PUT", p, ``, 400, "", "", "request body is empty"},
		{"too large", "PUT", p, hugeBody(), 413, "", "", "larger than the limit"},
	})
}

func TestAnalysisRuns(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "GET", "/api/v1/rollouts/checkout/analysisruns", "")
	if res.status != 200 || !strings.HasPrefix(strings.TrimSpace(res.body), `{"items":[{"id":"checkout-3-background","template":"golden-signals","phase":"Running","kind":"background","step":2,"revision":3,"metrics":[{"name":"error-rate","phase":"Running",`) {
		t.Errorf("checkout runs: %d %s", res.status, res.body)
	}
	if res := do(t, h, "GET", "/api/v1/rollouts/search/analysisruns", ""); res.status != 200 || strings.TrimSpace(res.body) != `{"items":[]}` {
		t.Errorf("search runs: %d %s", res.status, res.body)
	}
	res = do(t, h, "GET", "/api/v1/rollouts/nope/analysisruns", "")
	if res.status != 404 || errorBody(t, res).Error != `rollout "nope" not found` {
		t.Errorf("missing rollout: %d %s", res.status, res.body)
	}
}

func TestEvents(t *testing.T) {
	tests := []struct {
		query      string
		wantStatus int
		wantSeqs   string // for 200
		wantField  string
		wantMsg    string
	}{
		{"", 200, "1 2 3 4 5 6 7 8", "", ""},
		{"?after=6", 200, "7 8", "", ""},
		{"?after=8", 200, "", "", ""},
		{"?after=100", 200, "", "", ""},
		{"?limit=2", 200, "1 2", "", ""},
		{"?after=2&limit=3", 200, "3 4 5", "", ""},
		{"?limit=1000", 200, "1 2 3 4 5 6 7 8", "", ""},
		{"?after=x", 400, "", "after", `query parameter "after" must be a whole number from 0, not "x"`},
		{"?after=-1", 400, "", "after", "whole number"},
		{"?after=1&after=2", 400, "", "after", "given 2 times"},
		{"?limit=0", 400, "", "limit", "between 1 and 1000, not 0"},
		{"?limit=1001", 400, "", "limit", "between 1 and 1000, not 1001"},
		{"?limit=1.5", 400, "", "limit", "whole number"},
		{"?limit=", 400, "", "limit", "whole number"},
	}
	h, _, _ := newHandler(t, nil)
	for _, tt := range tests {
		res := do(t, h, "GET", "/api/v1/rollouts/checkout/events"+tt.query, "")
		if res.status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d; %s", tt.query, res.status, tt.wantStatus, res.body)
			continue
		}
		if tt.wantStatus != 200 {
			b := errorBody(t, res)
			if b.Field != tt.wantField || !strings.Contains(b.Error, tt.wantMsg) {
				t.Errorf("%s: error %+v, want field %q and %q", tt.query, b, tt.wantField, tt.wantMsg)
			}
			continue
		}
		var list api.EventList
		if err := json.Unmarshal([]byte(res.body), &list); err != nil || list.Items == nil {
			t.Fatalf("%s: body %s: %v", tt.query, res.body, err)
		}
		var seqs []string
		for _, e := range list.Items {
			seqs = append(seqs, itoa(int(e.Seq)))
			if e.Rollout != "checkout" || e.Type == "" || e.Time.IsZero() {
				t.Errorf("%s: event %+v", tt.query, e)
			}
		}
		if got := strings.Join(seqs, " "); got != tt.wantSeqs {
			t.Errorf("%s: seqs %q, want %q", tt.query, got, tt.wantSeqs)
		}
	}
	res := do(t, h, "GET", "/api/v1/rollouts/nope/events", "")
	if res.status != 404 || errorBody(t, res).Error != `rollout "nope" not found` {
		t.Errorf("missing rollout: %d %s", res.status, res.body)
	}

	// A command appends events; the View names the newest.
	v := decodeView(t, do(t, h, "POST", "/api/v1/rollouts/checkout/pause", ""))
	res = do(t, h, "GET", "/api/v1/rollouts/checkout/events?after=8", "")
	var list api.EventList
	_ = json.Unmarshal([]byte(res.body), &list)
	if len(list.Items) != 1 || list.Items[0].Seq != 9 || list.Items[0].Type != "rollout-paused" || v.Status.LastEventSeq != 9 {
		t.Errorf("after pause: events %s, lastEventSeq %d", res.body, v.Status.LastEventSeq)
	}
}

func TestNewRoutesAnswer405(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{"GET", "/api/v1/rollouts/checkout/promote", "POST"},
		{"PUT", "/api/v1/rollouts/checkout/abort", "POST"},
		{"POST", "/api/v1/rollouts/checkout/canary", "PUT"},
		{"POST", "/api/v1/rollouts/checkout/watch", "GET"},
		{"DELETE", "/api/v1/rollouts/checkout", "PUT"},
		{"POST", "/api/v1/analysistemplates/x", "DELETE"},
	} {
		res := do(t, h, tt.method, tt.path, "")
		if res.status != 405 || !strings.Contains(res.header.Get("Allow"), tt.allow) {
			t.Errorf("%s %s: %d Allow=%q, want 405 with %s", tt.method, tt.path, res.status, res.header.Get("Allow"), tt.allow)
		}
		errorBody(t, res)
	}
	if res := do(t, h, "POST", "/api/v1/rollouts/checkout/frobnicate", ""); res.status != 404 {
		t.Errorf("unknown command: %d, want 404", res.status)
	}
}

// fieldErrorsFromService checks that a service's several field errors all
// reach the client.
func TestApplyReportsEveryFieldError(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "PUT", "/api/v1/rollouts/web", `{"spec": {"stable": {"version": "v1", "endpoints": ["ftp://x"]}}}`)
	if res.status != 400 {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	b := errorBody(t, res)
	var fields []string
	for _, d := range b.Details {
		fields = append(fields, d.Field)
	}
	if b.Field != "spec.listen" || !strings.Contains(strings.Join(fields, " "), "spec.stable.endpoints[0]") {
		t.Errorf("error %+v, want spec.listen first and spec.stable.endpoints[0] among the details", b)
	}
}
