package route

import (
	"regexp"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// FuzzStringMatch checks that compiling and matching arbitrary patterns and
// values never panics and that exact/prefix agree with their definitions.
func FuzzStringMatch(f *testing.F) {
	f.Add("team-", "team-a", uint8(0))
	f.Add(`^v2\.[0-9]+$`, "v2.1", uint8(2))
	f.Add("", "", uint8(1))
	f.Fuzz(func(t *testing.T, pattern, value string, kind uint8) {
		var m spec.StringMatch
		switch kind % 3 {
		case 0:
			m.Exact = &pattern
		case 1:
			m.Prefix = &pattern
		default:
			m.Regex = &pattern
		}
		sm, err := CompileStringMatch(m)
		if err != nil {
			return
		}
		got := sm.Match([]byte(value))
		switch kind % 3 {
		case 2:
			// A whole-value match is also a match somewhere in the value.
			if got && !regexp.MustCompile(pattern).MatchString(value) {
				t.Fatalf("regex %q matched all of %q but not part of it", pattern, value)
			}
		case 0:
			if got != (pattern == value) {
				t.Fatalf("exact %q on %q = %v", pattern, value, got)
			}
		case 1:
			if got != (len(value) >= len(pattern) && value[:len(pattern)] == pattern) {
				t.Fatalf("prefix %q on %q = %v", pattern, value, got)
			}
		}
	})
}

// FuzzDecide checks the bucket invariants for arbitrary keys: buckets are in
// range, the decision agrees with the weight, and it is deterministic.
func FuzzDecide(f *testing.F) {
	f.Add("user-1", uint16(1000), int64(1))
	f.Add("", uint16(0), int64(0))
	f.Fuzz(func(t *testing.T, key string, w uint16, rev int64) {
		weight := spec.Weight(w % (uint16(spec.MaxWeight) + 1))
		tb, err := Compile(Config{Rollout: "f", Revision: rev, Weight: weight, Assignment: spec.Assignment{UserHeader: "K", Cookie: spec.SubjectCookie{Name: "c"}}})
		if err != nil {
			t.Fatal(err)
		}
		r := &fakeReq{headers: map[string]string{"K": key}}
		d1 := tb.Decide(r, Entropy{A: 3, B: 4})
		d2 := tb.Decide(r, Entropy{A: 5, B: 6})
		if d1.Bucket >= uint32(spec.MaxWeight) {
			t.Fatalf("bucket %d out of range", d1.Bucket)
		}
		if key != "" && (d1.Target != d2.Target || d1.Bucket != d2.Bucket) {
			t.Fatalf("key %q decided differently twice", key)
		}
		if (d1.Target == Canary) != (d1.Bucket < uint32(weight)) {
			t.Fatalf("bucket %d weight %d target %v", d1.Bucket, weight, d1.Target)
		}
	})
}
