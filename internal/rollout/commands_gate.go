package rollout

import (
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// A command metric runs a program on this server with its privileges.
// Templates from the -f files are the operator's own and always may;
// through the API, whoever holds the token (or reaches a loopback admin
// address) would gain a shell on the server, so a template applied there
// with a command metric needs Config.AllowAPICommands
// (serve --allow-command-provider).

// apiCommandErrors refuses the command metrics of a template applied
// through the API unless the server allows them.
func (c *Controller) apiCommandErrors(t spec.AnalysisTemplate) error {
	if c.cfg.AllowAPICommands {
		return nil
	}
	var fes spec.FieldErrors
	for i, m := range t.Spec.Metrics {
		if m.Provider.Command != nil {
			fes.Add(fmt.Sprintf("spec.metrics[%d].provider.command", i), "%s", apiCommandRefusal)
		}
	}
	return fes.Err()
}

const apiCommandRefusal = "a command metric runs a program on the coalmine server, so this server accepts it only from its -f files: " +
	"put the template there, or start coalmine serve with --allow-command-provider to accept command metrics through the API"

// refusedTemplate says why a stored template may not run, "" when it may:
// one applied through the API with a command metric, on a server that no
// longer allows that (it was restarted without --allow-command-provider).
func (c *Controller) refusedTemplate(rec templateRecord) string {
	if rec.Source != sourceAPI || c.apiCommandErrors(rec.Template) == nil {
		return ""
	}
	return "was applied through the API with a command metric; " + apiCommandRefusal
}
