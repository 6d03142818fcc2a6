package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("30s", "1m30s")
// in YAML and JSON. A bare integer, or a string of digits, is a number of
// seconds, as Argo Rollouts and Kubernetes read `duration: 10` and
// `timeout: 40`; it is always written back with its unit.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way it is written in config.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a duration string, or a whole number of seconds, and
// rejects negative values.
func ParseDuration(s string) (Duration, error) {
	if secs, ok := wholeSeconds(s); ok {
		return secs, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number with a unit, such as 500ms, 30s, 5m or 1h, or whole seconds", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(v), nil
}

// maxSeconds keeps a number of seconds inside time.Duration (about 292 years).
const maxSeconds = int64(math.MaxInt64 / int64(time.Second))

// wholeSeconds reads "10" as ten seconds. Signs, decimals and exponents
// are not seconds: they fall through to time.ParseDuration's error.
func wholeSeconds(s string) (Duration, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxSeconds {
		return 0, false
	}
	return Duration(time.Duration(n) * time.Second), true
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, ok := wholeSeconds(n.Value); ok {
			*d = v
			return nil
		}
		switch v := strings.TrimPrefix(n.Value, "+"); {
		case strings.HasPrefix(v, "-"):
			return fmt.Errorf("invalid duration %s: must not be negative", n.Value)
		case strings.Trim(v, "0123456789") != "":
			return fmt.Errorf("invalid duration %s: write whole seconds in decimal, such as 30, or use a unit, such as 500ms, 30s, 5m or 1h", n.Value)
		}
		return fmt.Errorf("invalid duration %s: a bare number is whole seconds, at most %d; or use a unit, such as 5m or 1h", n.Value, maxSeconds)
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 500ms, 30s, 5m or 1h", n.Value)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		// A JSON number is seconds, as in YAML.
		if v, ok := wholeSeconds(string(b)); ok {
			*d = v
			return nil
		}
		return fmt.Errorf("invalid duration %s: use a string with a unit, such as \"30s\", or whole seconds", string(b))
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
