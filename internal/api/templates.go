package api

import (
	"net/http"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TemplateList is the body of GET /api/v1/analysistemplates.
type TemplateList struct {
	Items []spec.AnalysisTemplate `json:"items"`
}

func (s *server) listTemplates(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cmds.ListTemplates(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []spec.AnalysisTemplate{}
	}
	writeJSON(w, http.StatusOK, TemplateList{Items: ts})
}

func (s *server) getTemplate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	t, err := s.cmds.GetTemplate(r.Context(), name)
	if err != nil {
		s.writeError(w, r, describeObject("analysis template", name, err))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// applyTemplate creates or updates an AnalysisTemplate; the name rules are
// those of applyRollout.
func (s *server) applyTemplate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var doc spec.AnalysisTemplate
	if err := decodeJSON(r, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := fillDocument(&doc.APIVersion, &doc.Kind, &doc.Metadata.Name, spec.KindAnalysisTemplate, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.cmds.ApplyTemplate(r.Context(), doc)
	if err != nil {
		s.writeError(w, r, describeObject("analysis template", name, err))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *server) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.cmds.DeleteTemplate(r.Context(), name); err != nil {
		s.writeError(w, r, describeObject("analysis template", name, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
