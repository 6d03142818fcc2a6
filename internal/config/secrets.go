package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Secret is a resolved secret value. It prints, logs and marshals as
// "[redacted]" so it cannot leak through a stray %v, a slog attribute or a
// JSON response; call Reveal where the value is actually needed.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) MarshalYAML() (any, error)    { return redacted, nil }

// Secrets maps each secret reference to its value. SecretRef is comparable,
// so two notifications naming the same variable share one entry.
type Secrets map[spec.SecretRef]Secret

// Lookup returns the value of ref.
func (s Secrets) Lookup(ref *spec.SecretRef) (Secret, bool) {
	if ref == nil {
		return "", false
	}
	v, ok := s[*ref]
	return v, ok
}

// SecretsDir is where secretKeyRef files are: $COALMINE_SECRETS_DIR, or
// /run/secrets.
func SecretsDir(env func(string) (string, bool)) string {
	if d, ok := env(spec.SecretsDirEnv); ok && d != "" {
		return strings.TrimRight(d, "/")
	}
	return spec.DefaultSecretsDir
}

// ResolveSecret reads ref from the process environment or the file system.
// Relative file paths are relative to the working directory, like every
// other path in the configuration. Errors name the variable or file, never
// the value.
func ResolveSecret(ref *spec.SecretRef) (string, error) {
	return resolveSecret(ref, os.LookupEnv, os.ReadFile)
}

func resolveSecret(ref *spec.SecretRef, env func(string) (string, bool), readFile func(string) ([]byte, error)) (string, error) {
	switch {
	case ref == nil:
		return "", fmt.Errorf("a secret reference is required, such as {env: NAME} or {file: /path}")
	case ref.Env != "" && ref.File != "":
		return "", fmt.Errorf("a secret reference must set exactly one of env, file")
	case ref.Env != "":
		v, ok := env(ref.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", ref.Env)
		}
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("environment variable %s is set but empty", ref.Env)
		}
		return v, nil
	case ref.File != "":
		b, err := readFile(ref.File)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file %s: %s", ref.File, pathError(err))
		}
		// Files written with echo or an editor end in a newline that is
		// not part of the secret.
		v := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("secret file %s is empty", ref.File)
		}
		return v, nil
	}
	return "", fmt.Errorf("a secret reference must set one of env, file")
}

// ResolveSecrets reads every secret reference of the bundle's rollouts into
// b.Secrets. env and readFile default to os.LookupEnv and os.ReadFile; tests
// pass fakes. Every unresolvable reference is reported, at its position when
// b came from Load or Parse. Values never appear in errors.
func ResolveSecrets(b *Bundle, env func(string) (string, bool), readFile func(string) ([]byte, error)) error {
	return resolveSecrets(b, env, readFile).sorted().err()
}

