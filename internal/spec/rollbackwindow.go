package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// RollbackWindow is how many recent revisions `undo` may return to without
// walking the steps again. It is written as an integer (`rollbackWindow:
// 2`) or in Argo Rollouts' shape (`rollbackWindow: {revisions: 2}`); both
// mean the same, so a rollout copied from Argo keeps its setting. It is
// always written back as an integer.
type RollbackWindow int

// rollbackWindowUsage is what every shape error ends with: the two shapes
// that are accepted.
const rollbackWindowUsage = "write a number of revisions, such as rollbackWindow: 1, or Argo's rollbackWindow: {revisions: 1}"

// UnmarshalYAML implements yaml.Unmarshaler.
func (w *RollbackWindow) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return w.setFromScalar(n)
	case yaml.MappingNode:
		var revisions *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch {
			case k.Value != "revisions":
				return fmt.Errorf("unknown field %q in rollbackWindow: the only field is revisions; %s", k.Value, rollbackWindowUsage)
			case revisions != nil:
				return fmt.Errorf("duplicate field \"revisions\" in rollbackWindow")
			}
			revisions = v
		}
		if revisions == nil {
			// Argo reads {} as no window; say so rather than guess.
			return fmt.Errorf("rollbackWindow needs revisions: %s (revisions: 0 runs the steps on every undo, as Argo does by default)", rollbackWindowUsage)
		}
		if revisions.Kind != yaml.ScalarNode {
			return fmt.Errorf("rollbackWindow.revisions must be an integer; %s", rollbackWindowUsage)
		}
		return w.setFromScalar(revisions)
	}
	return fmt.Errorf("expected an integer or a mapping {revisions: N} for rollbackWindow; %s", rollbackWindowUsage)
}

func (w *RollbackWindow) setFromScalar(n *yaml.Node) error {
	if n.ShortTag() != "!!int" {
		hint := ""
		if _, err := strconv.Atoi(n.Value); err == nil {
			hint = "; remove the quotes"
		}
		return fmt.Errorf("rollbackWindow must be an integer, not %q%s; %s", n.Value, hint, rollbackWindowUsage)
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		return fmt.Errorf("rollbackWindow %s is out of range; %s", n.Value, rollbackWindowUsage)
	}
	*w = RollbackWindow(v)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler with the same two shapes.
func (w *RollbackWindow) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var argo struct {
			Revisions *int `json:"revisions"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&argo); err != nil {
			return fmt.Errorf("rollbackWindow: %v; %s", err, rollbackWindowUsage)
		}
		if argo.Revisions == nil {
			return fmt.Errorf("rollbackWindow needs revisions; %s", rollbackWindowUsage)
		}
		*w = RollbackWindow(*argo.Revisions)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("rollbackWindow must be an integer, not %s; %s", b, rollbackWindowUsage)
	}
	*w = RollbackWindow(n)
	return nil
}

// RollbackWindowArgoNote is the warning for a rollout written in Argo's
// shape that leaves rollbackWindow out: coalmine's default differs from
// Argo's, and an Argo user would otherwise learn it during an incident.
func RollbackWindowArgoNote() string {
	return fmt.Sprintf("rollbackWindow is not set, so coalmine's default of %d applies: `coalmine undo` back to the version that was stable "+
		"before the last completed rollout moves all traffic at once, skipping the steps and analysis that Argo Rollouts runs again by default; "+
		"set rollbackWindow: {revisions: 0} to get Argo's behaviour", DefaultRollbackWindow)
}
