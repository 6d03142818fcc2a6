// Package teleshare gives the leader one picture of the traffic across
// replicas (issue 12, docs/architecture.md "Telemetry across replicas").
//
// Every replica's proxy records into its own telemetry.Registry. A
// Publisher on each replica writes the replica's own traffic, per rollout
// and version since the rollout's revision started, to its record in
// Collection every second. A Merger on the leader reads the others'
// records and adds what is new in them to the leader's registry
// (telemetry.RolloutStats.Import), so everything that reads that registry
// (the builtin provider's summaries and sliding windows, /metrics, the
// dashboard's series) sees all replicas without knowing it. Counters are
// cumulative since the revision started and the merger imports
// differences, so a lost or repeated round loses or repeats nothing, and
// a new leader's first round brings the whole revision of every replica.
// Imported counts are never published again (ExportOwn leaves them out),
// so a replica that led and then follows sends only its own traffic.
//
// Step is the merge itself, deterministic over the reports, the merger's
// clock and the registry; Publisher.Run and Merger.Run are thin loops
// around the store.
//
// Known limits:
//
//   - Imported counts enter the leader's sliding windows when they are
//     imported, not when the requests happened: up to two intervals (2 s
//     by default) late. The first import after a leader change, or after
//     a replica's report reappears, lands a replica's whole
//     since-revision total in one tick, so a sliding window right after a
//     leader change can hold more than its length of that replica's
//     traffic. Since-revision summaries are exact.
//   - Counts are imported only into the revision the leader is in, and
//     only into versions it routes (never creating one). A
//     follower applies a new revision a moment after the leader; what it
//     served in between under the old routing is not imported (it belongs
//     to the revision that is over). Traffic it served after the leader
//     restarted the window within one revision (a completion) and before
//     it did so itself is imported into the new window.
//   - Reports older than MaxReportAge (by the merger's clock against the
//     replica's, so clocks should agree within seconds) are skipped; the
//     traffic they held was merged while they were fresh.
//   - Mirrored requests and the rollout-wide counters (mirror drops,
//     client rejections, connections) are not shared: nothing judges
//     them, and /metrics on each replica still exposes them.
//   - /metrics: the leader's counters include what it imported, and each
//     replica's include its own traffic, so summing the series of all
//     replicas counts the others' traffic twice; scrape the leader for
//     the whole picture. After a leader change the new leader's counters
//     jump by the others' since-revision totals (a jump, not a reset), and
//     the old leader's stop growing with the others' traffic.
//   - The record of a replica that died without Remove stays in the store
//     and its last counters in the merger's memory (a few KiB per busy
//     version) until the record is deleted. Deleting the record of a
//     replica that is alive but cut off makes its next report a first
//     sight, imported in full a second time.
package teleshare
