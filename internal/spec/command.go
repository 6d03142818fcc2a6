package spec

import (
	"strings"
	"time"
)

// DefaultCommandTimeout limits a command whose metric sets no timeout: long
// enough for a smoke-test suite, and a check that hangs is still cut off.
const DefaultCommandTimeout = 5 * time.Minute

// RunTimeout is the time one run of the command may take.
func (c CommandProvider) RunTimeout() time.Duration {
	if c.Timeout != nil && c.Timeout.D() > 0 {
		return c.Timeout.D()
	}
	return DefaultCommandTimeout
}

// CommandProvider runs a program once per measurement, coalmine's
// counterpart of Argo's Job provider: smoke tests and synthetic checks. It
// runs on the coalmine server, with the server's privileges.
type CommandProvider struct {
	// The program and its arguments, run directly, without a shell (write
	// `["sh", "-c", "..."]` for one, and let the script read values from
	// the environment). Elements may use `{{args.NAME}}` and `{{rollout.*}}`.
	// The program is a name looked up in PATH, an absolute path, or a path
	// relative to `dir`.
	Command []string `yaml:"command" json:"command"`
	// Extra environment variables. The command also gets the server's
	// environment without its COALMINE_ variables, every analysis argument
	// as `COALMINE_ARG_<NAME>` (upper-cased, other characters than letters
	// and digits as `_`), and `COALMINE_ROLLOUT`, `COALMINE_CANARY_VERSION`,
	// `COALMINE_STABLE_VERSION` and `COALMINE_METRIC`. Values may use
	// substitutions.
	Env []EnvVar `yaml:"env,omitempty" json:"env,omitempty"`
	// Absolute working directory of the command; a relative program path
	// (`./smoke.sh`) is resolved against it. May use substitutions.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// Limit for one run; when it passes, the command's whole process group
	// is killed and the measurement is an Error.
	Timeout *Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// EnvVar is one environment variable of a command.
type EnvVar struct {
	// Name of the variable; names starting with `COALMINE_` are reserved.
	Name string `yaml:"name" json:"name"`
	// Its value; may use substitutions.
	Value string `yaml:"value" json:"value"`
}

// Environment variables the command provider sets for every command
// besides one COALMINE_ARG_<NAME> per analysis argument (see ArgEnvName).
const (
	EnvPrefix        = "COALMINE_"
	EnvArgPrefix     = EnvPrefix + "ARG_"
	EnvRollout       = EnvPrefix + "ROLLOUT"
	EnvCanaryVersion = EnvPrefix + "CANARY_VERSION"
	EnvStableVersion = EnvPrefix + "STABLE_VERSION"
	EnvMetric        = EnvPrefix + "METRIC"
)

// ArgEnvName is the environment variable that carries analysis argument
// name to a command: COALMINE_ARG_ and the name upper-cased, with every
// character other than an ASCII letter or digit replaced by '_'
// (service-name → COALMINE_ARG_SERVICE_NAME). The prefix keeps arguments
// from replacing PATH or HOME by accident.
func ArgEnvName(name string) string {
	return EnvArgPrefix + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}

// placeholderEnvName is the environment variable holding the value of a
// substitution ("args.url", "rollout.name"), for messages that tell users
// to read a value from the environment; "" when there is none.
func placeholderEnvName(placeholder string) string {
	if arg, ok := strings.CutPrefix(placeholder, "args."); ok {
		return ArgEnvName(arg)
	}
	switch placeholder {
	case "rollout.name":
		return EnvRollout
	case "rollout.canary.version":
		return EnvCanaryVersion
	case "rollout.stable.version":
		return EnvStableVersion
	}
	return ""
}
