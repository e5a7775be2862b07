package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

func notifierCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notifier",
		Short: "Tell webhooks and Slack when a cluster gets worse, and try them out with a local receiver",
		Long: `A notifier hears of new findings at or above a severity, posture scores
that dropped, failed jobs, workers offline too long and exceptions about
to expire. Events are CloudEvents 1.0, delivered at least once with
retries: a webhook's are signed per the Standard Webhooks scheme with the
secret 'notifier create' shows once; a Slack notifier gets a text message.
'notifier receive' is a local receiver that verifies and prints them.
See docs/notifications.md.`,
	}
	cmd.AddCommand(notifierCreateCommand(g), notifierListCommand(g), notifierDeleteCommand(g), notifierTestCommand(g),
		notifierDeliveriesCommand(g), notifierReceiveCommand(g))
	return cmd
}

func notifierCreateCommand(g *globals) *cobra.Command {
	var webhookURL, slackURL, tenant, minSeverity, secretFile string
	var events []string
	var scoreDrop int32
	var offlineAfter, expiryWarning time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME (--webhook URL | --slack URL) [--tenant T] [--events E,...] [--min-severity S] [--score-drop N] [--offline-after D] [--expiry-warning D]",
		Short: "Add a notifier: a signed webhook, or a Slack incoming webhook",
		Long: `Add a notifier. A webhook gets each event as a CloudEvent, signed with a
secret that is shown once, here: keep it where the receiver reads it,
or give --secret-file to have it written to a file (mode 0600) instead
of printed. A Slack incoming webhook gets a text message; its address is
its secret and is listed with its path hidden.

URLs are https; an operator's notifier may also use http to a loopback
address (a local receiver, such as 'fleetscan notifier receive'). A
tenant's notifier hears of its own clusters only and must use https to a
public address. An operator's notifier hears of the whole fleet, or of
one tenant's clusters with --tenant.

--events chooses among these (default: all of them):
  ` + orList(eventNames()) + `.
Their thresholds default on the server: --min-severity high,
--score-drop 10 points, --offline-after 15m, --expiry-warning 3d.`,
		Example: `  fleetscan notifier receive --secret-file hook.secret &       # a receiver to try it with
  fleetscan notifier create local --webhook http://127.0.0.1:8090/ --secret-file hook.secret
  fleetscan notifier create ops --webhook https://hooks.example.com/fleetscan \
      --events new-findings,job-failed --min-severity critical
  fleetscan notifier create acme-slack --slack https://hooks.slack.com/services/T0/B0/XXXX \
      --tenant acme --events score-dropped,worker-offline --score-drop 5 --offline-after 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := &fleetscanv1.Notifier{Name: args[0], Tenant: tenant}
			switch {
			case (webhookURL == "") == (slackURL == ""):
				return errors.New("give one of --webhook URL (a signed CloudEvent) or --slack URL (a Slack incoming webhook)")
			case webhookURL != "":
				n.Kind, n.Url = fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, webhookURL
			default:
				n.Kind, n.Url = fleetscanv1.NotifierKind_NOTIFIER_KIND_SLACK, slackURL
				if secretFile != "" {
					return errors.New("--secret-file: a Slack notifier has no signing secret (its address is the secret)")
				}
			}
			var err error
			if n.Events, err = parseEvents(events); err != nil {
				return err
			}
			if n.MinSeverity, err = parseSeverity(minSeverity); err != nil {
				return fmt.Errorf("--min-severity: %w", err)
			}
			if cmd.Flags().Changed("score-drop") && (scoreDrop < 1 || scoreDrop > 100) {
				return fmt.Errorf("--score-drop %d: 1 to 100 points", scoreDrop)
			}
			n.ScoreDrop = scoreDrop
			if cmd.Flags().Changed("offline-after") {
				n.OfflineAfter = durationpb.New(offlineAfter)
			}
			if cmd.Flags().Changed("expiry-warning") {
				n.ExpiryWarning = durationpb.New(expiryWarning)
			}
			// The file is made before the notifier, so that a path that
			// cannot be written fails before anything is created.
			var sf *pendingFile
			if secretFile != "" {
				if sf, err = newPendingFile(secretFile); err != nil {
					return fmt.Errorf("--secret-file: %w", err)
				}
				defer sf.abandon()
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.NotifierService.CreateNotifier(cmd.Context(), &fleetscanv1.CreateNotifierRequest{Notifier: n})
			if err != nil {
				return g.explain(err)
			}
			if sf != nil {
				if err := sf.commit(resp.Secret + "\n"); err != nil {
					return fmt.Errorf("notifier %s created, but writing its secret failed (delete it and create it again): %w", resp.Notifier.Name, err)
				}
				resp.Secret = ""
			}
			if g.structured() {
				return g.print(resp)
			}
			created := resp.Notifier
			fmt.Fprintf(g.stdout, "Created notifier %s (%s): %s to %s, for %s.\nEvents: %s.\n", created.Name, created.Id, kindName(created.Kind), created.Url,
				notifierScope(created), eventDetails(created))
			switch {
			case sf != nil:
				fmt.Fprintf(g.stdout, "Its signing secret is in %s; no command shows it again.\n", secretFile)
			case resp.Secret != "":
				fmt.Fprintf(g.stdout, "Signing secret (shown once; no command shows it again):\n%s\n", resp.Secret)
			}
			if created.Kind == fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK {
				fmt.Fprintf(g.stdout, "The receiver verifies each request's webhook-signature with it. Try it: fleetscan notifier test %s\n", created.Name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&webhookURL, "webhook", "", "POST signed CloudEvents to this URL")
	f.StringVar(&slackURL, "slack", "", "post text messages to this Slack incoming webhook")
	f.StringVar(&tenant, "tenant", "", "hear only of this tenant's clusters (operators; a tenant's notifier always does)")
	f.StringSliceVar(&events, "events", nil, "the events it wants, comma-separated: "+strings.Join(eventNames(), ", ")+" (default all)")
	f.StringVar(&minSeverity, "min-severity", "", "new-findings: the least severity that counts: info, low, medium, high or critical (server default high)")
	f.Int32Var(&scoreDrop, "score-drop", 0, "score-dropped: the drop in points that counts, 1 to 100 (server default 10)")
	f.Var(duration.Var(&offlineAfter), "offline-after", "worker-offline: how long a worker may be away, at least 1m (server default 15m)")
	f.Var(duration.Var(&expiryWarning), "expiry-warning", "exception-expiring: how long before an exception expires to warn (server default 3d)")
	f.StringVar(&secretFile, "secret-file", "", "write a webhook's signing secret to this file (mode 0600) instead of printing it")
	return cmd
}

func notifierListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List notifiers by name (never their secrets)",
		Example: "  fleetscan notifier list\n  fleetscan notifier list -o wide",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.NotifierService.ListNotifiers(cmd.Context(), &fleetscanv1.ListNotifiersRequest{})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			header := []string{"ID", "NAME", "KIND", "TENANT", "EVENTS", "URL"}
			if g.output == "wide" {
				header = append(header, "MIN SEVERITY", "SCORE DROP", "OFFLINE AFTER", "EXPIRY WARNING", "CREATED BY", "CREATED")
			}
			t := newTable(g.stdout, header...)
			for _, n := range resp.Notifiers {
				row := []string{n.Id, n.Name, kindName(n.Kind), orDash(n.Tenant), eventList(n.Events), n.Url}
				if g.output == "wide" {
					row = append(row, strings.ToLower(severityName(n.MinSeverity)), fmt.Sprint(n.ScoreDrop), shortDuration(n.OfflineAfter.AsDuration()),
						shortDuration(n.ExpiryWarning.AsDuration()), orDash(n.CreatedBy), when(n.CreateTime))
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
}

func notifierDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NOTIFIER",
		Short:   "Remove a notifier (by id or name); its deliveries not yet made are abandoned",
		Example: "  fleetscan notifier delete ops\n  fleetscan notifier delete 01JD5S0Q4C3Y8X2M7V6K1N9B0T",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := g.findNotifier(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			resp, err := c.NotifierService.DeleteNotifier(cmd.Context(), &fleetscanv1.DeleteNotifierRequest{NotifierId: n.Id})
			if err != nil {
				return g.explain(err)
			}
			if g.structured() {
				return g.print(resp)
			}
			fmt.Fprintf(g.stdout, "Deleted notifier %s; %s abandoned", n.Name, plural(int(resp.AbandonedDeliveries), "pending delivery", "pending deliveries"))
			if resp.AbandonedDeliveries > 0 {
				fmt.Fprint(g.stdout, ` (listed as failed: "notifier deleted")`)
			}
			fmt.Fprintln(g.stdout, ".")
			return nil
		},
	}
}

func notifierTestCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "test NOTIFIER",
		Short: "Send a test event to a notifier now, and say how its receiver answered",
		Long: `Send a dev.fleetscan.test event to the notifier (by id or name) at once,
signed as every event is, and print DELIVERED, or FAILED with the
receiver's status and error; the command then exits 2. The attempt is
listed among the notifier's deliveries, and not tried again.`,
		Example: "  fleetscan notifier test ops\n  fleetscan notifier test ops -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := g.findNotifier(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			resp, err := c.NotifierService.TestNotifier(cmd.Context(), &fleetscanv1.TestNotifierRequest{NotifierId: n.Id})
			if err != nil {
				return g.explain(err)
			}
			d := resp.Delivery
			if g.structured() {
				if err := g.print(resp); err != nil {
					return err
				}
			} else if d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED {
				fmt.Fprintf(g.stdout, "DELIVERED: %s answered %d (test delivery %s).\n", n.Name, d.LastStatus, d.Id)
			} else {
				fmt.Fprintf(g.stdout, "FAILED: %s (test delivery %s).\n", lastAnswer(d), d.Id)
			}
			if d.State != fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED {
				return fmt.Errorf("notifier %s did not take the test event", n.Name)
			}
			return nil
		},
	}
}

