package spec

import (
	"regexp"
	"strings"
)

// This file checks the provider fields Argo Rollouts users bring in their
// AnalysisTemplates: prometheus rangeQuery, insecure and authentication;
// web timeoutSeconds, jsonBody, jsonPath and authentication.

func (v *validator) prometheusOptions(p FieldPath, q *PrometheusProvider, args map[string]bool) {
	if rq := q.RangeQuery; rq != nil {
		rp := p.Child("rangeQuery")
		v.timeExpr(rp.Child("start"), rq.Start, `now() - duration("1h")`, args)
		v.timeExpr(rp.Child("end"), rq.End, "now()", args)
		if rq.Step == nil {
			v.add(rp.Child("step"), "a step is required: the time between two points of the range, such as 1m")
		} else {
			v.positive(rp.Child("step"), *rq.Step)
		}
	}
	v.authentication(p.Child("authentication"), q.Authentication, args)
}

func (v *validator) webOptions(p FieldPath, w *WebProvider, args map[string]bool) {
	if w.TimeoutSeconds != nil {
		if w.Timeout != nil {
			v.add(p.Child("timeoutSeconds"), "set timeout or timeoutSeconds, not both")
		} else if *w.TimeoutSeconds < 1 {
			v.add(p.Child("timeoutSeconds"), "must be at least 1, not %d", *w.TimeoutSeconds)
		}
	}
	if w.JSONBody != nil {
		switch {
		case w.Body != "":
			v.add(p.Child("jsonBody"), "set body or jsonBody, not both")
		case w.Method == "" || strings.EqualFold(w.Method, "GET"):
			// As in Argo: a GET with a body is refused by many servers.
			v.add(p.Child("jsonBody"), "a jsonBody needs method: POST or PUT")
		}
		v.jsonPlaceholders(p.Child("jsonBody"), w.JSONBody, args)
	}
	if w.JSONPath != "" && v.placeholders(p.Child("jsonPath"), w.JSONPath, args) {
		if _, err := parseJSONPathAs(w.JSONPath, fillPlaceholders(w.JSONPath)); err != nil {
			v.add(p.Child("jsonPath"), "%s", err)
		}
	}
	v.authentication(p.Child("authentication"), w.Authentication, args)
}

// jsonPlaceholders checks the substitutions in a JSON body's strings.
func (v *validator) jsonPlaceholders(p FieldPath, j *JSONValue, args map[string]bool) {
	v.placeholders(p, string(j.Raw()), args)
}

// timeExpr checks a rangeQuery start or end.
func (v *validator) timeExpr(p FieldPath, src, example string, args map[string]bool) {
	if strings.TrimSpace(src) == "" {
		v.add(p, "a time expression is required, such as %s", example)
		return
	}
	if !v.placeholders(p, src, args) {
		return
	}
	if _, err := CompileTimeExpr(fillPlaceholders(src)); err != nil {
		v.add(p, "invalid time expression: %s; write one such as %s", err, example)
	}
}

func (v *validator) authentication(p FieldPath, a *Authentication, args map[string]bool) {
	if a == nil {
		return
	}
	if !v.union(p, "authentication", []string{"basicAuth", "bearer", "oauth2", "sigv4"},
		[]bool{a.BasicAuth != nil, a.Bearer != nil, a.OAuth2 != nil, a.SigV4 != nil}) {
		return
	}
	switch {
	case a.BasicAuth != nil:
		bp, b := p.Child("basicAuth"), a.BasicAuth
		if strings.TrimSpace(b.Username) == "" {
			v.add(bp.Child("username"), "a username is required")
		} else if strings.Contains(fillPlaceholders(b.Username), ":") {
			v.add(bp.Child("username"), "a basic-auth username cannot contain ':'")
		}
		v.placeholders(bp.Child("username"), b.Username, args)
		v.secretValue(bp, "basicAuth", "password", b.Password, b.PasswordFrom, args)
	case a.Bearer != nil:
		v.secretValue(p.Child("bearer"), "bearer", "token", a.Bearer.Token, a.Bearer.TokenFrom, args)
	case a.OAuth2 != nil:
		op, o := p.Child("oauth2"), a.OAuth2
		v.urlWithPlaceholders(op.Child("tokenUrl"), "OAuth2 token", o.TokenURL, args)
		if strings.TrimSpace(o.ClientID) == "" {
			v.add(op.Child("clientId"), "a clientId is required")
		}
		v.placeholders(op.Child("clientId"), o.ClientID, args)
		v.secretValue(op, "oauth2", "clientSecret", o.ClientSecret, o.ClientSecretFrom, args)
		for i, s := range o.Scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t") {
				v.add(op.Child("scopes").Index(i), "a scope is one word without spaces, not %q", s)
			}
			v.placeholders(op.Child("scopes").Index(i), s, args)
		}
	case a.SigV4 != nil:
		v.add(p.Child("sigv4"), "AWS SigV4 signing is not supported: coalmine does not carry the AWS SDK "+
			"and its credential chain. Put a signing proxy (such as aws-sigv4-proxy) in front of "+
			"Amazon Managed Prometheus, point address at it and remove authentication.sigv4")
	}
}

// secretValue checks a credential given either in the file (name) or as a
// secret reference (nameFrom): exactly one of them.
func (v *validator) secretValue(p FieldPath, kind, name, literal string, from *SecretRef, args map[string]bool) {
	if !v.union(p, kind, []string{name, name + "From"}, []bool{literal != "", from != nil}) {
		return
	}
	if from != nil {
		v.secretRef(p.Child(name+"From"), from)
		return
	}
	v.placeholders(p.Child(name), literal, args)
}

// urlWithPlaceholders checks an http(s) URL that may use substitutions.
func (v *validator) urlWithPlaceholders(p FieldPath, what, s string, args map[string]bool) {
	if strings.TrimSpace(s) == "" {
		v.add(p, "%s URL is required", what)
		return
	}
	if v.placeholders(p, s, args) && checkableURL(s) {
		v.httpURL(p, what, fillPlaceholders(s))
	}
}

// portPlaceholderRE matches the text before a substitution that stands in
// a URL's port (or password): a scheme, "//", and a colon in the authority
// with at most digits after it.
var portPlaceholderRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*:[0-9]*$`)
