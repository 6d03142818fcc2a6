package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Options tunes a Receiver. The zero value is usable.
type Options struct {
	// SocketMode, when not 0, is applied to a unix socket's file after it
	// is created. A sender needs write permission on it: NGINX's workers
	// usually run as another user than coalmine (0o666 lets every local
	// user send, and so forge, log lines; prefer a shared group and 0o660).
	SocketMode fs.FileMode
	// ReadBuffer is the kernel receive buffer asked for (SO_RCVBUF), so a
	// burst of lines waits in the kernel instead of being dropped while
	// the receiver is busy. The kernel caps it (net.core.rmem_max).
	// Default 4 MiB.
	ReadBuffer int
}

// DefaultReadBuffer is Options.ReadBuffer's default.
const DefaultReadBuffer = 4 << 20

// maxDatagram is the largest datagram read whole: a UDP payload is at most
// 65,507 bytes, so only a larger unix datagram can fill the buffer, and its
// last line is then counted as malformed (it may be cut).
const maxDatagram = 64 << 10

// maxInterned bounds the backend names a receiver keeps as strings, so a
// storm of forged names cannot grow its memory; lines naming more than
// this many distinct backends still work, with one allocation each.
const maxInterned = 1024

// Receiver reads syslog datagrams from HAProxy or NGINX and records each
// HTTP request line into the version its backend resolves to. Lines that
// cannot be used are counted, never fatal. It is safe for concurrent use.
type Receiver struct {
	addr    string // as Addr reports it
	conn    reader
	resolve Resolver

	path   string      // unix socket file, "" for UDP
	pathFI fs.FileInfo // the socket file this receiver created

	counts     [numResults]atomic.Uint64
	readErrors atomic.Uint64

	// Used by the reading goroutine only.
	buf     []byte
	scratch []byte
	names   map[string]string

	stop     context.CancelFunc
	done     chan struct{}
	closeErr error
	once     sync.Once
}

// reader is what the receiver needs of a *net.UDPConn or *net.UnixConn:
// Read takes a datagram without the allocation ReadFrom makes for the
// sender's address.
type reader interface {
	Read([]byte) (int, error)
	Close() error
	SetReadBuffer(int) error
}

// Listen binds addr and receives access-log lines until ctx ends or Close
// is called. addr is udp://host:port (port 0 picks a free one; see Addr)
// or unix:///path for a unix datagram socket. A unix socket file left
// behind by a receiver that is gone is replaced; a path that is not a
// socket, or a socket another process still receives on, is an error.
func Listen(ctx context.Context, addr string, resolve Resolver, opts Options) (*Receiver, error) {
	if resolve == nil {
		return nil, errors.New("accesslog: Listen needs a Resolver (one that returns nil for every name counts every line as unknown_backend)")
	}
	r := newReceiver(resolve)
	switch {
	case strings.HasPrefix(addr, "udp://"):
		hostport := strings.TrimPrefix(addr, "udp://")
		ua, err := net.ResolveUDPAddr("udp", hostport)
		if err != nil {
			return nil, fmt.Errorf("accesslog: address %q: %w (want udp://host:port)", addr, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("accesslog: listening on %s: %w", addr, err)
		}
		r.conn, r.addr = c, "udp://"+c.LocalAddr().String()
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("accesslog: address %q: the socket path must be absolute (unix:///run/coalmine/access.sock)", addr)
		}
		c, fi, err := listenUnixgram(path, opts.SocketMode)
		if err != nil {
			return nil, err
		}
		r.conn, r.addr, r.path, r.pathFI = c, "unix://"+path, path, fi
	default:
		return nil, fmt.Errorf("accesslog: address %q: use udp://host:port or unix:///path (HAProxy and NGINX send syslog as datagrams)", addr)
	}
	size := opts.ReadBuffer
	if size <= 0 {
		size = DefaultReadBuffer
	}
	_ = r.conn.SetReadBuffer(size) // best effort: the kernel may cap or refuse it

	ctx, r.stop = context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		r.conn.Close() // unblocks Read
	}()
	go r.run(ctx)
	return r, nil
}

// newReceiver returns a receiver without a socket: Listen adds one, tests
// feed handleDatagram directly.
func newReceiver(resolve Resolver) *Receiver {
	return &Receiver{
		resolve: resolve,
		buf:     make([]byte, maxDatagram),
		scratch: make([]byte, maxDatagram),
		names:   map[string]string{},
		done:    make(chan struct{}),
	}
}

