package nginx

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNGINXMatchesAsTheBuiltInProxy runs the patterns the renderer writes
// in a real NGINX and checks each header value matches there exactly when
// it matches in Go as the built-in proxy compiles the regex (a full match,
// and never an empty value).
func TestNGINXMatchesAsTheBuiltInProxy(t *testing.T) {
	bin := nginxBinary(t)
	regexes := []string{
		`v2`, `v[0-9]+`, `(?i)beta`, `a\.b`, `a.b`, `[^a]+`, `x|yz`, `(v2)?`, `\bfoo\b.*`,
		`.*`, `(?P<host>a)b`, `^a$`, `a{2,3}`, `é+`, `[[:alpha:]]+`, `\d{3}-\d{4}`, `(?s).+`,
		`(?i)[ks]x`, `a*?b`, `\w+@\w+\.com`, `"quoted"`, `a\$b`, `[\x00-\x1f]`, `h.llo`,
	}
	values := []string{
		"v2", "v20", "xv2", "v", "beta", "BeTa", "betas", "a.b", "axb", "a", "b", "bbb", "x", "yz", "xyz",
		"foo bar", "foobar", "aab", "ab", "aa", "aaa", "aaaa", "éé", "é", "e", "abc", "ABC", "123-4567",
		"12-34", "k x", "Kx", "sx", "b", "aab", "joe@mail.com", "joe@mail.org", `"quoted"`, "a$b", "hello", "hallo",
		"héllo", "h\xffllo", "a;b", "{x}", `a\b`, "",
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	var maps, vars strings.Builder
	var goRes []*regexp.Regexp
	for i, re := range regexes {
		p, err := regexPattern(re)
		if err != nil {
			t.Fatalf("%q: %v", re, err)
		}
		fmt.Fprintf(&maps, "    map $http_x_v $m%d {\n        \"~%s\" 1;\n        default 0;\n    }\n", i, p)
		fmt.Fprintf(&vars, "${m%d}", i)
		goRes = append(goRes, regexp.MustCompile(`^(?:`+re+`)$`))
	}
	listen := freeAddr(t)
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
worker_processes 1;
events {}
http {
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    access_log off;
%[2]s
    server {
        listen %[3]s;
        location / {
            return 200 "%[4]s";
        }
    }
}
`, dir, maps.String(), listen, vars.String())
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	out, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	ask := func(value string) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/", nil)
		req.Header["X-V"] = []string{value}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ask("x"); err == nil {
			break
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx does not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, v := range values {
		got, err := ask(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if len(got) != len(goRes) {
			t.Fatalf("%q: NGINX answered %q", v, got)
		}
		for i, re := range goRes {
			want := re.MatchString(v) && v != ""
			if (got[i] == '1') != want {
				// Counting non-ASCII characters is the one documented
				// difference: NGINX's classes and dots read bytes.
				if strings.Contains(regexes[i], ".") && hasNonASCII(v) {
					continue
				}
				t.Errorf("regex %q, value %q: NGINX matches %t, Go %t", regexes[i], v, got[i] == '1', want)
			}
		}
	}
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}
