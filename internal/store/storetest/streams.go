package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// runStreams checks the Streams half of the contract: sequenced event
// streams and atomic batches.
func runStreams(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	ctx := context.Background()

	t.Run("seqs start at 1 and increase by one per stream", func(t *testing.T) {
		s := open(t)
		if got := lastSeq(t, s, "s1"); got != 0 {
			t.Fatalf("LastSeq of a missing stream = %d, want 0", got)
		}
		c := commit(t, s, appendTo("s1", "a", "b"))
		wantEventLists(t, "first append", c.Events, [][]store.Event{{ev(1, "a"), ev(2, "b")}})
		c = commit(t, s, appendTo("s1", "c"))
		wantEventLists(t, "second append", c.Events, [][]store.Event{{ev(3, "c")}})
		c = commit(t, s, appendTo("s2", "x"))
		wantEventLists(t, "other stream", c.Events, [][]store.Event{{ev(1, "x")}})

		// Several appends in one batch, two to the same stream: numbered in
		// batch order, each stream on its own counter.
		c = commit(t, s, store.Batch{Appends: []store.Append{
			{Stream: "s1", Data: [][]byte{[]byte("d")}},
			{Stream: "s2", Data: [][]byte{[]byte("y"), []byte("z")}},
			{Stream: "s1", Data: [][]byte{[]byte("e")}},
		}})
		wantEventLists(t, "mixed batch", c.Events, [][]store.Event{
			{ev(4, "d")},
			{ev(2, "y"), ev(3, "z")},
			{ev(5, "e")},
		})

		if got := lastSeq(t, s, "s1"); got != 5 {
			t.Errorf("LastSeq(s1) = %d, want 5", got)
		}
		if got := lastSeq(t, s, "s2"); got != 3 {
			t.Errorf("LastSeq(s2) = %d, want 3", got)
		}
		wantEvents(t, "s1", events(t, s, "s1", 0, 0), []store.Event{ev(1, "a"), ev(2, "b"), ev(3, "c"), ev(4, "d"), ev(5, "e")})
		wantEvents(t, "s2", events(t, s, "s2", 0, 0), []store.Event{ev(1, "x"), ev(2, "y"), ev(3, "z")})
	})

	t.Run("events after and limit", func(t *testing.T) {
		s := open(t)
		var all []store.Event
		var data []string
		for i := 1; i <= 10; i++ {
			data = append(data, "e"+strconv.Itoa(i))
			all = append(all, ev(uint64(i), "e"+strconv.Itoa(i)))
		}
		commit(t, s, appendTo("s", data[:4]...))
		commit(t, s, appendTo("s", data[4:]...))
		cases := []struct {
			after uint64
			limit int
			want  []store.Event
		}{
			{0, 0, all},
			{0, -1, all},
			{0, 100, all},
			{0, 3, all[:3]},
			{3, 3, all[3:6]},
			{8, 5, all[8:]},
			{9, 0, all[9:]},
			{10, 0, nil},
			{11, 0, nil},
			{1000, 1, nil},
			{math.MaxUint64, 0, nil},
		}
		for _, c := range cases {
			wantEvents(t, fmt.Sprintf("Events(after=%d, limit=%d)", c.after, c.limit), events(t, s, "s", c.after, c.limit), c.want)
		}
		for _, after := range []uint64{0, 5, math.MaxUint64} {
			wantEvents(t, fmt.Sprintf("missing stream after %d", after), events(t, s, "missing", after, 0), nil)
		}
	})

	t.Run("commit writes puts deletes and appends", func(t *testing.T) {
		s := open(t)
		keep := put(t, s, "c", "keep", "v1")
		put(t, s, "c", "gone", "bye")
		put(t, s, "other", "gone", "bye")
		c := commit(t, s, store.Batch{
			Puts: []store.Put{
				{Collection: "c", Record: store.Record{Key: "keep", Version: keep.Version, Data: []byte("v2")}},
				{Collection: "c", Record: store.Record{Key: "new", Data: []byte("fresh")}},
			},
			Deletes: []store.Delete{
				{Collection: "c", Key: "gone"},
				{Collection: "other", Key: "gone"},
				{Collection: "c", Key: "never-existed"},
				{Collection: "no-such-collection", Key: "k"},
			},
			Appends: []store.Append{{Stream: "s", Data: [][]byte{[]byte("a"), []byte("b")}}},
		})
		if len(c.Records) != 2 ||
			c.Records[0].Key != "keep" || c.Records[0].Version != 2 || string(c.Records[0].Data) != "v2" ||
			c.Records[1].Key != "new" || c.Records[1].Version != 1 || string(c.Records[1].Data) != "fresh" {
			t.Errorf("Committed.Records = %s, want keep@2=v2, new@1=fresh", fmtRecords(c.Records))
		}
		wantEventLists(t, "Committed.Events", c.Events, [][]store.Event{{ev(1, "a"), ev(2, "b")}})
		wantRecord(t, s, "c", "keep", 2, "v2")
		wantRecord(t, s, "c", "new", 1, "fresh")
		wantMissing(t, s, "c", "gone")
		wantMissing(t, s, "other", "gone")
		wantEvents(t, "stream", events(t, s, "s", 0, 0), []store.Event{ev(1, "a"), ev(2, "b")})

		// A batch of only deletes, and an empty batch, succeed.
		c = commit(t, s, store.Batch{Deletes: []store.Delete{{Collection: "c", Key: "new"}}})
		if len(c.Records) != 0 || len(c.Events) != 0 {
			t.Errorf("delete-only batch returned %+v", c)
		}
		wantMissing(t, s, "c", "new")
		commit(t, s, store.Batch{})
	})

	t.Run("commit with checks", func(t *testing.T) {
		s := open(t)
		epoch := put(t, s, "leases", "epoch", "1")
		// A passing check (and one on a record that must not exist) lets
		// the batch write.
		commit(t, s, store.Batch{
			Checks: []store.Check{{Collection: "leases", Key: "epoch", Version: epoch.Version}, {Collection: "leases", Key: "none"}},
			Puts:   []store.Put{{Collection: "c", Record: store.Record{Key: "k", Data: []byte("v1")}}},
		})
		wantRecord(t, s, "c", "k", 1, "v1")
		// The epoch moves on: a batch fenced by the old version writes
		// nothing, and a check leaves the checked record as it was.
		put2, err := s.Put(ctx, "leases", store.Record{Key: "epoch", Version: epoch.Version, Data: []byte("2")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []store.Check{{Collection: "leases", Key: "epoch", Version: epoch.Version}, {Collection: "leases", Key: "epoch"}, {Collection: "leases", Key: "none", Version: 1}} {
			_, err := s.Commit(ctx, store.Batch{
				Checks:  []store.Check{c},
				Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "k", Version: 1, Data: []byte("v2")}}},
				Appends: []store.Append{{Stream: "fenced", Data: [][]byte{[]byte("x")}}},
			})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("check %+v: %v, want ErrConflict", c, err)
			}
		}
		wantRecord(t, s, "c", "k", 1, "v1")
		wantRecord(t, s, "leases", "epoch", put2.Version, "2")
		if seq, err := s.LastSeq(ctx, "fenced"); err != nil || seq != 0 {
			t.Fatalf("a fenced batch appended: last seq %d, %v", seq, err)
		}
	})

	t.Run("commit with a conflicting put writes nothing", func(t *testing.T) {
		conflicts := []struct {
			name string
			put  store.Put
			at   int // position among the batch's puts
		}{
			{"stale version first", store.Put{Collection: "c", Record: store.Record{Key: "b", Version: 7, Data: []byte("B!")}}, 0},
			{"stale version last", store.Put{Collection: "c", Record: store.Record{Key: "b", Version: 7, Data: []byte("B!")}}, 2},
			{"create over existing", store.Put{Collection: "c", Record: store.Record{Key: "b", Data: []byte("B!")}}, 1},
			{"update of missing record", store.Put{Collection: "c", Record: store.Record{Key: "ghost", Version: 1, Data: []byte("G")}}, 2},
		}
		for _, cf := range conflicts {
			t.Run(cf.name, func(t *testing.T) {
				s := open(t)
				a := put(t, s, "c", "a", "A")
				b := put(t, s, "c", "b", "B")
				put(t, s, "c", "del", "D")
				commit(t, s, appendTo("s", "one", "two"))

				puts := []store.Put{
					{Collection: "c", Record: store.Record{Key: "a", Version: a.Version, Data: []byte("A!")}},
					{Collection: "c", Record: store.Record{Key: "n", Data: []byte("N")}},
				}
				puts = append(puts[:cf.at], append([]store.Put{cf.put}, puts[cf.at:]...)...)
				c, err := s.Commit(ctx, store.Batch{
					Puts:    puts,
					Deletes: []store.Delete{{Collection: "c", Key: "del"}},
					Appends: []store.Append{
						{Stream: "s", Data: [][]byte{[]byte("three")}},
						{Stream: "fresh", Data: [][]byte{[]byte("x")}},
					},
				})
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("Commit = %+v, %v; want an error wrapping ErrConflict", c, err)
				}
				wantRecord(t, s, "c", "a", a.Version, "A")
				wantRecord(t, s, "c", "b", b.Version, "B")
				wantMissing(t, s, "c", "n")
				wantMissing(t, s, "c", "ghost")
				wantRecord(t, s, "c", "del", 1, "D")
				if got := lastSeq(t, s, "s"); got != 2 {
					t.Errorf("LastSeq(s) after a failed batch = %d, want 2", got)
				}
				if got := lastSeq(t, s, "fresh"); got != 0 {
					t.Errorf("LastSeq(fresh) after a failed batch = %d, want 0", got)
				}
				wantEvents(t, "s after a failed batch", events(t, s, "s", 0, 0), []store.Event{ev(1, "one"), ev(2, "two")})
				wantEvents(t, "fresh after a failed batch", events(t, s, "fresh", 0, 0), nil)

				// The failed batch burned no sequence numbers.
				c = commit(t, s, store.Batch{Appends: []store.Append{
					{Stream: "s", Data: [][]byte{[]byte("three")}},
					{Stream: "fresh", Data: [][]byte{[]byte("x")}},
				}})
				wantEventLists(t, "next commit", c.Events, [][]store.Event{{ev(3, "three")}, {ev(1, "x")}})
			})
		}
	})

	t.Run("trim", func(t *testing.T) {
		s := open(t)
		commit(t, s, appendTo("s", "1", "2", "3", "4", "5"))
		commit(t, s, appendTo("other", "o1", "o2"))
		trim(t, s, "s", 0)
		wantEvents(t, "after Trim(0)", events(t, s, "s", 0, 0), []store.Event{ev(1, "1"), ev(2, "2"), ev(3, "3"), ev(4, "4"), ev(5, "5")})
		trim(t, s, "s", 2)
		wantEvents(t, "after Trim(2)", events(t, s, "s", 0, 0), []store.Event{ev(3, "3"), ev(4, "4"), ev(5, "5")})
		wantEvents(t, "after Trim(2), after 1", events(t, s, "s", 1, 2), []store.Event{ev(3, "3"), ev(4, "4")})
		wantEvents(t, "after Trim(2), after 3", events(t, s, "s", 3, 0), []store.Event{ev(4, "4"), ev(5, "5")})
		trim(t, s, "s", 1) // already gone: no-op
		wantEvents(t, "after Trim(1)", events(t, s, "s", 0, 0), []store.Event{ev(3, "3"), ev(4, "4"), ev(5, "5")})

		trim(t, s, "s", 5) // everything
		wantEvents(t, "after Trim(5)", events(t, s, "s", 0, 0), nil)
		if got := lastSeq(t, s, "s"); got != 5 {
			t.Errorf("LastSeq after trimming everything = %d, want 5", got)
		}
		c := commit(t, s, appendTo("s", "6"))
		wantEventLists(t, "append after trim", c.Events, [][]store.Event{{ev(6, "6")}})
		wantEvents(t, "after append", events(t, s, "s", 0, 0), []store.Event{ev(6, "6")})

		trim(t, s, "s", 1000) // beyond LastSeq
		wantEvents(t, "after Trim(1000)", events(t, s, "s", 0, 0), nil)
		if got := lastSeq(t, s, "s"); got != 6 {
			t.Errorf("LastSeq after Trim(1000) = %d, want 6", got)
		}
		c = commit(t, s, appendTo("s", "7"))
		wantEventLists(t, "append after Trim(1000)", c.Events, [][]store.Event{{ev(7, "7")}})

		wantEvents(t, "other stream", events(t, s, "other", 0, 0), []store.Event{ev(1, "o1"), ev(2, "o2")})
		trim(t, s, "missing", 10)
		if got := lastSeq(t, s, "missing"); got != 0 {
			t.Errorf("Trim created stream: LastSeq = %d", got)
		}
	})

	t.Run("delete stream", func(t *testing.T) {
		s := open(t)
		commit(t, s, appendTo("s", "a", "b", "c"))
		commit(t, s, appendTo("other", "o"))
		if err := s.DeleteStream(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		wantEvents(t, "deleted stream", events(t, s, "s", 0, 0), nil)
		if got := lastSeq(t, s, "s"); got != 0 {
			t.Errorf("LastSeq of a deleted stream = %d, want 0", got)
		}
		wantEvents(t, "other stream", events(t, s, "other", 0, 0), []store.Event{ev(1, "o")})
		if got := lastSeq(t, s, "other"); got != 1 {
			t.Errorf("LastSeq(other) = %d, want 1", got)
		}
		if err := s.DeleteStream(ctx, "missing"); err != nil {
			t.Errorf("DeleteStream of a missing stream: %v", err)
		}
		// The counter went with the stream: a new stream of that name starts at 1.
		c := commit(t, s, appendTo("s", "again"))
		wantEventLists(t, "append to a recreated stream", c.Events, [][]store.Event{{ev(1, "again")}})
	})

	t.Run("returned data is not aliased", func(t *testing.T) {
		// Payloads of a few KiB so a store keeping small values inline (bbolt
		// does, for small buckets) serves these from its real pages. A store
		// that hands out its read-only mapped memory faults in scribble
		// below, which also fails the suite.
		s := open(t)
		big := func(c byte) string { return strings.Repeat(string(c), 5000) }
		recWant, evWant := big('r'), []string{big('a'), big('b'), big('c')}
		recData := []byte(recWant)
		evData := [][]byte{[]byte(evWant[0]), []byte(evWant[1]), []byte(evWant[2])}
		c := commit(t, s, store.Batch{
			Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "k", Data: recData}}},
			Appends: []store.Append{{Stream: "s", Data: evData}},
		})
		check := func(when string) {
			t.Helper()
			got, err := s.Get(ctx, "c", "k")
			if err != nil || got.Version != 1 || string(got.Data) != recWant {
				t.Errorf("%s: Get = version %d, %d bytes starting %q, %v; want version 1, the original data", when, got.Version, len(got.Data), prefix(got.Data), err)
			}
			all, err := s.List(ctx, "c")
			if err != nil || len(all) != 1 || string(all[0].Data) != recWant {
				t.Errorf("%s: List returned %d records, %v; want the original record", when, len(all), err)
			}
			evs := events(t, s, "s", 0, 0)
			ok := len(evs) == len(evWant)
			for i := 0; ok && i < len(evs); i++ {
				ok = evs[i].Seq == uint64(i+1) && string(evs[i].Data) == evWant[i]
			}
			if !ok {
				var got []string
				for _, e := range evs {
					got = append(got, fmt.Sprintf("%d:%d bytes starting %q", e.Seq, len(e.Data), prefix(e.Data)))
				}
				t.Errorf("%s: Events = %v; want the 3 original events", when, got)
			}
		}

		scribble(recData)
		for _, d := range evData {
			scribble(d)
		}
		for _, r := range c.Records {
			scribble(r.Data)
		}
		for _, evs := range c.Events {
			for _, e := range evs {
				scribble(e.Data)
			}
		}
		check("after mutating the batch and Committed")

		got, err := s.Get(ctx, "c", "k")
		if err != nil {
			t.Fatal(err)
		}
		scribble(got.Data)
		all, err := s.List(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			scribble(r.Data)
		}
		for _, e := range events(t, s, "s", 0, 0) {
			scribble(e.Data)
		}
		for _, e := range events(t, s, "s", 1, 1) {
			scribble(e.Data)
		}
		check("after mutating Get, List and Events results")

		// Later writes must not show through slices handed out earlier.
		e1 := events(t, s, "s", 0, 0)
		r1, err := s.Get(ctx, "c", "k")
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, store.Batch{
			Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "k", Version: 1, Data: []byte(big('R'))}}},
			Appends: []store.Append{{Stream: "s", Data: [][]byte{[]byte(big('D'))}}},
		})
		trim(t, s, "s", 2)
		if string(r1.Data) != recWant || len(e1) != 3 || string(e1[0].Data) != evWant[0] || string(e1[2].Data) != evWant[2] {
			t.Errorf("earlier results changed under later writes")
		}
	})

	t.Run("concurrent commits to one stream", func(t *testing.T) {
		s := open(t)
		const workers, perWorker = 8, 25
		type result struct {
			worker int
			seqs   []uint64
			data   []string
		}
		results := make(chan result, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				res := result{worker: w}
				defer func() { results <- res }()
				key := "w" + strconv.Itoa(w)
				var version uint64
				for i := 0; i < perWorker; i++ {
					d := fmt.Sprintf("%s-%d", key, i)
					c, err := s.Commit(ctx, store.Batch{
						Puts:    []store.Put{{Collection: "status", Record: store.Record{Key: key, Version: version, Data: []byte(d)}}},
						Appends: []store.Append{{Stream: "shared", Data: [][]byte{[]byte(d)}}},
					})
					if err != nil {
						t.Errorf("worker %d commit %d: %v", w, i, err)
						return
					}
					if len(c.Records) != 1 || len(c.Events) != 1 || len(c.Events[0]) != 1 {
						t.Errorf("worker %d commit %d returned %+v", w, i, c)
						return
					}
					version = c.Records[0].Version
					res.seqs = append(res.seqs, c.Events[0][0].Seq)
					res.data = append(res.data, d)
				}
			}(w)
		}
		wg.Wait()
		close(results)
		if t.Failed() {
			t.FailNow()
		}
		const total = workers * perWorker
		bySeq := map[uint64]string{}
		for res := range results {
			for i, seq := range res.seqs {
				if i > 0 && seq <= res.seqs[i-1] {
					t.Errorf("worker %d: seq %d after %d", res.worker, seq, res.seqs[i-1])
				}
				if prev, dup := bySeq[seq]; dup {
					t.Errorf("seq %d handed out twice: %q and %q", seq, prev, res.data[i])
				}
				bySeq[seq] = res.data[i]
			}
			wantRecord(t, s, "status", "w"+strconv.Itoa(res.worker), perWorker, res.data[len(res.data)-1])
		}
		for seq := uint64(1); seq <= total; seq++ {
			if _, ok := bySeq[seq]; !ok {
				t.Errorf("seq %d missing (gap)", seq)
			}
		}
		if len(bySeq) != total {
			t.Errorf("%d distinct seqs, want %d", len(bySeq), total)
		}
		if got := lastSeq(t, s, "shared"); got != total {
			t.Errorf("LastSeq = %d, want %d", got, total)
		}
		stored := events(t, s, "shared", 0, 0)
		if len(stored) != total {
			t.Fatalf("stream holds %d events, want %d", len(stored), total)
		}
		for i, e := range stored {
			if e.Seq != uint64(i+1) || string(e.Data) != bySeq[e.Seq] {
				t.Errorf("event %d = %d %q, want %d %q", i, e.Seq, e.Data, i+1, bySeq[uint64(i+1)])
			}
		}
	})

	t.Run("concurrent compare-and-swap commits", func(t *testing.T) {
		// Every worker bumps one shared counter record and announces the new
		// value as an event, retrying on conflict: the controller's pattern
		// with several writers. A losing batch must append nothing, so event
		// n carries counter value n.
		s := open(t)
		const workers, perWorker = 4, 10
		var wg sync.WaitGroup
		var mu sync.Mutex
		conflicts := 0
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for done := 0; done < perWorker; {
					var version uint64
					cur, err := s.Get(ctx, "c", "counter")
					switch {
					case errors.Is(err, store.ErrNotFound):
					case err != nil:
						t.Errorf("worker %d: get: %v", w, err)
						return
					default:
						version = cur.Version
					}
					next := []byte(strconv.FormatUint(version+1, 10))
					c, err := s.Commit(ctx, store.Batch{
						Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "counter", Version: version, Data: next}}},
						Appends: []store.Append{{Stream: "counter", Data: [][]byte{next}}},
					})
					if errors.Is(err, store.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Errorf("worker %d: commit: %v", w, err)
						return
					}
					if len(c.Events) != 1 || len(c.Events[0]) != 1 || c.Events[0][0].Seq != version+1 {
						t.Errorf("worker %d: counter %d announced as %+v", w, version+1, c.Events)
					}
					done++
				}
			}(w)
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		const total = workers * perWorker
		wantRecord(t, s, "c", "counter", total, strconv.Itoa(total))
		stored := events(t, s, "counter", 0, 0)
		if len(stored) != total {
			t.Fatalf("stream holds %d events, want %d (conflicting batches must append nothing)", len(stored), total)
		}
		for i, e := range stored {
			if want := uint64(i + 1); e.Seq != want || string(e.Data) != strconv.FormatUint(want, 10) {
				t.Errorf("event %d = %d %q, want %d %q", i, e.Seq, e.Data, want, strconv.FormatUint(want, 10))
			}
		}
		t.Logf("%d commits lost a compare-and-swap race and were retried", conflicts)
	})

	if reopen != nil {
		t.Run("streams durable across reopen", func(t *testing.T) {
			s := open(t)
			put(t, s, "c", "gone", "x")
			commit(t, s, store.Batch{
				Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "k", Data: []byte("status")}}},
				Deletes: []store.Delete{{Collection: "c", Key: "gone"}},
				Appends: []store.Append{
					{Stream: "s1", Data: [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}},
					{Stream: "s2", Data: [][]byte{[]byte("x")}},
					{Stream: "s3", Data: [][]byte{[]byte("p"), []byte("q")}},
				},
			})
			trim(t, s, "s1", 2)
			trim(t, s, "s3", 2) // all of it: only the counter remains

			s = reopen(t, s)
			wantRecord(t, s, "c", "k", 1, "status")
			wantMissing(t, s, "c", "gone")
			wantEvents(t, "s1 after reopen", events(t, s, "s1", 0, 0), []store.Event{ev(3, "c"), ev(4, "d")})
			wantEvents(t, "s2 after reopen", events(t, s, "s2", 0, 0), []store.Event{ev(1, "x")})
			wantEvents(t, "s3 after reopen", events(t, s, "s3", 0, 0), nil)
			for stream, want := range map[string]uint64{"s1": 4, "s2": 1, "s3": 2} {
				if got := lastSeq(t, s, stream); got != want {
					t.Errorf("LastSeq(%s) after reopen = %d, want %d", stream, got, want)
				}
			}
			c := commit(t, s, store.Batch{
				Puts: []store.Put{{Collection: "c", Record: store.Record{Key: "k", Version: 1, Data: []byte("status2")}}},
				Appends: []store.Append{
					{Stream: "s1", Data: [][]byte{[]byte("e")}},
					{Stream: "s3", Data: [][]byte{[]byte("r")}},
				},
			})
			wantEventLists(t, "append after reopen", c.Events, [][]store.Event{{ev(5, "e")}, {ev(3, "r")}})

			s = reopen(t, s)
			wantRecord(t, s, "c", "k", 2, "status2")
			wantEvents(t, "s1 after second reopen", events(t, s, "s1", 0, 0), []store.Event{ev(3, "c"), ev(4, "d"), ev(5, "e")})
			wantEvents(t, "s3 after second reopen", events(t, s, "s3", 0, 0), []store.Event{ev(3, "r")})
			if got := lastSeq(t, s, "s3"); got != 3 {
				t.Errorf("LastSeq(s3) after second reopen = %d, want 3", got)
			}
		})
	}
}

