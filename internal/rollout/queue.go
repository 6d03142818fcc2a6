package rollout

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// delayQueue schedules reconciles: each rollout has at most one due time
// (the earliest asked for), the queue sleeps exactly until the next one is
// due, and a rollout being reconciled is never handed out again until Done,
// so one rollout never has two reconciles at once. A time asked for while
// the rollout is being reconciled is kept and scheduled by Done.
type delayQueue struct {
	now func() time.Time

	mu         sync.Mutex
	due        map[string]time.Time
	items      itemHeap
	processing map[string]bool
	again      map[string]time.Time
	wake       chan struct{}
}

func newDelayQueue(now func() time.Time) *delayQueue {
	return &delayQueue{
		now:        now,
		due:        map[string]time.Time{},
		processing: map[string]bool{},
		again:      map[string]time.Time{},
		wake:       make(chan struct{}, 1),
	}
}

// Add asks for key to be reconciled at at (or earlier if already asked).
func (q *delayQueue) Add(key string, at time.Time) {
	q.mu.Lock()
	if q.processing[key] {
		if cur, ok := q.again[key]; !ok || at.Before(cur) {
			q.again[key] = at
		}
		q.mu.Unlock()
		return
	}
	q.addLocked(key, at)
	q.mu.Unlock()
}

func (q *delayQueue) addLocked(key string, at time.Time) {
	if cur, ok := q.due[key]; ok && !at.Before(cur) {
		return
	}
	q.due[key] = at
	heap.Push(&q.items, item{key: key, at: at})
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Done marks key's reconcile finished and schedules a time asked for meanwhile.
func (q *delayQueue) Done(key string) {
	q.mu.Lock()
	delete(q.processing, key)
	if at, ok := q.again[key]; ok {
		delete(q.again, key)
		q.addLocked(key, at)
	}
	q.mu.Unlock()
}

// Forget drops key's schedule (the rollout was removed).
func (q *delayQueue) Forget(key string) {
	q.mu.Lock()
	delete(q.due, key)
	delete(q.again, key)
	q.mu.Unlock()
}

// Run hands due keys to out until ctx ends. The receiver must call Done.
func (q *delayQueue) Run(ctx context.Context, out chan<- string) {
	q.requeueProcessing()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		key, wait, ok := q.pop()
		if ok {
			select {
			case out <- key:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// pop returns a due key, or how long to wait for the next one.
func (q *delayQueue) pop() (string, time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.items.Len() > 0 {
		top := q.items[0]
		if at, ok := q.due[top.key]; !ok || !at.Equal(top.at) {
			heap.Pop(&q.items) // superseded by an earlier time, or forgotten
			continue
		}
		if wait := top.at.Sub(q.now()); wait > 0 {
			return "", wait, false
		}
		heap.Pop(&q.items)
		delete(q.due, top.key)
		q.processing[top.key] = true
		return top.key, 0, true
	}
	return "", time.Hour, false
}

type item struct {
	key string
	at  time.Time
}

type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// requeueProcessing makes keys handed out by an earlier Run that stopped
// (a leader that stepped down) due again: their Done may never come.
func (q *delayQueue) requeueProcessing() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for key := range q.processing {
		delete(q.processing, key)
		at := now
		if again, ok := q.again[key]; ok {
			delete(q.again, key)
			at = again
		}
		q.addLocked(key, at)
	}
}
