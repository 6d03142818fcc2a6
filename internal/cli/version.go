package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// versionInfo is what `coalmine version -o json` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print coalmine's version",
		Long: `Print the version of this coalmine binary, the Go version it was built with
and its platform. It does not contact a server.`,
		Example: `  coalmine version
  coalmine version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			info := versionInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if output == outputText {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "coalmine %s (%s, %s)\n", info.Version, info.Go, info.Platform)
				return err
			}
			raw, err := json.Marshal(info)
			if err != nil {
				return err
			}
			return printRaw(cmd.OutOrStdout(), output, raw)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
