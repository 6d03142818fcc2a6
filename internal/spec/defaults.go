package spec

import "time"

// Defaults documented in the field comments of Rollout and AnalysisTemplate.
// They are named so that the proxy, the docs and the tests agree on one value.
const (
	DefaultHealthCheckPath       = "/health"
	DefaultHealthCheckInterval   = Duration(10 * time.Second)
	DefaultHealthCheckTimeout    = Duration(2 * time.Second)
	MinHealthCheckInterval       = Duration(100 * time.Millisecond)
	MinHealthCheckTimeout        = Duration(10 * time.Millisecond)
	DefaultHealthyThreshold      = 2
	DefaultUnhealthyThreshold    = 3
	DefaultConsecutiveErrors     = 5
	DefaultEjectionTime          = Duration(30 * time.Second)
	DefaultMaxConnections        = 1024
	DefaultMaxPendingRequests    = 1024
	DefaultCookieName            = "coalmine_subject"
	DefaultCookieTTL             = Duration(24 * time.Hour)
	DefaultConnectTimeout        = Duration(2 * time.Second)
	DefaultResponseTimeout       = Duration(30 * time.Second)
	DefaultIdleTimeout           = Duration(90 * time.Second)
	DefaultRequestHeadersTimeout = Duration(10 * time.Second)
	DefaultMaxClientConnections  = 10000
	DefaultMaxHeaderBytes        = 8192
	MinHeaderBytes               = 1024
	MaxHeaderBytes               = 1 << 20
	DefaultVersionHeader         = "X-Coalmine-Version"
	DefaultBalancer              = BalancerLeastRequests
	DefaultMirrorMaxBodyBytes    = int64(1 << 20)
	DefaultProgressDeadline      = Duration(10 * time.Minute)
	DefaultRollbackWindow        = 1
	DefaultHeaderRouteTarget     = RoleCanary
	DefaultMirrorPercentage      = 100.0
	DefaultFailureLimit          = 0
	DefaultInconclusiveLimit     = 0
	DefaultConsecutiveErrorLimit = 4
	DefaultOnNoData              = OnNoDataWait
	DefaultJudgeMethod           = JudgeMethodSequential
	DefaultJudgeDirection        = DirectionIncrease
	DefaultJudgeOnLimit          = OnLimitPass
)

// VersionHeaderOff as trafficRouting.versionHeader turns the version
// response header off.
const VersionHeaderOff = "-"

// Listener protocols for spec.protocols.
const (
	ProtocolH1  = "h1"
	ProtocolH2  = "h2"
	ProtocolH2C = "h2c"
)

// DefaultProtocols is spec.protocols when omitted, as Caddy's default.
func DefaultProtocols() []string { return []string{ProtocolH1, ProtocolH2} }

// HasProtocol reports whether the listener of s speaks proto.
func (s *RolloutSpec) HasProtocol(proto string) bool {
	for _, p := range s.Protocols {
		if p == proto {
			return true
		}
	}
	return false
}

