package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

const secretsDoc = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: checkout}
spec:
  listen: 127.0.0.1:8080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
  notifications:
    - on: [rollout-aborted]
      pagerduty: {routingKeyFrom: {env: PD_ROUTING_KEY}}
    - on: ["*"]
      slack: {webhookURLFrom: {env: SLACK_WEBHOOK_URL}}
    - on: ["*"]
      webhook: {urlFrom: {file: /run/secrets/webhook}}
`

func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		v, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(v), nil
	}
}

func TestResolveSecrets(t *testing.T) {
	b, err := Parse("r.yaml", []byte(secretsDoc))
	if err != nil {
		t.Fatal(err)
	}
	env := fakeEnv(map[string]string{"PD_ROUTING_KEY": "pd-key-123", "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T/B/xyz"})
	files := fakeFiles(map[string]string{"/run/secrets/webhook": "http://127.0.0.1:7777/hook?token=abc\n"})
	if err := ResolveSecrets(b, env, files); err != nil {
		t.Fatalf("ResolveSecrets: %v", err)
	}
	want := map[spec.SecretRef]string{
		{Env: "PD_ROUTING_KEY"}:        "pd-key-123",
		{Env: "SLACK_WEBHOOK_URL"}:     "https://hooks.slack.example/T/B/xyz",
		{File: "/run/secrets/webhook"}: "http://127.0.0.1:7777/hook?token=abc",
	}
	for ref, v := range want {
		got, ok := b.Secrets.Lookup(&ref)
		if !ok || got.Reveal() != v {
			t.Errorf("secret %+v = %q, %v; want %q", ref, got.Reveal(), ok, v)
		}
	}
}

func TestResolveSecretsErrors(t *testing.T) {
	b, err := Parse("r.yaml", []byte(secretsDoc))
	if err != nil {
		t.Fatal(err)
	}
	// The slack value is a secret that is not a URL; its value must not
	// appear in the error.
	env := fakeEnv(map[string]string{"PD_ROUTING_KEY": "  ", "SLACK_WEBHOOK_URL": "hunter2"})
	err = ResolveSecrets(b, env, fakeFiles(nil))
	want := `r.yaml:9:41: spec.notifications[0].pagerduty.routingKeyFrom.env: environment variable PD_ROUTING_KEY is set but empty
r.yaml:11:37: spec.notifications[1].slack.webhookURLFrom.env: the secret from environment variable SLACK_WEBHOOK_URL is not an absolute http:// or https:// URL
r.yaml:13:33: spec.notifications[2].webhook.urlFrom.file: cannot read secret file /run/secrets/webhook: file does not exist`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the secret: %v", err)
	}

	err = ResolveSecrets(b, fakeEnv(nil), fakeFiles(map[string]string{"/run/secrets/webhook": "\n"}))
	for _, w := range []string{"environment variable PD_ROUTING_KEY is not set", "environment variable SLACK_WEBHOOK_URL is not set", "secret file /run/secrets/webhook is empty"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

func TestResolveSecretWithoutPositions(t *testing.T) {
	// A bundle built by hand (the API decodes JSON) still gets errors
	// that name the rollout and the field.
	b := &Bundle{Rollouts: []spec.Rollout{{
		Metadata: spec.Metadata{Name: "api"},
		Spec: spec.RolloutSpec{Notifications: []spec.Notification{
			{On: []string{"*"}, PagerDuty: &spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{Env: "MISSING"}}},
		}},
	}}}
	err := ResolveSecrets(b, fakeEnv(nil), nil)
	want := `Rollout "api": spec.notifications[0].pagerduty.routingKeyFrom.env: environment variable MISSING is not set`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestResolveSecretEnv(t *testing.T) {
	t.Setenv("COALMINE_TEST_SECRET", "s3cret")
	v, err := ResolveSecret(&spec.SecretRef{Env: "COALMINE_TEST_SECRET"})
	if err != nil || v != "s3cret" {
		t.Errorf("ResolveSecret = %q, %v", v, err)
	}
	if _, err := ResolveSecret(&spec.SecretRef{Env: "COALMINE_TEST_SECRET_UNSET"}); err == nil ||
		err.Error() != "environment variable COALMINE_TEST_SECRET_UNSET is not set" {
		t.Errorf("unset variable: %v", err)
	}
	if _, err := ResolveSecret(nil); err == nil {
		t.Errorf("nil ref resolved")
	}
	if _, err := ResolveSecret(&spec.SecretRef{Env: "A", File: "b"}); err == nil {
		t.Errorf("ref with env and file resolved")
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret("s3cret")
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(map[string]Secret{"k": s})
	out := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %+v %#v", s, s, s, s, s),
		fmt.Sprint(Secrets{{Env: "X"}: s}), sb.String(), string(j),
	}
	for _, o := range out {
		if strings.Contains(o, "s3cret") {
			t.Errorf("secret printed: %s", o)
		}
	}
	if s.Reveal() != "s3cret" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestLint(t *testing.T) {
	chdirRoot(t)
	// Lint reports load errors and secret errors of valid documents in one
	// list; the documents of the invalid file still have their secrets
	// checked.
	_, err := Lint([]string{"testdata/config/valid-full.yaml", "testdata/config/invalid-notifications.yaml"},
		fakeEnv(map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.example/x"}), fakeFiles(nil))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Lint = %v, want Errors", err)
	}
	var sawPD, sawInvalid bool
	for _, e := range errs {
		if e.File == "testdata/config/valid-full.yaml" && e.Line == 54 && strings.Contains(e.Msg, "PD_ROUTING_KEY is not set") {
			sawPD = true
		}
		if e.File == "testdata/config/invalid-notifications.yaml" && strings.Contains(e.Msg, "unknown event type") {
			sawInvalid = true
		}
		if strings.Contains(e.Msg, "hooks.slack.example") {
			t.Errorf("secret printed: %v", e)
		}
	}
	if !sawPD || !sawInvalid {
		t.Errorf("Lint missed a problem (pagerduty %v, invalid %v):\n%v", sawPD, sawInvalid, err)
	}
	if _, err := Lint([]string{"testdata/config/valid-minimal.yaml"}, fakeEnv(nil), fakeFiles(nil)); err != nil {
		t.Errorf("Lint(valid-minimal) = %v", err)
	}
}
