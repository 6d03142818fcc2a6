//go:build !unix

package proxy

// fdLimit is unknown on this platform: the configured caps stand.
func fdLimit() int64 { return 0 }
