package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds one runtime API exchange when the spec leaves
// timeout out.
const DefaultTimeout = 2 * time.Second

// maxAnswer caps what one answer may hold, so a socket that never stops
// talking cannot exhaust memory. A map of 100,000 routes fits easily.
const maxAnswer = 32 << 20

// Client speaks HAProxy's runtime API (the stats socket). Each command is
// one connection: HAProxy answers and closes, so the end of an answer is
// the end of the stream and no framing can be misread. A batch of commands
// separated by ';' would save connections but mixes the answers of its
// commands, and an error could not be tied to the command that caused it.
type Client struct {
	// address is how the user wrote it, for messages.
	address string
	network string // "unix" or "tcp"
	dialTo  string
	timeout time.Duration
}

// NewClient parses a runtime API address, unix:///path or tcp://host:port.
// A timeout of 0 means DefaultTimeout.
func NewClient(address string, timeout time.Duration) (*Client, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("HAProxy runtime API timeout %v is negative: leave it out for %v", timeout, DefaultTimeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	network, dialTo, err := parseAddress(address)
	if err != nil {
		return nil, err
	}
	return &Client{address: address, network: network, dialTo: dialTo, timeout: timeout}, nil
}

func parseAddress(address string) (network, dialTo string, err error) {
	if address == "" {
		return "", "", errors.New("the HAProxy runtime API address is required: set runtimeAPI to unix:///run/haproxy/admin.sock or tcp://127.0.0.1:9999, as the `stats socket` line of haproxy.cfg says")
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", fmt.Errorf("HAProxy runtime API address %q is not a URL: write unix:///path/to/admin.sock or tcp://host:port", address)
	}
	switch u.Scheme {
	case "unix":
		p := u.Path
		if u.Host != "" || p == "" || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("HAProxy runtime API address %q names no absolute socket path: write unix:///path/to/admin.sock (three slashes)", address)
		}
		return "unix", p, nil
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || (u.Path != "" && u.Path != "/") {
			return "", "", fmt.Errorf("HAProxy runtime API address %q is not tcp://host:port", address)
		}
		return "tcp", u.Host, nil
	}
	return "", "", fmt.Errorf("HAProxy runtime API address %q has scheme %q: use unix:///path/to/admin.sock or tcp://host:port", address, u.Scheme)
}

// Address returns the address as configured.
func (c *Client) Address() string { return c.address }

// socketHint is the haproxy.cfg line that opens the socket at this
// address, for error messages.
func (c *Client) socketHint() string {
	if c.network == "unix" {
		return "stats socket " + c.dialTo + " level admin"
	}
	return "stats socket ipv4@" + c.dialTo + " level admin"
}

// Do sends one command, its arguments escaped, and returns HAProxy's raw
// answer. It fails only when the exchange itself fails; what the answer
// says is for the caller to judge (see the check* functions).
func (c *Client) Do(ctx context.Context, args ...string) (string, error) {
	line := Command(args...)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("HAProxy runtime API at %s: `%s` not sent: %w", c.address, line, err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(dctx, c.network, c.dialTo)
	if err != nil {
		return "", c.dialError(ctx, err)
	}
	defer conn.Close()
	// A cancelled ctx unblocks the read at once rather than at the deadline.
	stop := context.AfterFunc(dctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("HAProxy runtime API at %s: %w", c.address, err)
	}
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", c.exchangeError(ctx, line, err)
	}
	var b strings.Builder
	n, err := io.Copy(&b, io.LimitReader(conn, maxAnswer+1))
	if err != nil {
		return "", c.exchangeError(ctx, line, err)
	}
	if n > maxAnswer {
		return "", fmt.Errorf("HAProxy runtime API at %s answered `%s` with more than %d MiB: not read", c.address, line, maxAnswer>>20)
	}
	return b.String(), nil
}

func (c *Client) dialError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("HAProxy runtime API at %s: %w", c.address, ctx.Err())
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("HAProxy's runtime API at %s refused the connection: is `%s` in haproxy.cfg and HAProxy running? (%v)", c.address, c.socketHint(), err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("HAProxy's runtime API at %s is not open to this user: give coalmine's user access to the socket (the `mode`, `user` or `group` options of `stats socket`) (%v)", c.address, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("HAProxy's runtime API at %s did not accept a connection within %v: is HAProxy overloaded or the address wrong?", c.address, c.timeout)
	}
	return fmt.Errorf("HAProxy's runtime API at %s: %w", c.address, err)
}

func (c *Client) exchangeError(ctx context.Context, line string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("HAProxy runtime API at %s, `%s`: %w", c.address, line, ctx.Err())
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("HAProxy's runtime API at %s did not answer `%s` within %v", c.address, line, c.timeout)
	}
	return fmt.Errorf("HAProxy's runtime API at %s, `%s`: %w", c.address, line, err)
}

// Command joins arguments into one runtime API command line. HAProxy splits
// a line on spaces and ends a command at ';', and a backslash escapes the
// next character, so those three are escaped. Control characters cannot be
// carried at all; callers reject them first (see checkArg).
func Command(args ...string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		for j := 0; j < len(a); j++ {
			switch a[j] {
			case ' ', ';', '\\':
				b.WriteByte('\\')
			}
			b.WriteByte(a[j])
		}
	}
	return b.String()
}

// checkArg rejects what a runtime API command cannot carry: a control
// character (a newline would end the command, a tab splits it) or an empty
// word.
func checkArg(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fmt.Errorf("%s %q holds a control character, which HAProxy's runtime API cannot carry", what, s)
		}
	}
	return nil
}
