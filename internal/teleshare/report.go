package teleshare

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Collection holds one record per replica, keyed by replica id: the
// replica's latest Report.
const Collection = "replica-telemetry"

// Report is what one replica publishes: its own traffic since each
// rollout's current revision started, as it sees the revision.
type Report struct {
	// Replica is the record's key; it is not encoded in the record.
	Replica string
	// Incarnation is random per process: a replica that restarts starts
	// counting from zero again and is a new source to the merger.
	Incarnation string
	// Time is when the report was made, by the replica's clock.
	Time time.Time
	// Rollouts lists the rollouts with traffic, and in each only the
	// versions with traffic.
	Rollouts []RolloutReport

	unreadable bool // the record could not be decoded: keep what was merged
}

// RolloutReport is one rollout's traffic since Revision started on the
// replica, at Started (by its clock): a completion restarts the window
// and keeps the revision, so Started tells the two windows apart.
type RolloutReport struct {
	Name     string
	Revision int64
	Started  time.Time
	Versions []VersionReport
}

// VersionReport is one version's traffic since the revision started.
type VersionReport struct {
	Role     spec.Role
	Version  string
	Counters telemetry.Counters
}

// The record's JSON form: readable around the counters, which are the
// bulk and go as base64 of their compact binary form.
type (
	wireReport struct {
		Incarnation string        `json:"incarnation"`
		Time        time.Time     `json:"time"`
		Rollouts    []wireRollout `json:"rollouts,omitempty"`
	}
	wireRollout struct {
		Name     string        `json:"name"`
		Revision int64         `json:"revision"`
		Started  time.Time     `json:"started"`
		Versions []wireVersion `json:"versions"`
	}
	wireVersion struct {
		Role     spec.Role `json:"role"`
		Version  string    `json:"version"`
		Counters []byte    `json:"counters"`
	}
)

// Snapshot builds this process's report from reg: every rollout and
// version with own traffic in its current revision (imported traffic is
// never included, see telemetry.RolloutStats.ExportOwn).
func Snapshot(reg *telemetry.Registry, replica, incarnation string, now time.Time) Report {
	r := Report{Replica: replica, Incarnation: incarnation, Time: now}
	for _, rs := range reg.Rollouts() {
		own := rs.ExportOwn()
		if len(own.Versions) == 0 {
			continue
		}
		rr := RolloutReport{Name: rs.Name(), Revision: own.Revision, Started: own.Started, Versions: make([]VersionReport, len(own.Versions))}
		for i, v := range own.Versions {
			rr.Versions[i] = VersionReport{Role: v.Role, Version: v.Version, Counters: v.Counters}
		}
		r.Rollouts = append(r.Rollouts, rr)
	}
	return r
}

// Encode returns the record data of r.
func Encode(r Report) ([]byte, error) {
	w := wireReport{Incarnation: r.Incarnation, Time: r.Time.UTC(), Rollouts: make([]wireRollout, len(r.Rollouts))}
	var buf []byte
	for i, rr := range r.Rollouts {
		wr := wireRollout{Name: rr.Name, Revision: rr.Revision, Started: rr.Started.UTC(), Versions: make([]wireVersion, len(rr.Versions))}
		for j, v := range rr.Versions {
			start := len(buf)
			var err error
			if buf, err = v.Counters.AppendBinary(buf); err != nil {
				return nil, fmt.Errorf("encode the telemetry of %s/%s %s: %w", rr.Name, v.Role, v.Version, err)
			}
			// One buffer for all counters: the slices stay valid because
			// they are cut with a full capacity limit and never appended to.
			wr.Versions[j] = wireVersion{Role: v.Role, Version: v.Version, Counters: buf[start:len(buf):len(buf)]}
		}
		w.Rollouts[i] = wr
	}
	return json.Marshal(w)
}

// Decode parses the record of replica. A record it cannot read is an
// error naming the replica, so that the merger can log it and carry on
// with the others.
func Decode(replica string, data []byte) (Report, error) {
	var w wireReport
	if err := json.Unmarshal(data, &w); err != nil {
		return Report{}, fmt.Errorf("telemetry report of replica %q: %w", replica, err)
	}
	if w.Incarnation == "" || w.Time.IsZero() {
		return Report{}, fmt.Errorf("telemetry report of replica %q: no incarnation or time", replica)
	}
	r := Report{Replica: replica, Incarnation: w.Incarnation, Time: w.Time, Rollouts: make([]RolloutReport, len(w.Rollouts))}
	for i, wr := range w.Rollouts {
		rr := RolloutReport{Name: wr.Name, Revision: wr.Revision, Started: wr.Started, Versions: make([]VersionReport, len(wr.Versions))}
		for j, wv := range wr.Versions {
			rr.Versions[j] = VersionReport{Role: wv.Role, Version: wv.Version}
			if err := rr.Versions[j].Counters.UnmarshalBinary(wv.Counters); err != nil {
				return Report{}, fmt.Errorf("telemetry report of replica %q, rollout %q, %s %s: %w", replica, wr.Name, wv.Role, wv.Version, err)
			}
		}
		r.Rollouts[i] = rr
	}
	return r, nil
}

// newIncarnation returns a random id for this process's reports.
func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
