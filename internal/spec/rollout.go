// Package spec holds coalmine's domain types: the Rollout and
// AnalysisTemplate kinds as users write them, their defaults and their
// validation. It does no I/O; loading files lives in internal/config.
//
// Field comments double as the configuration reference.
package spec

// APIVersion is the only apiVersion coalmine accepts today.
const APIVersion = "coalmine.dev/v1alpha1"

// Kinds of configuration documents.
const (
	KindRollout          = "Rollout"
	KindAnalysisTemplate = "AnalysisTemplate"
)

// Metadata names an object.
type Metadata struct {
	// Name is unique per kind: [a-z0-9-], at most 63 characters, starting and
	// ending with a letter or digit.
	Name string `yaml:"name" json:"name"`
}

// Rollout is one service under coalmine: its listener, its stable and canary
// versions and its strategy.
type Rollout struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion"`
	Kind       string      `yaml:"kind" json:"kind"`
	Metadata   Metadata    `yaml:"metadata" json:"metadata"`
	Spec       RolloutSpec `yaml:"spec" json:"spec"`
}

// RolloutSpec is the desired state of a rollout.
type RolloutSpec struct {
	// Listen is the data-plane address for this rollout, host:port. Required.
	Listen string `yaml:"listen" json:"listen"`
	// TLS terminates TLS on the listener when set.
	TLS *TLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Protocols lists what the listener speaks: h1 (HTTP/1.0 and 1.1),
	// h2 (HTTP/2 over TLS, offered by ALPN next to http/1.1; ignored on a
	// plaintext listener) and h2c (cleartext HTTP/2 with prior knowledge,
	// told apart from HTTP/1.1 by the client preface, so both work on one
	// port; ignored on a TLS listener). Default [h1, h2]: add h2c for gRPC
	// clients without TLS.
	Protocols []string `yaml:"protocols,omitempty" json:"protocols,omitempty"`
	// Stable is the version serving users today. Required.
	Stable VersionSpec `yaml:"stable" json:"stable"`
	// Canary is the new version. Omitted, or equal to stable, means there is
	// nothing to roll out.
	Canary *VersionSpec `yaml:"canary,omitempty" json:"canary,omitempty"`
	// UpstreamTLS verifies https:// endpoints.
	UpstreamTLS *UpstreamTLS `yaml:"upstreamTLS,omitempty" json:"upstreamTLS,omitempty"`
	// HealthCheck turns on active health checks of every endpoint. Omitted
	// (the default), none run: an endpoint takes traffic once a connection
	// to it has succeeded, and only outlier detection takes it out. Most
	// services have no health path, and a check against one that does not
	// exist would mark every endpoint down, so checks are opt-in.
	HealthCheck *HealthCheck `yaml:"healthCheck,omitempty" json:"healthCheck,omitempty"`
	// OutlierDetection ejects endpoints passively after consecutive errors.
	OutlierDetection OutlierDetection `yaml:"outlierDetection" json:"outlierDetection"`
	// ConnectionPool limits concurrency per version.
	ConnectionPool ConnectionPool `yaml:"connectionPool" json:"connectionPool"`
	// TrafficRouting controls how requests are bound to versions.
	TrafficRouting TrafficRouting `yaml:"trafficRouting" json:"trafficRouting"`
	// ProgressDeadline limits waiting for a weight to take effect and for an
	// analysis to see data. Default 10m.
	ProgressDeadline Duration `yaml:"progressDeadline" json:"progressDeadline"`
	// RollbackWindow makes `undo` fast: going back to a version that was
	// stable within the last N completed revisions skips the steps and
	// analysis and moves all traffic at once; 0 runs them on every undo. An
	// integer, or Argo's `{revisions: N}`. Default 1; Argo's default (left
	// out) is 0.
	RollbackWindow *RollbackWindow `yaml:"rollbackWindow,omitempty" json:"rollbackWindow,omitempty"`
	// Strategy lists the canary steps and background analysis.
	Strategy Strategy `yaml:"strategy" json:"strategy"`
	// Notifications choose channels per event type.
	Notifications []Notification `yaml:"notifications,omitempty" json:"notifications,omitempty"`
}

// TLSConfig is a certificate and key for a listener.
type TLSConfig struct {
	CertFile string `yaml:"certFile" json:"certFile"`
	KeyFile  string `yaml:"keyFile" json:"keyFile"`
}

