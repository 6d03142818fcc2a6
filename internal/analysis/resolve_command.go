package analysis

import (
	"fmt"
	"maps"
	"slices"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// commandVars are the rollout values a command finds in its environment.
var commandVars = []struct{ placeholder, env string }{
	{VarRolloutName, spec.EnvRollout},
	{VarCanaryVersion, spec.EnvCanaryVersion},
	{VarStableVersion, spec.EnvStableVersion},
}

// command returns c with its arguments, dir and env values substituted,
// and its env led by the variables coalmine sets: every argument of the
// run as COALMINE_ARG_<NAME> (spec.ArgEnvName), the rollout's name and
// versions, and the metric's name. The user's env comes after them (it
// cannot use the COALMINE_ names, so nothing is replaced). Values reach a
// script through the environment as they are, with no quoting to get
// wrong, which is why every argument is there and not only those the
// command names.
func (s *substituter) command(metric string, c spec.CommandProvider) *spec.CommandProvider {
	field := func(f string) string { return fmt.Sprintf("metric %q provider.command.%s", metric, f) }
	out := c
	out.Command = make([]string, len(c.Command))
	for i, a := range c.Command {
		out.Command[i] = s.fill(field(fmt.Sprintf("command[%d]", i)), a)
	}
	out.Dir = s.fill(field("dir"), c.Dir)
	if s.only {
		// RevealSecrets' pass over a resolved command: its env is built
		// already, and only {{secret.NAME}} values are left to fill.
		out.Env = make([]spec.EnvVar, len(c.Env))
		for i, e := range c.Env {
			out.Env[i] = spec.EnvVar{Name: e.Name, Value: s.fill(field(fmt.Sprintf("env[%d].value", i)), e.Value)}
		}
		return &out
	}

	env := make([]spec.EnvVar, 0, len(s.args)+len(commandVars)+1+len(c.Env))
	byEnv := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(s.args)) {
		n := spec.ArgEnvName(name)
		if other, dup := byEnv[n]; dup {
			s.problems = append(s.problems, fmt.Sprintf("arguments %q and %q would both be %s in the environment of metric %q's command: rename one", other, name, n, metric))
			continue
		}
		byEnv[n] = name
		env = append(env, spec.EnvVar{Name: n, Value: s.args[name]})
	}
	for _, v := range commandVars {
		if val, ok := s.vars[v.placeholder]; ok {
			env = append(env, spec.EnvVar{Name: v.env, Value: val})
		}
	}
	env = append(env, spec.EnvVar{Name: spec.EnvMetric, Value: metric})
	for i, e := range c.Env {
		env = append(env, spec.EnvVar{Name: e.Name, Value: s.fill(field(fmt.Sprintf("env[%d].value", i)), e.Value)})
	}
	out.Env = env
	return &out
}
