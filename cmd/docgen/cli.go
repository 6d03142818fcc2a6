package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/client"
)

// command is one command as its --help describes it.
type command struct {
	path     []string // e.g. ["get", "rollout"]
	long     string
	usage    []string
	aliases  string
	examples string
	subs     []sub
	flags    []cliFlag
	inherit  []cliFlag
}

type sub struct{ name, short string }

type cliFlag struct {
	short, name, typ, def, usage string
}

// cliReference runs the built binary's --help for every command and renders
// docs/cli.md. It reads the real binary rather than the cobra tree because
// serve, lint and demo are only constructible in package main; the help
// text is what users see, so the reference cannot disagree with it.
func cliReference(bin string) ([]byte, error) {
	root, err := helpOf(bin, nil)
	if err != nil {
		return nil, err
	}
	var all []*command
	var walk func(c *command) error
	walk = func(c *command) error {
		all = append(all, c)
		for _, s := range c.subs {
			if len(c.path) == 0 && s.name == "help" {
				continue
			}
			sc, err := helpOf(bin, append(append([]string(nil), c.path...), s.name))
			if err != nil {
				return err
			}
			if err := walk(sc); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	return renderCLI(all), nil
}

// helpOf runs `bin PATH... --help` in an environment without COALMINE_*
// variables, so the defaults shown are the built-in ones.
func helpOf(bin string, path []string) (*command, error) {
	cmd := exec.Command(bin, append(append([]string(nil), path...), "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s --help: %v: %s", bin, strings.Join(path, " "), err, errb.String())
	}
	c, err := parseHelp(out.String())
	if err != nil {
		return nil, fmt.Errorf("coalmine %s --help: %w", strings.Join(path, " "), err)
	}
	c.path = path
	return c, nil
}

var sectionRE = regexp.MustCompile(`^(Usage|Aliases|Examples|Available Commands|Flags|Global Flags|Additional help topics):$`)

// parseHelp splits cobra's default help template into its sections.
func parseHelp(text string) (*command, error) {
	c := &command{}
	sections := map[string][]string{}
	current := "long"
	for _, line := range strings.Split(text, "\n") {
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if strings.HasPrefix(line, "Use \"") && strings.HasSuffix(line, "for more information about a command.") {
			continue
		}
		sections[current] = append(sections[current], line)
	}
	if _, ok := sections["Usage"]; !ok {
		return nil, fmt.Errorf("no Usage section in the help text")
	}
	c.long = strings.TrimSpace(strings.Join(sections["long"], "\n"))
	for _, l := range sections["Usage"] {
		if l = strings.TrimSpace(l); l != "" {
			c.usage = append(c.usage, l)
		}
	}
	c.aliases = strings.TrimSpace(strings.Join(sections["Aliases"], " "))
	c.examples = trimBlock(sections["Examples"])
	for _, l := range sections["Available Commands"] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		c.subs = append(c.subs, sub{name: f[0], short: strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), f[0]))})
	}
	var err error
	if c.flags, err = parseFlags(sections["Flags"]); err != nil {
		return nil, err
	}
	if c.inherit, err = parseFlags(sections["Global Flags"]); err != nil {
		return nil, err
	}
	return c, nil
}

// trimBlock drops the blank lines around a section and the two spaces of
// indentation cobra adds to examples.
func trimBlock(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(out, "\n")
}

var (
	flagRE    = regexp.MustCompile(`^\s+(?:-(\w), )?--([\w-]+)(?: (\S+))?\s{2,}(.*)$`)
	defaultRE = regexp.MustCompile(` \(default (.+)\)$`)
)

// parseFlags reads pflag's usage lines: "  -f, --filename stringArray   text (default x)".
func parseFlags(lines []string) ([]cliFlag, error) {
	var out []cliFlag
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		m := flagRE.FindStringSubmatch(l)
		if m == nil {
			if len(out) == 0 || !strings.HasPrefix(l, "    ") {
				return nil, fmt.Errorf("cannot read the flag line %q", l)
			}
			out[len(out)-1].usage += " " + strings.TrimSpace(l) // a wrapped usage
			continue
		}
		f := cliFlag{short: m[1], name: m[2], typ: m[3], usage: strings.TrimSpace(m[4])}
		if d := defaultRE.FindStringSubmatch(f.usage); d != nil {
			f.def = d[1]
			f.usage = strings.TrimSuffix(f.usage, d[0])
		}
		out = append(out, f)
	}
	return out, nil
}

