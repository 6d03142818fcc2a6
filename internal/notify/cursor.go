package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// CursorCollection is the store collection of the channels' cursors.
const CursorCollection = "notify-cursors"

// cursorKey is the key of a channel's cursor: "<rollout>/<index>".
func cursorKey(rollout string, index int) string {
	return rollout + "/" + strconv.Itoa(index)
}

// cursor is how far a channel got in its rollout's event stream.
type cursor struct {
	// Seq is the last event handled (delivered, given up on, or skipped).
	Seq uint64 `json:"seq"`
	// Digest identifies the configuration that handled the events up to Seq.
	Digest string `json:"digest"`
	// Target identifies the destination only (kind and URL or secret
	// reference), so an incident survives an edit of the `on` list.
	Target string        `json:"target"`
	State  channel.State `json:"state"`
}

// digests returns the digest of a channel's whole configuration and of its
// target. Only references are hashed, never secret values, so rotating a
// secret keeps the cursor. The `on` list is sorted and deduplicated first:
// its order means nothing.
func digests(n spec.Notification) (digest, target string) {
	on := slices.Clone(n.On)
	slices.Sort(on)
	on = slices.Compact(on)
	full := n
	full.On = nil // hashed sorted, beside
	t := full
	if t.Webhook != nil {
		w := *t.Webhook
		w.Headers = nil
		t.Webhook = &w
	}
	return hash(struct {
			Kind string            `json:"kind"`
			On   []string          `json:"on"`
			Spec spec.Notification `json:"spec"`
		}{kindOf(n), on, full}), hash(struct {
			Kind string            `json:"kind"`
			Spec spec.Notification `json:"spec"`
		}{kindOf(n), t})
}

func hash(v any) string {
	b, err := json.Marshal(v) // maps marshal with sorted keys: stable
	if err != nil {
		panic(fmt.Sprintf("notify: hash channel config: %v", err)) // plain data cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// loadCursor reads a cursor and its record version; found is false when
// there is none.
func loadCursor(ctx context.Context, st store.Store, key string) (c cursor, version uint64, found bool, err error) {
	rec, err := st.Get(ctx, CursorCollection, key)
	if errors.Is(err, store.ErrNotFound) {
		return cursor{}, 0, false, nil
	}
	if err != nil {
		return cursor{}, 0, false, fmt.Errorf("load notification cursor %s: %w", key, err)
	}
	if err := json.Unmarshal(rec.Data, &c); err != nil {
		return cursor{}, rec.Version, false, fmt.Errorf("decode notification cursor %s: %w", key, err)
	}
	return c, rec.Version, true, nil
}

// saveCursor writes c over the record at version (0 = new) and returns the
// new version. The worker of the channel is the only writer of its key, so
// a conflict means the record was changed behind its back (a corrupt or
// deleted record): it takes the stored version and writes again.
func saveCursor(ctx context.Context, st store.Store, key string, version uint64, c cursor) (uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return version, fmt.Errorf("encode notification cursor %s: %w", key, err)
	}
	rec, err := st.Put(ctx, CursorCollection, store.Record{Key: key, Version: version, Data: data})
	if errors.Is(err, store.ErrConflict) {
		cur, gerr := st.Get(ctx, CursorCollection, key)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			cur.Version = 0
		case gerr != nil:
			return version, fmt.Errorf("save notification cursor %s: %w", key, gerr)
		}
		rec, err = st.Put(ctx, CursorCollection, store.Record{Key: key, Version: cur.Version, Data: data})
	}
	if err != nil {
		return version, fmt.Errorf("save notification cursor %s: %w", key, err)
	}
	return rec.Version, nil
}
