// Package cloudwatch answers analysis queries with Amazon CloudWatch
// GetMetricData over the last interval (default 5m) up to now, as Argo
// Rollouts' cloudWatch provider does, through the AWS SDK for Go v2 with
// its default credential chain. The SDK speaks CloudWatch's current wire
// protocol (Smithy RPC v2 CBOR in this SDK version).
//
// The result is what Argo hands its conditions: the list of
// MetricDataResults, one per query that returns data, in the order
// CloudWatch answers, each a map with the SDK type's field names: Id,
// Label, StatusCode, Timestamps (time.Time, newest first, as CloudWatch
// sorts by default), Values (float64, in the same order) and Messages
// (Code, Value). An Argo condition such as
// `all(result[0].Values, {# <= 0.01})` or `result[0].Values[0] < 0.01`
// works unchanged. The pages of a long answer are merged by Id.
//
// No data is provider.ErrNoData: every returned query has no values (the
// metric has no data points in the interval, or does not exist). A query
// whose StatusCode is InternalError, or an error of the API, is an error.
// None of this has run against real AWS: it is tested against a local
// server speaking the protocol.
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DefaultTimeout bounds one query (all its pages), as for the other
// providers.
const DefaultTimeout = 30 * time.Second

// Config configures a Provider. The zero value is usable.
type Config struct {
	// Now reads the clock for the query's window; nil = time.Now.
	Now func() time.Time
	// ClientOptions are applied to every CloudWatch client (tests make
	// the retryer fast).
	ClientOptions []func(*cw.Options)
}

// Provider runs GetMetricData. It is safe for concurrent use; it keeps one
// client per region and endpoint.
type Provider struct {
	cfg Config

	mu      sync.Mutex
	clients map[clientKey]*cw.Client
}

type clientKey struct{ region, endpoint string }

var _ provider.Provider = (*Provider)(nil)

// New returns a CloudWatch provider.
func New(cfg Config) *Provider {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{cfg: cfg, clients: map[clientKey]*cw.Client{}}
}

// client returns the client of a region and endpoint, loading the AWS
// configuration the first time.
func (p *Provider) client(ctx context.Context, region, endpoint string) (*cw.Client, error) {
	k := clientKey{region, endpoint}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[k]; c != nil {
		return c, nil
	}
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region: set region in the cloudWatch provider, or AWS_REGION, or region in the shared AWS config")
	}
	copts := []func(*cw.Options){func(o *cw.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}}
	c := cw.NewFromConfig(awsCfg, append(copts, p.cfg.ClientOptions...)...)
	p.clients[k] = c
	return c, nil
}

// Query runs the metric's GetMetricData from now-interval to now.
func (p *Provider) Query(ctx context.Context, q provider.Query) (provider.Result, error) {
	s := q.Spec.CloudWatch
	if s == nil {
		return provider.Result{}, fmt.Errorf("query cloudWatch for metric %q: the metric has no cloudWatch provider", q.Metric)
	}
	fail := func(err error) (provider.Result, error) {
		return provider.Result{}, fmt.Errorf("query cloudWatch for metric %q: %w", q.Metric, err)
	}
	queries, err := Queries(s.MetricDataQueries)
	if err != nil {
		return fail(err)
	}
	interval := spec.DefaultCloudWatchInterval.D()
	if s.Interval != nil && s.Interval.D() > 0 {
		interval = s.Interval.D()
	}
	client, err := p.client(ctx, s.Region, s.Endpoint)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	end := p.cfg.Now()
	in := &cw.GetMetricDataInput{StartTime: aws.Time(end.Add(-interval)), EndTime: aws.Time(end), MetricDataQueries: queries}
	var results []types.MetricDataResult
	index := map[string]int{}
	pages := cw.NewGetMetricDataPaginator(client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return fail(fmt.Errorf("GetMetricData: %w", err))
		}
		for _, r := range out.MetricDataResults {
			id := aws.ToString(r.Id)
			if i, ok := index[id]; ok {
				results[i].Timestamps = append(results[i].Timestamps, r.Timestamps...)
				results[i].Values = append(results[i].Values, r.Values...)
				results[i].Messages = append(results[i].Messages, r.Messages...)
				results[i].StatusCode = r.StatusCode
				continue
			}
			index[id] = len(results)
			results = append(results, r)
		}
	}
	return Result(results)
}

