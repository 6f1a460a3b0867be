package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/caesium-io/caesium/schema"
	"github.com/spf13/cobra"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/caesium
var version = "dev"

// buildVersion is version, or the module version when the binary was built
// with go install module@version and no -ldflags.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of caesium",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "caesium %s (%s %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of job manifests",
		Long: "schema prints the JSON Schema (draft 2020-12) of a v1 job manifest. Editors use it to\n" +
			"complete and check manifests; point a manifest at it with a $schema field or a\n" +
			"yaml-language-server comment. The schema checks structure only: run 'caesium job lint'\n" +
			"for cycles, cron expressions, time zones and duplicate aliases.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(schema.JSONSchema())
			return err
		},
	}
}
