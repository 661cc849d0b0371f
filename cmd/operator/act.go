package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/eventlog"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// defaultPerson names whoever runs a command, for requests and decisions.
func defaultPerson() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

func newActCmd(reg subjects.Registry) *cobra.Command {
	var (
		nf     natsFlags
		id     string
		by     string
		reason string
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "act SUBJECT INSTANCE ACTION [PARAM=VALUE...]",
		Short: "Request an action by hand; it goes through the same gates as any other",
		Long: `Publish an action request on operator.action.requested.SUBJECT.INSTANCE.
A value is JSON when it parses as JSON and the param is not a string in the
catalog (limit=5, force=true), else a string (key=user:42). The request is
checked against the catalog here first; the actuator checks it again.`,
		Example: `  operator act ratelimiter prod reset_counter key=user:42 --reason "stuck counter"
  operator act ratelimiter prod update_limit pattern='api:*' limit=100 window_ms=60000 algorithm=sliding_window_log --wait 30s`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject, instance, action := args[0], args[1], args[2]
			sub, err := reg.Get(subject)
			if err != nil {
				return err
			}
			cat, err := sub.ActionCatalog()
			if err != nil {
				return err
			}
			a, ok := cat.Action(action)
			if !ok {
				return fmt.Errorf("no action %q for %s; see: operator actions catalog %s", action, subject, subject)
			}
			params, err := a.ParseParams(args[3:])
			if err != nil {
				return err
			}
			if err := a.ValidateParams(params); err != nil {
				return err
			}
			if id == "" {
				id = actuators.NewRequestID()
			}
			now := time.Now()
			req := schemas.ActionRequest{ID: id, Subject: subject, Instance: instance, Action: action, Params: params,
				Reason: reason, RequestedBy: by, RequestedAt: now}
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-act")
			if err != nil {
				return err
			}
			defer b.Close()
			subj, err := b.Subjects().ActionRequested(subject, instance)
			if err != nil {
				return err
			}
			e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/cli/act",
				Subject: subject + "/" + instance, ID: id, Time: now, CorrelationID: id}, req)
			if err != nil {
				return err
			}
			ack, err := b.PublishAck(cmd.Context(), subj, e)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if ack.Duplicate {
				fmt.Fprintf(out, "request %s was already published; nothing new stored\n", id)
			} else {
				fmt.Fprintf(out, "requested %s%s on %s/%s: id %s\n", action, schemas.FormatParams(params), subject, instance, id)
			}
			if wait <= 0 {
				fmt.Fprintf(out, "follow it with: operator actions show %s\n", id)
				return nil
			}
			return waitForOutcome(cmd.Context(), b, out, id, now.Add(-time.Second), wait)
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&id, "id", "", "request id (default: random); republishing the same id runs nothing twice")
	fs.StringVar(&by, "by", defaultPerson(), "who requests it")
	fs.StringVar(&reason, "reason", "", "why")
	fs.DurationVar(&wait, "wait", 0, "wait this long for the outcome (and verification) and print it")
	return cmd
}

// waitForOutcome prints the events of request id as they arrive until its
// verification, a final outcome that will not be verified, or the timeout.
func waitForOutcome(ctx context.Context, b *bus.Bus, out io.Writer, id string, since time.Time, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := actuators.WaitOutcome(ctx, b, b.Subjects().All(), id, since, func(e event.Event) {
		fmt.Fprintln(out, eventlog.Line(e))
	})
	if err != nil {
		return fmt.Errorf("within %s: %w", wait, err)
	}
	return nil
}

func newActionsCmd(reg subjects.Registry) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "actions",
		Short: "List and show action requests with their results and verifications; show the catalogs",
	}
	cmd.AddCommand(newActionsListCmd(), newActionsShowCmd(), newActionsCatalogCmd(reg))
	return cmd
}

