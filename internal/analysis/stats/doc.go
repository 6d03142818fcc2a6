// Package stats holds the statistical methods of statistics.md as pure
// functions over numbers: fixed-horizon tests (Mann-Whitney U, Fisher's
// exact test, two-proportion z, the conditional binomial test, power),
// Kayenta's Mann-Whitney classifier and scorer, and anytime-valid
// sequential tests. Its tests reproduce testdata/stats-vectors.json (at the
// repository root; testdata/README.md says how it was computed) within the
// stated tolerances. No I/O, no clock, no randomness.
package stats
