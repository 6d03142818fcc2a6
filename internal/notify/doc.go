// Package notify delivers a rollout's persisted events to its notification
// channels (spec.notifications, SPEC §6.4) asynchronously: the rollout
// controller commits events to the store and calls Wake, which never
// blocks; a Dispatcher delivers them in the background with retries.
//
// # Model
//
// Each channel (rollout, index in spec.notifications) has one worker
// goroutine and one cursor in the store (collection CursorCollection, key
// "<rollout>/<index>", JSON {seq, digest, target, state}). The worker reads
// the rollout's event stream after its cursor and handles the events one
// at a time, in Seq order, so events reach each channel in order. Workers
// are independent: a slow or failing channel delays neither another
// channel nor another rollout. The number of goroutines is bounded by the
// number of configured channels.
//
// # Delivery guarantee
//
// The cursor advances only after the receiver answered 2xx, and is then
// written durably (fsync) before the next event is sent. An event is sent
// again only when coalmine cannot know that the receiver accepted it: the
// process dies (kill -9) between the receiver's 2xx and the cursor's fsync
// (a failed cursor write is retried, not skipped), a shutdown or configuration change interrupts
// a request the receiver already processed, or the receiver answers after
// the HTTP client's timeout. Delivery is at-least-once in exactly that
// window and exactly-once otherwise; an event already recorded as delivered
// is never sent again, across restarts too.
//
// A webhook request carries the header "X-Coalmine-Event-Id: <rollout>/<seq>"
// (identical on every retry) so that receivers can drop such a duplicate;
// PagerDuty deduplicates by its dedup_key. Events skipped because their type
// is not in the channel's `on` list advance the cursor too; they are
// persisted lazily (before the next send and before going idle), which is
// harmless because skipping is repeatable.
//
// # Failures
//
// Network errors, timeouts, 408, 429 and 5xx answers, and secrets that
// cannot be resolved are retried with exponential backoff and jitter
// (Config.MinBackoff doubling up to Config.MaxBackoff) for as long as the
// process runs; a Retry-After header on the answer is honoured instead of
// the backoff (up to one hour). Meanwhile the channel holds its position, so
// later events wait behind the failing one, and the failure is visible in
// Status (Failures, LastError, NextRetry, Pending) and in the metrics. Any
// other 4xx answer means the receiver rejects this request and retrying
// cannot help: the event is logged at error level, counted with
// result="failed", and skipped (the cursor moves past it), so one
// unacceptable event cannot block a channel forever.
//
// # Configuration changes
//
// The cursor stores a digest of the channel's configuration: its kind, its
// target (URL or secret reference, never a secret value), its headers and
// its `on` list. A channel whose digest changed, or that has no cursor yet,
// starts after the newest event that existed when SetRollout was called: a
// newly added channel is not flooded with history, and an edited channel
// does not receive the backlog of the old configuration. Editing only the
// `on` list of a PagerDuty channel keeps its open incident so it is still
// resolved. A channel is identified by its index, so inserting a
// channel before others restarts those after it as new channels. Removing
// a channel (or the rollout) deletes its cursor; a channel dropped from the
// configuration while the process was down keeps its stale cursor, which
// only matters if the identical channel is later added back at the same
// index (it then resumes where it stopped).
//
// A rollout's first events reach its channels only if SetRollout was called
// before they were committed; the controller calls SetRollout on start,
// apply and reload, and Wake after each commit.
//
// # Concurrency
//
// Run owns every goroutine: one per channel, started by Run or by
// SetRollout while Run runs, and stopped by RemoveRollout, by SetRollout
// (changed or removed channel) or when Run's context ends; Run returns
// only after all of them stopped. Two workers never share a cursor: a
// replacement starts when its predecessor has stopped. Wake, Status and
// metric scrapes take a read lock held for no I/O.
package notify
