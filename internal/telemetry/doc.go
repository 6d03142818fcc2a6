// Package telemetry records what the proxy sees, per rollout and per
// version, in constant memory: requests by status code (live and mirrored),
// coalmine-generated errors by kind, dropped mirrors by reason, and live
// latency in a histogram on a fixed DDSketch grid with 1 % relative accuracy
// (statistics.md §5). It feeds the builtin analysis provider (Summary over
// the since-revision window or a sliding window), the dashboard, and
// /metrics (Collector).
//
// The hot path (VersionStats.Observe, ObserveMirror, ProxyError,
// RolloutStats.MirrorDropped) only adds to cumulative atomic counters: no
// locks, no allocation, no clock reads. Windows are computed off the hot
// path: Registry.Run (or Tick in tests) keeps sparse snapshots of the
// counters every WindowResolution for WindowRetention, and a window is the
// current counters minus the snapshot at or before its start, which is exact
// because every counter is monotonic. StartRevision moves the since-revision
// base and never resets the cumulative counters that Prometheus scrapes.
//
// Replicas share their traffic (package teleshare): ExportOwn gives a
// rollout's counters since its revision started, without what Import
// added, and Import adds another replica's counts to the current revision
// under the rollout's lock, so every reader of the leader's registry sees
// all replicas.
//
// Decisions worth knowing:
//
//   - Latencies are stored in seconds on the grid; Summary reports
//     milliseconds. The grid covers ≈1 µs..1 h (not just 100 s, so long
//     polls and downloads keep their 1 % guarantee) with an underflow bucket
//     (value 0) and an overflow bucket (value 1 h, a lower bound).
//   - The latency sum is kept in whole microseconds (rounded per request) so
//     that it is exact integer arithmetic: window means are exact to 1 µs.
//   - A window never reaches back before the revision start, and
//     Summary.Span says exactly which time span the numbers cover, so rates
//     are honest when the window is young or the sampler has not run.
//   - Mirrored requests are counted by status code only; their latency is
//     not kept and they never enter summaries.
//   - The classic Prometheus histogram is derived from the fine grid, so its
//     le bounds are accurate within 1 % rather than exact.
package telemetry
