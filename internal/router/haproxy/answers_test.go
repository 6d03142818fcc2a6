package haproxy

import (
	"strings"
	"testing"
)

// Answers below are HAProxy 2.6.12's, as captured from its stats socket.

func TestParseShowMap(t *testing.T) {
	answer := "0x556b8620c280 shop:weight 1000\n" +
		"0x7fc1b00465b0 shop/exact/x-canary=a b;c\\d 3\n" +
		"0x7fc1b00465c0 shop/prefix/x-canary=  5\n\n"
	got, ok, err := parseShowMap(answer)
	if err != nil || !ok {
		t.Fatalf("parseShowMap: %v, %v", ok, err)
	}
	want := []mapEntry{
		{"0x556b8620c280", "shop:weight", "1000"},
		{"0x7fc1b00465b0", "shop/exact/x-canary=a b;c\\d", "3"},
		{"0x7fc1b00465c0", "shop/prefix/x-canary= ", "5"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}

	for _, empty := range []string{"", "\n", "\n\n"} {
		if got, ok, err := parseShowMap(empty); err != nil || !ok || len(got) != 0 {
			t.Errorf("parseShowMap(%q) = %v, %v, %v; want an empty map", empty, got, ok, err)
		}
	}
	for _, notList := range []string{
		"Unknown map identifier. Please use #<id> or <file>.\n\n",
		"Permission denied\n\n",
	} {
		if _, ok, err := parseShowMap(notList); ok || err != nil {
			t.Errorf("parseShowMap(%q): ok %v, err %v; want not a list", notList, ok, err)
		}
	}
	for _, bad := range []string{
		"0x556b8620c280 shop:weight 1000",         // cut short
		"0x556b8620c280 shop:weight\n\n",          // no value
		"0x556b8620c280 shop:weight 1000\nxx\n\n", // a stray line
		"0xZZ shop:weight 1000\n\n",
		"0x12 k \n\n",
	} {
		if _, _, err := parseShowMap(bad); err == nil {
			t.Errorf("parseShowMap(%q) accepted a malformed answer", bad)
		}
	}
}

const serversState = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n" +
	"4 be_c 1 s1 127.0.0.1 2 4 1 1 1 1 0 0 8 0 0 0 - 9001 - 0 0 - - 0\n" +
	"4 be_c 2 s2 127.0.0.1 0 5 1 1 15 1 0 0 8 0 0 0 - 9002 - 0 0 - - 0\n" +
	"4 be_c 3 s3 ::1 2 8 1 1 15 1 0 0 8 0 0 0 - +0 - 0 0 - - 0\n\n"

func TestParseServersState(t *testing.T) {
	got, ok, err := parseServersState(serversState, "be_c")
	if err != nil || !ok {
		t.Fatalf("parseServersState: %v, %v", ok, err)
	}
	want := []serverState{
		{Name: "s1", Addr: "127.0.0.1", Port: 9001, OpState: 2, Admin: 4},
		{Name: "s2", Addr: "127.0.0.1", Port: 9002, OpState: 0, Admin: 5},
		{Name: "s3", Addr: "::1", Port: 0, OpState: 2, Admin: 8},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("serverState %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// s1 was `disabled` in the configuration (0x04) and then set ready:
	// it serves. s2 is in maintenance; s3 drains.
	if !got[0].serving() || got[1].ready() || got[2].ready() {
		t.Errorf("states read wrong: %v %v %v", got[0].serving(), got[1].ready(), got[2].ready())
	}
	if got[2].hostPort() != "[::1]:0" {
		t.Errorf("hostPort of an IPv6 serverState = %q", got[2].hostPort())
	}

	if _, ok, err := parseServersState("Can't find backend.\n\n", "nope"); ok || err != nil {
		t.Errorf("an error answer read as a table: %v %v", ok, err)
	}
	for name, bad := range map[string]string{
		"other backend": strings.Replace(serversState, "4 be_c 2", "4 be_x 2", 1),
		"short line":    strings.Replace(serversState, "- - 0\n4 be_c 2", "- -\n4 be_c 2", 1),
		"bad state":     strings.Replace(serversState, "s2 127.0.0.1 0 5", "s2 127.0.0.1 x 5", 1),
		"no header":     "1\n4 be_c 1 s1 127.0.0.1 2 4\n\n",
		"cut short":     strings.TrimSuffix(serversState, "\n\n"),
		"missing col":   strings.Replace(serversState, "srv_admin_state", "srv_other", 1),
		"bad port":      strings.Replace(serversState, " 9001 ", " 70000 ", 1),
	} {
		if _, _, err := parseServersState(bad, "be_c"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseVar(t *testing.T) {
	v, ok, err := parseVar("proc.coalmine_shop_headers: type=str value=<|x-canary|>\n", "proc.coalmine_shop_headers")
	if err != nil || !ok || v != "|x-canary|" {
		t.Fatalf("parseVar = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := parseVar("Variable not found.\n\n", "proc.x"); ok || err != nil {
		t.Fatalf("an error answer read as a variable: %v, %v", ok, err)
	}
	if _, _, err := parseVar("proc.x: type=str value=<cut", "proc.x"); err == nil {
		t.Fatal("a cut answer accepted")
	}
}

func TestAnswerErrorNamesTheFix(t *testing.T) {
	for answer, want := range map[string]string{
		"Unknown command, but maybe one of the following ones is a better match:\n  add map\n\n": "level admin",
		"Permission denied\n\n":                                   "level admin",
		"Unknown map identifier. Please use #<id> or <file>.\n\n": "No such map",
		"Can't find backend.\n\n":                                 "No such backend",
		"No such backend.\n\n":                                    "No such backend",
		"No such server.\n\n":                                     "No such server",
		"Variable not found.\n\n":                                 "set-var",
		"":                                                        "without answering",
		"unable to parse 'abc'.\n\n":                              "unable to parse 'abc'",
	} {
		err := answerError("unix:///x", "cmd", "map /m", answer)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("answer %q: error %q does not say %q", answer, err, want)
		}
	}
}

func TestSuccessAnswers(t *testing.T) {
	if !emptyAnswer("\n") || !emptyAnswer("") || emptyAnswer("entry not found.\n\n") {
		t.Error("emptyAnswer misreads")
	}
	if !addrChanged("IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '9001' by 'stats socket command'\n\n") ||
		!addrChanged("no need to change the addr, no need to change the port by 'stats socket command'\n\n") ||
		addrChanged("Invalid addr 'localhost' by 'stats socket command'\n\n") ||
		addrChanged("No such server.\n\n") {
		t.Error("addrChanged misreads")
	}
	if !serverAdded("New server registered.\n\n") || serverAdded("Backend must use a dynamic load balancing to support dynamic servers.\n") {
		t.Error("serverAdded misreads")
	}
	if !serverDeleted("Server deleted.\n") || !serverDeleted("No such server.\n") || serverDeleted("Only servers in maintenance mode can be deleted.\n") {
		t.Error("serverDeleted misreads")
	}
	if !serverBusy("Server still has connections attached to it, cannot remove it.\n") || serverBusy("Only servers in maintenance mode can be deleted.\n") {
		t.Error("serverBusy misreads")
	}
}

func FuzzParseShowMap(f *testing.F) {
	f.Add("0x556b8620c280 shop:weight 1000\n0x7fc1b00465b0 shop/exact/x=a b 3\n\n")
	f.Add("Unknown map identifier. Please use #<id> or <file>.\n\n")
	f.Add("\n")
	f.Add("0x1 a b\n")
	f.Fuzz(func(t *testing.T, answer string) {
		entries, ok, err := parseShowMap(answer)
		if err != nil || !ok {
			return
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Ref, "0x") || e.Key == "" || e.Value == "" || strings.ContainsAny(e.Value, " \n") || strings.Contains(e.Key, "\n") {
				t.Fatalf("accepted entry %q from %q", e, answer)
			}
			// Every accepted entry is a line of the answer.
			if !strings.Contains(answer, e.Ref+" "+e.Key+" "+e.Value+"\n") {
				t.Fatalf("entry %q is not a line of %q", e, answer)
			}
		}
	})
}

func FuzzParseServersState(f *testing.F) {
	f.Add(serversState)
	f.Add("Can't find backend.\n\n")
	f.Add("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\nbe_c s1 1.2.3.4 2 0 80\n\n")
	f.Fuzz(func(t *testing.T, answer string) {
		servers, ok, err := parseServersState(answer, "be_c")
		if err != nil || !ok {
			return
		}
		for _, s := range servers {
			if s.Name == "" || s.Addr == "" || s.Port < 0 || s.Port > 65535 || s.OpState < 0 || s.Admin < 0 {
				t.Fatalf("accepted serverState %+v from %q", s, answer)
			}
		}
	})
}
