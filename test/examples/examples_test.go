// Package examples checks that every configuration in examples/ passes
// `coalmine lint`: the same config.Lint the command runs, with the secrets
// the examples reference provided by a fake environment and file system.
package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/config"
)

const dir = "../../examples"

// secretEnv holds the environment variables the examples reference; a new
// example that needs another one adds it here.
var secretEnv = map[string]string{
	"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
}

// secretFiles holds the secret files the examples reference.
var secretFiles = map[string]string{
	"/etc/coalmine/pagerduty-routing-key": "0123456789abcdef0123456789abcdef\n",
}

func lookupEnv(name string) (string, bool) {
	v, ok := secretEnv[name]
	return v, ok
}

func readFile(name string) ([]byte, error) {
	if v, ok := secretFiles[name]; ok {
		return []byte(v), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("found %d examples in %s, want at least 7", len(files), dir)
	}
	return files
}

// TestEveryExampleLints lints each example on its own, as its header tells
// users to.
func TestEveryExampleLints(t *testing.T) {
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			warnings, err := config.Lint([]string{f}, lookupEnv, readFile)
			if err != nil {
				t.Errorf("coalmine lint -f %s fails:\n%v", f, err)
			}
			if len(warnings) > 0 {
				t.Errorf("coalmine lint -f %s warns; an example should not:\n%s", f, warnings.Warnings())
			}
		})
	}
}

// TestExamplesLintTogether lints the directory at once: names, listen
// addresses and template names do not collide, so `coalmine serve -f
// examples/` works too.
func TestExamplesLintTogether(t *testing.T) {
	if _, err := config.Lint([]string{dir}, lookupEnv, readFile); err != nil {
		t.Errorf("coalmine lint -f examples/ fails:\n%v", err)
	}
}

// TestExamplesSayWhatTheyShow checks the header comment: what the example
// shows, and the commands to run it.
func TestExamplesSayWhatTheyShow(t *testing.T) {
	for _, f := range examples(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var header []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			header = append(header, line)
		}
		text := strings.Join(header, "\n")
		if len(header) < 5 || !strings.Contains(text, "coalmine serve -f examples/"+filepath.Base(f)) {
			t.Errorf("%s: the file must start with a comment of what it shows and how to run it (`coalmine serve -f examples/%s`)", f, filepath.Base(f))
		}
	}
}

// TestLintReportsAMissingSecret keeps the fakes honest: without the
// environment variable, the example that needs it fails to lint, so the
// other tests really check secret references.
func TestLintReportsAMissingSecret(t *testing.T) {
	_, err := config.Lint([]string{filepath.Join(dir, "slack-pagerduty.yaml")},
		func(string) (string, bool) { return "", false }, readFile)
	if err == nil || !strings.Contains(err.Error(), "SLACK_WEBHOOK_URL") {
		t.Fatalf("lint without SLACK_WEBHOOK_URL: got %v, want an error naming it", err)
	}
}
