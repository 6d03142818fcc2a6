package proxy

import (
	"net/http/httptest"
	"testing"
)

// A header route on Host matches over HTTP/2 as over HTTP/1.1: Go keeps
// :authority in r.Host, not in the header map.
func TestH2RequestHostHeader(t *testing.T) {
	r := httptest.NewRequest("GET", "https://beta.example.com/x", nil)
	r.Proto, r.ProtoMajor = "HTTP/2.0", 2
	if v, ok := (h2Request{r}).Header("host"); !ok || string(v) != "beta.example.com" {
		t.Fatalf("Header(host) = %q, %v", v, ok)
	}
	r.Header.Set("X-Canary", "1")
	if v, ok := (h2Request{r}).Header("x-canary"); !ok || string(v) != "1" {
		t.Fatalf("Header(x-canary) = %q, %v", v, ok)
	}
}
