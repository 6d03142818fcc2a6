package spec

import (
	"path"
	"slices"
	"strings"
)

// command checks a command provider. Paths are checked for their form
// only (spec does no I/O): whether the program exists is known where it
// runs, and the provider's error says so.
func (v *validator) command(p FieldPath, c CommandProvider, args map[string]bool) {
	cp := p.Child("command")
	if len(c.Command) == 0 {
		v.add(cp, `a command is required: the program and its arguments, such as ["/opt/checks/smoke.sh", "--target", "{{args.url}}"]`)
	}
	for i, a := range c.Command {
		ap := cp.Index(i)
		if strings.ContainsRune(a, 0) {
			v.add(ap, "contains a NUL character, which no program argument can hold")
			continue
		}
		v.placeholders(ap, a, args)
	}
	if len(c.Command) > 0 {
		v.program(cp.Index(0), c.Command[0], c.Dir)
		v.shellScript(cp, c.Command)
	}

	if d := c.Dir; d != "" && checkableURL(d) && !path.IsAbs(d) {
		v.add(p.Child("dir"), "dir %q must be an absolute path: a relative one would depend on the directory coalmine serve was started in", d)
	}
	v.placeholders(p.Child("dir"), c.Dir, args)

	seen := map[string]bool{}
	for i, e := range c.Env {
		ep := p.Child("env").Index(i)
		switch {
		case e.Name == "":
			v.add(ep.Child("name"), "an environment variable name is required")
		case !isEnvName(e.Name):
			v.add(ep.Child("name"), "environment variable name %q may only contain letters, digits and '_', and may not start with a digit", e.Name)
		case strings.HasPrefix(strings.ToUpper(e.Name), EnvPrefix):
			v.add(ep.Child("name"), "names starting with %s are reserved for the values coalmine sets (%sNAME for each argument, %s, %s, %s, %s): use another name",
				EnvPrefix, EnvArgPrefix, EnvRollout, EnvCanaryVersion, EnvStableVersion, EnvMetric)
		case seen[e.Name]:
			v.add(ep.Child("name"), "environment variable %s is set twice", e.Name)
		}
		seen[e.Name] = true
		if strings.ContainsRune(e.Value, 0) {
			v.add(ep.Child("value"), "contains a NUL character, which no environment variable can hold")
		}
		v.placeholders(ep.Child("value"), e.Value, args)
	}
	if c.Timeout != nil {
		v.positive(p.Child("timeout"), *c.Timeout)
	}

}

// argEnvNames checks, for a template with a command metric, that no two
// arguments become the same environment variable, which would hide one.
func (v *validator) argEnvNames(p FieldPath, args []TemplateArg) {
	byEnv := map[string]string{}
	for i, a := range args {
		env := ArgEnvName(a.Name)
		if other, dup := byEnv[env]; dup && other != a.Name {
			v.add(p.Index(i).Child("name"), "arguments %q and %q would both be %s in the environment of the template's command metrics: rename one", other, a.Name, env)
			continue
		}
		byEnv[env] = a.Name
	}
}

// program checks command[0]: a name looked up in PATH, an absolute path,
// or a path relative to dir. The server's working directory is never the
// base, because it depends on how the server was started.
func (v *validator) program(p FieldPath, prog, dir string) {
	switch {
	case strings.TrimSpace(prog) == "":
		v.add(p, "the program is empty: write its name (looked up in PATH) or its absolute path")
	case !checkableURL(prog) || !strings.Contains(prog, "/") || path.IsAbs(prog):
	case dir == "":
		v.add(p, "program %q is a relative path: write its absolute path, or set dir to the absolute directory it is relative to", prog)
	}
}

// shells are the programs whose -c argument is a script.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"}

// shellScript refuses substitutions inside a shell's -c script: the value
// would be pasted into the script as text, so a value holding quotes, ;
// or $(...) would run other commands, with the server's privileges. The
// same values are safe when the script reads them from the environment or
// takes them as positional arguments after the script.
func (v *validator) shellScript(p FieldPath, argv []string) {
	if !slices.Contains(shells, path.Base(argv[0])) {
		return
	}
	script, hasC := -1, false
	for i := 1; i < len(argv) && script < 0; i++ {
		a := argv[i]
		switch {
		case a == "--":
			if i+1 < len(argv) {
				script = i + 1
			}
		case len(a) > 1 && (a[0] == '-' || a[0] == '+') && !strings.HasPrefix(a, "--"):
			hasC = hasC || (a[0] == '-' && strings.ContainsRune(a, 'c'))
			if strings.ContainsAny(a[1:], "oO") {
				i++ // -o pipefail: the option's own argument
			}
		case !strings.HasPrefix(a, "--"):
			script = i
		}
	}
	if !hasC || script < 0 {
		return
	}
	for _, m := range placeholderRE.FindAllStringSubmatch(argv[script], -1) {
		env := placeholderEnvName(m[1])
		if env == "" {
			continue // placeholders() reports it
		}
		v.add(p.Index(script), "{{%s}} would be pasted into the shell script as text, so a value with quotes, ; or $(...) could run other commands: read it from the environment instead (\"$%s\"), or pass it as an argument after the script (\"$1\")", m[1], env)
	}
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