func newActionsListCmd() *cobra.Command {
	var (
		nf    natsFlags
		limit int
		since time.Duration
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List action requests, newest first, with outcome and verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-actions")
			if err != nil {
				return err
			}
			defer b.Close()
			from := sinceTime(since)
			list, err := actuators.ReadHistory(cmd.Context(), b, from)
			if err != nil {
				return err
			}
			if limit > 0 && len(list) > limit {
				list = list[:limit]
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REQUESTED\tID\tTARGET\tACTION\tOUTCOME\tVERIFIED\tREASON")
			for _, h := range list {
				target, action, params := "?", "?", ""
				if h.Request != nil {
					target, action, params = h.Request.Subject+"/"+h.Request.Instance, h.Request.Action, schemas.FormatParams(h.Request.Params)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s\t%s\t%s\n", h.RequestedAt.UTC().Format(time.RFC3339), h.ID, target,
					action, params, h.Outcome(), h.Verified(), truncateText(h.Reason(), 100))
			}
			return tw.Flush()
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many requests (0: all)")
	cmd.Flags().DurationVar(&since, "since", 7*24*time.Hour, "only requests stored within this long ago (0: all)")
	return cmd
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func newActionsShowCmd() *cobra.Command {
	var (
		nf    natsFlags
		since time.Duration
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one request (an id or a unique prefix) with its result, verification, ledger entry and approval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-actions")
			if err != nil {
				return err
			}
			defer b.Close()
			from := sinceTime(since)
			list, err := actuators.ReadHistory(cmd.Context(), b, from)
			if err != nil {
				return err
			}
			h, err := actuators.FindHistory(list, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "request %s: %s, verified %s\n\n", h.ID, h.Outcome(), h.Verified())
			printJSON(out, "request", h.Request)
			printJSON(out, "awaiting approval", h.Awaiting)
			printJSON(out, "result", h.Result)
			printJSON(out, "verification", h.Verification)
			if ledger, err := b.KV(cmd.Context(), schemas.BucketActuatorLedger); err == nil {
				if entry, err := actuators.ReadLedger(cmd.Context(), ledger, h.ID); err == nil {
					printJSON(out, "ledger", &entry)
				}
			}
			if control, err := b.KV(cmd.Context(), schemas.BucketControl); err == nil {
				if list, err := actuators.ListApprovals(cmd.Context(), control); err == nil {
					for _, a := range list {
						if a.RequestID == h.ID {
							a.Request = schemas.ActionRequest{} // shown above
							printJSON(out, "approval", &a)
						}
					}
				}
			}
			fmt.Fprintln(out, "events:")
			for _, e := range h.Events {
				fmt.Fprintln(out, "  "+eventlog.Line(e))
			}
			return nil
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().DurationVar(&since, "since", 30*24*time.Hour, "search requests stored within this long ago (0: all)")
	return cmd
}

func printJSON[T any](out io.Writer, title string, v *T) {
	if v == nil {
		return
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return
	}
	fmt.Fprintf(out, "%s:\n  %s\n\n", title, b)
}

func newActionsCatalogCmd(reg subjects.Registry) *cobra.Command {
	return &cobra.Command{
		Use:   "catalog [SUBJECT]",
		Short: "Show the actions the actuator knows, with risk, approval, cooldown and verification",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cats, err := reg.Catalogs()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBJECT\tACTION\tRISK\tAPPROVAL\tCOOLDOWN\tTARGET\tVERIFY WITHIN\tDESCRIPTION")
			for _, name := range reg.Names() {
				if cats[name] == nil {
					continue
				}
				if len(args) == 1 && args[0] != name {
					continue
				}
				for _, a := range cats[name].Actions {
					approval := "no"
					if a.RequiresApproval {
						approval = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, a.Name, a.Risk, approval, a.Cooldown,
						orDash(a.Target), a.VerifyWithin, truncateText(a.Description, 80))
				}
			}
			return tw.Flush()
		},
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newDecisionCmd(approve bool) *cobra.Command {
	var (
		nf     natsFlags
		by     string
		reason string
		wait   time.Duration
	)
	use, short := "reject ID --reason TEXT", "Reject a request awaiting approval; it is recorded as rejected"
	if approve {
		use, short = "approve ID", "Approve a request awaiting approval; an actuator then runs it through the gates again and executes it"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

The decision is written to the operator_control bucket and the request is
resubmitted (event id derived from the request id), so a running actuator
decides it again: an approved request still meets the kill switch, the mode,
its precondition and the budget before it executes. Approvals expire.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, control, err := nf.openControl(cmd.Context(), "operator-approve")
			if err != nil {
				return err
			}
			defer b.Close()
			id, err := actuators.ResolveApprovalID(cmd.Context(), control, args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			rec, err := actuators.Decide(cmd.Context(), control, b, b.Subjects(), id,
				actuators.Decision{Approve: approve, By: by, Reason: reason, Source: "/cli/" + cmd.Name()}, now)
			out := cmd.OutOrStdout()
			if err != nil {
				if errors.Is(err, actuators.ErrApprovalExpired) {
					fmt.Fprintf(out, "request %s: %v; it is recorded as rejected\n", id, err)
				}
				return err
			}
			r := rec.Request
			if approve {
				fmt.Fprintf(out, "approved %s: %s%s on %s/%s (approval good until %s)\n", id, r.Action, schemas.FormatParams(r.Params),
					r.Subject, r.Instance, rec.ExpiresAt.UTC().Format(time.RFC3339))
				fmt.Fprintln(out, "resubmitted to the actuators; it executes once an actuator in execute mode passes its gates (kill switch, mode, precondition, budget)")
			} else {
				fmt.Fprintf(out, "rejected %s: %s on %s/%s: %s\n", id, r.Action, r.Subject, r.Instance, reason)
			}
			if wait <= 0 {
				fmt.Fprintf(out, "follow it with: operator actions show %s\n", id)
				return nil
			}
			return waitForOutcome(cmd.Context(), b, out, id, now.Add(-time.Second), wait)
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&by, "by", defaultPerson(), "who decides")
	fs.StringVar(&reason, "reason", "", "why (required to reject)")
	fs.DurationVar(&wait, "wait", 0, "wait this long for the outcome and print it")
	if !approve {
		_ = cmd.MarkFlagRequired("reason")
	}
	return cmd
}

func newApproveCmd() *cobra.Command { return newDecisionCmd(true) }
func newRejectCmd() *cobra.Command  { return newDecisionCmd(false) }

func newControlCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Kill switch and status of the actuators",
	}
	cmd.AddCommand(newKillSwitchCmd(true), newKillSwitchCmd(false), newControlStatusCmd())
	return cmd
}

func newKillSwitchCmd(engage bool) *cobra.Command {
	var (
		nf     natsFlags
		by     string
		reason string
	)
	use, short := "start [SUBJECT]", "Release the kill switch (of one subject, or the global one)"
	if engage {
		use, short = "stop [SUBJECT]", "Engage the kill switch: every actuator replica stops acting (on one subject, or on all)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, control, err := nf.openControl(cmd.Context(), "operator-control")
			if err != nil {
				return err
			}
			defer b.Close()
			ks := actuators.KillSwitch{Engaged: engage, By: by, Reason: reason, At: time.Now()}
			scope := "all subjects"
			if len(args) == 1 {
				ks.Subject, scope = args[0], args[0]
			}
			if err := actuators.SetKillSwitch(cmd.Context(), control, ks); err != nil {
				return err
			}
			if engage {
				fmt.Fprintf(cmd.OutOrStdout(), "kill switch engaged for %s: requests are rejected and retries in progress stop\n", scope)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "kill switch released for %s\n", scope)
				st, err := actuators.ReadStatus(cmd.Context(), control, time.Now())
				if err != nil {
					return err
				}
				for _, k := range st.KillSwitches {
					if k.Engaged && (ks.Subject == "" || k.Subject == "") {
						fmt.Fprintf(cmd.OutOrStdout(), "note: the kill switch for %s is still engaged\n", orDefault(k.Subject, "all subjects"))
					}
				}
			}
			return nil
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().StringVar(&by, "by", defaultPerson(), "who")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	return cmd
}

func newControlStatusCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show kill switches, approvals and each subject's budget and cooldowns",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, control, err := nf.openControl(cmd.Context(), "operator-control")
			if err != nil {
				return err
			}
			defer b.Close()
			now := time.Now()
			st, err := actuators.ReadStatus(cmd.Context(), control, now)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			engaged := false
			for _, k := range st.KillSwitches {
				if !k.Engaged {
					continue
				}
				engaged = true
				scope := "all subjects"
				if k.Subject != "" {
					scope = k.Subject
				}
				fmt.Fprintf(out, "KILL SWITCH ENGAGED for %s by %s at %s: %s\n", scope, k.By, k.At.UTC().Format(time.RFC3339), orDash(k.Reason))
			}
			if !engaged {
				fmt.Fprintln(out, "kill switch: released")
			}
			fmt.Fprintln(out)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBJECT\tBUDGET USED\tWINDOW\tCOOLING DOWN")
			for _, bs := range st.Budgets {
				var cooling []string
				for _, c := range bs.Cooling {
					cooling = append(cooling, fmt.Sprintf("%s/%s %s until %s", c.Instance, c.Action, orDash(c.Target), c.Until.UTC().Format(time.RFC3339)))
				}
				fmt.Fprintf(tw, "%s\t%d of %d\t%s\t%s\n", bs.Subject, bs.Used, bs.MaxActions, bs.Per, orDash(strings.Join(cooling, "; ")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(out)
			tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APPROVAL\tSTATE\tREQUEST\tEXPIRES\tDECIDED BY\tREASON")
			for _, a := range st.Approvals {
				state := string(a.State)
				if a.State == actuators.ApprovalPending && now.After(a.ExpiresAt) {
					state = "pending (expired)"
				}
				r := a.Request
				fmt.Fprintf(tw, "%s\t%s\t%s/%s %s%s\t%s\t%s\t%s\n", a.RequestID, state, r.Subject, r.Instance, r.Action,
					schemas.FormatParams(r.Params), a.ExpiresAt.UTC().Format(time.RFC3339), orDash(a.DecidedBy), orDash(a.Reason))
			}
			return tw.Flush()
		},
	}
	addNATSFlags(cmd, &nf)
	return cmd
}