// Result turns GetMetricData's results into what conditions see, or says
// why there is none.
func Result(results []types.MetricDataResult) (provider.Result, error) {
	out := make([]any, 0, len(results))
	values := 0
	for _, r := range results {
		if r.StatusCode == types.StatusCodeInternalError {
			return provider.Result{}, fmt.Errorf("CloudWatch answered query %q with status InternalError%s", aws.ToString(r.Id), messages(r.Messages))
		}
		ts := make([]any, len(r.Timestamps))
		for i, t := range r.Timestamps {
			ts[i] = t
		}
		vs := make([]any, len(r.Values))
		for i, v := range r.Values {
			vs[i] = v
		}
		ms := make([]any, len(r.Messages))
		for i, m := range r.Messages {
			ms[i] = map[string]any{"Code": aws.ToString(m.Code), "Value": aws.ToString(m.Value)}
		}
		values += len(r.Values)
		out = append(out, map[string]any{
			"Id": aws.ToString(r.Id), "Label": aws.ToString(r.Label), "StatusCode": string(r.StatusCode),
			"Timestamps": ts, "Values": vs, "Messages": ms,
		})
	}
	// A query CloudWatch answered Complete with no points is an answer:
	// a count metric such as HTTPCode_Target_5XX_Count publishes nothing
	// while there are no errors, and Argo hands conditions the empty list
	// (`all(result[0].Values, ...)` holds). Only no complete query at all
	// is no data; a condition that cannot be evaluated on an empty list is
	// still no data, as everywhere in coalmine.
	complete := false
	for _, r := range out {
		if r.(map[string]any)["StatusCode"] == string(types.StatusCodeComplete) {
			complete = true
		}
	}
	if values == 0 && !complete {
		return provider.Result{}, fmt.Errorf("no data points in the interval for any query: %w", provider.ErrNoData)
	}
	return provider.Result{Value: out}, nil
}

func messages(ms []types.MessageData) string {
	if len(ms) == 0 {
		return ""
	}
	s := ":"
	for _, m := range ms {
		s += fmt.Sprintf(" %s %s;", aws.ToString(m.Code), aws.ToString(m.Value))
	}
	return s
}

// Queries converts the spec's queries (placeholders already filled) into
// the API's.
func Queries(qs []spec.CloudWatchMetricDataQuery) ([]types.MetricDataQuery, error) {
	out := make([]types.MetricDataQuery, len(qs))
	for i, q := range qs {
		mq := types.MetricDataQuery{Id: aws.String(q.ID), ReturnData: aws.Bool(q.Returns())}
		if q.Expression != "" {
			mq.Expression = aws.String(q.Expression)
		}
		if q.Label != "" {
			mq.Label = aws.String(q.Label)
		}
		if n, ok, err := q.Period.Seconds(); err != nil {
			return nil, fmt.Errorf("query %q: %w", q.ID, err)
		} else if ok {
			mq.Period = aws.Int32(n)
		}
		if ms := q.MetricStat; ms != nil {
			n, ok, err := ms.Period.Seconds()
			if err != nil || !ok {
				return nil, fmt.Errorf("query %q: metricStat needs a period in whole seconds, not %q", q.ID, ms.Period)
			}
			st := &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String(ms.Metric.Namespace), MetricName: aws.String(ms.Metric.MetricName)},
				Period: aws.Int32(n),
				Stat:   aws.String(ms.Stat),
			}
			for _, d := range ms.Metric.Dimensions {
				st.Metric.Dimensions = append(st.Metric.Dimensions, types.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
			}
			if ms.Unit != "" {
				st.Unit = types.StandardUnit(ms.Unit)
			}
			mq.MetricStat = st
		}
		out[i] = mq
	}
	return out, nil
}
