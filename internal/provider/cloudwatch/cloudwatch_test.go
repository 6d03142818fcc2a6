package cloudwatch

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/expr-lang/expr"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeCloudWatch stands in for the CloudWatch endpoint, speaking what this
// SDK version sends: Smithy RPC v2 CBOR (POST
// /service/GraniteServiceVersion20100801/operation/GetMetricData,
// Smithy-Protocol: rpc-v2-cbor, a CBOR body; timestamps as CBOR tag 1,
// epoch seconds), SigV4-signed for the service "monitoring". Errors are an
// HTTP 400 with a CBOR {__type, message} body and, as CloudWatch is
// query-compatible, the X-Amzn-Query-Error header carrying the query
// protocol's code (Throttling;Sender).
type fakeCloudWatch struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []cbor.Map
	// pages are the answers, one per call (the last one repeats); a page
	// with a non-empty NextToken expects that token back.
	pages []cbor.Map
	// fail answers the next calls with these query error codes.
	fail []string
}

func newFake(t *testing.T, pages ...cbor.Map) *fakeCloudWatch {
	f := &fakeCloudWatch{t: t, pages: pages}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCloudWatch) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" ||
		r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || r.Header.Get("Content-Type") != "application/cbor" ||
		!strings.Contains(auth, "Credential=AKIDFAKE/") || !strings.Contains(auth, "/eu-west-1/monitoring/aws4_request") {
		f.t.Errorf("not an RPC v2 CBOR GetMetricData: %s %s Smithy-Protocol %q Content-Type %q Authorization %q",
			r.Method, r.URL.Path, r.Header.Get("Smithy-Protocol"), r.Header.Get("Content-Type"), auth)
	}
	body, _ := io.ReadAll(r.Body)
	v, err := cbor.Decode(body)
	if err != nil {
		f.t.Errorf("request body is not CBOR: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, v.(cbor.Map))
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		w.Header().Set("X-Amzn-Query-Error", code+";Sender")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + code + "Exception"), "message": cbor.String("injected by the test")}))
		return
	}
	page := f.pages[min(len(f.requests)-1, len(f.pages)-1)]
	w.Write(cbor.Encode(page))
}

func epoch(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1000)}
}

func result(id, label string, ts []time.Time, vals []float64) cbor.Value {
	tl, vl := cbor.List{}, cbor.List{}
	for _, t := range ts {
		tl = append(tl, epoch(t))
	}
	for _, v := range vals {
		vl = append(vl, cbor.Float64(v))
	}
	return cbor.Map{"Id": cbor.String(id), "Label": cbor.String(label), "StatusCode": cbor.String("Complete"), "Timestamps": tl, "Values": vl}
}

func setFakeAWSEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/coalmine-test")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/coalmine-test")
}

var now = time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)

func newProvider(t *testing.T) *Provider {
	setFakeAWSEnv(t)
	return New(Config{Now: func() time.Time { return now }, ClientOptions: []func(*cw.Options){func(o *cw.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			so.RateLimiter = ratelimit.None
		})
	}}})
}

