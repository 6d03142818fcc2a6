package nginx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const exampleFile = "../../../examples/nginx/nginx.conf"

// TestConfigExampleIsTheExampleFile keeps examples/nginx/nginx.conf what
// ConfigExample writes (go test -update rewrites it).
func TestConfigExampleIsTheExampleFile(t *testing.T) {
	text, err := ConfigExample(ExampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(exampleFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exampleFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if string(want) != text {
		t.Errorf("%s is not what ConfigExample writes (go test -update rewrites it)", exampleFile)
	}
	if _, err := parseConf(text); err != nil {
		t.Error(err)
	}
	if _, err := ConfigExample(ExampleOptions{Listen: "80; include /etc/passwd"}); err == nil {
		t.Error("an option with NGINX syntax in it was accepted")
	}
}

// TestNGINXAcceptsConfigExample runs nginx -t on the example, with the
// paths moved into a temporary directory, and the include file rendered
// for the rollout it names.
func TestNGINXAcceptsConfigExample(t *testing.T) {
	bin := nginxBinary(t)
	dir := t.TempDir()
	include := filepath.Join(dir, "shop.conf")
	text, err := ConfigExample(ExampleOptions{
		IncludeFile: include,
		Listen:      "127.0.0.1:8080",
		PidFile:     filepath.Join(dir, "nginx.pid"),
		ErrorLog:    filepath.Join(dir, "error.log"),
		TempDir:     dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The example differs from the file in examples/ only in those paths.
	def, _ := ConfigExample(ExampleOptions{})
	if strings.Count(text, "\n") != strings.Count(def, "\n")+6 {
		t.Errorf("the example for the test has %d lines, the default %d: more than the paths differ", strings.Count(text, "\n"), strings.Count(def, "\n"))
	}
	d := shopDesired()
	d.Stable.Endpoints = []string{"http://127.0.0.1:9001"} // nginx -t resolves names
	r, err := Render(d, "", DefaultStateDir(include))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(text), 0o644)
	os.WriteFile(include, r.Text, 0o644)
	os.WriteFile(LocationFile(include), r.Location, 0o644)
	out, err := exec.Command(bin, "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log"), "-t").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