// deliveriesPage is the page size of notifier deliveries (a variable:
// a test pages with less).
var deliveriesPage = 500

func notifierDeliveriesCommand(g *globals) *cobra.Command {
	var notifier, state string
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries [--notifier NOTIFIER] [--state pending|delivered|failed] [--limit N]",
		Short: "List deliveries, newest first: what was sent or is still to send, how often it was tried, how it ended",
		Long: `List deliveries, newest first: each is one event on its way to one
notifier. A pending delivery is tried again at its next attempt; a failed
one was refused for good by its receiver, ran out of retries, or lost its
notifier. -o wide shows errors in full.`,
		Example: `  fleetscan notifier deliveries
  fleetscan notifier deliveries --notifier ops --state failed
  fleetscan notifier deliveries --limit 0 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseDeliveryState(state)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: 0 (all) or more", limit)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			listed, err := c.NotifierService.ListNotifiers(cmd.Context(), &fleetscanv1.ListNotifiersRequest{})
			if err != nil {
				return g.explain(err)
			}
			names := map[string]string{}
			req := &fleetscanv1.ListDeliveriesRequest{NotifierId: notifier, State: st}
			for _, n := range listed.Notifiers {
				names[n.Id] = n.Name
				if n.Name == notifier {
					req.NotifierId = n.Id
				}
			}
			out := &fleetscanv1.ListDeliveriesResponse{}
			more := false
			for {
				req.PageSize = int32(deliveriesPage)
				if limit > 0 {
					req.PageSize = int32(min(deliveriesPage, limit-len(out.Deliveries)))
				}
				resp, err := c.NotifierService.ListDeliveries(cmd.Context(), req)
				if err != nil {
					return g.explain(err)
				}
				out.Deliveries = append(out.Deliveries, resp.Deliveries...)
				if resp.NextPageToken == "" {
					break
				}
				if limit > 0 && len(out.Deliveries) >= limit {
					more = true
					break
				}
				req.PageToken = resp.NextPageToken
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "(the newest %d; --limit 0 lists all)\n", limit)
			}
			if g.structured() {
				return g.print(out)
			}
			t := newTable(g.stdout, "ID", "NOTIFIER", "EVENT", "CLUSTER", "STATE", "ATTEMPTS", "NEXT/LAST ATTEMPT", "LAST ANSWER", "SUMMARY")
			for _, d := range out.Deliveries {
				name := names[d.NotifierId]
				if name == "" {
					name = d.NotifierId // deleted
				}
				answer := lastAnswer(d)
				if g.output != "wide" {
					answer = shorten(answer, 60)
				}
				t.row(d.Id, name, eventName(d.EventType), orDash(d.ClusterId), enumName(d.State, "DELIVERY_STATE_"), fmt.Sprint(d.Attempts),
					attemptTime(d), answer, d.Summary)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&notifier, "notifier", "", "only this notifier's (id or name)")
	f.StringVar(&state, "state", "", "only deliveries in this state: pending, delivered or failed")
	f.IntVar(&limit, "limit", 50, "list the newest N (0: all)")
	return cmd
}

// findNotifier returns the notifier of an id or a name; one it does not
// see is left to the server to call not found.
func (g *globals) findNotifier(ctx context.Context, c *client.Client, idOrName string) (*fleetscanv1.Notifier, error) {
	resp, err := c.NotifierService.ListNotifiers(ctx, &fleetscanv1.ListNotifiersRequest{})
	if err != nil {
		return nil, g.explain(err)
	}
	for _, n := range resp.Notifiers {
		if n.Id == idOrName || n.Name == idOrName {
			return n, nil
		}
	}
	return &fleetscanv1.Notifier{Id: idOrName, Name: idOrName}, nil
}

// eventName is how the CLI words an event type: new-findings, ...
func eventName(t fleetscanv1.EventType) string {
	return strings.ReplaceAll(enumName(t, "EVENT_TYPE_"), "_", "-")
}

// wantable are the event types a notifier can want, in the API's order.
func wantable() []fleetscanv1.EventType {
	var out []fleetscanv1.EventType
	for v := range fleetscanv1.EventType_name {
		if t := fleetscanv1.EventType(v); t != fleetscanv1.EventType_EVENT_TYPE_UNSPECIFIED && t != fleetscanv1.EventType_EVENT_TYPE_TEST {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func eventNames() []string {
	var out []string
	for _, t := range wantable() {
		out = append(out, eventName(t))
	}
	return out
}

// parseEvents reads --events: names in any case, with - or _.
func parseEvents(names []string) ([]fleetscanv1.EventType, error) {
	var out []fleetscanv1.EventType
	for _, s := range names {
		want := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
		i := slices.IndexFunc(wantable(), func(t fleetscanv1.EventType) bool { return eventName(t) == want })
		if i < 0 {
			return nil, fmt.Errorf("--events %q: use %s", s, orList(eventNames()))
		}
		out = append(out, wantable()[i])
	}
	return out, nil
}

func parseDeliveryState(s string) (fleetscanv1.DeliveryState, error) {
	if s == "" {
		return fleetscanv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED, nil
	}
	v, ok := fleetscanv1.DeliveryState_value["DELIVERY_STATE_"+strings.ToUpper(strings.TrimSpace(s))]
	if !ok || v == 0 {
		return 0, fmt.Errorf("--state %q: use pending, delivered or failed", s)
	}
	return fleetscanv1.DeliveryState(v), nil
}

func kindName(k fleetscanv1.NotifierKind) string { return enumName(k, "NOTIFIER_KIND_") }

// eventList is a notifier's events, or "all".
func eventList(events []fleetscanv1.EventType) string {
	if len(events) == 0 {
		return "all"
	}
	var names []string
	for _, e := range events {
		names = append(names, eventName(e))
	}
	return strings.Join(names, ",")
}

// eventDetails is a notifier's events with the threshold of each.
func eventDetails(n *fleetscanv1.Notifier) string {
	events := n.Events
	if len(events) == 0 {
		events = wantable()
	}
	var out []string
	for _, e := range events {
		s := eventName(e)
		switch e {
		case fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS:
			s += fmt.Sprintf(" (%s or worse)", strings.ToLower(severityName(n.MinSeverity)))
		case fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED:
			s += fmt.Sprintf(" (more than %d points)", n.ScoreDrop)
		case fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE:
			s += fmt.Sprintf(" (after %s)", shortDuration(n.OfflineAfter.AsDuration()))
		case fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING:
			s += fmt.Sprintf(" (%s before)", shortDuration(n.ExpiryWarning.AsDuration()))
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func notifierScope(n *fleetscanv1.Notifier) string {
	if n.Tenant == "" {
		return "the whole fleet"
	}
	return "tenant " + n.Tenant + "'s clusters"
}

// lastAnswer is how the receiver last answered: its status and the error.
func lastAnswer(d *fleetscanv1.Delivery) string {
	switch {
	case d.LastError == "" && d.LastStatus == 0:
		return "-"
	case d.LastError == "":
		return fmt.Sprint(d.LastStatus)
	case d.LastStatus == 0:
		return "no answer: " + d.LastError
	}
	if rest, ok := strings.CutPrefix(d.LastError, "the receiver answered "); ok {
		return rest
	}
	return fmt.Sprintf("%d: %s", d.LastStatus, d.LastError)
}

// attemptTime is when a pending delivery is tried next, or when the last
// attempt of another was.
func attemptTime(d *fleetscanv1.Delivery) string {
	switch {
	case d.State == fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING && d.NextAttemptTime != nil:
		return "next " + when(d.NextAttemptTime)
	case d.LastAttemptTime != nil:
		return "last " + when(d.LastAttemptTime)
	}
	return "-"
}

// shortDuration is a duration as the flags take it, without Go's zero
// minutes and seconds: 15m, 2h, 3d, 1h30m.
func shortDuration(d time.Duration) string {
	s := duration.Format(d)
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// shorten cuts s to n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// orList is "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// pendingFile is a file written whole or not at all, only its owner may
// read: a temporary file beside it, renamed over it once written.
type pendingFile struct {
	f         *os.File
	path      string
	committed bool
}

func newPendingFile(path string) (*pendingFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	// CreateTemp makes it 0600 already; say so whatever the platform.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &pendingFile{f: f, path: path}, nil
}

func (p *pendingFile) commit(content string) error {
	_, err := p.f.WriteString(content)
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.f.Name(), p.path)
	}
	p.committed = err == nil
	return err
}

// abandon removes the temporary file unless it was committed.
func (p *pendingFile) abandon() {
	if p.committed {
		return
	}
	p.f.Close()
	os.Remove(p.f.Name())
}