// UpstreamTLS configures verification of https:// endpoints.
type UpstreamTLS struct {
	// CAFile is a PEM bundle; the system roots are used when empty.
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	// ServerName overrides the name verified in the certificate.
	ServerName string `yaml:"serverName,omitempty" json:"serverName,omitempty"`
	// InsecureSkipVerify disables verification; for tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty" json:"insecureSkipVerify,omitempty"`
}

// VersionSpec is a named set of upstream endpoints.
type VersionSpec struct {
	// Version is a free-form label such as v1.4.2. Required.
	Version string `yaml:"version" json:"version"`
	// Endpoints are base URLs, http://host:port (HTTP/1.1), https://host:port
	// (HTTP/2 by ALPN for HTTP/2 clients, else HTTP/1.1) or h2c://host:port
	// (cleartext HTTP/2, such as a gRPC server without TLS). At least one.
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
}

// HealthCheck configures active checks; an endpoint is healthy after
// HealthyThreshold consecutive 2xx/3xx answers and unhealthy after
// UnhealthyThreshold consecutive failures. When every endpoint of a
// version is marked unhealthy the proxy still tries them (a panic
// threshold): a health check never refuses all traffic on its own.
type HealthCheck struct {
	// Path is requested with GET. Default /health. Not used with grpc.
	Path string `yaml:"path" json:"path"`
	// GRPC checks with the gRPC health protocol instead of a GET: a call of
	// grpc.health.v1.Health/Check passes when it answers SERVING. It needs
	// h2c:// or https:// endpoints (gRPC is HTTP/2).
	GRPC *GRPCHealthCheck `yaml:"grpc,omitempty" json:"grpc,omitempty"`
	// Interval between checks of one endpoint. Default 10s, at least 100ms.
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout of one check. Default 2s, at least 10ms.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// HealthyThreshold default 2.
	HealthyThreshold int `yaml:"healthyThreshold" json:"healthyThreshold"`
	// UnhealthyThreshold default 3.
	UnhealthyThreshold int `yaml:"unhealthyThreshold" json:"unhealthyThreshold"`
	// Disabled turns the checks off while keeping the block.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// GRPCHealthCheck is the gRPC health protocol's question.
type GRPCHealthCheck struct {
	// Service is the service name asked about, such as shop.v1.Cart; empty
	// (the default) asks about the server as a whole.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
}

// OutlierDetection ejects an endpoint after consecutive 5xx answers or
// connection errors, for EjectionTime.
type OutlierDetection struct {
	// ConsecutiveErrors default 5. An explicit 0 is rejected (it would read
	// as "disabled" but mean "default"); a large value all but disables ejection.
	ConsecutiveErrors int `yaml:"consecutiveErrors" json:"consecutiveErrors"`
	// EjectionTime default 30s.
	EjectionTime Duration `yaml:"ejectionTime" json:"ejectionTime"`
}

// ConnectionPool limits concurrent upstream requests per version. Requests
// beyond MaxConnections wait, up to MaxPendingRequests of them; the rest get
// a 503 generated by coalmine and are counted as overflow.
type ConnectionPool struct {
	// MaxConnections default 1024.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxPendingRequests default 1024.
	MaxPendingRequests int `yaml:"maxPendingRequests" json:"maxPendingRequests"`
}

// TrafficRouting controls assignment of requests to versions.
type TrafficRouting struct {
	// Router is the load balancer that carries the traffic: coalmine's own
	// proxy when left out, or an HAProxy or NGINX the team already runs.
	Router     Router     `yaml:"router,omitempty" json:"router,omitzero"`
	Assignment Assignment `yaml:"assignment" json:"assignment"`
	// HeaderRoutes are always-on overrides evaluated first, in order.
	HeaderRoutes []HeaderRoute `yaml:"headerRoutes,omitempty" json:"headerRoutes,omitempty"`
	Timeouts     Timeouts      `yaml:"timeouts" json:"timeouts"`
	// VersionHeader is the response header naming the version that served
	// the request. Default X-Coalmine-Version; "-" turns it off.
	VersionHeader string `yaml:"versionHeader" json:"versionHeader"`
	// Balancer picks an endpoint within a version: least-requests (default)
	// or round-robin.
	Balancer string `yaml:"balancer" json:"balancer"`
	// MirrorMaxBodyBytes caps the request body buffered for mirroring.
	// Default 1048576 (1 MiB); larger bodies are not mirrored.
	MirrorMaxBodyBytes int64 `yaml:"mirrorMaxBodyBytes" json:"mirrorMaxBodyBytes"`
	// ClientLimits bound what clients may hold on the listener.
	ClientLimits ClientLimits `yaml:"clientLimits" json:"clientLimits"`
	// GRPCErrorCodes are the gRPC status codes that count as a version's
	// errors (in result.errorRate and the judges), by name. Default
	// [UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS], as
	// Istio and Linkerd count them.
	GRPCErrorCodes []string `yaml:"grpcErrorCodes,omitempty" json:"grpcErrorCodes,omitempty"`
}

// ClientLimits bound the resources one listener gives its clients, so that
// no client, hostile or broken, can starve the others.
type ClientLimits struct {
	// MaxConnections caps the open client connections of the listener;
	// a connection over the cap is answered 503 and closed at once, so
	// the process never runs out of file descriptors. Default 10000,
	// lowered at start (with a warning) to what the process's
	// file-descriptor limit (ulimit -n) can hold: two descriptors per
	// connection, one to the client and one upstream.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxHeaderBytes caps the request line and header fields together.
	// A request line longer than this is answered 414, header fields
	// beyond it 431. Default 8192, between 1024 and 1048576. Each
	// connection holds a read buffer of this size.
	MaxHeaderBytes int `yaml:"maxHeaderBytes" json:"maxHeaderBytes"`
}

// Assignment binds a request to a version.
type Assignment struct {
	// UserHeader names a request header carrying a stable user key.
	UserHeader string `yaml:"userHeader,omitempty" json:"userHeader,omitempty"`
	// Cookie is the subject cookie used when there is no user key.
	Cookie SubjectCookie `yaml:"cookie" json:"cookie"`
}

// SubjectCookie holds a random subject id (never the version).
type SubjectCookie struct {
	// Name default coalmine_subject.
	Name string `yaml:"name" json:"name"`
	// TTL default 24h.
	TTL Duration `yaml:"ttl" json:"ttl"`
	// Set false disables the subject cookie. Default true.
	Set *bool `yaml:"set,omitempty" json:"set,omitempty"`
}

// Enabled reports whether the subject cookie is issued.
func (c SubjectCookie) Enabled() bool { return c.Set == nil || *c.Set }

// Timeouts of the data plane, toward clients and toward upstreams.
type Timeouts struct {
	// Connect is the time to open a connection to an upstream. Default 2s,
	// at least 1ms.
	Connect Duration `yaml:"connect" json:"connect"`
	// Response is the time from sending a request to the upstream's
	// response headers (its first byte). It ends there: a body that keeps
	// flowing (server-sent events, long polls, large downloads) is limited
	// only by Idle. Default 30s, at least 1ms.
	Response Duration `yaml:"response" json:"response"`
	// Idle is the longest silence allowed on a connection: a keep-alive
	// client connection between requests, an upstream connection in the
	// pool, and any read or write of a body in progress, either way.
	// Default 90s, at least 100ms.
	Idle Duration `yaml:"idle" json:"idle"`
	// RequestHeaders is the time a client has to send a request's line and
	// headers, counted from the connection's start (first request) or
	// from the request's first byte (later requests). A client too slow
	// is answered 408 and closed. Default 10s, at least 100ms.
	RequestHeaders Duration `yaml:"requestHeaders" json:"requestHeaders"`
}

// Role is the part a version plays in a rollout.
type Role string

// Roles.
const (
	RoleStable Role = "stable"
	RoleCanary Role = "canary"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleStable || r == RoleCanary }

// HeaderRoute sends matching requests to one version. Each match entry is an
// alternative: the route applies when any one of them holds, as each entry
// of Argo's setHeaderRoute is its own Istio match.
type HeaderRoute struct {
	Name  string        `yaml:"name" json:"name"`
	Match []HeaderMatch `yaml:"match,omitempty" json:"match,omitempty"`
	// To is canary (default) or stable.
	To Role `yaml:"to,omitempty" json:"to,omitempty"`
}

// HeaderMatch matches one request header.
type HeaderMatch struct {
	HeaderName  string      `yaml:"headerName" json:"headerName"`
	HeaderValue StringMatch `yaml:"headerValue" json:"headerValue"`
}

// StringMatch has exactly one of Exact, Prefix or Regex (RE2 syntax).
type StringMatch struct {
	Exact  *string `yaml:"exact,omitempty" json:"exact,omitempty"`
	Prefix *string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	Regex  *string `yaml:"regex,omitempty" json:"regex,omitempty"`
}

// MirrorRoute copies matching requests served by stable to the canary.
type MirrorRoute struct {
	Name string `yaml:"name" json:"name"`
	// Percentage of matching requests mirrored, 0..100. Default 100.
	Percentage *float64 `yaml:"percentage,omitempty" json:"percentage,omitempty"`
	// Match lists alternatives; a request matching any of them is mirrored
	// (idempotent methods only, unless a match names the method). At least
	// one is required, as in Argo; a step with only `name` removes the route.
	Match []RequestMatch `yaml:"match,omitempty" json:"match,omitempty"`
}

// RequestMatch matches a request; all given fields must hold.
type RequestMatch struct {
	Method  *StringMatch           `yaml:"method,omitempty" json:"method,omitempty"`
	Path    *StringMatch           `yaml:"path,omitempty" json:"path,omitempty"`
	Headers map[string]StringMatch `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// Strategy holds the canary strategy.
type Strategy struct {
	Canary CanaryStrategy `yaml:"canary" json:"canary"`
}

// CanaryStrategy is the list of steps and the background analysis.
type CanaryStrategy struct {
	Analysis *BackgroundAnalysis `yaml:"analysis,omitempty" json:"analysis,omitempty"`
	Steps    []Step              `yaml:"steps,omitempty" json:"steps,omitempty"`
}

// BackgroundAnalysis runs from StartingStep to the end of the rollout.
type BackgroundAnalysis struct {
	Templates    []TemplateRef `yaml:"templates" json:"templates"`
	StartingStep int           `yaml:"startingStep,omitempty" json:"startingStep,omitempty"`
	Args         []Arg         `yaml:"args,omitempty" json:"args,omitempty"`
	// DryRun marks the metrics whose names match as dry-run for this
	// analysis (Argo's shape), in addition to the templates' own.
	DryRun []MetricSelector `yaml:"dryRun,omitempty" json:"dryRun,omitempty"`
	// MeasurementRetention overrides the templates' for this analysis.
	MeasurementRetention []MeasurementRetention `yaml:"measurementRetention,omitempty" json:"measurementRetention,omitempty"`
}

// TemplateRef names an AnalysisTemplate.
type TemplateRef struct {
	TemplateName string `yaml:"templateName" json:"templateName"`
	// ClusterScope is Argo's pointer to a ClusterAnalysisTemplate; coalmine
	// has one scope, so it is accepted and changes nothing.
	ClusterScope bool `yaml:"clusterScope,omitempty" json:"clusterScope,omitempty"`
}

// Arg is a template argument value: Value, or ValueFrom.
type Arg struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// ValueFrom takes the value from a secret or from the rollout, as
	// Argo's args[].valueFrom does.
	ValueFrom *ArgValueFrom `yaml:"valueFrom,omitempty" json:"valueFrom,omitempty"`
}

// ArgValueFrom is a union: exactly one field is set. Secret values are read
// when a measurement runs and are never stored with the analysis run.
type ArgValueFrom struct {
	// Env reads the value from an environment variable of the server.
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File reads the value from a file (a trailing newline is dropped).
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// SecretKeyRef is Argo's Kubernetes secret reference, read from the
	// file $COALMINE_SECRETS_DIR/NAME/KEY (default /run/secrets/NAME/KEY),
	// where a Kubernetes secret volume or a Docker secret puts it.
	SecretKeyRef *SecretKeyRef `yaml:"secretKeyRef,omitempty" json:"secretKeyRef,omitempty"`
	// FieldRef is Argo's reference to a field of the rollout; only
	// metadata.name (the rollout's name) has a meaning outside Kubernetes.
	FieldRef *FieldRef `yaml:"fieldRef,omitempty" json:"fieldRef,omitempty"`
	// PodTemplateHashValue is Argo's Stable or Latest; in coalmine the
	// stable version or the canary version.
	PodTemplateHashValue string `yaml:"podTemplateHashValue,omitempty" json:"podTemplateHashValue,omitempty"`
}

// SecretKeyRef names a key of a Kubernetes secret.
type SecretKeyRef struct {
	// Name is the secret's name: a directory under $COALMINE_SECRETS_DIR.
	Name string `yaml:"name" json:"name"`
	// Key is the key in the secret: a file in that directory.
	Key string `yaml:"key" json:"key"`
}

// FieldRef names a field of the rollout by its path.
type FieldRef struct {
	// FieldPath is metadata.name; other Kubernetes paths are errors.
	FieldPath string `yaml:"fieldPath" json:"fieldPath"`
}

// SecretsDirEnv names the environment variable that says where
// secretKeyRef files are; DefaultSecretsDir is used when it is unset.
const (
	SecretsDirEnv     = "COALMINE_SECRETS_DIR"
	DefaultSecretsDir = "/run/secrets"
)

// Secret returns the secret reference the value is read from, or nil when
// it is not a secret. dir is where secretKeyRef files are.
func (v *ArgValueFrom) Secret(dir string) *SecretRef {
	switch {
	case v == nil:
		return nil
	case v.Env != "":
		return &SecretRef{Env: v.Env}
	case v.File != "":
		return &SecretRef{File: v.File}
	case v.SecretKeyRef != nil:
		return &SecretRef{File: dir + "/" + v.SecretKeyRef.Name + "/" + v.SecretKeyRef.Key}
	}
	return nil
}

// Values of podTemplateHashValue.
const (
	PodTemplateHashStable = "Stable"
	PodTemplateHashLatest = "Latest"
)

// Step is a union: exactly one field is set.
type Step struct {
	// SetWeight is the canary percentage, 0..100 with two decimals.
	SetWeight *float64 `yaml:"setWeight,omitempty" json:"setWeight,omitempty"`
	// Pause waits for Duration, or for `promote` when Duration is omitted.
	Pause *PauseStep `yaml:"pause,omitempty" json:"pause,omitempty"`
	// Analysis runs templates and completes when they succeed.
	Analysis *AnalysisStep `yaml:"analysis,omitempty" json:"analysis,omitempty"`
	// SetHeaderRoute adds (or, with only a name, removes) a header route.
	SetHeaderRoute *HeaderRoute `yaml:"setHeaderRoute,omitempty" json:"setHeaderRoute,omitempty"`
	// SetMirrorRoute adds (or, with only a name, removes) a mirror route.
	SetMirrorRoute *MirrorRoute `yaml:"setMirrorRoute,omitempty" json:"setMirrorRoute,omitempty"`
}

// PauseStep waits; a nil Duration waits indefinitely.
type PauseStep struct {
	Duration *Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// AnalysisStep runs templates inline.
type AnalysisStep struct {
	Templates []TemplateRef `yaml:"templates" json:"templates"`
	Args      []Arg         `yaml:"args,omitempty" json:"args,omitempty"`
	// DryRun marks the metrics whose names match as dry-run for this
	// analysis (Argo's shape), in addition to the templates' own.
	DryRun []MetricSelector `yaml:"dryRun,omitempty" json:"dryRun,omitempty"`
	// MeasurementRetention overrides the templates' for this analysis.
	MeasurementRetention []MeasurementRetention `yaml:"measurementRetention,omitempty" json:"measurementRetention,omitempty"`
}

// Notification sends events of the listed types to one channel.
type Notification struct {
	// On lists event types, or "*" for all.
	On        []string          `yaml:"on" json:"on"`
	Webhook   *WebhookChannel   `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	Slack     *SlackChannel     `yaml:"slack,omitempty" json:"slack,omitempty"`
	PagerDuty *PagerDutyChannel `yaml:"pagerduty,omitempty" json:"pagerduty,omitempty"`
}

// SecretRef reads a secret from an environment variable or a file at load
// time. Secrets are never printed.
type SecretRef struct {
	Env  string `yaml:"env,omitempty" json:"env,omitempty"`
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// WebhookChannel posts the event as JSON.
type WebhookChannel struct {
	URL     string            `yaml:"url,omitempty" json:"url,omitempty"`
	URLFrom *SecretRef        `yaml:"urlFrom,omitempty" json:"urlFrom,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// SlackChannel posts to an incoming webhook.
type SlackChannel struct {
	WebhookURLFrom *SecretRef `yaml:"webhookURLFrom" json:"webhookURLFrom"`
}

// PagerDutyChannel triggers and resolves incidents via Events API v2.
type PagerDutyChannel struct {
	RoutingKeyFrom *SecretRef `yaml:"routingKeyFrom" json:"routingKeyFrom"`
}
