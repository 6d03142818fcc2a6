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
// Latencies are stored in seconds on the grid (keys MinKey..MaxKey cover
// ≈1 µs..1 h); Summary reports milliseconds.
package telemetry
