//go:build !unix

package cli

import "io"

// terminalWidth is unknown on this platform; lines are not cut.
func terminalWidth(io.Writer) int { return 0 }
