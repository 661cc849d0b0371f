package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/operator-dev/operator/subjects"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// newRootCmd builds the whole command tree for the shipped subjects.
func newRootCmd() *cobra.Command { return newRootCmdFor(builtinSubjects()) }

// newRootCmdFor builds the whole command tree for the subjects of reg. It is
// a function rather than a package-level variable so tests can build a
// fresh tree each time, with subjects of their own.
func newRootCmdFor(reg subjects.Registry) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "operator",
		Short: "Watch distributed systems, judge them against invariants, repair them",
		Long: `Operator is an event-driven pipeline over NATS JetStream: observers publish
observations, evaluators apply CEL rule sets and emit violations, actuators
execute action requests against the subject's API.

Every flag can also be set with an environment variable: OPERATOR_ and the
flag name in upper case with dashes as underscores (--nats → OPERATOR_NATS,
--ratelimiter-url → OPERATOR_RATELIMITER_URL). A flag on the command line wins.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := flagsFromEnv(cmd); err != nil {
				return err
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("invalid --log-level %q: %w", logLevel, err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		newUpCmd(reg),
		newUICmd(reg),
		newVersionCmd(),
		newNATSCmd(),
		newRecordCmd(),
		newPublishCmd(),
		newEventsCmd(),
		newEvaluateCmd(),
		newReplayCmd(),
		newRulesCmd(),
		newRatelimiterCmd(),
		newBenchCmd(),
		newObserveCmd(reg),
		newLoadgenCmd(),
		newDemoCmd(),
		newChaosCmd(),
		newActuateCmd(reg),
		newDiagnoseCmd(reg),
		newActCmd(reg),
		newActionsCmd(reg),
		newApproveCmd(),
		newRejectCmd(),
		newControlCmd(),
		newHealthcheckCmd(),
	)
	return root
}

// flagsFromEnv sets every flag not given on the command line from its
// OPERATOR_* environment variable, so containers configure the binary
// without long command lines.
func flagsFromEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "OPERATOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "operator %s\n", buildVersion())
			return nil
		},
	}
}

// buildVersion returns the -ldflags version, or the module version and VCS
// revision recorded by the Go toolchain.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}