// errorRate is the seed's ALB error-rate query: 5xx over requests of one
// target group, as a math expression over two metrics.
func errorRate(endpoint string) *spec.CloudWatchProvider {
	f := false
	dims := []spec.CloudWatchDimension{{Name: "TargetGroup", Value: "targetgroup/shop-canary/2453ed029918f21f"}, {Name: "LoadBalancer", Value: "app/web/50dc6c495c0c9188"}}
	return &spec.CloudWatchProvider{
		Interval: ptr(spec.Duration(10 * time.Minute)),
		Endpoint: endpoint,
		MetricDataQueries: []spec.CloudWatchMetricDataQuery{
			{ID: "errors", ReturnData: &f, MetricStat: &spec.CloudWatchMetricStat{Metric: spec.CloudWatchMetric{Namespace: "AWS/ApplicationELB", MetricName: "HTTPCode_Target_5XX_Count", Dimensions: dims}, Period: "60", Stat: "Sum", Unit: "Count"}},
			{ID: "requests", ReturnData: &f, MetricStat: &spec.CloudWatchMetricStat{Metric: spec.CloudWatchMetric{Namespace: "AWS/ApplicationELB", MetricName: "RequestCount", Dimensions: dims}, Period: "60", Stat: "Sum"}},
			{ID: "rate", Expression: "errors / requests", Label: "error rate", Period: "60"},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func query(p *Provider, s *spec.CloudWatchProvider) (provider.Result, error) {
	return p.Query(context.Background(), provider.Query{Rollout: "shop", Metric: "error-rate", Spec: spec.Provider{CloudWatch: s}})
}

func TestGetMetricData(t *testing.T) {
	f := newFake(t, cbor.Map{"MetricDataResults": cbor.List{
		result("rate", "error rate", []time.Time{now.Add(-time.Minute), now.Add(-2 * time.Minute)}, []float64{0.004, 0.02}),
	}, "Messages": cbor.List{}})
	p := newProvider(t)
	res, err := query(p, errorRate(f.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	// The request, as CloudWatch reads it.
	f.mu.Lock()
	req := f.requests[0]
	f.mu.Unlock()
	start, end := req["StartTime"].(*cbor.Tag), req["EndTime"].(*cbor.Tag)
	if start == nil || end == nil || start.ID != 1 || end.ID != 1 {
		t.Fatalf("StartTime/EndTime not CBOR epoch timestamps: %#v %#v", req["StartTime"], req["EndTime"])
	}
	if got := seconds(t, end.Value) - seconds(t, start.Value); got != 600 {
		t.Errorf("window = %v s, want the interval 600", got)
	}
	if got := seconds(t, end.Value); got != float64(now.Unix()) {
		t.Errorf("EndTime = %v, want now %d", got, now.Unix())
	}
	qs := req["MetricDataQueries"].(cbor.List)
	if len(qs) != 3 {
		t.Fatalf("%d queries sent", len(qs))
	}
	q0 := qs[0].(cbor.Map)
	ms := q0["MetricStat"].(cbor.Map)
	metric := ms["Metric"].(cbor.Map)
	dim := metric["Dimensions"].(cbor.List)[0].(cbor.Map)
	if q0["Id"] != cbor.String("errors") || q0["ReturnData"] != cbor.Bool(false) || metric["Namespace"] != cbor.String("AWS/ApplicationELB") ||
		metric["MetricName"] != cbor.String("HTTPCode_Target_5XX_Count") || dim["Name"] != cbor.String("TargetGroup") ||
		dim["Value"] != cbor.String("targetgroup/shop-canary/2453ed029918f21f") || ms["Stat"] != cbor.String("Sum") || ms["Unit"] != cbor.String("Count") ||
		intOf(ms["Period"]) != 60 {
		t.Errorf("first query sent as %#v", q0)
	}
	q2 := qs[2].(cbor.Map)
	if q2["Expression"] != cbor.String("errors / requests") || q2["ReturnData"] != cbor.Bool(true) || intOf(q2["Period"]) != 60 || q2["Label"] != cbor.String("error rate") {
		t.Errorf("expression query sent as %#v", q2)
	}
	// The result, as Argo's conditions read it.
	for cond, want := range map[string]bool{
		"result[0].Values[0] < 0.01":                        true,
		"all(result[0].Values, {# <= 0.01})":                false,
		"result[0].Id == 'rate'":                            true,
		"result[0].Label == 'error rate'":                   true,
		"result[0].StatusCode == 'Complete'":                true,
		"len(result[0].Timestamps) == 2":                    true,
		"result[0].Timestamps[0] > result[0].Timestamps[1]": true,
	} {
		prog, err := spec.CompileCondition(cond)
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		got, err := expr.Run(prog, map[string]any{spec.ConditionVar: res.Value})
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", cond, got, err, want)
		}
	}
}

func seconds(t *testing.T, v cbor.Value) float64 {
	switch x := v.(type) {
	case cbor.Float64:
		return float64(x)
	case cbor.Float32:
		return float64(x)
	case cbor.Uint:
		return float64(x)
	}
	t.Fatalf("timestamp value %#v", v)
	return math.NaN()
}

func intOf(v cbor.Value) int64 {
	switch x := v.(type) {
	case cbor.Uint:
		return int64(x)
	case cbor.NegInt:
		return -int64(x)
	}
	return -1
}

func TestPagesAreMerged(t *testing.T) {
	f := newFake(t,
		cbor.Map{"MetricDataResults": cbor.List{result("rate", "", []time.Time{now.Add(-time.Minute)}, []float64{0.5})}, "NextToken": cbor.String("page-2")},
		cbor.Map{"MetricDataResults": cbor.List{result("rate", "", []time.Time{now.Add(-2 * time.Minute)}, []float64{0.25})}},
	)
	res, err := query(newProvider(t), errorRate(f.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 2 || f.requests[1]["NextToken"] != cbor.String("page-2") {
		t.Fatalf("requests %d, second NextToken %#v", len(f.requests), f.requests[len(f.requests)-1]["NextToken"])
	}
	vals := res.Value.([]any)[0].(map[string]any)["Values"].([]any)
	if len(vals) != 2 || vals[0] != 0.5 || vals[1] != 0.25 {
		t.Fatalf("merged values %v", vals)
	}
}

// No complete query is no data; a complete query with no points (a 5XX
// count while there are no errors) is an answer, as in Argo.
func TestNoData(t *testing.T) {
	partial := result("rate", "", nil, nil).(cbor.Map)
	partial["StatusCode"] = cbor.String("PartialData")
	f := newFake(t, cbor.Map{"MetricDataResults": cbor.List{partial}})
	_, err := query(newProvider(t), errorRate(f.srv.URL))
	if !errors.Is(err, provider.ErrNoData) {
		t.Fatalf("err = %v, want ErrNoData", err)
	}
	f = newFake(t, cbor.Map{"MetricDataResults": cbor.List{result("rate", "", nil, nil)}})
	res, err := query(newProvider(t), errorRate(f.srv.URL))
	if err != nil {
		t.Fatalf("a complete query with no points: %v, want the empty list", err)
	}
	if rs, ok := res.Value.([]any); !ok || len(rs) != 1 {
		t.Fatalf("result = %#v, want one result with no values", res.Value)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	f := newFake(t, cbor.Map{"MetricDataResults": cbor.List{result("rate", "", []time.Time{now}, []float64{0})}})
	f.fail = []string{"Throttling", "Throttling"}
	if _, err := query(newProvider(t), errorRate(f.srv.URL)); err != nil {
		t.Fatalf("throttled twice, then answered: %v", err)
	}
	f.mu.Lock()
	n := len(f.requests)
	f.fail = []string{"Throttling", "Throttling", "Throttling"}
	f.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d requests, want 3 (two throttled, one answered)", n)
	}
	_, err := query(newProvider(t), errorRate(f.srv.URL))
	if err == nil || !strings.Contains(err.Error(), "Throttling") || errors.Is(err, provider.ErrNoData) {
		t.Fatalf("throttled beyond the retries: %v", err)
	}
}

func TestErrors(t *testing.T) {
	f := newFake(t, cbor.Map{"MetricDataResults": cbor.List{result("rate", "", nil, nil)}})
	f.fail = []string{"InvalidParameterValue"}
	_, err := query(newProvider(t), errorRate(f.srv.URL))
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") || !strings.Contains(err.Error(), `metric "error-rate"`) {
		t.Fatalf("err = %v", err)
	}
	internal := newFake(t, cbor.Map{"MetricDataResults": cbor.List{cbor.Map{"Id": cbor.String("rate"), "StatusCode": cbor.String("InternalError"),
		"Timestamps": cbor.List{}, "Values": cbor.List{}, "Messages": cbor.List{cbor.Map{"Code": cbor.String("InternalError"), "Value": cbor.String("try later")}}}}})
	if _, err := query(newProvider(t), errorRate(internal.srv.URL)); err == nil || !strings.Contains(err.Error(), "InternalError: InternalError try later") {
		t.Fatalf("err = %v", err)
	}
	setFakeAWSEnv(t)
	t.Setenv("AWS_REGION", "")
	if _, err := query(New(Config{}), errorRate(internal.srv.URL)); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Fatalf("err = %v", err)
	}
}