func resolveSecrets(b *Bundle, env func(string) (string, bool), readFile func(string) ([]byte, error)) Errors {
	if b == nil {
		return nil
	}
	if env == nil {
		env = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if b.Secrets == nil {
		b.Secrets = Secrets{}
	}
	var errs Errors
	dir := SecretsDir(env)
	for i := range b.Templates {
		t := &b.Templates[i]
		d := b.docs[docKey{spec.KindAnalysisTemplate, t.Metadata.Name}]
		for j, a := range t.Spec.Args {
			if ref := a.ValueFrom.Secret(dir); ref != nil {
				p := spec.FieldPath("spec.args").Index(j).Child("valueFrom")
				errs = append(errs, b.checkSecret(d, "AnalysisTemplate", t.Metadata.Name, secretRefAt{path: p, ref: ref, from: a.ValueFrom}, env, readFile)...)
			}
		}
	}
	for i := range b.Rollouts {
		r := &b.Rollouts[i]
		// Positions are known only for rollouts as Load returned them; a
		// bundle edited or built by hand gets paths without positions.
		var d *document
		if i < len(b.rolloutDocs) && b.rolloutDocs[i].name == r.Metadata.Name {
			d = b.rolloutDocs[i]
		}
		for _, ref := range argSecretRefs(r, dir) {
			errs = append(errs, b.checkSecret(d, "Rollout", r.Metadata.Name, ref, env, readFile)...)
		}
		errs = append(errs, b.resolveRefs(secretRefs(r), d, "Rollout", r.Metadata.Name, env, readFile)...)
	}
	for i := range b.Templates {
		t := &b.Templates[i]
		d := b.docs[docKey{spec.KindAnalysisTemplate, t.Metadata.Name}]
		errs = append(errs, b.resolveRefs(templateSecretRefs(t), d, "AnalysisTemplate", t.Metadata.Name, env, readFile)...)
	}
	return errs
}

// resolveRefs resolves the references of one object into b.Secrets; d
// gives positions when the object came from a file (nil otherwise).
func (b *Bundle) resolveRefs(refs []secretRefAt, d *document, kind, name string, env func(string) (string, bool), readFile func(string) ([]byte, error)) Errors {
	var errs Errors
	for _, ref := range refs {
		if ref.ref == nil || (ref.ref.Env == "") == (ref.ref.File == "") {
			continue // a malformed reference is a validation error
		}
		field := ref.path.Child("env")
		if ref.ref.File != "" {
			field = ref.path.Child("file")
		}
		v, err := resolveSecret(ref.ref, env, readFile)
		if err == nil && ref.isURL {
			err = checkSecretURL(ref.ref, v)
		}
		if err != nil {
			e := Error{Path: string(field), Msg: err.Error()}
			if d != nil {
				e = d.errorAt(field, "%s", err)
			} else {
				e.Path = fmt.Sprintf("%s %q: %s", kind, name, field)
			}
			errs = append(errs, e)
			continue
		}
		b.Secrets[*ref.ref] = Secret(v)
	}
	return errs
}

// checkSecretURL checks a secret that must be a webhook URL, without ever
// quoting it: a Slack webhook URL is itself the credential.
func checkSecretURL(ref *spec.SecretRef, v string) error {
	u, err := url.Parse(strings.TrimSpace(v))
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("the secret from %s is not an absolute http:// or https:// URL", describeRef(ref))
}

func describeRef(ref *spec.SecretRef) string {
	if ref.Env != "" {
		return "environment variable " + ref.Env
	}
	return "file " + ref.File
}

type secretRefAt struct {
	path  spec.FieldPath
	ref   *spec.SecretRef
	isURL bool
	from  *spec.ArgValueFrom // for an argument's valueFrom
}

// argSecretRefs lists the secrets the rollout's analysis arguments read.
func argSecretRefs(r *spec.Rollout, dir string) []secretRefAt {
	var out []secretRefAt
	add := func(p spec.FieldPath, args []spec.Arg) {
		for i, a := range args {
			if ref := a.ValueFrom.Secret(dir); ref != nil {
				out = append(out, secretRefAt{path: p.Child("args").Index(i).Child("valueFrom"), ref: ref, from: a.ValueFrom})
			}
		}
	}
	c := r.Spec.Strategy.Canary
	if c.Analysis != nil {
		add("spec.strategy.canary.analysis", c.Analysis.Args)
	}
	for i, st := range c.Steps {
		if st.Analysis != nil {
			add(spec.FieldPath("spec.strategy.canary.steps").Index(i).Child("analysis"), st.Analysis.Args)
		}
	}
	return out
}

// checkSecret reads an argument's secret to check it, reporting where it
// is written; the value is not kept (it is read again at each
// measurement, so a rotated secret is picked up).
func (b *Bundle) checkSecret(d *document, kind, name string, ref secretRefAt, env func(string) (string, bool), readFile func(string) ([]byte, error)) Errors {
	if _, err := resolveSecret(ref.ref, env, readFile); err != nil {
		field := ref.path
		switch {
		case ref.from.Env != "":
			field = field.Child("env")
		case ref.from.File != "":
			field = field.Child("file")
		case ref.from.SecretKeyRef != nil:
			field = field.Child("secretKeyRef")
			err = fmt.Errorf("%w (secretKeyRef is read from $%s/NAME/KEY)", err, spec.SecretsDirEnv)
		}
		if d != nil {
			return Errors{d.errorAt(field, "%s", err)}
		}
		return Errors{{Path: fmt.Sprintf("%s %q: %s", kind, name, field), Msg: err.Error()}}
	}
	return nil
}

// secretRefs lists the secret references of a rollout with their paths.
func secretRefs(r *spec.Rollout) []secretRefAt {
	var out []secretRefAt
	for i, n := range r.Spec.Notifications {
		p := spec.FieldPath("spec.notifications").Index(i)
		switch {
		case n.Webhook != nil && n.Webhook.URLFrom != nil:
			out = append(out, secretRefAt{p.Child("webhook").Child("urlFrom"), n.Webhook.URLFrom, true, nil})
		case n.Slack != nil:
			out = append(out, secretRefAt{p.Child("slack").Child("webhookURLFrom"), n.Slack.WebhookURLFrom, true, nil})
		case n.PagerDuty != nil:
			out = append(out, secretRefAt{p.Child("pagerduty").Child("routingKeyFrom"), n.PagerDuty.RoutingKeyFrom, false, nil})
		}
	}
	return out
}

// templateSecretRefs lists the secret references of a template's
// provider credentials with their paths.
func templateSecretRefs(t *spec.AnalysisTemplate) []secretRefAt {
	var out []secretRefAt
	for i, m := range t.Spec.Metrics {
		p := spec.FieldPath("spec.metrics").Index(i).Child("provider")
		var auth *spec.Authentication
		switch {
		case m.Provider.Prometheus != nil:
			auth, p = m.Provider.Prometheus.Authentication, p.Child("prometheus")
		case m.Provider.Web != nil:
			auth, p = m.Provider.Web.Authentication, p.Child("web")
		}
		if auth == nil {
			continue
		}
		p = p.Child("authentication")
		switch {
		case auth.BasicAuth != nil && auth.BasicAuth.PasswordFrom != nil:
			out = append(out, secretRefAt{p.Child("basicAuth").Child("passwordFrom"), auth.BasicAuth.PasswordFrom, false, nil})
		case auth.Bearer != nil && auth.Bearer.TokenFrom != nil:
			out = append(out, secretRefAt{p.Child("bearer").Child("tokenFrom"), auth.Bearer.TokenFrom, false, nil})
		case auth.OAuth2 != nil && auth.OAuth2.ClientSecretFrom != nil:
			out = append(out, secretRefAt{p.Child("oauth2").Child("clientSecretFrom"), auth.OAuth2.ClientSecretFrom, false, nil})
		}
	}
	return out
}