func renderCLI(cmds []*command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, cliHeader, cli.ExitOK, cli.ExitFailure, cli.ExitUsage, cli.ExitUnreachable, cli.ExitUnauthorized, cli.ExitNotDone,
		cli.EnvServer, client.DefaultServer, cli.EnvToken)
	b.WriteString("\n## Commands\n\n| command | what it does |\n|---|---|\n")
	shorts := map[string]string{}
	for _, c := range cmds {
		for _, s := range c.subs {
			shorts[strings.Join(append(append([]string(nil), c.path...), s.name), " ")] = s.short
		}
	}
	for _, c := range cmds[1:] {
		name := "coalmine " + strings.Join(c.path, " ")
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", name, anchor(name), cell(shorts[strings.Join(c.path, " ")]))
	}
	for _, c := range cmds {
		name := strings.TrimSpace("coalmine " + strings.Join(c.path, " "))
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		if c.long != "" {
			fmt.Fprintf(&b, "```text\n%s\n```\n\n", c.long)
		}
		b.WriteString("Usage:\n\n```text\n" + strings.Join(c.usage, "\n") + "\n```\n")
		if c.aliases != "" {
			fmt.Fprintf(&b, "\nAliases: `%s`\n", strings.ReplaceAll(c.aliases, ", ", "`, `"))
		}
		var flags []cliFlag
		for _, f := range c.flags {
			if f.name != "help" {
				flags = append(flags, f)
			}
		}
		if len(flags) > 0 {
			b.WriteString("\n| flag | type | default | description |\n|---|---|---|---|\n")
			for _, f := range flags {
				name := "`--" + f.name + "`"
				if f.short != "" {
					name = "`-" + f.short + "`, " + name
				}
				typ, def := f.typ, "—"
				if typ == "" {
					typ = "bool"
				}
				if f.def != "" {
					def = "`" + strings.Trim(f.def, `"`) + "`"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, typ, def, cell(f.usage))
			}
		}
		if len(c.inherit) > 0 {
			var names []string
			for _, f := range c.inherit {
				n := "`--" + f.name + "`"
				if f.short != "" {
					n = "`-" + f.short + "`/" + n
				}
				names = append(names, n)
			}
			parent := "coalmine " + strings.Join(c.path[:len(c.path)-1], " ")
			fmt.Fprintf(&b, "\nIt also takes the flags of [`%s`](#%s): %s.\n", parent, anchor(parent), strings.Join(names, ", "))
		}
		if c.examples != "" {
			fmt.Fprintf(&b, "\nExamples:\n\n```sh\n%s\n```\n", c.examples)
		}
	}
	return b.Bytes()
}

// anchor is GitHub's heading anchor for a command heading.
func anchor(heading string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(heading)), " ", "-")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

const cliHeader = `# CLI reference

<!-- Generated by "go run ./cmd/docgen" from the --help of every command of the built binary;
     do not edit. The test in cmd/docgen fails when this file is out of date. -->

One binary, ` + "`coalmine`" + `. ` + "`serve`" + ` runs the proxy, the controller and the admin API; ` + "`lint`" + ` checks files
offline; ` + "`demo`" + ` runs a self-contained release; every other command is a client of a running
server's [admin API](api.md). Every command has ` + "`--help` (`-h`)" + `; ` + "`coalmine completion SHELL`" + ` prints a
completion script.

## Exit codes

| code | meaning |
|---|---|
| %d | success |
| %d | the command did not succeed for any other reason: a failed or aborted outcome (` + "`status`" + ` on a Degraded rollout, a ` + "`demo`" + ` that did not end as its scenario expects), a command the server refused with 409 because it does not apply to the rollout now, or a rollout that does not exist (404) |
| %d | a usage mistake (unknown command or flag, missing argument) or invalid configuration (` + "`lint`, `serve`, `apply`" + ` with a bad file, or a 400 from the server) |
| %d | the server cannot be reached |
| %d | the token is missing or wrong (401) |
| %d | ` + "`status`" + ` gave up before the rollout was done: ` + "`--timeout`" + ` ran out, Ctrl-C, or ` + "`--watch=false`" + ` on a rollout still in progress (SPEC §6.1 says 2, which is also every usage mistake; a deploy script must tell "wait longer" from "called wrongly") |

Errors go to stderr as one line, ` + "`Error: …`" + `, that says what to do; usage mistakes are followed by the
command's usage.

## Environment

| variable | used by | meaning |
|---|---|---|
| ` + "`%s`" + ` | client commands | admin API address when ` + "`--server`" + ` is not given (default ` + "`%s`" + `) |
| ` + "`%s`" + ` | client commands, ` + "`serve`" + ` | bearer token: what clients send, and what ` + "`serve`" + ` requires when ` + "`--token-file`" + ` is not given |
| ` + "`COALMINE_DATA_DIR`" + ` | ` + "`serve`" + ` | default of ` + "`--data-dir`" + ` |

A flag given on the command line wins over the environment. Prefer the variable for the token:
command-line flags are visible in the process list.

Read commands take ` + "`-o text|json|yaml`" + `; ` + "`json`" + ` and ` + "`yaml`" + ` print the API's object unchanged, for scripts.
`
