package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// loadTemplates stores the templates of the configuration files (a file's
// template replaces the stored one only when the file changed, as for
// rollouts) and, at start-up, loads those applied through the API.
func (c *Controller) loadTemplates(ctx context.Context, templates []spec.AnalysisTemplate, initial bool) error {
	if initial {
		recs, err := c.cfg.Store.List(ctx, templateCollection)
		if err != nil {
			return fmt.Errorf("list stored analysis templates: %w", err)
		}
		c.mu.Lock()
		for _, raw := range recs {
			var rec templateRecord
			if err := json.Unmarshal(raw.Data, &rec); err != nil {
				c.mu.Unlock()
				return fmt.Errorf("decode stored analysis template %q: %w", raw.Key, err)
			}
			c.templates[raw.Key] = rec
			if why := c.refusedTemplate(rec); why != "" {
				c.log.Error("stored analysis template will not run", "template", raw.Key, "reason", why)
			}
		}
		c.refreshTemplates()
		c.mu.Unlock()
	}
	for _, t := range templates {
		digest := digestOf(t)
		c.mu.RLock()
		cur, ok := c.templates[t.Metadata.Name]
		c.mu.RUnlock()
		if ok && cur.FileDigest == digest {
			continue
		}
		if err := c.putTemplate(ctx, templateRecord{Template: t, Source: sourceFile, FileDigest: digest}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Controller) putTemplate(ctx context.Context, rec templateRecord) error {
	name := rec.Template.Metadata.Name
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode analysis template %q: %w", name, err)
	}
	var version uint64
	if raw, err := c.cfg.Store.Get(ctx, templateCollection, name); err == nil {
		version = raw.Version
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read analysis template %q: %w", name, err)
	}
	if _, err := c.cfg.Store.Put(ctx, templateCollection, store.Record{Key: name, Version: version, Data: data}); err != nil {
		return fmt.Errorf("save analysis template %q: %w", name, err)
	}
	c.mu.Lock()
	c.templates[name] = rec
	c.refreshTemplates()
	c.mu.Unlock()
	return nil
}

// ListTemplates implements model.Commands.
func (c *Controller) ListTemplates(_ context.Context) ([]spec.AnalysisTemplate, error) {
	c.mu.RLock()
	out := make([]spec.AnalysisTemplate, 0, len(c.templates))
	for _, t := range c.templates {
		out = append(out, t.Template)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out, nil
}

// GetTemplate implements model.Commands.
func (c *Controller) GetTemplate(_ context.Context, name string) (spec.AnalysisTemplate, error) {
	c.mu.RLock()
	t, ok := c.templates[name]
	c.mu.RUnlock()
	if !ok {
		return spec.AnalysisTemplate{}, fmt.Errorf("analysis template %q %w", name, model.ErrNotFound)
	}
	return t.Template, nil
}

// ApplyTemplate implements model.Commands.
func (c *Controller) ApplyTemplate(ctx context.Context, t spec.AnalysisTemplate) (spec.AnalysisTemplate, error) {
	if t.APIVersion == "" {
		t.APIVersion = spec.APIVersion
	}
	if t.Kind == "" {
		t.Kind = spec.KindAnalysisTemplate
	}
	t.SetDefaults()
	if fes := t.Validate(); len(fes) > 0 {
		return spec.AnalysisTemplate{}, fes
	}
	if err := c.apiCommandErrors(t); err != nil {
		return spec.AnalysisTemplate{}, err
	}
	if c.cfg.Check != nil {
		rollouts, templates := c.snapshot(t.Metadata.Name)
		if err := c.cfg.Check(rollouts, append(templates, t)); err != nil {
			return spec.AnalysisTemplate{}, err
		}
	}
	c.mu.RLock()
	digest := c.templates[t.Metadata.Name].FileDigest
	c.mu.RUnlock()
	if err := c.putTemplate(ctx, templateRecord{Template: t, Source: sourceAPI, FileDigest: digest}); err != nil {
		return spec.AnalysisTemplate{}, err
	}
	return t, nil
}

// DeleteTemplate implements model.Commands.
func (c *Controller) DeleteTemplate(ctx context.Context, name string) error {
	if _, err := c.GetTemplate(ctx, name); err != nil {
		return err
	}
	rollouts, _ := c.snapshot("")
	var users []string
	for _, r := range rollouts {
		if referencesTemplate(&r.Spec, name) {
			users = append(users, r.Metadata.Name)
		}
	}
	if len(users) > 0 {
		return &conflictError{msg: fmt.Sprintf("analysis template %q is used by rollout %s: remove it from their analysis first", name, strings.Join(users, ", "))}
	}
	if err := c.cfg.Store.Delete(ctx, templateCollection, name); err != nil {
		return fmt.Errorf("delete analysis template %q: %w", name, err)
	}
	c.mu.Lock()
	delete(c.templates, name)
	c.refreshTemplates()
	c.mu.Unlock()
	return nil
}

func referencesTemplate(sp *spec.RolloutSpec, name string) bool {
	refs := func(ts []spec.TemplateRef) bool {
		for _, t := range ts {
			if t.TemplateName == name {
				return true
			}
		}
		return false
	}
	if a := sp.Strategy.Canary.Analysis; a != nil && refs(a.Templates) {
		return true
	}
	for _, st := range sp.Strategy.Canary.Steps {
		if st.Analysis != nil && refs(st.Analysis.Templates) {
			return true
		}
	}
	return false
}

// snapshot returns every rollout spec and every template except the
// template named skipTemplate.
func (c *Controller) snapshot(skipTemplate string) ([]spec.Rollout, []spec.AnalysisTemplate) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rollouts := make([]spec.Rollout, 0, len(c.entries))
	for _, e := range c.entries {
		e.mu.Lock()
		if !e.removed {
			rollouts = append(rollouts, e.rec.Rollout)
		}
		e.mu.Unlock()
	}
	templates := make([]spec.AnalysisTemplate, 0, len(c.templates))
	for n, t := range c.templates {
		if n != skipTemplate {
			templates = append(templates, t.Template)
		}
	}
	return rollouts, templates
}
