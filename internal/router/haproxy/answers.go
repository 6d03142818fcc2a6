package haproxy

import (
	"fmt"
	"strconv"
	"strings"
)

// This file reads HAProxy 2.6's runtime API answers strictly: an answer
// that is not the shape a command's success has is an error that quotes
// it, never something skipped.

// answerError turns an answer that is not a success into an error that
// names what to fix. subject names what the command was about ("map
// /etc/haproxy/coalmine.map", "backend shop_canary").
func answerError(address, line, subject, answer string) error {
	msg := strings.TrimSpace(answer)
	first, _, _ := strings.Cut(msg, "\n")
	switch {
	case msg == "":
		return fmt.Errorf("HAProxy's runtime API at %s closed the connection without answering `%s`", address, line)
	case strings.HasPrefix(first, "Unknown command"):
		return fmt.Errorf("HAProxy's runtime API at %s does not know `%s`: coalmine needs HAProxy 2.4 or later and the socket at `level admin`", address, line)
	case strings.HasPrefix(first, "Permission denied"):
		return fmt.Errorf("HAProxy's runtime API at %s refused `%s` (permission denied): open the socket with `level admin` in its `stats socket` line", address, line)
	case strings.HasPrefix(first, "Unknown map identifier"):
		return fmt.Errorf("HAProxy has no %s (No such map): haproxy.cfg must use it in the frontend (the lines `coalmine` gives for HAProxy) and the file must exist when HAProxy starts", subject)
	case first == "Can't find backend." || first == "No such backend.":
		return fmt.Errorf("HAProxy has no %s (No such backend): declare it in haproxy.cfg (the lines `coalmine` gives for HAProxy)", subject)
	case first == "No such server.":
		return fmt.Errorf("HAProxy has no %s (No such server)", subject)
	case strings.Contains(first, "dynamic load balancing"):
		return fmt.Errorf("HAProxy cannot add servers to %s at run time (%s): give it `balance roundrobin`, leastconn or random", subject, first)
	case first == "Variable not found.":
		return fmt.Errorf("HAProxy has no %s: the global section of haproxy.cfg lacks coalmine's `set-var` line for this rollout", subject)
	}
	return fmt.Errorf("HAProxy's runtime API at %s refused `%s`: %s", address, line, strings.ReplaceAll(msg, "\n", " / "))
}

// emptyAnswer reports whether answer is the silent success of a command
// such as `set map` or `set server ... state`.
func emptyAnswer(answer string) bool { return answer == "" || answer == "\n" }

// addrChanged reports whether answer is the success of `set server ...
// addr`, which describes the change.
func addrChanged(answer string) bool {
	first, _, _ := strings.Cut(answer, "\n")
	return strings.HasPrefix(first, "IP changed from") || strings.HasPrefix(first, "no need to change the addr")
}

// serverAdded reports whether answer is the success of `add server`.
func serverAdded(answer string) bool {
	return answer == "New server registered.\n\n" || answer == "New server registered.\n"
}

// serverDeleted reports whether `del server` did its work: the server is
// deleted, or already gone.
func serverDeleted(answer string) bool {
	return strings.HasPrefix(answer, "Server deleted.") || strings.HasPrefix(answer, "No such server.")
}

// serverBusy reports whether HAProxy refused `del server` only because the
// server still has connections, which close by themselves.
// ("Server still has connections attached to it, cannot remove it.").
func serverBusy(answer string) bool { return strings.Contains(answer, "still has connections") }

// mapEntry is one line of `show map FILE`.
type mapEntry struct {
	Ref   string // the entry's id, "0x..." (for `del map FILE #ref`)
	Key   string
	Value string
}