func ev(seq uint64, data string) store.Event { return store.Event{Seq: seq, Data: []byte(data)} }

func appendTo(stream string, data ...string) store.Batch {
	a := store.Append{Stream: stream}
	for _, d := range data {
		a.Data = append(a.Data, []byte(d))
	}
	return store.Batch{Appends: []store.Append{a}}
}

func commit(t *testing.T, s store.Store, b store.Batch) store.Committed {
	t.Helper()
	c, err := s.Commit(context.Background(), b)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if len(c.Records) != len(b.Puts) || len(c.Events) != len(b.Appends) {
		t.Fatalf("commit of %d puts and %d appends returned %d records and %d event lists",
			len(b.Puts), len(b.Appends), len(c.Records), len(c.Events))
	}
	return c
}

func put(t *testing.T, s store.Store, collection, key, data string) store.Record {
	t.Helper()
	r, err := s.Put(context.Background(), collection, store.Record{Key: key, Data: []byte(data)})
	if err != nil {
		t.Fatalf("put %s/%s: %v", collection, key, err)
	}
	return r
}

func events(t *testing.T, s store.Store, stream string, after uint64, limit int) []store.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), stream, after, limit)
	if err != nil {
		t.Fatalf("Events(%s, after=%d, limit=%d): %v", stream, after, limit, err)
	}
	return evs
}

