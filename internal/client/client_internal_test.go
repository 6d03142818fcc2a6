package client

import (
	"testing"
	"time"
)

func TestDefaultTimeout(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.http.Timeout != 30*time.Second {
		t.Errorf("default timeout = %v, want 30s", c.http.Timeout)
	}
}
