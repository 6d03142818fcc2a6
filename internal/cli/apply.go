package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func newApplyCmd(env Env) *cobra.Command {
	o := &clientOptions{env: env}
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f PATH...",
		Short: "Create or update rollouts and analysis templates on a running server",
		Long: `Apply reads Rollout and AnalysisTemplate documents from files or directories
(their *.yaml and *.yml files) and creates or updates them on a running
coalmine server. The files are validated first, exactly as "coalmine lint"
does; when anything is wrong, every problem is printed as
file:line:column: field: message and nothing is applied.

Analysis templates are applied before rollouts, so a rollout may use a
template from the same files. A template the files use but do not define is
taken from the server when it has one.

For each object apply prints whether it was created, configured (changed)
or unchanged. A changed stable or canary version starts a new revision,
which apply reports; other changes keep the rollout where it is.

Exit status: 0 when everything was applied; 2 when the files are invalid or
the server rejects a document (nothing after it is applied); 3 when the
server cannot be reached; 4 when the token is missing or wrong; 1 otherwise.`,
		Example: `  coalmine apply -f checkout.yaml
  coalmine apply -f deploy/ -f templates/golden-signals.yaml

  # check the files offline first, then apply and follow the rollout
  coalmine lint -f deploy/ && coalmine apply -f deploy/ && coalmine status checkout`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("apply takes files with -f: coalmine apply -f %s", strings.Join(args, " -f "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageErrorf("apply needs at least one -f PATH (a YAML file or a directory of them)")
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			return o.apply(cmd.Context(), c, files, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addClientFlags(cmd, o)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "YAML file or directory (repeatable)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	return cmd
}

func (o *clientOptions) apply(ctx context.Context, c *client.Client, files []string, stdout, stderr io.Writer) error {
	b, fromServer, err := loadForApply(ctx, c, files)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(stderr, errs.Error())
			return Exit(ExitUsage, fmt.Errorf("%s in the configuration; nothing was applied", plural(len(errs), "problem")))
		}
		return o.explain(err)
	}
	if len(b.Warnings) > 0 {
		fmt.Fprintln(stderr, b.Warnings.Warnings())
	}

	applied := 0
	failed := func(kind, name string, err error) error {
		src := ""
		if s, ok := b.Source(kind, name); ok {
			src = " (" + s.String() + ")"
		}
		err = fmt.Errorf("apply %s %q%s: %w", strings.ToLower(kind), name, src, err)
		if applied > 0 {
			was := "the %s before it were applied"
			if applied == 1 {
				was = "the %s before it was applied"
			}
			err = &hinted{err, fmt.Sprintf(was, plural(applied, "object"))}
		}
		return o.explain(err)
	}
	for _, t := range b.Templates {
		name := t.Metadata.Name
		if fromServer[name] {
			continue
		}
		before, getErr := c.GetTemplate(ctx, name)
		if getErr != nil && !errors.Is(getErr, client.ErrNotFound) {
			return failed(spec.KindAnalysisTemplate, name, getErr)
		}
		after, err := c.ApplyTemplate(ctx, t)
		if err != nil {
			return failed(spec.KindAnalysisTemplate, name, err)
		}
		applied++
		fmt.Fprintf(stdout, "analysistemplate %q %s\n", name, change(getErr == nil, jsonEqual(before.Spec, after.Spec)))
	}
	for _, r := range b.Rollouts {
		name := r.Metadata.Name
		before, getErr := c.GetRollout(ctx, name)
		if getErr != nil && !errors.Is(getErr, client.ErrNotFound) {
			return failed(spec.KindRollout, name, getErr)
		}
		v, err := c.Apply(ctx, r)
		if err != nil {
			return failed(spec.KindRollout, name, err)
		}
		applied++
		existed := getErr == nil
		line := fmt.Sprintf("rollout %q %s", name, change(existed, jsonEqual(before.Spec, v.Spec)))
		s := v.Status
		switch {
		case !existed && s.CanaryVersion != "":
			line += fmt.Sprintf(": revision %d rolls out %s over stable %s", s.Revision, s.CanaryVersion, orDash(s.StableVersion))
		case !existed:
			line += fmt.Sprintf(": %s is stable, nothing to roll out", orDash(s.StableVersion))
		case s.Revision != before.Status.Revision:
			line += fmt.Sprintf(": revision %d started, %s over stable %s", s.Revision, orDash(targetVersion(v)), orDash(s.StableVersion))
			if i := strings.Index(s.Message, "note: "); i >= 0 {
				line += "\n  " + s.Message[i:]
			}
		}
		fmt.Fprintln(stdout, line)
	}
	if applied == 0 {
		fmt.Fprintln(stdout, "Nothing to apply: the files hold no Rollout or AnalysisTemplate documents.")
	}
	return nil
}

func change(existed, same bool) string {
	switch {
	case !existed:
		return "created"
	case same:
		return "unchanged"
	}
	return "configured"
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// missingTemplateMsg is how config.Load reports an analysis that names a
// template the files do not define.
const missingTemplateMsg = "AnalysisTemplate "

// loadForApply loads files with config.Load. When rollouts name templates
// the files do not define, it takes those templates from the server (where
// an earlier apply put them) and validates again with them, so that
// `apply -f rollout.yaml` works without the template files; fromServer
// names the templates taken from the server, which are not applied again.
// Every other problem is a config.Errors, as `coalmine lint` reports it.
func loadForApply(ctx context.Context, c *client.Client, files []string) (*config.Bundle, map[string]bool, error) {
	b, err := config.Load(files...)
	if err == nil {
		return b, nil, nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return nil, nil, err
	}
	missing := map[string]bool{}
	for _, e := range errs {
		if name, ok := missingTemplate(e); ok {
			missing[name] = true
		}
	}
	if len(missing) == 0 {
		return nil, nil, err
	}
	fetched := map[string]bool{}
	var docs bytes.Buffer
	for name := range missing {
		t, ferr := c.GetTemplate(ctx, name)
		switch {
		case errors.Is(ferr, client.ErrNotFound):
			continue // reported as the files' problem
		case ferr != nil:
			return nil, nil, ferr
		}
		y, merr := yaml.Marshal(t)
		if merr != nil {
			return nil, nil, fmt.Errorf("encode AnalysisTemplate %q from the server: %w", name, merr)
		}
		docs.WriteString("---\n")
		docs.Write(y)
		fetched[name] = true
	}
	if len(fetched) == 0 {
		return nil, nil, err
	}
	dir, derr := os.MkdirTemp("", "coalmine-apply-")
	if derr != nil {
		return nil, nil, fmt.Errorf("apply: %w", derr)
	}
	defer os.RemoveAll(dir)
	server := filepath.Join(dir, "templates-on-the-server.yaml")
	if werr := os.WriteFile(server, docs.Bytes(), 0o600); werr != nil {
		return nil, nil, fmt.Errorf("apply: %w", werr)
	}
	b, err = config.Load(append(append([]string(nil), files...), server)...)
	if err != nil {
		return nil, nil, err
	}
	return b, fetched, nil
}

// missingTemplate recognises config's `AnalysisTemplate "x" is not defined
// in the loaded files` and returns x.
func missingTemplate(e config.Error) (string, bool) {
	if !strings.HasSuffix(e.Path, ".templateName") || !strings.HasPrefix(e.Msg, missingTemplateMsg) ||
		!strings.Contains(e.Msg, "is not defined in the loaded files") {
		return "", false
	}
	q, err := strconv.QuotedPrefix(strings.TrimPrefix(e.Msg, missingTemplateMsg))
	if err != nil {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}