func lastSeq(t *testing.T, s store.Store, stream string) uint64 {
	t.Helper()
	seq, err := s.LastSeq(context.Background(), stream)
	if err != nil {
		t.Fatalf("LastSeq(%s): %v", stream, err)
	}
	return seq
}

func trim(t *testing.T, s store.Store, stream string, upTo uint64) {
	t.Helper()
	if err := s.Trim(context.Background(), stream, upTo); err != nil {
		t.Fatalf("Trim(%s, %d): %v", stream, upTo, err)
	}
}

func wantRecord(t *testing.T, s store.Store, collection, key string, version uint64, data string) {
	t.Helper()
	got, err := s.Get(context.Background(), collection, key)
	if err != nil || got.Key != key || got.Version != version || string(got.Data) != data {
		t.Errorf("Get(%s/%s) = %s, %v; want version %d %q", collection, key, fmtRecords([]store.Record{got}), err, version, data)
	}
}

func wantMissing(t *testing.T, s store.Store, collection, key string) {
	t.Helper()
	if got, err := s.Get(context.Background(), collection, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%s/%s) = %s, %v; want ErrNotFound", collection, key, fmtRecords([]store.Record{got}), err)
	}
}

func wantEvents(t *testing.T, what string, got, want []store.Event) {
	t.Helper()
	if !sameEvents(got, want) {
		t.Errorf("%s: got %s, want %s", what, fmtEvents(got), fmtEvents(want))
	}
}

func wantEventLists(t *testing.T, what string, got, want [][]store.Event) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameEvents(got[i], want[i])
	}
	if !ok {
		g, w := "", ""
		for _, e := range got {
			g += fmtEvents(e)
		}
		for _, e := range want {
			w += fmtEvents(e)
		}
		t.Errorf("%s: got [%s], want [%s]", what, g, w)
	}
}

func sameEvents(a, b []store.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

func fmtEvents(evs []store.Event) string {
	out := "["
	for i, e := range evs {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%d:%q", e.Seq, e.Data)
	}
	return out + "]"
}

func fmtRecords(rs []store.Record) string {
	out := "["
	for i, r := range rs {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%s@%d:%q", r.Key, r.Version, r.Data)
	}
	return out + "]"
}

func prefix(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

// scribble overwrites a slice in place, as a careless caller might.
func scribble(b []byte) {
	for i := range b {
		b[i] = '#'
	}
}
