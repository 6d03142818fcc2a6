package route

import "github.com/coalmine-dev/coalmine/internal/spec"

// FNV-1a constants. FNV is used rather than maphash because buckets must be
// identical across processes and restarts: a user who saw the canary must
// keep seeing it after coalmine restarts.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Salt derives the per-rollout, per-revision salt, so a new revision
// reshuffles which users go first and a user is not always the first
// canary of every release.
func Salt(rollout string, revision int64) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(rollout); i++ {
		h ^= uint64(rollout[i])
		h *= fnvPrime
	}
	h ^= '/'
	h *= fnvPrime
	for i := 0; i < 8; i++ {
		h ^= uint64(byte(revision >> (8 * i)))
		h *= fnvPrime
	}
	return mix64(h)
}

// Bucket maps a subject key to [0, 10000) for a salt. The final mix spreads
// FNV's weak low bits so that buckets are uniform for sequential user ids.
func Bucket(salt uint64, key []byte) uint32 {
	h := uint64(fnvOffset) ^ salt
	h *= fnvPrime
	for _, c := range key {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return uint32(mix64(h) % uint64(spec.MaxWeight))
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
