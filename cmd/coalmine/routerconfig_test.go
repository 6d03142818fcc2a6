package main

import (
	"bytes"
	"strings"
	"testing"
)

// router-config prints the lines a rollout's HAProxy needs, naming its user
// header and every header its routes (static or set by steps) match.
func TestRouterConfigPrintsTheRolloutsLines(t *testing.T) {
	cmd := newRouterConfigCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"-f", "../../examples/haproxy-canary.yaml", "-f", "../../examples/nginx-canary.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("router-config: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{
		`haproxy.cfg lines for rollout "wishlist"`,
		"set-var proc.coalmine_wishlist_user_header str(|x-user-id|)",
		"req.fhdr(x-canary,1)",
		"use_backend wishlist_canary",
		"include /etc/nginx/coalmine/reviews.conf;",
		"proxy_pass http://$coalmine_reviews_upstream;",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("router-config output lacks %q", want)
		}
	}
}

func TestRouterConfigWithoutARouterSaysSo(t *testing.T) {
	cmd := newRouterConfigCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs([]string{"-f", "../../examples/user-header-canary.yaml"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "nothing to print") {
		t.Fatalf("router-config on a builtin rollout: %v", err)
	}
}