// listenUnixgram binds a unix datagram socket at path, replacing a stale
// socket file and refusing anything else.
func listenUnixgram(path string, mode fs.FileMode) (*net.UnixConn, fs.FileInfo, error) {
	ua := &net.UnixAddr{Name: path, Net: "unixgram"}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("accesslog: %s exists and is not a socket (%s); refusing to replace it: choose another path or remove it", path, fi.Mode().Type())
		}
		// A socket file: stale if nobody receives on it.
		if probe, err := net.DialUnix("unixgram", nil, ua); err == nil {
			probe.Close()
			return nil, nil, fmt.Errorf("accesslog: another process is receiving on %s; stop it or choose another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("accesslog: removing the stale socket %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("accesslog: %w", err)
	}
	c, err := net.ListenUnixgram("unixgram", ua)
	if err != nil {
		return nil, nil, fmt.Errorf("accesslog: listening on unix://%s: %w", path, err)
	}
	if mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			c.Close()
			os.Remove(path)
			return nil, nil, fmt.Errorf("accesslog: setting the mode of %s: %w", path, err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("accesslog: %w", err)
	}
	return c, fi, nil
}

// Addr returns the address the receiver listens on, with the port chosen
// when the one asked for was 0: udp://127.0.0.1:40123 or unix:///path.
func (r *Receiver) Addr() string { return r.addr }

// Done is closed once the receiver has stopped reading.
func (r *Receiver) Done() <-chan struct{} { return r.done }

// Close stops the receiver, waits for its reading goroutine and removes
// its unix socket file (if it is still the one it created).
func (r *Receiver) Close() error {
	r.once.Do(func() {
		r.stop()
		<-r.done
		if r.path != "" {
			if fi, err := os.Lstat(r.path); err == nil && os.SameFile(fi, r.pathFI) {
				if err := os.Remove(r.path); err != nil {
					r.closeErr = fmt.Errorf("accesslog: removing %s: %w", r.path, err)
				}
			}
		}
	})
	return r.closeErr
}

// readErrorPause keeps a socket that fails every read from spinning a CPU.
const readErrorPause = 10 * time.Millisecond

func (r *Receiver) run(ctx context.Context) {
	defer close(r.done)
	for {
		n, err := r.conn.Read(r.buf)
		if n > 0 {
			r.handleDatagram(r.buf[:n], n == len(r.buf))
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			r.readErrors.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(readErrorPause):
			}
		}
	}
}

// handleDatagram handles each line of one datagram (HAProxy and NGINX send
// one line per datagram; relays may batch several, separated by newlines).
// full says the datagram filled the buffer, so its last line may be cut.
func (r *Receiver) handleDatagram(b []byte, full bool) {
	for len(b) > 0 {
		line := b
		nl := indexByte(b, '\n')
		if nl >= 0 {
			line, b = b[:nl], b[nl+1:]
		} else {
			b = nil
		}
		for len(line) > 0 && (line[len(line)-1] == '\r' || line[len(line)-1] == 0) {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		if full && len(b) == 0 {
			r.counts[resultMalformed].Add(1)
			continue
		}
		r.counts[r.handleLine(line)].Add(1)
	}
}

// handleLine parses one line and records it.
func (r *Receiver) handleLine(line []byte) result {
	env, ok := splitEnvelope(line)
	if !ok {
		return resultMalformed
	}
	var rec record
	var v verdict
	if isJSONObject(env.msg) {
		rec, v = parseNGINX(env.msg, r.scratch)
	} else {
		rec, v = parseHAProxy(env.msg)
	}
	switch v {
	case verdictRequest:
	case verdictIgnored:
		return resultIgnored
	case verdictForeign:
		// HAProxy logs its events (a server down, a proxy started) and
		// NGINX its errors at notice or above; access lines are info.
		if env.severity >= 0 && env.severity <= 5 {
			return resultIgnored
		}
		return resultMalformed
	default:
		return resultMalformed
	}
	vs := r.resolve.Resolve(r.intern(rec.backend))
	if vs == nil {
		return resultUnknownBackend
	}
	for range rec.failedConnects {
		vs.FailedAttempt(telemetry.ErrorConnect)
	}
	for range rec.failedTimeouts {
		vs.FailedAttempt(telemetry.ErrorTimeout)
	}
	vs.Observe(rec.code, rec.latency)
	return resultRecorded
}

// isJSONObject reports whether msg starts like a JSON object (NGINX's
// format) rather than an HAProxy line, which starts with an address.
func isJSONObject(msg []byte) bool {
	for _, c := range msg {
		switch c {
		case ' ', '\t':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// intern returns name as a string without allocating for names seen
// before.
func (r *Receiver) intern(name []byte) string {
	if s, ok := r.names[string(name)]; ok {
		return s
	}
	s := string(name)
	if len(r.names) < maxInterned {
		r.names[s] = s
	}
	return s
}
