package rollout

import (
	"context"
	"testing"
	"time"
)

// popAll hands out every key due now, in order, like Run would.
func popAll(q *delayQueue) []string {
	out := []string{}
	for {
		key, _, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, key)
	}
}

// TestDelayQueue drives the queue's decisions with a fake clock, without
// goroutines.
func TestDelayQueue(t *testing.T) {
	t.Run("keys come out in due order, each when due", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("c", t0.Add(3*time.Second))
		q.Add("a", t0.Add(time.Second))
		q.Add("b", t0.Add(2*time.Second))
		q.Add("now", t0)
		if got := popAll(q); !sameStrings(got, []string{"now"}) {
			t.Fatalf("at t0: %v, want [now]", got)
		}
		if _, wait, ok := q.pop(); ok || wait != time.Second {
			t.Fatalf("pop before a is due: ok %v wait %v, want the time until a", ok, wait)
		}
		clk.Advance(2 * time.Second)
		if got := popAll(q); !sameStrings(got, []string{"a", "b"}) {
			t.Fatalf("at t0+2s: %v, want [a b]", got)
		}
		clk.Advance(time.Second)
		if got := popAll(q); !sameStrings(got, []string{"c"}) {
			t.Fatalf("at t0+3s: %v, want [c]", got)
		}
		if _, wait, ok := q.pop(); ok || wait != time.Hour {
			t.Fatalf("empty queue: ok %v wait %v, want to sleep an hour", ok, wait)
		}
	})

	t.Run("a key has one due time, the earliest asked for", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("a", t0.Add(5*time.Second))
		q.Add("a", t0.Add(time.Second))
		q.Add("a", t0.Add(3*time.Second))
		if _, wait, ok := q.pop(); ok || wait != time.Second {
			t.Fatalf("pop: ok %v wait %v, want a due in 1s", ok, wait)
		}
		clk.Advance(10 * time.Second)
		if got := popAll(q); !sameStrings(got, []string{"a"}) {
			t.Fatalf("got %v, want a once", got)
		}
		q.Done("a")
		if got := popAll(q); len(got) != 0 {
			t.Fatalf("later times asked for were handed out again: %v", got)
		}
	})

	t.Run("a later time does not postpone an earlier one", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("a", t0)
		q.Add("a", t0.Add(time.Hour))
		if got := popAll(q); !sameStrings(got, []string{"a"}) {
			t.Fatalf("got %v, want a now", got)
		}
	})

	t.Run("a key being processed is not handed out until Done, which schedules what was asked meanwhile", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("a", t0)
		if got := popAll(q); !sameStrings(got, []string{"a"}) {
			t.Fatalf("got %v", got)
		}
		q.Add("a", t0.Add(2*time.Second))
		q.Add("a", t0)
		q.Add("b", t0)
		if got := popAll(q); !sameStrings(got, []string{"b"}) {
			t.Fatalf("while a is processed: %v, want only b", got)
		}
		q.Done("a")
		if got := popAll(q); !sameStrings(got, []string{"a"}) {
			t.Fatalf("after Done: %v, want a (asked for at t0 meanwhile)", got)
		}
		q.Done("a")
		q.Done("b")
		if got := popAll(q); len(got) != 0 {
			t.Fatalf("got %v, want nothing more", got)
		}
	})

	t.Run("Done without anything asked meanwhile schedules nothing", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("a", t0)
		popAll(q)
		q.Done("a")
		clk.Advance(time.Hour)
		if got := popAll(q); len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})

	t.Run("Forget drops a key's schedule", func(t *testing.T) {
		clk := newFakeClock()
		q := newDelayQueue(clk.Now)
		q.Add("a", t0)
		q.Add("b", t0.Add(time.Second))
		q.Forget("a")
		clk.Advance(time.Second)
		if got := popAll(q); !sameStrings(got, []string{"b"}) {
			t.Fatalf("got %v, want only b", got)
		}
		// A key forgotten while processed is not scheduled by Done.
		q.Add("b", t0)
		q.Forget("b")
		q.Done("b")
		if got := popAll(q); len(got) != 0 {
			t.Fatalf("got %v after Forget during processing", got)
		}
		// A forgotten key can be added again.
		q.Add("a", clk.Now())
		if got := popAll(q); !sameStrings(got, []string{"a"}) {
			t.Fatalf("got %v, want a added again after Forget", got)
		}
	})
}

// recvKey waits for the queue to hand out a key.
func recvKey(t *testing.T, out <-chan string) string {
	t.Helper()
	select {
	case k := <-out:
		return k
	case <-time.After(5 * time.Second):
		t.Fatal("the queue handed out nothing within 5s")
		return ""
	}
}

// TestDelayQueueRun checks Run with the real clock and short delays: it
// sleeps until the next key is due, wakes for a new earlier key, and
// never hands out a key that is being processed.
func TestDelayQueueRun(t *testing.T) {
	q := newDelayQueue(time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan string)
	stopped := make(chan struct{})
	go func() { defer close(stopped); q.Run(ctx, out) }()
	defer func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}()

	// An idle queue sleeps long; a new key wakes it.
	q.Add("first", time.Now())
	if k := recvKey(t, out); k != "first" {
		t.Fatalf("got %q", k)
	}
	q.Done("first")

	base := time.Now()
	due := map[string]time.Time{"c": base.Add(30 * time.Millisecond), "a": base.Add(10 * time.Millisecond), "b": base.Add(20 * time.Millisecond)}
	for _, k := range []string{"c", "a", "b"} {
		q.Add(k, due[k])
	}
	for _, want := range []string{"a", "b", "c"} {
		k := recvKey(t, out)
		if k != want {
			t.Fatalf("got %q, want %q (due order)", k, want)
		}
		if now := time.Now(); now.Before(due[k]) {
			t.Errorf("%s handed out %v before it was due", k, due[k].Sub(now))
		}
		q.Done(k)
	}

	// While "a" is processed, asking for it again does not hand it out:
	// "b", asked for later, comes first; Done then hands "a" out.
	q.Add("a", time.Now())
	if k := recvKey(t, out); k != "a" {
		t.Fatalf("got %q", k)
	}
	q.Add("a", time.Now())
	q.Add("b", time.Now().Add(5*time.Millisecond))
	if k := recvKey(t, out); k != "b" {
		t.Fatalf("got %q while a is processed, want b", k)
	}
	q.Done("b")
	q.Done("a")
	if k := recvKey(t, out); k != "a" {
		t.Fatalf("got %q after Done, want a", k)
	}
	q.Done("a")
}
