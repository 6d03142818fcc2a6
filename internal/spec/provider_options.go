package spec

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// PrometheusRangeQuery is Argo Rollouts' rangeQuery: the query is evaluated
// at every step from start to end.
type PrometheusRangeQuery struct {
	// Start is an expr-lang expression giving a time, such as
	// `now() - duration("1h")` (substitutions are filled first, so
	// `duration("{{args.lookback}}")` works).
	Start string `yaml:"start" json:"start"`
	// End is an expr-lang expression giving a time, such as `now()`.
	End string `yaml:"end" json:"end"`
	// Step is the resolution: the time between two evaluations.
	Step *Duration `yaml:"step" json:"step"`
}

// Authentication is a provider's credentials: set exactly one method.
// Secret values are written in the file (often as {{args.NAME}}) or, better,
// read from the environment or a file with the matching *From field.
type Authentication struct {
	// BasicAuth sends a user name and password (HTTP Basic).
	BasicAuth *BasicAuth `yaml:"basicAuth,omitempty" json:"basicAuth,omitempty"`
	// Bearer sends `Authorization: Bearer TOKEN`.
	Bearer *BearerAuth `yaml:"bearer,omitempty" json:"bearer,omitempty"`
	// OAuth2 fetches a token with the OAuth2 client-credentials flow and
	// sends it as a bearer token, renewing it before it expires.
	OAuth2 *OAuth2Auth `yaml:"oauth2,omitempty" json:"oauth2,omitempty"`
	// SigV4 is accepted so that Argo templates parse, but it is an error:
	// coalmine does not sign requests for Amazon Managed Prometheus.
	SigV4 *SigV4Auth `yaml:"sigv4,omitempty" json:"sigv4,omitempty"`
}

// BasicAuth is HTTP Basic authentication.
type BasicAuth struct {
	// Username is the user name; it may use substitutions.
	Username string `yaml:"username" json:"username"`
	// Password is the password written in the file (or as {{args.NAME}});
	// set it or passwordFrom.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFrom reads the password from `{env: NAME}` or `{file: PATH}`
	// at each query, so it never appears in the file.
	PasswordFrom *SecretRef `yaml:"passwordFrom,omitempty" json:"passwordFrom,omitempty"`
}

// BearerAuth sends a fixed bearer token.
type BearerAuth struct {
	// Token is the token written in the file (or as {{args.NAME}}); set it
	// or tokenFrom.
	Token string `yaml:"token,omitempty" json:"token,omitempty"`
	// TokenFrom reads the token from `{env: NAME}` or `{file: PATH}` at each
	// query, so a rotated token file is picked up.
	TokenFrom *SecretRef `yaml:"tokenFrom,omitempty" json:"tokenFrom,omitempty"`
}

// OAuth2Auth is the OAuth2 client-credentials flow (RFC 6749 §4.4), in
// Argo Rollouts' shape.
type OAuth2Auth struct {
	// TokenURL is the token endpoint (http:// or https://).
	TokenURL string `yaml:"tokenUrl" json:"tokenUrl"`
	// ClientID is the client's identifier.
	ClientID string `yaml:"clientId" json:"clientId"`
	// ClientSecret is the client's secret written in the file (or as
	// {{args.NAME}}); set it or clientSecretFrom.
	ClientSecret string `yaml:"clientSecret,omitempty" json:"clientSecret,omitempty"`
	// ClientSecretFrom reads the client's secret from `{env: NAME}` or
	// `{file: PATH}`.
	ClientSecretFrom *SecretRef `yaml:"clientSecretFrom,omitempty" json:"clientSecretFrom,omitempty"`
	// Scopes are requested with the token.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// SigV4Auth is Argo Rollouts' AWS SigV4 signing, which coalmine does not
// support; the fields exist so the error can say so instead of "unknown
// field".
type SigV4Auth struct {
	// Region is the AWS region (not supported).
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Profile is the AWS credentials profile (not supported).
	Profile string `yaml:"profile,omitempty" json:"profile,omitempty"`
	// RoleARN is the IAM role to assume (not supported).
	RoleARN string `yaml:"roleArn,omitempty" json:"roleArn,omitempty"`
}

// JSONValue is any JSON value written as YAML: an object, a list, a string,
// a number, a boolean or null. It is stored and sent as JSON.
type JSONValue struct {
	raw json.RawMessage
}

// NewJSONValue returns the value whose JSON encoding is raw.
func NewJSONValue(raw string) (*JSONValue, error) {
	if !json.Valid([]byte(raw)) {
		return nil, errors.New("not valid JSON")
	}
	return &JSONValue{raw: json.RawMessage(raw)}, nil
}

// Raw returns the JSON encoding.
func (j JSONValue) Raw() []byte { return j.raw }

// UnmarshalYAML implements yaml.Unmarshaler: the YAML value is converted to
// JSON. Mapping keys must be strings, as JSON has no other keys.
func (j *JSONValue) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	v, err := jsonCompatible(v)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot be sent as JSON: %w", err)
	}
	j.raw = raw
	return nil
}

// jsonCompatible checks that what yaml.v3 decoded can be encoded as JSON:
// a mapping with a key that is not a string (`1: x`, `true: x`) cannot.
func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		return nil, errors.New("a JSON body's keys must be strings: quote keys such as 1 or true")
	case []any:
		for i, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}

// MarshalYAML implements yaml.Marshaler.
func (j JSONValue) MarshalYAML() (any, error) {
	var v any
	if err := json.Unmarshal(j.raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// MarshalJSON implements json.Marshaler.
func (j JSONValue) MarshalJSON() ([]byte, error) {
	if len(j.raw) == 0 {
		return []byte("null"), nil
	}
	return j.raw, nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (j *JSONValue) UnmarshalJSON(b []byte) error {
	j.raw = append(json.RawMessage(nil), b...)
	return nil
}
