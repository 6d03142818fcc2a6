package accesslog

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var benchLines = map[string]string{
	"haproxy-rfc3164": "<134>Dec  2 14:24:34 haproxy[9528]: " + haproxyMsg,
	"haproxy-rfc5424": "<134>1 2026-12-02T14:24:34.235646+00:00 - haproxy 9528 - - " + haproxyMsg,
	"nginx":           "<190>Dec  2 14:25:15 vm nginx: " + nginxMsg,
}

// BenchmarkHandleLine is the work per line once read: envelope, parser,
// resolver, Observe.
func BenchmarkHandleLine(b *testing.B) {
	for name, line := range benchLines {
		b.Run(name, func(b *testing.B) {
			r := newReceiver(newShop().table)
			buf := []byte(line)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				r.handleDatagram(buf, false)
			}
			if r.Counts().Recorded == 0 {
				b.Fatal("nothing recorded")
			}
		})
	}
}

// BenchmarkReceive sends b.N datagrams from one goroutine to a live
// receiver and waits for all of them: the socket's cost included. A unix
// datagram sender blocks when the receiver is behind, so nothing is lost
// and lines/s is the receiver's sustained rate (sender and receiver
// sharing the machine). UDP drops what the kernel cannot queue; its
// figure is what arrived, with the loss reported.
func BenchmarkReceive(b *testing.B) {
	line := []byte(benchLines["haproxy-rfc3164"])
	for _, network := range []string{"unix", "udp"} {
		b.Run(network, func(b *testing.B) {
			addr := "udp://127.0.0.1:0"
			if network == "unix" {
				addr = "unix://" + filepath.Join(b.TempDir(), "bench.sock")
			}
			r, err := Listen(context.Background(), addr, newShop().table, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			sockNet, a := "udp", strings.TrimPrefix(r.Addr(), "udp://")
			if network == "unix" {
				sockNet, a = "unixgram", strings.TrimPrefix(r.Addr(), "unix://")
			}
			c, err := net.Dial(sockNet, a)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := c.Write(line); err != nil {
					b.Fatal(err)
				}
			}
			// Wait for the last lines; for UDP, until the count stops moving.
			last, still := uint64(0), 0
			for still < 5 {
				n := r.Counts().Recorded
				if n == uint64(b.N) {
					break
				}
				if n == last {
					still++
				} else {
					last, still = n, 0
				}
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			got := r.Counts().Recorded
			b.ReportMetric(float64(got)/elapsed.Seconds(), "lines/s")
			b.ReportMetric(100*float64(uint64(b.N)-got)/float64(b.N), "%lost")
		})
	}
}
