package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 with the
// given common name, and its key, to certFile and keyFile.
func writeSelfSigned(t testing.TB, cn, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedCN connects with TLS and returns the common name of the
// certificate the listener presents.
func servedCN(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test reads the certificate, it does not trust it
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// A renewed certificate at the same paths is served after
// ReloadCertificates (SIGHUP) without restarting the listener; a broken
// pair is reported and the previous certificate stays.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeSelfSigned(t, "first", certFile, keyFile)
	stable := newBackend(t, stableVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.TLS = &spec.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	g := startProxy(t, r, tableConfig(r, 0))

	if cn := servedCN(t, g.addr); cn != "first" {
		t.Fatalf("served %q, want the first certificate", cn)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	defer c.CloseIdleConnections()
	if res := get(t, c, "https://"+g.addr+"/", nil); res.status != 200 {
		t.Fatalf("HTTPS request: %+v", res)
	}

	writeSelfSigned(t, "renewed", certFile, keyFile)
	if err := g.p.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, g.addr); cn != "renewed" {
		t.Fatalf("after reload served %q, want the renewed certificate", cn)
	}

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := g.p.ReloadCertificates()
	if err == nil || !strings.Contains(err.Error(), "previous one stays") {
		t.Fatalf("reload of a broken pair: %v", err)
	}
	if cn := servedCN(t, g.addr); cn != "renewed" {
		t.Fatalf("after a failed reload served %q, want the renewed certificate still", cn)
	}
}
