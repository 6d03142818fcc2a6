package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// changeChannel is the channel migration 0002's trigger notifies.
const changeChannel = "coalmine_changes"

var _ store.ChangeFeed = (*Store)(nil)

// Changes listens on a connection of its own for the notifications every
// committed record change sends (migration 0002). After it starts
// listening, and after every reconnection, it sends a Resync: whatever
// changed while it was not listening is unknown. When the reader is slow
// and the buffer fills, notifications are dropped and a Resync is sent
// instead, so the feed never blocks the connection.
func (s *Store) Changes(ctx context.Context) <-chan store.Change {
	out := make(chan store.Change, 256)
	go func() {
		defer close(out)
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := s.listen(ctx, out)
			if ctx.Err() != nil {
				return
			}
			s.logListen(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
		}
	}()
	return out
}

// listen holds one connection in LISTEN until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, out chan store.Change) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is in LISTEN state; it must not go back to the pool.
	defer destroy(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return err
	}
	resync := true
	for {
		if resync {
			select {
			case out <- store.Change{Resync: true}:
				resync = false
			default:
			}
		}
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		collection, key, _ := strings.Cut(n.Payload, "/")
		select {
		case out <- store.Change{Collection: collection, Key: key}:
		default:
			resync = true
		}
	}
}

func destroy(c *pgxpool.Conn) {
	conn := c.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
