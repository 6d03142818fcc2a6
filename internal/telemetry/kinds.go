package telemetry

// ErrorKind says why the proxy itself failed a request (as opposed to an
// upstream answering 5xx). It is the kind label of coalmine_proxy_errors_total.
type ErrorKind string

// Error kinds.
const (
	// ErrorConnect: no connection to the upstream could be made (502).
	ErrorConnect ErrorKind = "connect"
	// ErrorTimeout: the upstream did not answer in time (504).
	ErrorTimeout ErrorKind = "timeout"
	// ErrorOverflow: the version's connection pool and queue were full (503).
	ErrorOverflow ErrorKind = "overflow"
	// ErrorNoHealthyEndpoint: every endpoint of the version was down (503).
	ErrorNoHealthyEndpoint ErrorKind = "no-healthy-endpoint"
	// ErrorUpstreamProtocol: the upstream's answer was not valid HTTP (502).
	ErrorUpstreamProtocol ErrorKind = "upstream-protocol"
	// ErrorBodyInterrupted: the upstream closed the connection while the
	// client's request body was still being sent (it answered early, or
	// gave up on a slow upload); ambiguous, so never the version's error
	// in the analysis (502).
	ErrorBodyInterrupted ErrorKind = "body-interrupted"
	// ErrorLocalResources: coalmine itself had no descriptor or buffer to
	// connect with (EMFILE and the like): its own failure, never the
	// version's (503).
	ErrorLocalResources ErrorKind = "local-resources"
)

// ErrorKinds lists the known error kinds in exposition order.
func ErrorKinds() []ErrorKind {
	return []ErrorKind{ErrorConnect, ErrorTimeout, ErrorOverflow, ErrorNoHealthyEndpoint, ErrorUpstreamProtocol, ErrorBodyInterrupted, ErrorLocalResources}
}

// numErrorKinds is the known kinds plus one slot for unknown kinds.
const numErrorKinds = 8

// unknownLabel is exposed for counts recorded under an unknown kind or
// reason: a caller bug that must stay visible rather than vanish.
const unknownLabel = "unknown"

// Valid reports whether k is a known kind.
func (k ErrorKind) Valid() bool { return k.index() < numErrorKinds-1 }

// index maps a kind to its counter slot; unknown kinds share the last one.
func (k ErrorKind) index() int {
	switch k {
	case ErrorConnect:
		return 0
	case ErrorTimeout:
		return 1
	case ErrorOverflow:
		return 2
	case ErrorNoHealthyEndpoint:
		return 3
	case ErrorUpstreamProtocol:
		return 4
	case ErrorBodyInterrupted:
		return 5
	case ErrorLocalResources:
		return 6
	}
	return numErrorKinds - 1
}

// DropReason says why a mirrored request was not sent. It is the reason
// label of coalmine_mirror_dropped_total.
type DropReason string

// Drop reasons.
const (
	// DropBodyTooLarge: the request body exceeded the mirror buffer limit.
	DropBodyTooLarge DropReason = "body-too-large"
	// DropPoolFull: every mirror worker was busy and the queue was full.
	DropPoolFull DropReason = "pool-full"
	// DropMethod: the method is not idempotent and no match named it.
	DropMethod DropReason = "method"
	// DropError: the mirror request failed before an answer.
	DropError DropReason = "error"
)

// DropReasons lists the known drop reasons in exposition order.
func DropReasons() []DropReason {
	return []DropReason{DropBodyTooLarge, DropPoolFull, DropMethod, DropError}
}

// numDropReasons is the known reasons plus one slot for unknown reasons.
const numDropReasons = 5

// Valid reports whether r is a known reason.
func (r DropReason) Valid() bool { return r.index() < numDropReasons-1 }

func (r DropReason) index() int {
	switch r {
	case DropBodyTooLarge:
		return 0
	case DropPoolFull:
		return 1
	case DropMethod:
		return 2
	case DropError:
		return 3
	}
	return numDropReasons - 1
}

// RejectReason says why coalmine answered a client itself without asking
// any version: the client's request was at fault, or the listener was full.
// It is the reason label of coalmine_client_rejected_total. Rejections never
// count against a version.
type RejectReason string

// Reject reasons.
const (
	// RejectBadRequest: malformed request line, headers or body framing (400).
	RejectBadRequest RejectReason = "bad-request"
	// RejectHeaderTimeout: the request's headers did not arrive in time (408).
	RejectHeaderTimeout RejectReason = "header-timeout"
	// RejectURITooLong: the request line exceeded maxHeaderBytes (414).
	RejectURITooLong RejectReason = "uri-too-long"
	// RejectHeaderTooLarge: the header fields exceeded maxHeaderBytes (431).
	RejectHeaderTooLarge RejectReason = "header-too-large"
	// RejectBodyAborted: the client stopped sending its body mid-way, or
	// was silent longer than the idle timeout while sending it (499).
	RejectBodyAborted RejectReason = "body-aborted"
	// RejectTooManyConnections: the listener was at maxConnections (503).
	RejectTooManyConnections RejectReason = "too-many-connections"
)

// RejectReasons lists the known reasons in exposition order.
func RejectReasons() []RejectReason {
	return []RejectReason{RejectBadRequest, RejectHeaderTimeout, RejectURITooLong, RejectHeaderTooLarge, RejectBodyAborted, RejectTooManyConnections}
}

// numRejectReasons is the known reasons plus one slot for unknown reasons.
const numRejectReasons = 7

func (r RejectReason) index() int {
	switch r {
	case RejectBadRequest:
		return 0
	case RejectHeaderTimeout:
		return 1
	case RejectURITooLong:
		return 2
	case RejectHeaderTooLarge:
		return 3
	case RejectBodyAborted:
		return 4
	case RejectTooManyConnections:
		return 5
	}
	return numRejectReasons - 1
}