// parseShowMap reads the answer to `show map FILE`: one "0xREF KEY VALUE"
// line per entry, in the order the map's lists match them, then an empty
// line. A key may hold spaces (HAProxy prints it raw); values may not,
// since the frontend reads every value as an integer, so the value is
// after the last space. ok is false when the answer is not an entry list
// (an error message); err when it looks like one but is malformed.
func parseShowMap(answer string) (entries []mapEntry, ok bool, err error) {
	if !strings.HasPrefix(answer, "0x") {
		if emptyAnswer(answer) || answer == "\n\n" {
			return nil, true, nil
		}
		return nil, false, nil
	}
	if !strings.HasSuffix(answer, "\n") {
		return nil, true, fmt.Errorf("the answer to `show map` ends in the middle of a line: %q", tail(answer))
	}
	body := strings.TrimSuffix(answer, "\n")
	body = strings.TrimSuffix(body, "\n") // the closing empty line
	for n, line := range strings.Split(body, "\n") {
		ref, rest, found := strings.Cut(line, " ")
		i := strings.LastIndexByte(rest, ' ')
		if !found || i < 1 || !strings.HasPrefix(ref, "0x") || len(ref) < 3 || !isHex(ref[2:]) || i == len(rest)-1 {
			return nil, true, fmt.Errorf("line %d of the answer to `show map` is not \"0xREF KEY VALUE\": %q", n+1, line)
		}
		entries = append(entries, mapEntry{Ref: ref, Key: rest[:i], Value: rest[i+1:]})
	}
	return entries, true, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func tail(s string) string {
	if len(s) > 80 {
		return "..." + s[len(s)-80:]
	}
	return s
}

// Server admin-state bits of `show servers state` (HAProxy's
// SRV_ADMF_*): forced, inherited and resolver maintenance, forced and
// inherited drain, and maintenance for an unresolvable hostname. The
// configuration's `disabled` sets 0x04 too, which only remembers where
// the state came from: a server with nothing but 0x04 is ready.
const (
	adminMaint = 0x01 | 0x02 | 0x20 | 0x40
	adminDrain = 0x08 | 0x10
)

// opRunning is srv_op_state for a server that is up (or not checked).
const opRunning = 2

// serverState is one server of a backend, as `show servers state` reports it.
type serverState struct {
	Name    string
	Addr    string
	Port    int
	OpState int
	Admin   int
}

// ready reports whether the server takes new traffic as far as its
// administrative state goes (not in maintenance, not draining).
func (s serverState) ready() bool { return s.Admin&(adminMaint|adminDrain) == 0 }

// serving reports whether the server can take a request now: ready, and
// up or not checked.
func (s serverState) serving() bool { return s.ready() && s.OpState == opRunning }

func (s serverState) hostPort() string { return joinHostPort(s.Addr, s.Port) }

// parseServersState reads the answer to `show servers state BACKEND`: a
// format version line ("1"), a "# field ..." header naming the columns,
// one line per server, then an empty line. Columns are found by name so
// a later HAProxy adding some does not break the reading. ok is false
// when the answer is an error message rather than a table.
func parseServersState(answer, backend string) (servers []serverState, ok bool, err error) {
	lines := strings.Split(answer, "\n")
	if len(lines) < 2 || lines[0] != "1" {
		if strings.HasPrefix(answer, "1\n") || strings.HasPrefix(answer, "# ") {
			return nil, true, fmt.Errorf("the answer to `show servers state %s` has no format-1 version line: %q", backend, tail(answer))
		}
		return nil, false, nil
	}
	if !strings.HasSuffix(answer, "\n") {
		return nil, true, fmt.Errorf("the answer to `show servers state %s` ends in the middle of a line: %q", backend, tail(answer))
	}
	header, found := strings.CutPrefix(lines[1], "# ")
	if !found {
		return nil, true, fmt.Errorf("the answer to `show servers state %s` has no \"# field ...\" header line: %q", backend, lines[1])
	}
	col := map[string]int{}
	for i, f := range strings.Fields(header) {
		col[f] = i
	}
	need := []string{"be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_port"}
	for _, f := range need {
		if _, ok := col[f]; !ok {
			return nil, true, fmt.Errorf("the answer to `show servers state %s` has no %s column: %q", backend, f, header)
		}
	}
	for _, line := range lines[2:] {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != len(col) {
			return nil, true, fmt.Errorf("a line of the answer to `show servers state %s` has %d fields, not the header's %d: %q", backend, len(f), len(col), line)
		}
		if f[col["be_name"]] != backend {
			return nil, true, fmt.Errorf("`show servers state %s` answered with a server of backend %q: %q", backend, f[col["be_name"]], line)
		}
		op, err1 := strconv.Atoi(f[col["srv_op_state"]])
		admin, err2 := strconv.Atoi(f[col["srv_admin_state"]])
		// A port written "+N" is an offset from the client's port; it can
		// only come from the user's own configuration.
		port, err3 := strconv.Atoi(strings.TrimPrefix(f[col["srv_port"]], "+"))
		if err1 != nil || err2 != nil || err3 != nil || op < 0 || admin < 0 || port < 0 || port > 65535 {
			return nil, true, fmt.Errorf("a line of the answer to `show servers state %s` has a malformed state or port: %q", backend, line)
		}
		servers = append(servers, serverState{Name: f[col["srv_name"]], Addr: f[col["srv_addr"]], Port: port, OpState: op, Admin: admin})
	}
	return servers, true, nil
}

// parseVar reads the answer to `get var NAME`:
// "NAME: type=str value=<VALUE>".
func parseVar(answer, name string) (value string, ok bool, err error) {
	rest, found := strings.CutPrefix(answer, name+": type=")
	if !found {
		return "", false, nil
	}
	_, v, found := strings.Cut(rest, " value=<")
	line, _, _ := strings.Cut(v, "\n")
	if !found || !strings.HasSuffix(line, ">") {
		return "", true, fmt.Errorf("the answer to `get var %s` is not \"NAME: type=T value=<V>\": %q", name, tail(answer))
	}
	return strings.TrimSuffix(line, ">"), true, nil
}