// GRPCCodeNames are the gRPC status codes' names, indexed by code.
var GRPCCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// DefaultGRPCErrorCodes is trafficRouting.grpcErrorCodes when omitted.
func DefaultGRPCErrorCodes() []string {
	return []string{"UNKNOWN", "DEADLINE_EXCEEDED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
}

// Balancers for trafficRouting.balancer.
const (
	BalancerLeastRequests = "least-requests"
	BalancerRoundRobin    = "round-robin"
)

// Policies for a metric's onNoData (SPEC §5.2).
const (
	OnNoDataWait         = "wait"
	OnNoDataInconclusive = "inconclusive"
	OnNoDataFail         = "fail"
	OnNoDataPass         = "pass"
)

// Values of the judge fields (SPEC §5.4).
const (
	JudgeCompareErrorRate = "error-rate"
	JudgeCompareLatency   = "latency"
	JudgeMethodSequential = "sequential"
	JudgeMethodFixed      = "fixed"
	JudgeMethodKayenta    = "kayenta"
	DirectionIncrease     = "increase"
	DirectionDecrease     = "decrease"
	DirectionEither       = "either"
	OnLimitPass           = "pass"
	OnLimitInconclusive   = "inconclusive"
)

// Unlimited as a metric's failureLimit, inconclusiveLimit or
// consecutiveErrorLimit never ends the run on that count.
const Unlimited = -1

// SetDefaults fills every field left at its zero value with the default
// documented on the field. It is idempotent. Call it before Validate: Validate
// checks the effective configuration, so a zero interval there is an error.
//
// Fields whose zero value is indistinguishable from "unset" (plain ints and
// durations) cannot be set to zero explicitly; internal/config reports an
// explicit zero in such a field instead of silently replacing it.
func (r *Rollout) SetDefaults() {
	s := &r.Spec

	if hc := s.HealthCheck; hc != nil {
		setString(&hc.Path, DefaultHealthCheckPath)
		setDuration(&hc.Interval, DefaultHealthCheckInterval)
		setDuration(&hc.Timeout, DefaultHealthCheckTimeout)
		setInt(&hc.HealthyThreshold, DefaultHealthyThreshold)
		setInt(&hc.UnhealthyThreshold, DefaultUnhealthyThreshold)
	}

	if len(s.Protocols) == 0 {
		s.Protocols = DefaultProtocols()
	}
	setInt(&s.OutlierDetection.ConsecutiveErrors, DefaultConsecutiveErrors)
	setDuration(&s.OutlierDetection.EjectionTime, DefaultEjectionTime)

	setInt(&s.ConnectionPool.MaxConnections, DefaultMaxConnections)
	setInt(&s.ConnectionPool.MaxPendingRequests, DefaultMaxPendingRequests)

	tr := &s.TrafficRouting
	setString(&tr.Assignment.Cookie.Name, DefaultCookieName)
	setDuration(&tr.Assignment.Cookie.TTL, DefaultCookieTTL)
	for i := range tr.HeaderRoutes {
		tr.HeaderRoutes[i].setDefaults()
	}
	setDuration(&tr.Timeouts.Connect, DefaultConnectTimeout)
	setDuration(&tr.Timeouts.Response, DefaultResponseTimeout)
	setDuration(&tr.Timeouts.Idle, DefaultIdleTimeout)
	setDuration(&tr.Timeouts.RequestHeaders, DefaultRequestHeadersTimeout)
	setInt(&tr.ClientLimits.MaxConnections, DefaultMaxClientConnections)
	setInt(&tr.ClientLimits.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setString(&tr.VersionHeader, DefaultVersionHeader)
	setString(&tr.Balancer, DefaultBalancer)
	if tr.GRPCErrorCodes == nil {
		tr.GRPCErrorCodes = DefaultGRPCErrorCodes()
	}
	if tr.MirrorMaxBodyBytes == 0 {
		tr.MirrorMaxBodyBytes = DefaultMirrorMaxBodyBytes
	}

	setDuration(&s.ProgressDeadline, DefaultProgressDeadline)
	if s.RollbackWindow == nil {
		w := RollbackWindow(DefaultRollbackWindow)
		s.RollbackWindow = &w
	}

	for i := range s.Strategy.Canary.Steps {
		st := &s.Strategy.Canary.Steps[i]
		if st.SetHeaderRoute != nil {
			st.SetHeaderRoute.setDefaults()
		}
		if st.SetMirrorRoute != nil && !st.SetMirrorRoute.Removes() {
			if st.SetMirrorRoute.Percentage == nil {
				p := DefaultMirrorPercentage
				st.SetMirrorRoute.Percentage = &p
			}
		}
	}
}

// setDefaults fills To, except on a route that only has a name: that form
// removes the route (SPEC §4) and must stay recognisable as such.
func (h *HeaderRoute) setDefaults() {
	if h.Removes() {
		return
	}
	if h.To == "" {
		h.To = DefaultHeaderRouteTarget
	}
}

// Removes reports whether the route only has a name, which in a
// setHeaderRoute step removes the route added earlier under that name.
func (h HeaderRoute) Removes() bool { return len(h.Match) == 0 && h.To == "" }

// Removes reports whether the route only has a name, which in a
// setMirrorRoute step removes the route added earlier under that name.
func (m MirrorRoute) Removes() bool { return len(m.Match) == 0 && m.Percentage == nil }

// SetDefaults fills the per-metric defaults of SPEC §5.1 and §5.4. It is
// idempotent; call it before Validate.
func (t *AnalysisTemplate) SetDefaults() {
	for i := range t.Spec.Metrics {
		m := &t.Spec.Metrics[i]
		setIntPtr(&m.FailureLimit, DefaultFailureLimit)
		setIntPtr(&m.InconclusiveLimit, DefaultInconclusiveLimit)
		setIntPtr(&m.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit)
		setString(&m.OnNoData, DefaultOnNoData)
		if j := m.Judge; j != nil {
			setString(&j.Method, DefaultJudgeMethod)
			setString(&j.Direction, DefaultJudgeDirection)
			setString(&j.OnLimit, DefaultJudgeOnLimit)
		}
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDuration(p *Duration, def Duration) {
	if *p == 0 {
		*p = def
	}
}

func setIntPtr(p **int, def int) {
	if *p == nil {
		v := def
		*p = &v
	}
}
